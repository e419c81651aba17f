package novatest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/saga"
)

// RunSagaStore runs the saga run store conformance suite against the
// stores newStore returns. newStore must return a fresh, empty store each
// time it is called (a server-backed store may use a fresh schema) and
// register its cleanup with t; it is called from parallel subtests. The
// cases, in sagastore.go and sagacases.go:
//
//   - Record: a transition appends its events, writes the run's row
//     (Version from the append, CreatedAt kept from the first write,
//     UpdatedAt the store's now) and its outbox envelopes; Get returns
//     what Record returned.
//   - RecordAtomic: a version conflict (nova.ErrConcurrency), a lost lease
//     (saga.ErrLeaseLost), an event ID stored elsewhere and bad input each
//     write nothing: no event, no row change, no outbox message.
//   - RecordRetry: a transition recorded again (its events stored at
//     their place, as after a lost reply) writes nothing and returns the
//     run's row, even after its lease passed; a version conflict is one
//     whatever the lease.
//   - Lease: a transition with an owner creates a run leased to it for
//     Lease, keeps the lease as it is on later writes, fails on another's
//     or an expired lease; one without an owner clears the lease. A
//     transition with an owner needs a positive Lease, whether or not it
//     creates the run.
//   - Claim: due runs of the named sagas, not leased or with an expired
//     lease, earliest due first, up to Limit, leased to the claimer; an
//     expired lease is claimed by another owner, and the old owner's
//     Record and Renew then fail with saga.ErrLeaseLost.
//   - ClaimConcurrent: claimers racing for due runs never get one run
//     twice while leases are live, and together get them all.
//   - RenewRelease: Renew extends only a live lease of its owner; Release
//     frees the run, keeps its due time, and leaves another's lease alone.
//   - GetListCount: Get of a missing run fails with nova.ErrNotFound; List
//     orders by (saga, run ID) in byte order, filters by saga and status,
//     pages with After, defaults to 100 runs; Count counts per status.
//   - Outbox: Pending in Seq order up to its limit, MarkSent removes
//     (unknown Seqs ignored), envelopes round-trip field by field, and
//     Wake, when not nil, is closed by a Record that wrote messages.
//   - Colliding: runs whose saga and run names, joined with '-', read
//     alike (saga "a-b" run "c", saga "a" run "b-c") have their own
//     streams, rows and outbox envelopes.
//   - LegacyStream: a run that an older version recorded under the stream
//     name "saga-{saga}-{run}" of a saga whose name holds '-' goes on in
//     that stream (claimed, renewed, recorded, released); a transition
//     that would create a run in a stream of that form is refused.
//   - BadInput: empty names, a bad status, bad limits, an empty claim, a non-positive lease, an empty owner and more fail with
//     nova.ErrInvalid and write nothing.
//
// Lease expiry is waited for by polling the store's clock (leases of a few
// hundred milliseconds), so the suite takes a few seconds. Of the options,
// only WithTimeout applies: it bounds every wait.
func RunSagaStore(t *testing.T, newStore func(t *testing.T) saga.RunStore, opts ...StoreOption) {
	t.Helper()
	o := storeOptions{scale: 1, timeout: time.Minute}
	for _, opt := range opts {
		opt(&o)
	}
	if o.timeout <= 0 {
		t.Fatalf("novatest: WithTimeout(%v): want a positive duration", o.timeout)
	}
	s := &sagaSuite{newStore: newStore, timeout: o.timeout}
	for _, c := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"Record", s.testRecord},
		{"RecordAtomic", s.testRecordAtomic},
		{"RecordRetry", s.testRecordRetry},
		{"Lease", s.testLease},
		{"Claim", s.testClaim},
		{"ClaimExpired", s.testClaimExpired},
		{"ClaimConcurrent", s.testClaimConcurrent},
		{"RenewRelease", s.testRenewRelease},
		{"GetListCount", s.testGetListCount},
		{"Outbox", s.testOutbox},
		{"Colliding", s.testColliding},
		{"LegacyStream", s.testLegacyStream},
		{"BadInput", s.testBadInput},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.f(t)
		})
	}
}

type sagaSuite struct {
	newStore func(t *testing.T) saga.RunStore
	timeout  time.Duration
}

// shortLease is the lease of the cases that wait for one to expire.
const shortLease = 300 * time.Millisecond

// longLease is a lease no case outlives.
const longLease = 10 * time.Minute

// setup returns a fresh store and a context bounded by the suite's
// timeout.
func (s *sagaSuite) setup(t *testing.T) (saga.RunStore, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), s.timeout)
	t.Cleanup(cancel)
	return s.newStore(t), ctx
}

// now returns the store's clock.
func now(t *testing.T, ctx context.Context, rs saga.RunStore) time.Time {
	t.Helper()
	n, err := rs.Now(ctx)
	if err != nil {
		t.Fatalf("Now: %v", err)
	}
	if n.IsZero() {
		t.Fatal("Now returned the zero time")
	}
	return n
}

// transition returns a transition of run (sagaName, runID) at expected
// with one event, status st and one envelope per topic suffix in outbox.
func transition(sagaName, runID string, expected nova.ExpectedVersion, st saga.Status, outbox ...string) saga.Transition {
	t := saga.Transition{
		Stream:   saga.StreamName(sagaName, runID),
		Expected: expected,
		Events:   []nova.EventData{NewEventData("saga.test", `{"status":"`+string(st)+`"}`)},
		Run:      saga.RunInfo{Saga: sagaName, RunID: runID, Status: st, Step: "reserve", Attempt: 1},
	}
	for _, o := range outbox {
		t.Outbox = append(t.Outbox, broker.Envelope{
			ID: nova.NewEventID(), Topic: "saga." + sagaName + "." + o, EventType: "saga.event",
			Payload: []byte(`{"run":"` + runID + `"}`), Timestamp: time.UnixMilli(1_700_000_000_000),
		})
	}
	return t
}

