package novamem

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/internal/sagarun"
	"github.com/nova-go/nova/saga"
)

var (
	_ saga.RunStore = (*RunStore)(nil)
	_ broker.Outbox = (*outbox)(nil)
)

// RunStore keeps durable saga runs in memory: their streams in a [Store],
// the runs table and the outbox beside it. Its clock is the Store's
// (Config.NowFunc), so a test can move time on leases and due times.
//
// A transition holds the run store's lock while it checks the lease,
// appends the events and writes the row and the outbox: the append is
// the only step that can fail after the checks, so a failed transition
// writes nothing. Readers of the event store may see a transition's
// events a moment before its row. It is safe for concurrent use.
type RunStore struct {
	s *Store

	mu   sync.Mutex
	runs map[runKey]saga.RunInfo
	// due indexes the runs with a due time (none once ended or Stuck),
	// so that a claim looks at the runs a worker may take, not at every
	// run ever recorded.
	due map[runKey]struct{}
	box outbox
}

type runKey struct{ saga, run string }

// outbox is the RunStore's [broker.Outbox]; its lock is the RunStore's.
type outbox struct {
	r    *RunStore
	msgs []broker.OutboxMessage // in Seq order
	seq  int64
	wake sagarun.Waker
}

// NewRunStore returns an empty run store whose runs' streams live in s.
// It does not own s: closing s ends the run store too.
func NewRunStore(s *Store) *RunStore {
	r := &RunStore{s: s, runs: make(map[runKey]saga.RunInfo), due: make(map[runKey]struct{})}
	r.box = outbox{r: r}
	return r
}

// Events returns the event store holding the runs' streams.
func (r *RunStore) Events() nova.Store { return r.s }

// Outbox returns where Record puts lifecycle envelopes.
func (r *RunStore) Outbox() broker.Outbox { return &r.box }

// Now returns the store's clock.
func (r *RunStore) Now(ctx context.Context) (time.Time, error) {
	if err := r.check(ctx); err != nil {
		return time.Time{}, fmt.Errorf("novamem: now: %w", err)
	}
	return r.now(), nil
}

func (r *RunStore) now() time.Time { return r.s.now().UTC() }

// put stores a run's row and keeps the due index; the caller holds r.mu.
func (r *RunStore) put(key runKey, row saga.RunInfo) {
	r.runs[key] = row
	if row.DueAt.IsZero() {
		delete(r.due, key)
	} else {
		r.due[key] = struct{}{}
	}
}

// check reports a done ctx and a closed store.
func (r *RunStore) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.s.mu.RLock()
	defer r.s.mu.RUnlock()
	if r.s.closed {
		return nova.ErrClosed
	}
	return nil
}

// Record writes t atomically; see [saga.RunStore.Record]. A retry of a
// transition already recorded (the same events at the same place) writes
// nothing and returns the run's row.
func (r *RunStore) Record(ctx context.Context, t saga.Transition) (saga.RunInfo, error) {
	if err := sagarun.CheckTransition(&t); err != nil {
		return saga.RunInfo{}, fmt.Errorf("novamem: record: %w", err)
	}
	if err := r.check(ctx); err != nil {
		return saga.RunInfo{}, fmt.Errorf("novamem: record run %q: %w", t.Run.RunID, err)
	}
	key := runKey{t.Run.Saga, t.Run.RunID}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	old, exists := r.runs[key]
	owner, until, err := sagarun.Lease(&t, exists, old, now)
	if err != nil && r.s.appendWrites(t.Stream, t.Expected, t.Events) {
		return saga.RunInfo{}, fmt.Errorf("novamem: record: %w", err)
	}
	// As on the SQL stores, the append decides first: a conflict, a
	// reused event ID or a retry of a recorded transition writes nothing
	// whatever the lease. (Runs' streams are written under r.mu only, so
	// what appendWrites saw still holds.)
	res, err := r.s.Append(ctx, t.Stream, t.Expected, t.Events...)
	if err != nil {
		return saga.RunInfo{}, fmt.Errorf("novamem: record run %q: %w", t.Run.RunID, err)
	}
	if res.Duplicate {
		if !exists {
			return saga.RunInfo{}, fmt.Errorf("novamem: record run %q: events stored without the run: %w", t.Run.RunID, nova.ErrNotFound)
		}
		return old, nil
	}
	row := t.Run
	row.Version = res.LastVersion
	row.LeaseOwner, row.LeaseUntil = owner, until
	row.CreatedAt, row.UpdatedAt = now, now
	if exists {
		row.CreatedAt = old.CreatedAt
	}
	r.put(key, row)
	if len(t.Outbox) > 0 {
		for _, e := range t.Outbox {
			r.box.seq++
			r.box.msgs = append(r.box.msgs, broker.OutboxMessage{Seq: r.box.seq, Envelope: e.Clone()})
		}
		r.box.wake.Wake()
	}
	return row, nil
}

