package novapg_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/novapg"
	"github.com/nova-go/nova/novatest"
	"github.com/nova-go/nova/saga"
)

// groupTransition is one transition of a saga group test and what it
// must get.
type groupTransition struct {
	t saga.Transition
	// want is what Record must return: nil, saga.ErrLeaseLost or
	// nova.ErrConcurrency.
	want error

	row saga.RunInfo
	err error
}

// transitionAt returns the transition of run from version to version+1
// by owner, with one event and one outbox message.
func transitionAt(run string, version uint64, owner string) *groupTransition {
	return &groupTransition{t: saga.Transition{
		Stream: saga.StreamName("order", run), Expected: nova.Exact(version),
		Events: novatest.Events("saga.test", 1),
		Run: saga.RunInfo{Saga: "order", RunID: run, Status: saga.Running, Step: fmt.Sprint("step-", version),
			DueAt: time.Now().Add(time.Hour)},
		Owner: owner, Lease: time.Minute,
		Outbox: []broker.Envelope{{ID: nova.NewEventID(), Topic: "saga.order", EventType: "step", Payload: []byte(`{}`)}},
	}}
}

// sagaGroupStore opens a store with one writer, as groupStore does, and
// its run store, with runs started (at version 1, leased by "w").
func sagaGroupStore(t *testing.T, sc scratch, runs ...string) (*novapg.Store, *novapg.RunStore) {
	t.Helper()
	s := groupStore(t, sc)
	rs := novapg.NewRunStore(s)
	for _, run := range runs {
		if _, err := rs.Record(context.Background(), transitionAt(run, 0, "w").t); err != nil {
			t.Fatal(err)
		}
	}
	return s, rs
}

// runSagaGroup records transitions in one group, as runGroup appends:
// the writer is held on the row of stream "block" while the transitions
// queue behind it. after, if not nil, runs once the append to "block"
// has returned, while the group commits.
func runSagaGroup(t *testing.T, sc scratch, s *novapg.Store, rs *novapg.RunStore, trs []*groupTransition, after func()) {
	t.Helper()
	ctx := context.Background()
	release := blockStream(t, sc, "block")
	var wg sync.WaitGroup
	blocked := make(chan struct{})
	wg.Go(func() {
		defer close(blocked)
		if _, err := s.Append(ctx, "block", nova.Any, novatest.Events("block", 1)...); err != nil {
			t.Errorf("append to the blocked stream: %v", err)
		}
	})
	waitFor(t, "the writer to wait for the blocked row", func() bool { return len(lockWaiters(t, sc)) > 0 })
	for i, tr := range trs {
		wg.Go(func() { tr.row, tr.err = rs.Record(ctx, tr.t) })
		waitFor(t, fmt.Sprintf("transition %d to queue", i), func() bool { return novapg.QueuedAppends(s) == i+1 })
	}
	release()
	if after != nil {
		<-blocked
		after()
	}
	wg.Wait()
}

// checkTransitions checks each transition's result and that the run's
// row and stream hold what it wrote, or, for one that failed, nothing of
// it.
func checkTransitions(t *testing.T, sc scratch, rs *novapg.RunStore, trs []*groupTransition) {
	t.Helper()
	ctx := context.Background()
	for i, tr := range trs {
		run := tr.t.Run.RunID
		want, _ := tr.t.Expected.Version()
		if tr.want == nil {
			want++
			if tr.err != nil {
				t.Errorf("transition %d (run %s): %v", i, run, tr.err)
			} else if tr.row.Version != want || tr.row.Step != tr.t.Run.Step {
				t.Errorf("transition %d (run %s): row at version %d, step %q; want %d, %q", i, run, tr.row.Version, tr.row.Step, want, tr.t.Run.Step)
			}
		} else if !errors.Is(tr.err, tr.want) {
			t.Errorf("transition %d (run %s): %v, want %v", i, run, tr.err, tr.want)
		}
		stored, err := rs.Get(ctx, "order", run)
		if err != nil {
			t.Fatal(err)
		}
		if tr.want == nil && stored.Step != tr.t.Run.Step {
			t.Errorf("transition %d (run %s): stored step %q, want %q", i, run, stored.Step, tr.t.Run.Step)
		}
		if tr.want != nil && stored.Step == tr.t.Run.Step {
			t.Errorf("transition %d (run %s) failed but its row was written", i, run)
		}
		var events, outbox int64
		if err := pgxQueryRow(ctx, sc, `SELECT count(*) FROM `+pgx.Identifier{sc.schema, "events"}.Sanitize()+` WHERE id = $1::uuid`, &events, tr.t.Events[0].ID); err != nil {
			t.Fatal(err)
		}
		if err := pgxQueryRow(ctx, sc, `SELECT count(*) FROM `+pgx.Identifier{sc.schema, "outbox"}.Sanitize()+` WHERE id = $1`, &outbox, tr.t.Outbox[0].ID); err != nil {
			t.Fatal(err)
		}
		if want := int64(map[bool]int{true: 1}[tr.want == nil]); events != want || outbox != want {
			t.Errorf("transition %d (run %s): %d events and %d outbox rows stored, want %d of each", i, run, events, outbox, want)
		}
	}
}