// due returns tr with its run due at at.
func due(tr saga.Transition, at time.Time) saga.Transition {
	tr.Run.DueAt = at
	return tr
}

// leased returns tr written under owner's lease of d.
func leased(tr saga.Transition, owner string, d time.Duration) saga.Transition {
	tr.Owner, tr.Lease = owner, d
	return tr
}

// record runs Record and fails t on an error.
func record(t *testing.T, ctx context.Context, rs saga.RunStore, tr saga.Transition) saga.RunInfo {
	t.Helper()
	row, err := rs.Record(ctx, tr)
	if err != nil {
		t.Fatalf("Record %s at %v: %v", tr.Run.RunID, tr.Expected, err)
	}
	return row
}

// get runs Get and fails t on an error.
func get(t *testing.T, ctx context.Context, rs saga.RunStore, sagaName, runID string) saga.RunInfo {
	t.Helper()
	row, err := rs.Get(ctx, sagaName, runID)
	if err != nil {
		t.Fatalf("Get %s/%s: %v", sagaName, runID, err)
	}
	return row
}

// sameRow fails t unless got and want are the same row.
func sameRow(t *testing.T, what string, got, want saga.RunInfo) {
	t.Helper()
	if g, w := showRow(got), showRow(want); g != w {
		t.Fatalf("%s:\n got %s\nwant %s", what, g, w)
	}
}

// showRow shows every field of a row, times as UTC instants, so rows
// read back from a database compare equal to what was written.
func showRow(r saga.RunInfo) string {
	tm := func(x time.Time) string {
		if x.IsZero() {
			return "-"
		}
		return x.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("{%s/%s %s v%d step=%q attempt=%d err=%q due=%s deadline=%s lease=%q until %s created=%s updated=%s}",
		r.Saga, r.RunID, r.Status, r.Version, r.Step, r.Attempt, r.Error, tm(r.DueAt), tm(r.DeadlineAt),
		r.LeaseOwner, tm(r.LeaseUntil), tm(r.CreatedAt), tm(r.UpdatedAt))
}

// between fails t unless lo <= x <= hi.
func between(t *testing.T, what string, x, lo, hi time.Time) {
	t.Helper()
	if x.Before(lo) || x.After(hi) {
		t.Fatalf("%s is %v, want between %v and %v", what, x, lo, hi)
	}
}

// sagaState is everything a run store holds, shown for comparison.
type sagaState struct {
	runs, outbox, events string
}

func stateOfRuns(t *testing.T, ctx context.Context, rs saga.RunStore) sagaState {
	t.Helper()
	var st sagaState
	var b strings.Builder
	f := saga.RunFilter{Limit: 1000}
	for {
		page, err := rs.List(ctx, f)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		for _, r := range page {
			b.WriteString(showRow(r) + "\n")
		}
		if len(page) < f.Limit {
			break
		}
		f.AfterSaga, f.AfterRun = page[len(page)-1].Saga, page[len(page)-1].RunID
	}
	st.runs = b.String()
	msgs, err := rs.Outbox().Pending(ctx, 1000)
	if err != nil {
		t.Fatalf("Pending: %v", err)
	}
	st.outbox = showMessages(msgs)
	b.Reset()
	for _, e := range MustReadAll(t, rs.Events()) {
		fmt.Fprintf(&b, "%s@%d %s\n", e.Stream, e.Version, e.ID)
	}
	st.events = b.String()
	return st
}

func showMessages(msgs []broker.OutboxMessage) string {
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "%d %s\n", m.Seq, showEnvelope(m.Envelope))
	}
	return b.String()
}

// showEnvelope shows every field of an envelope; nil and empty headers
// differ.
func showEnvelope(e broker.Envelope) string {
	h := "nil"
	if e.Headers != nil {
		h = fmt.Sprint(e.Headers)
	}
	ts := "-"
	if !e.Timestamp.IsZero() {
		ts = e.Timestamp.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("{id=%q topic=%q type=%q payload=%q key=%q headers=%s attempts=%d ts=%s}",
		e.ID, e.Topic, e.EventType, e.Payload, e.Key, h, e.Attempts, ts)
}

// unchangedRuns fails t if the store's state differs from before.
func unchangedRuns(t *testing.T, ctx context.Context, rs saga.RunStore, before sagaState, what string) {
	t.Helper()
	after := stateOfRuns(t, ctx, rs)
	if after.runs != before.runs {
		t.Errorf("%s changed the runs:\nbefore:\n%safter:\n%s", what, before.runs, after.runs)
	}
	if after.outbox != before.outbox {
		t.Errorf("%s changed the outbox:\nbefore:\n%safter:\n%s", what, before.outbox, after.outbox)
	}
	if after.events != before.events {
		t.Errorf("%s changed the events:\nbefore:\n%safter:\n%s", what, before.events, after.events)
	}
}

// wantErr fails t unless err matches target.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want one matching %v", what, err, target)
	}
}

// waitExpired polls the store's clock until it is past until.
func (s *sagaSuite) waitExpired(t *testing.T, ctx context.Context, rs saga.RunStore, until time.Time) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !now(t, ctx, rs).After(until) {
		select {
		case <-ctx.Done():
			t.Fatalf("the store's clock did not pass %v within %v", until, s.timeout)
		case <-tick.C:
		}
	}
}
