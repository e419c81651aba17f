package novatest

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/saga"
)

func (s *sagaSuite) testRecord(t *testing.T) {
	rs, ctx := s.setup(t)
	before := now(t, ctx, rs)
	tr := transition("order", "r1", nova.NoStream, saga.Running, "reserve.started")
	tr.Events = append(tr.Events, NewEventData("saga.test", `{"n":2}`))
	tr.Run.DueAt = before.Add(time.Hour).Truncate(time.Millisecond)
	tr.Run.DeadlineAt = before.Add(2 * time.Hour).Truncate(time.Millisecond)
	tr.Run.Error = "card declined: ünïcode"
	row := record(t, ctx, rs, tr)
	after := now(t, ctx, rs)

	want := tr.Run
	want.Version = 2
	want.CreatedAt, want.UpdatedAt = row.CreatedAt, row.UpdatedAt
	sameRow(t, "Record's row", row, want)
	between(t, "CreatedAt", row.CreatedAt, before, after)
	if !row.UpdatedAt.Equal(row.CreatedAt) {
		t.Fatalf("first write: UpdatedAt %v, CreatedAt %v, want equal", row.UpdatedAt, row.CreatedAt)
	}
	sameRow(t, "Get after Record", get(t, ctx, rs, "order", "r1"), row)
	got := MustReadStream(t, rs.Events(), tr.Stream, nova.ReadStreamOptions{})
	if len(got) != 2 || got[0].ID != tr.Events[0].ID || got[1].ID != tr.Events[1].ID {
		t.Fatalf("stream after Record holds %v, want the transition's events %v", ids(got), ids(tr.Events))
	}
	msgs, err := rs.Outbox().Pending(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || showEnvelope(msgs[0].Envelope) != showEnvelope(tr.Outbox[0]) {
		t.Fatalf("outbox after Record:\n%swant the one envelope %s", showMessages(msgs), showEnvelope(tr.Outbox[0]))
	}

	// An error's text is kept as every backend can hold it: invalid UTF-8
	// and NUL bytes become U+FFFD, and it is cut to 64 KiB.
	trErr := transition("order", "r-err", nova.NoStream, saga.Running)
	trErr.Run.Error = "bad \xff byte, NUL \x00 " + strings.Repeat("é", 40_000)
	if row := record(t, ctx, rs, trErr); row.Error != get(t, ctx, rs, "order", "r-err").Error ||
		!strings.HasPrefix(row.Error, "bad \uFFFD byte, NUL \uFFFD é") || len(row.Error) > 64<<10 || !utf8.ValidString(row.Error) {
		t.Fatalf("error text kept as %.40q... (%d bytes)", row.Error, len(row.Error))
	}

	// A second transition: Version from the append, CreatedAt kept, the
	// row replaced by the new one.
	tr2 := transition("order", "r1", nova.Exact(2), saga.Compensating)
	tr2.Run.Step, tr2.Run.Attempt = "charge", 3
	mid := now(t, ctx, rs)
	row2 := record(t, ctx, rs, tr2)
	want2 := tr2.Run
	want2.Version = 3
	want2.CreatedAt, want2.UpdatedAt = row.CreatedAt, row2.UpdatedAt
	sameRow(t, "second Record's row", row2, want2)
	between(t, "UpdatedAt of the second write", row2.UpdatedAt, mid, now(t, ctx, rs))
	sameRow(t, "Get after the second Record", get(t, ctx, rs, "order", "r1"), row2)
	if msgs, _ := rs.Outbox().Pending(ctx, 10); len(msgs) != 1 {
		t.Fatalf("a transition without envelopes added to the outbox:\n%s", showMessages(msgs))
	}
}

func (s *sagaSuite) testRecordAtomic(t *testing.T) {
	rs, ctx := s.setup(t)
	record(t, ctx, rs, leased(transition("order", "r1", nova.NoStream, saga.Running, "a.started"), "w1", longLease))
	record(t, ctx, rs, transition("order", "free", nova.NoStream, saga.Running, "a.started"))
	MustAppend(t, rs.Events(), "elsewhere", nova.NoStream, NewEventData("other", `{}`))
	stored := MustReadStream(t, rs.Events(), "elsewhere", nova.ReadStreamOptions{})[0]
	before := stateOfRuns(t, ctx, rs)

	cases := []struct {
		name   string
		tr     saga.Transition
		target error
	}{
		{"Conflict", leased(transition("order", "r1", nova.Exact(5), saga.Completed, "x"), "w1", longLease), nova.ErrConcurrency},
		{"ConflictNew", transition("order", "r1", nova.NoStream, saga.Completed, "x"), nova.ErrConcurrency},
		{"ConflictNoOwner", transition("order", "free", nova.Exact(0), saga.Completed, "x"), nova.ErrConcurrency},
		{"OtherOwner", leased(transition("order", "r1", nova.Exact(1), saga.Completed, "x"), "w2", longLease), saga.ErrLeaseLost},
		{"NotLeased", leased(transition("order", "free", nova.Exact(1), saga.Completed, "x"), "w1", longLease), saga.ErrLeaseLost},
		{"StoredEventID", func() saga.Transition {
			tr := transition("order", "r1", nova.Exact(1), saga.Completed, "x")
			tr.Events = append(tr.Events, nova.EventData{ID: stored.ID, Type: "other", Data: []byte(`{}`)})
			return tr
		}(), nova.ErrDuplicateEvent},
		{"BadEnvelope", func() saga.Transition {
			tr := transition("order", "r1", nova.Exact(1), saga.Completed, "x", "y")
			tr.Outbox[1].Payload = []byte(`{not json`)
			return tr
		}(), nova.ErrInvalid},
		{"BadStatus", func() saga.Transition {
			tr := transition("order", "r1", nova.Exact(1), "finished", "x")
			return tr
		}(), nova.ErrInvalid},
		{"NoEvents", func() saga.Transition {
			tr := transition("order", "r1", nova.Exact(1), saga.Completed, "x")
			tr.Events = nil
			return tr
		}(), nova.ErrInvalid},
		{"NewLeasedRunWithoutLease", leased(transition("order", "r9", nova.NoStream, saga.Running, "x"), "w1", 0), nova.ErrInvalid},
		{"LeasedWriteWithoutLease", leased(transition("order", "r1", nova.Exact(1), saga.Completed, "x"), "w1", 0), nova.ErrInvalid},
	}
	for _, c := range cases {
		_, err := rs.Record(ctx, c.tr)
		wantErr(t, c.name, err, c.target)
		unchangedRuns(t, ctx, rs, before, c.name)
	}

	// A lease that expires while the run is untouched: its owner's next
	// write fails and writes nothing.
	record(t, ctx, rs, leased(transition("order", "r2", nova.NoStream, saga.Running), "w1", shortLease))
	row := get(t, ctx, rs, "order", "r2")
	s.waitExpired(t, ctx, rs, row.LeaseUntil)
	before = stateOfRuns(t, ctx, rs)
	_, err := rs.Record(ctx, leased(transition("order", "r2", nova.Exact(1), saga.Completed, "x"), "w1", longLease))
	wantErr(t, "Record after the lease expired", err, saga.ErrLeaseLost)
	unchangedRuns(t, ctx, rs, before, "Record after the lease expired")
}

func (s *sagaSuite) testRecordRetry(t *testing.T) {
	rs, ctx := s.setup(t)
	tr := leased(transition("order", "r1", nova.NoStream, saga.Running, "a.started"), "w1", shortLease)
	first := record(t, ctx, rs, tr)
	second := record(t, ctx, rs, leased(transition("order", "r1", nova.Exact(1), saga.Running, "a.succeeded"), "w1", shortLease))
	before := stateOfRuns(t, ctx, rs)

	// A transition recorded again, as after a lost reply, writes nothing
	// and returns the run's row as it is now, even once the lease has
	// passed: the append decides first.
	again, err := rs.Record(ctx, tr)
	if err != nil {
		t.Fatalf("Record of a recorded transition: %v", err)
	}
	sameRow(t, "Record of a recorded transition", again, second)
	unchangedRuns(t, ctx, rs, before, "Record of a recorded transition")
	s.waitExpired(t, ctx, rs, first.LeaseUntil)
	again, err = rs.Record(ctx, tr)
	if err != nil {
		t.Fatalf("Record of a recorded transition after its lease passed: %v", err)
	}
	sameRow(t, "Record of a recorded transition after its lease passed", again, second)
	unchangedRuns(t, ctx, rs, before, "Record of a recorded transition after its lease passed")

	// A conflict is a conflict whatever the lease.
	_, err = rs.Record(ctx, leased(transition("order", "r1", nova.Exact(1), saga.Running, "x"), "w2", time.Minute))
	wantErr(t, "conflicting Record by another owner", err, nova.ErrConcurrency)
	unchangedRuns(t, ctx, rs, before, "conflicting Record by another owner")
}

func (s *sagaSuite) testLease(t *testing.T) {
	rs, ctx := s.setup(t)
	before := now(t, ctx, rs)
	row := record(t, ctx, rs, leased(transition("order", "r1", nova.NoStream, saga.Running), "w1", time.Minute))
	after := now(t, ctx, rs)
	if row.LeaseOwner != "w1" {
		t.Fatalf("a run created under w1's lease is leased to %q", row.LeaseOwner)
	}
	between(t, "LeaseUntil of a new run", row.LeaseUntil, before.Add(time.Minute), after.Add(time.Minute))

	// The owner's later writes keep the lease as it is, whatever Lease.
	row2 := record(t, ctx, rs, leased(transition("order", "r1", nova.Exact(1), saga.Running), "w1", time.Hour))
	if row2.LeaseOwner != "w1" || !row2.LeaseUntil.Equal(row.LeaseUntil) {
		t.Fatalf("owner's write changed the lease from w1 until %v to %q until %v", row.LeaseUntil, row2.LeaseOwner, row2.LeaseUntil)
	}
	sameRow(t, "Get after the owner's write", get(t, ctx, rs, "order", "r1"), row2)

	// Lease fields in Run are ignored.
	tr := leased(transition("order", "r1", nova.Exact(2), saga.Running), "w1", time.Hour)
	tr.Run.LeaseOwner, tr.Run.LeaseUntil = "intruder", after.Add(24*time.Hour)
	if row3 := record(t, ctx, rs, tr); row3.LeaseOwner != "w1" || !row3.LeaseUntil.Equal(row.LeaseUntil) {
		t.Fatalf("Run's lease fields were written: %s", showRow(row3))
	}

	// A write without an owner (an operator's) clears the lease.
	row4 := record(t, ctx, rs, transition("order", "r1", nova.Exact(3), saga.Stuck))
	if row4.LeaseOwner != "" || !row4.LeaseUntil.IsZero() {
		t.Fatalf("a write without an owner left the lease %q until %v", row4.LeaseOwner, row4.LeaseUntil)
	}
	sameRow(t, "Get after the operator's write", get(t, ctx, rs, "order", "r1"), row4)
	_, err := rs.Record(ctx, leased(transition("order", "r1", nova.Exact(4), saga.Running), "w1", time.Minute))
	wantErr(t, "owner's write after the lease was cleared", err, saga.ErrLeaseLost)
	if err := rs.Renew(ctx, "order", "r1", "w1", time.Minute); !errors.Is(err, saga.ErrLeaseLost) {
		t.Fatalf("Renew after the lease was cleared: %v, want saga.ErrLeaseLost", err)
	}

	// A run created without an owner is not leased.
	if row := record(t, ctx, rs, transition("order", "r2", nova.NoStream, saga.Running)); row.LeaseOwner != "" || !row.LeaseUntil.IsZero() {
		t.Fatalf("a run created without an owner is leased: %s", showRow(row))
	}
}

func (s *sagaSuite) testClaim(t *testing.T) {
	rs, ctx := s.setup(t)
	n := now(t, ctx, rs).Truncate(time.Millisecond)
	mk := func(sagaName, runID string, at time.Time) {
		t.Helper()
		record(t, ctx, rs, due(transition(sagaName, runID, nova.NoStream, saga.Running), at))
	}
	mk("order", "c", n.Add(-1*time.Second))
	mk("order", "a", n.Add(-3*time.Second))
	mk("order", "b", n.Add(-2*time.Second))
	mk("order", "later", n.Add(time.Hour))
	mk("order", "never", time.Time{})
	mk("refund", "x", n.Add(-4*time.Second))
	record(t, ctx, rs, leased(due(transition("order", "held", nova.NoStream, saga.Running), n.Add(-5*time.Second)), "w0", longLease))

	before := now(t, ctx, rs)
	got, err := rs.Claim(ctx, saga.ClaimRequest{Owner: "w1", Sagas: []string{"order"}, Lease: time.Minute, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	after := now(t, ctx, rs)
	if runIDs(got) != "[a b]" {
		t.Fatalf("first claim got %s, want [a b]: the earliest due of saga order, not leased", runIDs(got))
	}
	for _, r := range got {
		if r.LeaseOwner != "w1" {
			t.Fatalf("claimed run %s is leased to %q, want w1", r.RunID, r.LeaseOwner)
		}
		between(t, "LeaseUntil of claimed run "+r.RunID, r.LeaseUntil, before.Add(time.Minute), after.Add(time.Minute))
		sameRow(t, "Get of claimed run "+r.RunID, get(t, ctx, rs, "order", r.RunID), r)
		if r.Version != 1 || r.Status != saga.Running {
			t.Fatalf("claimed row %s does not show the run", showRow(r))
		}
	}
	got, err = rs.Claim(ctx, saga.ClaimRequest{Owner: "w2", Sagas: []string{"order", "refund"}, Lease: time.Minute, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if runIDs(got) != "[x c]" {
		t.Fatalf("second claim got %s, want [x c]", runIDs(got))
	}
	got, err = rs.Claim(ctx, saga.ClaimRequest{Owner: "w3", Sagas: []string{"order", "refund", "other"}, Lease: time.Minute, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("claim with every due run leased got %s", runIDs(got))
	}
}

func (s *sagaSuite) testClaimExpired(t *testing.T) {
	rs, ctx := s.setup(t)
	n := now(t, ctx, rs)
	record(t, ctx, rs, due(transition("order", "r1", nova.NoStream, saga.Running), n.Add(-time.Second)))
	got, err := rs.Claim(ctx, saga.ClaimRequest{Owner: "w1", Sagas: []string{"order"}, Lease: shortLease, Limit: 5})
	if err != nil || len(got) != 1 {
		t.Fatalf("claim: %s, %v; want r1", runIDs(got), err)
	}
	// w1 works under its lease, then stalls until it expires.
	row := record(t, ctx, rs, leased(due(transition("order", "r1", nova.Exact(1), saga.Running), n.Add(-time.Second)), "w1", shortLease))
	if again, _ := rs.Claim(ctx, saga.ClaimRequest{Owner: "w2", Sagas: []string{"order"}, Lease: time.Minute, Limit: 5}); len(again) != 0 {
		t.Fatalf("a live lease was claimed by w2: %s", runIDs(again))
	}
	s.waitExpired(t, ctx, rs, row.LeaseUntil)
	got, err = rs.Claim(ctx, saga.ClaimRequest{Owner: "w2", Sagas: []string{"order"}, Lease: time.Minute, Limit: 5})
	if err != nil || len(got) != 1 || got[0].LeaseOwner != "w2" {
		t.Fatalf("claim of an expired lease: %s, %v; want r1 leased to w2", runIDs(got), err)
	}
	before := stateOfRuns(t, ctx, rs)
	_, err = rs.Record(ctx, leased(transition("order", "r1", nova.Exact(2), saga.Completed, "done"), "w1", time.Minute))
	wantErr(t, "old owner's Record after another claimed the run", err, saga.ErrLeaseLost)
	wantErr(t, "old owner's Renew", rs.Renew(ctx, "order", "r1", "w1", time.Minute), saga.ErrLeaseLost)
	unchangedRuns(t, ctx, rs, before, "the old owner's writes")
	// The new owner goes on.
	row = record(t, ctx, rs, leased(transition("order", "r1", nova.Exact(2), saga.Completed, "done"), "w2", time.Minute))
	if row.Version != 3 || row.LeaseOwner != "w2" {
		t.Fatalf("new owner's write: %s", showRow(row))
	}
}

func (s *sagaSuite) testClaimConcurrent(t *testing.T) {
	rs, ctx := s.setup(t)
	const runs, claimers = 60, 8
	n := now(t, ctx, rs)
	for i := range runs {
		record(t, ctx, rs, due(transition("order", fmt.Sprintf("r%03d", i), nova.NoStream, saga.Running), n.Add(-time.Duration(i)*time.Millisecond)))
	}
	var (
		mu   sync.Mutex
		seen = map[string]string{}
		dup  []string
		errs []error
		wg   sync.WaitGroup
	)
	start := make(chan struct{})
	for w := range claimers {
		owner := fmt.Sprintf("w%d", w)
		wg.Go(func() {
			<-start
			for range runs + 1 { // more claims than runs: some run came twice
				got, err := rs.Claim(ctx, saga.ClaimRequest{Owner: owner, Sagas: []string{"order"}, Lease: longLease, Limit: 3})
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				}
				for _, r := range got {
					if prev, ok := seen[r.RunID]; ok {
						dup = append(dup, fmt.Sprintf("%s by %s and %s", r.RunID, prev, owner))
					}
					seen[r.RunID] = owner
				}
				stop := err != nil || len(got) == 0 || len(dup) > 0
				mu.Unlock()
				if stop {
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("concurrent claims failed: %v", errs)
	}
	if len(dup) > 0 {
		t.Fatalf("runs claimed twice under live leases: %v", dup)
	}
	if len(seen) != runs {
		t.Fatalf("claimers got %d runs, want all %d", len(seen), runs)
	}
	for id, owner := range seen {
		if row := get(t, ctx, rs, "order", id); row.LeaseOwner != owner {
			t.Fatalf("run %s was claimed by %s but is leased to %q", id, owner, row.LeaseOwner)
		}
	}
}

func (s *sagaSuite) testRenewRelease(t *testing.T) {
	rs, ctx := s.setup(t)
	n := now(t, ctx, rs).Truncate(time.Millisecond)
	dueAt := n.Add(-time.Second)
	record(t, ctx, rs, leased(due(transition("order", "r1", nova.NoStream, saga.Running), dueAt), "w1", shortLease))

	before := now(t, ctx, rs)
	if err := rs.Renew(ctx, "order", "r1", "w1", time.Hour); err != nil {
		t.Fatalf("Renew by the owner: %v", err)
	}
	row := get(t, ctx, rs, "order", "r1")
	between(t, "LeaseUntil after Renew", row.LeaseUntil, before.Add(time.Hour), now(t, ctx, rs).Add(time.Hour))
	wantErr(t, "Renew by another", rs.Renew(ctx, "order", "r1", "w2", time.Hour), saga.ErrLeaseLost)
	wantErr(t, "Renew of a missing run", rs.Renew(ctx, "order", "nope", "w1", time.Hour), saga.ErrLeaseLost)
	sameRow(t, "row after failed renewals", get(t, ctx, rs, "order", "r1"), row)

	// Release by another leaves the lease alone; by the owner it frees the
	// run and keeps its due time, so another claims it at once.
	if err := rs.Release(ctx, "order", "r1", "w2"); err != nil {
		t.Fatalf("Release by another: %v", err)
	}
	sameRow(t, "row after another's Release", get(t, ctx, rs, "order", "r1"), row)
	if err := rs.Release(ctx, "order", "nope", "w1"); err != nil {
		t.Fatalf("Release of a missing run: %v", err)
	}
	if err := rs.Release(ctx, "order", "r1", "w1"); err != nil {
		t.Fatalf("Release by the owner: %v", err)
	}
	freed := get(t, ctx, rs, "order", "r1")
	want := row
	want.LeaseOwner, want.LeaseUntil = "", time.Time{}
	sameRow(t, "row after Release", freed, want)
	if !freed.DueAt.Equal(dueAt) {
		t.Fatalf("Release changed DueAt from %v to %v", dueAt, freed.DueAt)
	}
	wantErr(t, "Renew after Release", rs.Renew(ctx, "order", "r1", "w1", time.Hour), saga.ErrLeaseLost)
	got, err := rs.Claim(ctx, saga.ClaimRequest{Owner: "w2", Sagas: []string{"order"}, Lease: shortLease, Limit: 1})
	if err != nil || runIDs(got) != "[r1]" {
		t.Fatalf("claim after Release: %s, %v; want [r1]", runIDs(got), err)
	}

	// An expired lease cannot be renewed, even by its owner.
	s.waitExpired(t, ctx, rs, got[0].LeaseUntil)
	wantErr(t, "Renew of an expired lease", rs.Renew(ctx, "order", "r1", "w2", time.Hour), saga.ErrLeaseLost)
}

func (s *sagaSuite) testGetListCount(t *testing.T) {
	rs, ctx := s.setup(t)
	_, err := rs.Get(ctx, "order", "missing")
	wantErr(t, "Get of a missing run", err, nova.ErrNotFound)
	c, err := rs.Count(ctx, "")
	if err != nil || total(c) != 0 {
		t.Fatalf("Count of an empty store: %v, %v", c, err)
	}

	// Names in byte order: upper case before lower, '-' before digits,
	// "a" before "a-1" before "aa".
	sagasNames := []string{"Order", "order", "order-2"}
	runNames := []string{"a", "B", "a-1", "aa", "ä", "1"}
	status := []saga.Status{saga.Running, saga.Stuck, saga.Completed}
	var all []string
	i := 0
	for _, sg := range sagasNames {
		for _, r := range runNames {
			record(t, ctx, rs, transition(sg, r, nova.NoStream, status[i%3]))
			all = append(all, sg+"/"+r)
			i++
		}
	}
	slices.SortFunc(all, compareKey)
	list := func(f saga.RunFilter) []string {
		t.Helper()
		rows, err := rs.List(ctx, f)
		if err != nil {
			t.Fatalf("List %+v: %v", f, err)
		}
		var out []string
		for _, r := range rows {
			out = append(out, r.Saga+"/"+r.RunID)
		}
		return out
	}
	if got := list(saga.RunFilter{}); !slices.Equal(got, all) {
		t.Fatalf("List:\n got %v\nwant %v", got, all)
	}
	// Paging with After, two at a time, gives the same.
	var paged []string
	f := saga.RunFilter{Limit: 2}
	for {
		page := list(f)
		paged = append(paged, page...)
		if len(page) < 2 {
			break
		}
		last := page[len(page)-1]
		k := slices.Index(all, last)
		f.AfterSaga, f.AfterRun = splitKey(all[k])
	}
	if !slices.Equal(paged, all) {
		t.Fatalf("List paged by 2:\n got %v\nwant %v", paged, all)
	}
	if got := list(saga.RunFilter{Saga: "order"}); len(got) != len(runNames) || !allPrefixed(got, "order/") {
		t.Fatalf("List of saga order: %v", got)
	}
	stuck := list(saga.RunFilter{Status: saga.Stuck})
	if len(stuck) != 6 {
		t.Fatalf("List of stuck runs: %v, want 6", stuck)
	}
	for _, k := range stuck {
		sg, r := splitKey(k)
		if get(t, ctx, rs, sg, r).Status != saga.Stuck {
			t.Fatalf("List by status stuck returned %s", k)
		}
	}
	if got := list(saga.RunFilter{Saga: "order", Status: saga.Running, AfterSaga: "order", AfterRun: "B"}); len(got) == 0 || !allPrefixed(got, "order/") {
		t.Fatalf("List with every filter: %v", got)
	}
	c, err = rs.Count(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if c[saga.Running] != 6 || c[saga.Stuck] != 6 || c[saga.Completed] != 6 || total(c) != 18 {
		t.Fatalf("Count of every saga: %v, want 6 running, 6 stuck, 6 completed", c)
	}
	c, err = rs.Count(ctx, "order-2")
	if err != nil || total(c) != 6 {
		t.Fatalf("Count of saga order-2: %v, %v; want 6 runs", c, err)
	}
	if c, err := rs.Count(ctx, "none"); err != nil || total(c) != 0 {
		t.Fatalf("Count of a saga with no runs: %v, %v", c, err)
	}

	// The default limit is 100.
	for i := range 110 {
		record(t, ctx, rs, transition("zz", fmt.Sprintf("r%03d", i), nova.NoStream, saga.Completed))
	}
	if got := list(saga.RunFilter{Saga: "zz"}); len(got) != 100 || got[99] != "zz/r099" {
		t.Fatalf("List with the default limit returned %d runs, want the first 100", len(got))
	}
	if got := list(saga.RunFilter{Saga: "zz", Limit: 1000}); len(got) != 110 {
		t.Fatalf("List with limit 1000 returned %d runs, want 110", len(got))
	}
}

func (s *sagaSuite) testOutbox(t *testing.T) {
	rs, ctx := s.setup(t)
	ob := rs.Outbox()
	if ob == nil {
		t.Fatal("Outbox returned nil")
	}
	wake := ob.Wake()
	tr := transition("order", "r1", nova.NoStream, saga.Running, "a.started", "a.succeeded", "saga.completed")
	tr.Outbox[0].Key = "order-42"
	tr.Outbox[0].Headers = map[string]string{"trace": "abc", "ünï": "cödé", "empty": ""}
	tr.Outbox[0].Attempts = 3
	tr.Outbox[1].Headers = map[string]string{}
	tr.Outbox[1].Payload = []byte(" {\"b\": [1, 2.50, \"x\"],  \"a\": null}\n")
	tr.Outbox[2].Timestamp = time.Time{}
	tr.Outbox[2].Payload = []byte(`"just a string"`)
	wantMsgs := slices.Clone(tr.Outbox)
	for i := range wantMsgs {
		wantMsgs[i] = wantMsgs[i].Clone()
	}
	record(t, ctx, rs, tr)
	// Changing what was recorded changes nothing stored.
	tr.Outbox[0].Payload[2] = 'X'
	tr.Outbox[0].Headers["trace"] = "changed"

	if wake != nil {
		select {
		case <-wake:
		case <-time.After(s.timeout):
			t.Fatal("Wake's channel was not closed by a Record that wrote messages")
		}
	}
	record(t, ctx, rs, transition("order", "r2", nova.NoStream, saga.Running, "b.started"))
	wantMsgs = append(wantMsgs, transition("order", "r2", nova.NoStream, saga.Running, "b.started").Outbox[0])

	msgs, err := ob.Pending(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 4 {
		t.Fatalf("Pending holds %d messages, want 4:\n%s", len(msgs), showMessages(msgs))
	}
	for i, m := range msgs {
		want := wantMsgs[i]
		if i == 3 {
			want.ID = m.Envelope.ID // a fresh ID per call of transition
		}
		if g, w := showEnvelope(m.Envelope), showEnvelope(want); g != w {
			t.Fatalf("message %d:\n got %s\nwant %s", i, g, w)
		}
		if i > 0 && m.Seq <= msgs[i-1].Seq {
			t.Fatalf("Pending not in Seq order: %d after %d", m.Seq, msgs[i-1].Seq)
		}
	}
	// Changing what Pending returned changes nothing stored.
	msgs[0].Envelope.Headers["trace"] = "changed"
	msgs[0].Envelope.Payload[0] = ' '

	first, err := ob.Pending(ctx, 2)
	if err != nil || len(first) != 2 || first[0].Seq != msgs[0].Seq || first[1].Seq != msgs[1].Seq {
		t.Fatalf("Pending(2): %v, %v; want the two lowest Seqs", first, err)
	}
	if g, w := showEnvelope(first[0].Envelope), showEnvelope(wantMsgs[0]); g != w {
		t.Fatalf("stored message changed through a returned copy:\n got %s\nwant %s", g, w)
	}
	if err := ob.MarkSent(ctx, []int64{msgs[0].Seq, msgs[2].Seq, msgs[3].Seq + 1000}); err != nil {
		t.Fatalf("MarkSent: %v", err)
	}
	if err := ob.MarkSent(ctx, nil); err != nil {
		t.Fatalf("MarkSent of nothing: %v", err)
	}
	left, err := ob.Pending(ctx, 100)
	if err != nil || len(left) != 2 || left[0].Seq != msgs[1].Seq || left[1].Seq != msgs[3].Seq {
		t.Fatalf("Pending after MarkSent of 1st and 3rd:\n%swant Seqs %d and %d", showMessages(left), msgs[1].Seq, msgs[3].Seq)
	}
	if err := ob.MarkSent(ctx, []int64{msgs[1].Seq, msgs[3].Seq}); err != nil {
		t.Fatal(err)
	}
	if left, err := ob.Pending(ctx, 100); err != nil || len(left) != 0 {
		t.Fatalf("Pending after everything was sent: %v, %v", left, err)
	}
	// Seqs go on increasing after the outbox empties.
	record(t, ctx, rs, transition("order", "r3", nova.NoStream, saga.Running, "c.started"))
	if last, err := ob.Pending(ctx, 1); err != nil || len(last) != 1 || last[0].Seq <= msgs[3].Seq {
		t.Fatalf("Pending after a new Record: %v, %v; want a Seq above %d", last, err, msgs[3].Seq)
	}
}

func (s *sagaSuite) testColliding(t *testing.T) {
	rs, ctx := s.setup(t)
	groups := [][][2]string{
		{{"a-b", "c"}, {"a", "b-c"}},
		{{"a-b-c", "d"}, {"a", "b-c-d"}, {"a-b", "c-d"}},
		{{"x-", "y"}, {"x", "-y"}},
	}
	var all [][2]string
	for _, g := range groups {
		for _, k := range g {
			tr := leased(due(transition(k[0], k[1], nova.NoStream, saga.Running, "a.started"), now(t, ctx, rs)), "w-"+k[0]+"/"+k[1], longLease)
			tr.Outbox[0].ID = saga.EnvelopeID(k[0], k[1], "a", "started", 1)
			row := record(t, ctx, rs, tr)
			if row.Saga != k[0] || row.RunID != k[1] || row.Version != 1 {
				t.Fatalf("Record of %q: %s", k, showRow(row))
			}
			all = append(all, k)
		}
	}
	seen := map[string][2]string{}
	for _, k := range all {
		stream := saga.StreamName(k[0], k[1])
		if other, ok := seen[stream]; ok {
			t.Fatalf("runs %q and %q share stream %q", other, k, stream)
		}
		seen[stream] = k
		got := MustReadStream(t, rs.Events(), stream, nova.ReadStreamOptions{})
		if len(got) != 1 || !strings.Contains(string(got[0].Data), "running") {
			t.Fatalf("stream of %q holds %d events, want its own one", k, len(got))
		}
		row := get(t, ctx, rs, k[0], k[1])
		if row.Saga != k[0] || row.RunID != k[1] || row.Version != 1 || row.LeaseOwner != "w-"+k[0]+"/"+k[1] {
			t.Fatalf("Get of %q: %s", k, showRow(row))
		}
		// A second transition of each run goes to its own stream.
		record(t, ctx, rs, leased(transition(k[0], k[1], nova.Exact(1), saga.Completed), "w-"+k[0]+"/"+k[1], longLease))
	}
	for _, k := range all {
		if row := get(t, ctx, rs, k[0], k[1]); row.Status != saga.Completed || row.Version != 2 {
			t.Fatalf("row of %q after its second transition: %s", k, showRow(row))
		}
	}
	msgs, err := rs.Outbox().Pending(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, m := range msgs {
		ids[m.Envelope.ID] = true
	}
	if len(msgs) != len(all) || len(ids) != len(all) {
		t.Fatalf("outbox holds %d envelopes with %d IDs, want %d of each:\n%s", len(msgs), len(ids), len(all), showMessages(msgs))
	}
	if c, err := rs.Count(ctx, "a"); err != nil || total(c) != 2 || c[saga.Completed] != 2 {
		t.Fatalf("Count of saga a: %v, %v; want 2 completed", c, err)
	}
}

func (s *sagaSuite) testLegacyStream(t *testing.T) {
	rs, ctx := s.setup(t)
	// Versions of Nova that named a run's stream "saga-{saga}-{run}",
	// whatever the names held, recorded run "r-1" of saga "order-fulfil"
	// here; its first event is written as they wrote it.
	legacy := "saga-order-fulfil-r-1"
	if saga.StreamName("order-fulfil", "r-1") == legacy {
		t.Fatalf("StreamName of a saga with '-' is still the legacy %q", legacy)
	}
	MustAppend(t, rs.Events(), legacy, nova.NoStream, NewEventData(saga.EventRunStarted, `{"saga":"order-fulfil","run_id":"r-1"}`))
	go1 := transition("order-fulfil", "r-1", nova.Exact(1), saga.Running, "a.started")
	go1.Stream = legacy
	go1 = leased(due(go1, now(t, ctx, rs)), "w1", longLease)
	row := record(t, ctx, rs, go1)
	if row.Version != 2 || row.LeaseOwner != "w1" {
		t.Fatalf("the legacy run's transition: %s", showRow(row))
	}
	if err := rs.Release(ctx, "order-fulfil", "r-1", "w1"); err != nil {
		t.Fatal(err)
	}
	got, err := rs.Claim(ctx, saga.ClaimRequest{Owner: "w2", Sagas: []string{"order-fulfil"}, Lease: longLease, Limit: 10})
	if err != nil || runIDs(got) != "[r-1]" {
		t.Fatalf("Claim of the legacy run: %s, %v", runIDs(got), err)
	}
	if err := rs.Renew(ctx, "order-fulfil", "r-1", "w2", longLease); err != nil {
		t.Fatal(err)
	}
	go2 := leased(transition("order-fulfil", "r-1", nova.Exact(2), saga.Completed, "saga.completed"), "w2", longLease)
	go2.Stream = legacy
	if row := record(t, ctx, rs, go2); row.Version != 3 || row.Status != saga.Completed {
		t.Fatalf("the legacy run's last transition: %s", showRow(row))
	}
	if n := len(MustReadStream(t, rs.Events(), legacy, nova.ReadStreamOptions{})); n != 3 {
		t.Fatalf("legacy stream holds %d events, want 3", n)
	}
	// A run is never created at a name of the old form that is not its
	// own: it could be another run's.
	before := stateOfRuns(t, ctx, rs)
	for _, exp := range []nova.ExpectedVersion{nova.NoStream, nova.Any} {
		tr := transition("new-saga", "x", exp, saga.Running, "a.started")
		tr.Stream = "saga-new-saga-x"
		_, err := rs.Record(ctx, tr)
		wantErr(t, "a new run in a stream of the old form, expected "+exp.String(), err, nova.ErrInvalid)
		unchangedRuns(t, ctx, rs, before, "a new run in a stream of the old form")
	}
	// Where the saga name holds no '-', the old form is the new one: run
	// "fulfil-r-1" of saga "order" is named as the legacy run is, and
	// cannot be created while that run holds the stream.
	_, err = rs.Record(ctx, transition("order", "fulfil-r-1", nova.NoStream, saga.Running))
	wantErr(t, "a new run whose stream a legacy run holds", err, nova.ErrConcurrency)
	unchangedRuns(t, ctx, rs, before, "a new run whose stream a legacy run holds")
	record(t, ctx, rs, transition("order", "r-1", nova.NoStream, saga.Running))
}

func (s *sagaSuite) testBadInput(t *testing.T) {
	rs, ctx := s.setup(t)
	record(t, ctx, rs, leased(due(transition("order", "r1", nova.NoStream, saga.Running, "a"), now(t, ctx, rs).Add(-time.Second)), "w1", longLease))
	before := stateOfRuns(t, ctx, rs)
	good := leased(transition("order", "r1", nova.Exact(1), saga.Running, "b"), "w1", longLease)
	claim := saga.ClaimRequest{Owner: "w2", Sagas: []string{"order"}, Lease: time.Minute, Limit: 1}
	bad := func(f func(*saga.Transition)) saga.Transition {
		tr := good
		tr.Events = slices.Clone(good.Events)
		tr.Outbox = slices.Clone(good.Outbox)
		f(&tr)
		return tr
	}
	cases := []struct {
		name string
		call func() error
	}{
		{"Record empty saga", func() error {
			_, err := rs.Record(ctx, bad(func(tr *saga.Transition) { tr.Run.Saga = ""; tr.Stream = saga.StreamName("", "r1") }))
			return err
		}},
		{"Record empty run", func() error {
			_, err := rs.Record(ctx, bad(func(tr *saga.Transition) { tr.Run.RunID = ""; tr.Stream = saga.StreamName("order", "") }))
			return err
		}},
		{"Record saga name with a dot", func() error {
			_, err := rs.Record(ctx, bad(func(tr *saga.Transition) { tr.Run.Saga = "or.der"; tr.Stream = saga.StreamName("or.der", "r1") }))
			return err
		}},
		{"Record saga name with a slash", func() error {
			_, err := rs.Record(ctx, bad(func(tr *saga.Transition) { tr.Run.Saga = "or/der"; tr.Stream = saga.StreamName("or/der", "r1") }))
			return err
		}},
		{"Get saga name with a dot", func() error { _, err := rs.Get(ctx, "or.der", "r1"); return err }},
		{"Record other stream", func() error {
			_, err := rs.Record(ctx, bad(func(tr *saga.Transition) { tr.Stream = "saga-order-r2" }))
			return err
		}},
		{"Record empty status", func() error {
			_, err := rs.Record(ctx, bad(func(tr *saga.Transition) { tr.Run.Status = "" }))
			return err
		}},
		{"Record unknown status", func() error {
			_, err := rs.Record(ctx, bad(func(tr *saga.Transition) { tr.Run.Status = "RUNNING" }))
			return err
		}},
		{"Record negative attempt", func() error {
			_, err := rs.Record(ctx, bad(func(tr *saga.Transition) { tr.Run.Attempt = -1 }))
			return err
		}},
		{"Record huge attempt", func() error {
			_, err := rs.Record(ctx, bad(func(tr *saga.Transition) { tr.Run.Attempt = math.MaxInt32 + 1 }))
			return err
		}},
		{"Record envelope with huge attempts", func() error {
			_, err := rs.Record(ctx, bad(func(tr *saga.Transition) { tr.Outbox[0].Attempts = math.MaxInt32 + 1 }))
			return err
		}},
		{"Record due time before 1970", func() error {
			_, err := rs.Record(ctx, bad(func(tr *saga.Transition) { tr.Run.DueAt = time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC) }))
			return err
		}},
		{"Record negative lease", func() error {
			_, err := rs.Record(ctx, bad(func(tr *saga.Transition) { tr.Lease = -time.Second }))
			return err
		}},
		{"Record bad UTF-8 step", func() error {
			_, err := rs.Record(ctx, bad(func(tr *saga.Transition) { tr.Run.Step = "\xff" }))
			return err
		}},
		{"Record bad event ID", func() error {
			_, err := rs.Record(ctx, bad(func(tr *saga.Transition) { tr.Events[0].ID = "not-a-uuid" }))
			return err
		}},
		{"Record envelope without ID", func() error {
			_, err := rs.Record(ctx, bad(func(tr *saga.Transition) { tr.Outbox[0].ID = "" }))
			return err
		}},
		{"Record envelope bad topic", func() error {
			_, err := rs.Record(ctx, bad(func(tr *saga.Transition) { tr.Outbox[0].Topic = "" }))
			return err
		}},
		{"Claim empty owner", func() error { c := claim; c.Owner = ""; _, err := rs.Claim(ctx, c); return err }},
		{"Claim no sagas", func() error { c := claim; c.Sagas = nil; _, err := rs.Claim(ctx, c); return err }},
		{"Claim empty saga", func() error { c := claim; c.Sagas = []string{"order", ""}; _, err := rs.Claim(ctx, c); return err }},
		{"Claim zero lease", func() error { c := claim; c.Lease = 0; _, err := rs.Claim(ctx, c); return err }},
		{"Claim negative lease", func() error { c := claim; c.Lease = -time.Second; _, err := rs.Claim(ctx, c); return err }},
		{"Claim zero limit", func() error { c := claim; c.Limit = 0; _, err := rs.Claim(ctx, c); return err }},
		{"Claim huge limit", func() error { c := claim; c.Limit = 1001; _, err := rs.Claim(ctx, c); return err }},
		{"Renew empty saga", func() error { return rs.Renew(ctx, "", "r1", "w1", time.Minute) }},
		{"Renew empty run", func() error { return rs.Renew(ctx, "order", "", "w1", time.Minute) }},
		{"Renew empty owner", func() error { return rs.Renew(ctx, "order", "r1", "", time.Minute) }},
		{"Renew zero lease", func() error { return rs.Renew(ctx, "order", "r1", "w1", 0) }},
		{"Release empty run", func() error { return rs.Release(ctx, "order", "", "w1") }},
		{"Release empty owner", func() error { return rs.Release(ctx, "order", "r1", "") }},
		{"Get empty saga", func() error { _, err := rs.Get(ctx, "", "r1"); return err }},
		{"Get empty run", func() error { _, err := rs.Get(ctx, "order", ""); return err }},
		{"List negative limit", func() error { _, err := rs.List(ctx, saga.RunFilter{Limit: -1}); return err }},
		{"List huge limit", func() error { _, err := rs.List(ctx, saga.RunFilter{Limit: 1001}); return err }},
		{"List bad status", func() error { _, err := rs.List(ctx, saga.RunFilter{Status: "nope"}); return err }},
		{"Pending zero limit", func() error { _, err := rs.Outbox().Pending(ctx, 0); return err }},
	}
	for _, c := range cases {
		err := s.within(t, c.name, c.call)
		wantErr(t, c.name, err, nova.ErrInvalid)
		unchangedRuns(t, ctx, rs, before, c.name)
	}
	// The good transition the bad ones were made from is good.
	record(t, ctx, rs, good)
}

// within runs f, failing t if it panics or does not return within the
// suite's timeout.
func (s *sagaSuite) within(t *testing.T, what string, f func() error) error {
	t.Helper()
	return (&suite{timeout: s.timeout}).within(t, what, f)
}

func runIDs(rows []saga.RunInfo) string {
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.RunID
	}
	return fmt.Sprint(ids)
}

func total(c map[saga.Status]int) int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// splitKey splits "saga/run" (saga names in the cases hold no '/').
func splitKey(k string) (string, string) {
	sg, r, _ := strings.Cut(k, "/")
	return sg, r
}

// compareKey orders "saga/run" keys by (saga, run) in byte order.
func compareKey(a, b string) int {
	as, ar := splitKey(a)
	bs, br := splitKey(b)
	return cmp.Or(cmp.Compare(as, bs), cmp.Compare(ar, br))
}

func allPrefixed(keys []string, prefix string) bool {
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) {
			return false
		}
	}
	return true
}