// appendWrites reports whether an append of events to stream at expected
// would write them: no event ID of theirs is stored, and the stream is at
// the expected version. Otherwise the append writes nothing: it fails or
// is an idempotent retry.
func (s *Store) appendWrites(stream string, expected nova.ExpectedVersion, events []nova.EventData) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, e := range events {
		if _, ok := s.ids[strings.ToLower(e.ID)]; ok {
			return false
		}
	}
	return expected.Check(uint64(len(s.streams[stream])))
}

// Claim leases due runs; see [saga.RunStore.Claim]. Runs due at the same
// time are taken in (saga, run ID) order.
func (r *RunStore) Claim(ctx context.Context, req saga.ClaimRequest) ([]saga.RunInfo, error) {
	if err := sagarun.CheckClaim(req); err != nil {
		return nil, fmt.Errorf("novamem: claim: %w", err)
	}
	if err := r.check(ctx); err != nil {
		return nil, fmt.Errorf("novamem: claim: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	due := make([]saga.RunInfo, 0, min(req.Limit, len(r.due)))
	for key := range r.due {
		row := r.runs[key]
		if !row.DueAt.After(now) && !row.LeaseUntil.After(now) && slices.Contains(req.Sagas, row.Saga) {
			due = sagarun.KeepFirstDue(due, row, req.Limit)
		}
	}
	for i := range due {
		due[i].LeaseOwner, due[i].LeaseUntil = req.Owner, now.Add(req.Lease)
		r.put(runKey{due[i].Saga, due[i].RunID}, due[i])
	}
	return due, nil
}

// Renew extends owner's lease; see [saga.RunStore.Renew].
func (r *RunStore) Renew(ctx context.Context, sagaName, runID, owner string, lease time.Duration) error {
	if err := sagarun.CheckRenew(sagaName, runID, owner, lease); err != nil {
		return fmt.Errorf("novamem: renew: %w", err)
	}
	if err := r.check(ctx); err != nil {
		return fmt.Errorf("novamem: renew run %q: %w", runID, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	key := runKey{sagaName, runID}
	row := r.runs[key]
	now := r.now()
	if !sagarun.Held(row, owner, now) {
		return fmt.Errorf("novamem: renew: %w", sagarun.LeaseLost(sagaName, runID, owner, row))
	}
	row.LeaseUntil = now.Add(lease)
	r.put(key, row)
	return nil
}

// Release frees owner's lease; see [saga.RunStore.Release]. A missing run
// is not an error.
func (r *RunStore) Release(ctx context.Context, sagaName, runID, owner string) error {
	if err := sagarun.CheckRelease(sagaName, runID, owner); err != nil {
		return fmt.Errorf("novamem: release: %w", err)
	}
	if err := r.check(ctx); err != nil {
		return fmt.Errorf("novamem: release run %q: %w", runID, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	key := runKey{sagaName, runID}
	if row, ok := r.runs[key]; ok && row.LeaseOwner == owner {
		row.LeaseOwner, row.LeaseUntil = "", time.Time{}
		r.put(key, row)
	}
	return nil
}

// Get returns a run's row, or an error matching [nova.ErrNotFound].
func (r *RunStore) Get(ctx context.Context, sagaName, runID string) (saga.RunInfo, error) {
	if err := sagarun.CheckKey(sagaName, runID); err != nil {
		return saga.RunInfo{}, fmt.Errorf("novamem: get run: %w", err)
	}
	if err := r.check(ctx); err != nil {
		return saga.RunInfo{}, fmt.Errorf("novamem: get run %q: %w", runID, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	row, ok := r.runs[runKey{sagaName, runID}]
	if !ok {
		return saga.RunInfo{}, fmt.Errorf("novamem: run %q of saga %q: %w", runID, sagaName, nova.ErrNotFound)
	}
	return row, nil
}

// List returns runs ordered by (saga, run ID); see [saga.RunStore.List].
func (r *RunStore) List(ctx context.Context, f saga.RunFilter) ([]saga.RunInfo, error) {
	limit, err := sagarun.ListLimit(f)
	if err != nil {
		return nil, fmt.Errorf("novamem: list runs: %w", err)
	}
	if err := r.check(ctx); err != nil {
		return nil, fmt.Errorf("novamem: list runs: %w", err)
	}
	r.mu.Lock()
	var out []saga.RunInfo
	for _, row := range r.runs {
		if sagarun.Match(f, row) && sagarun.After(f, row.Saga, row.RunID) {
			out = append(out, row)
		}
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b saga.RunInfo) int {
		return cmp.Or(cmp.Compare(a.Saga, b.Saga), cmp.Compare(a.RunID, b.RunID))
	})
	return out[:min(len(out), limit)], nil
}

// Count returns the number of runs of sagaName per status, of every saga
// when sagaName is empty. Statuses with no run are left out.
func (r *RunStore) Count(ctx context.Context, sagaName string) (map[saga.Status]int, error) {
	if err := r.check(ctx); err != nil {
		return nil, fmt.Errorf("novamem: count runs: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[saga.Status]int)
	for _, row := range r.runs {
		if sagaName == "" || row.Saga == sagaName {
			out[row.Status]++
		}
	}
	return out, nil
}

// Pending returns up to limit messages, lowest Seq first.
func (o *outbox) Pending(ctx context.Context, limit int) ([]broker.OutboxMessage, error) {
	if err := sagarun.CheckPending(limit); err != nil {
		return nil, fmt.Errorf("novamem: outbox: %w", err)
	}
	if err := o.check(ctx); err != nil {
		return nil, fmt.Errorf("novamem: outbox: %w", err)
	}
	o.r.mu.Lock()
	defer o.r.mu.Unlock()
	out := make([]broker.OutboxMessage, min(limit, len(o.msgs)))
	for i := range out {
		out[i] = broker.OutboxMessage{Seq: o.msgs[i].Seq, Envelope: o.msgs[i].Envelope.Clone()}
	}
	return out, nil
}

// MarkSent removes the messages with these Seqs.
func (o *outbox) MarkSent(ctx context.Context, seqs []int64) error {
	if err := o.check(ctx); err != nil {
		return fmt.Errorf("novamem: outbox: %w", err)
	}
	sent := make(map[int64]bool, len(seqs))
	for _, s := range seqs {
		sent[s] = true
	}
	o.r.mu.Lock()
	defer o.r.mu.Unlock()
	o.msgs = slices.DeleteFunc(o.msgs, func(m broker.OutboxMessage) bool { return sent[m.Seq] })
	return nil
}

func (o *outbox) check(ctx context.Context) error {
	return o.r.check(ctx)
}

// Wake returns a channel closed when the next Record writes messages.
func (o *outbox) Wake() <-chan struct{} {
	return o.wake.C()
}