// sagaTransactions returns how many transactions wrote the events, run
// rows and outbox rows of trs.
func sagaTransactions(t *testing.T, sc scratch, trs []*groupTransition) int {
	t.Helper()
	var ids, box, runs []string
	for _, tr := range trs {
		ids = append(ids, tr.t.Events[0].ID)
		box = append(box, tr.t.Outbox[0].ID)
		runs = append(runs, tr.t.Run.RunID)
	}
	var n int
	err := pgxQueryRow(context.Background(), sc, `SELECT count(DISTINCT x) FROM (
		SELECT xmin::text AS x FROM `+pgx.Identifier{sc.schema, "events"}.Sanitize()+` WHERE id = ANY($1::uuid[])
		UNION ALL SELECT xmin::text FROM `+pgx.Identifier{sc.schema, "outbox"}.Sanitize()+` WHERE id = ANY($2::text[])
		UNION ALL SELECT xmin::text FROM `+pgx.Identifier{sc.schema, "saga_runs"}.Sanitize()+` WHERE saga = 'order' AND run_id = ANY($3::text[])) t`,
		&n, ids, box, runs)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSagaGroupCommit: transitions of their own runs that arrive while
// another commit is in flight commit in one transaction, each with its
// own result.
func TestSagaGroupCommit(t *testing.T) {
	t.Parallel()
	sc := newScratch(t)
	s, rs := sagaGroupStore(t, sc, "a", "b", "c")
	trs := []*groupTransition{transitionAt("a", 1, "w"), transitionAt("b", 1, "w"), transitionAt("c", 1, "w"), transitionAt("new", 0, "w")}
	runSagaGroup(t, sc, s, rs, trs, nil)
	checkTransitions(t, sc, rs, trs)
	if n := sagaTransactions(t, sc, trs); n != 1 {
		t.Errorf("the group's transitions committed in %d transactions, want 1", n)
	}
	checkLog(t, s)
}

// TestSagaGroupCommitFailures: in a group, a transition whose lease is
// lost and one at a wrong version fail with their own errors and write
// nothing; the others commit, each alone once the group failed.
func TestSagaGroupCommitFailures(t *testing.T) {
	t.Parallel()
	sc := newScratch(t)
	s, rs := sagaGroupStore(t, sc, "a", "b", "c", "d")
	lost := transitionAt("b", 1, "intruder")
	lost.want = saga.ErrLeaseLost
	conflict := transitionAt("c", 0, "w")
	conflict.want, conflict.t.Run.Step = nova.ErrConcurrency, "conflict"
	trs := []*groupTransition{transitionAt("a", 1, "w"), lost, conflict, transitionAt("d", 1, "w"), transitionAt("new", 0, "w")}
	runSagaGroup(t, sc, s, rs, trs, nil)
	checkTransitions(t, sc, rs, trs)
	good := []*groupTransition{trs[0], trs[3], trs[4]}
	if n := sagaTransactions(t, sc, good); n != 3 {
		t.Errorf("the transitions that succeeded committed in %d transactions, want 3 (each alone)", n)
	}
	checkLog(t, s)
}

// TestSagaGroupCommitRetry: a transition recorded already, recorded again
// in a group, is an idempotent retry: it returns the run's row and
// writes nothing more; the others commit.
func TestSagaGroupCommitRetry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sc := newScratch(t)
	s, rs := sagaGroupStore(t, sc, "a", "b")
	again := transitionAt("a", 1, "w")
	if _, err := rs.Record(ctx, again.t); err != nil {
		t.Fatal(err)
	}
	trs := []*groupTransition{transitionAt("b", 1, "w"), again, transitionAt("new", 0, "w")}
	runSagaGroup(t, sc, s, rs, trs, nil)
	checkTransitions(t, sc, rs, trs)
	if again.row.Version != 2 {
		t.Errorf("the retry returned the run at version %d, want 2", again.row.Version)
	}
	checkLog(t, s)
}

// TestSagaGroupCommitSameRun: two transitions of one run at one version,
// by its owner, in one group: one commits, the other gets a conflict.
func TestSagaGroupCommitSameRun(t *testing.T) {
	t.Parallel()
	sc := newScratch(t)
	s, rs := sagaGroupStore(t, sc, "a")
	first, second := transitionAt("a", 1, "w"), transitionAt("a", 1, "w")
	second.t.Run.Step = "other"
	runSagaGroup(t, sc, s, rs, []*groupTransition{first, second}, nil)
	switch {
	case first.err == nil && errors.Is(second.err, nova.ErrConcurrency):
		second.want = nova.ErrConcurrency
	case second.err == nil && errors.Is(first.err, nova.ErrConcurrency):
		first.want = nova.ErrConcurrency
	default:
		t.Fatalf("got %v and %v, want one nil and one conflict", first.err, second.err)
	}
	checkTransitions(t, sc, rs, []*groupTransition{first, second})
	checkLog(t, s)
}

// TestSagaGroupCommitBrokenConnection: a group whose backend is killed
// while it waits for a row lock leaves nothing; its transitions run
// again alone and commit once each.
func TestSagaGroupCommitBrokenConnection(t *testing.T) {
	t.Parallel()
	sc := newScratch(t)
	s, rs := sagaGroupStore(t, sc, "a", "b", "c")
	trs := []*groupTransition{transitionAt("a", 1, "w"), transitionAt("b", 1, "w"), transitionAt("c", 1, "w"), transitionAt("new", 0, "w")}
	release := blockStream(t, sc, saga.StreamName("order", "c"))
	runSagaGroup(t, sc, s, rs, trs, func() {
		var pids []int32
		waitFor(t, "the group to wait for c's row", func() bool {
			pids = lockWaiters(t, sc)
			return len(pids) > 0
		})
		if _, err := sc.exec(context.Background(), `SELECT pg_terminate_backend($1, 5000)`, pids[0]); err != nil {
			t.Error(err)
		}
		release()
	})
	checkTransitions(t, sc, rs, trs)
	if n := sagaTransactions(t, sc, trs); n != 4 {
		t.Errorf("the transitions committed in %d transactions, want 4 (each alone, once)", n)
	}
	checkLog(t, s)
}
