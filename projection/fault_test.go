package projection_test

import (
	"context"
	"errors"
	"iter"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novamem"
	"github.com/nova-go/nova/projection"
)

// Panics in user code: handlers and callbacks.

func isPanicOf(err error, v any) bool {
	var pe *nova.PanicError
	return errors.As(err, &pe) && pe.Value == v && len(pe.Stack) > 0
}

// TestPanickingHandlerIsPoison: a handler that panics is a handler that
// failed: retried, then stopped on with a *PoisonError wrapping the
// *nova.PanicError, or skipped. The process lives on.
func TestPanickingHandlerIsPoison(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	s := newStore(t, novamem.Config{})
	var calls atomic.Int32
	rec := &recorder{fail: func(v OrderPlaced) error {
		if v.ID == "b" {
			calls.Add(1)
			panic("handler boom")
		}
		return nil
	}}
	first := place(t, s, reg, "a")
	place(t, s, reg, "b", "c")
	r := start(t, projection.Config{Store: s, Projection: newProjection(t, reg, rec), Retries: 1, RetryBackoff: time.Millisecond})
	err := r.Wait()
	var pe *projection.PoisonError
	if !errors.As(err, &pe) || pe.Stream != "order-b" || pe.Attempts != 2 || !isPanicOf(err, "handler boom") {
		t.Fatalf("Wait = %v, want a poison error on order-b after 2 attempts wrapping the panic", err)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("the panicking handler ran %d times, want 2", n)
	}
	if st := r.Status(); st.State != projection.Failed || st.Checkpoint != first {
		t.Fatalf("status %+v", st)
	}

	// Under Skip the runner goes on past it.
	rec2 := &recorder{fail: rec.fail}
	last := place(t, s, reg, "d")
	r2 := start(t, projection.Config{Store: s, Projection: newProjection(t, reg, rec2), OnPoison: projection.PoisonSkip})
	waitFor(t, r2, last)
	if got := rec2.seen(); !slices.Equal(got, []string{"a", "c", "d"}) {
		t.Fatalf("handled %v", got)
	}
	if sk := r2.Skipped(); len(sk) != 1 || !isPanicOf(sk[0].Err, "handler boom") {
		t.Fatalf("skipped %+v", sk)
	}
}

// TestSQLPanickingHandlerIsPoison: on a SQL read model (SQLite, the
// handlers inside the store's write transaction) a panicking handler
// rolls its transaction back and is poison; the store is not wedged:
// appends and writes go on, and a fixed runner finishes.
func TestSQLPanickingHandlerIsPoison(t *testing.T) {
	t.Parallel()
	m := newSQLModel(t)
	ctx := context.Background()
	m.setFail(func(v OrderPlaced) error {
		if v.ID == "o3" {
			panic("sql handler boom")
		}
		return nil
	})
	placeN(t, m, 0, 6)
	cfg := m.config()
	cfg.BatchSize = 10
	r := start(t, cfg)
	err := r.Wait()
	var pe *projection.PoisonError
	if !errors.As(err, &pe) || pe.Stream != "order-o3" || !isPanicOf(err, "sql handler boom") {
		t.Fatalf("Wait = %v, want poison on order-o3 wrapping the panic", err)
	}
	if totals, _, applied := m.totals(t); len(totals) != 3 || applied != 3 {
		t.Fatalf("model %v (%d applied), want the three orders before the poison", totals, applied)
	}
	// The store still writes.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := m.s.WriteTx(wctx, func(c *sqlite3.Conn) error { return c.Exec(`CREATE TABLE after_panic (x)`) }); err != nil {
		t.Fatalf("WriteTx after the panic: %v", err)
	}
	last := placeN(t, m, 6, 8)
	m.setFail(nil)
	r2 := start(t, m.config())
	waitFor(t, r2, last)
	if totals, _, applied := m.totals(t); len(totals) != 8 || applied != 8 {
		t.Fatalf("model %v (%d applied) after the fix, want all 8 once", totals, applied)
	}
}

// TestPanickingCallbacks: SkipFunc, ResetFunc, a rebuild's progress
// function and NowFunc run under recover; a panic in one is that call's
// error, never the process's end.
func TestPanickingCallbacks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("SkipFunc fails the runner", func(t *testing.T) {
		t.Parallel()
		reg := newRegistry(t)
		s := newStore(t, novamem.Config{})
		rec := &recorder{fail: func(v OrderPlaced) error { return errors.New("bad") }}
		place(t, s, reg, "a")
		r := start(t, projection.Config{Store: s, Projection: newProjection(t, reg, rec), OnPoison: projection.PoisonSkip,
			SkipFunc: func(context.Context, projection.Skipped) { panic("skip boom") }})
		if err := r.Wait(); !isPanicOf(err, "skip boom") || !strings.Contains(err.Error(), "SkipFunc") {
			t.Fatalf("Wait = %v, want the SkipFunc's panic", err)
		}
		if st := r.Status(); st.State != projection.Failed {
			t.Fatalf("status %+v", st)
		}
	})

	t.Run("ResetFunc", func(t *testing.T) {
		t.Parallel()
		reg := newRegistry(t)
		r, err := projection.NewRunner(projection.Config{Store: newStore(t, novamem.Config{}), Projection: newProjection(t, reg, &recorder{}),
			ResetFunc: func(context.Context) error { panic("reset boom") }})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Reset(ctx); !isPanicOf(err, "reset boom") {
			t.Fatalf("Reset = %v, want the panic as an error", err)
		}
	})

	t.Run("progress", func(t *testing.T) {
		t.Parallel()
		m := newSQLModel(t)
		placeN(t, m, 0, 3)
		r, err := projection.NewRunner(m.config())
		if err != nil {
			t.Fatal(err)
		}
		err = r.Rebuild(ctx, func(done, total int) {
			if done > 0 {
				panic("progress boom")
			}
		})
		if !isPanicOf(err, "progress boom") {
			t.Fatalf("Rebuild = %v, want the panic as an error", err)
		}
	})

	t.Run("NowFunc", func(t *testing.T) {
		t.Parallel()
		reg := newRegistry(t)
		s := newStore(t, novamem.Config{})
		pos := place(t, s, reg, "a")
		r := start(t, projection.Config{Store: s, Projection: newProjection(t, reg, &recorder{}),
			NowFunc: func() time.Time { panic("clock boom") }})
		waitFor(t, r, pos)
		if st := r.Status(); st.State != projection.Running || st.Checkpoint != pos {
			t.Fatalf("status %+v", st)
		}
	})
}

// Transient faults: waited out, never poison.

var errConnLost = errors.New("connection lost")

// flakyStore fails Subscribe with a transient error while down is set,
// as a store does while its server restarts: a new subscription fails at
// once, a live one when it next has an event.
type flakyStore struct {
	nova.Store
	down atomic.Bool
}

func (f *flakyStore) Subscribe(ctx context.Context, opts nova.SubscribeOptions) iter.Seq2[nova.Event, error] {
	return func(yield func(nova.Event, error) bool) {
		if f.down.Load() {
			yield(nova.Event{}, nova.Transient(errConnLost))
			return
		}
		for e, err := range f.Store.Subscribe(ctx, opts) {
			if f.down.Load() {
				yield(nova.Event{}, nova.Transient(errConnLost))
				return
			}
			if !yield(e, err) {
				return
			}
		}
	}
}

// flakyCheckpoints fails Load and Save transiently while down is set.
type flakyCheckpoints struct {
	projection.CheckpointStore
	down *atomic.Bool
}

func (f flakyCheckpoints) Load(ctx context.Context, name string) (nova.Position, error) {
	if f.down.Load() {
		return nova.Start, nova.Transient(errConnLost)
	}
	return f.CheckpointStore.Load(ctx, name)
}

func (f flakyCheckpoints) Save(ctx context.Context, name string, pos nova.Position) error {
	if f.down.Load() {
		return nova.Transient(errConnLost)
	}
	return f.CheckpointStore.Save(ctx, name, pos)
}

// waitStatus polls the runner's status until ok holds.
func waitStatus(t *testing.T, r *projection.Runner, what string, ok func(projection.Status) bool) projection.Status {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := r.Status()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %+v: never %s", st, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestTransientErrorsAreRetried: while the store and the checkpoints fail
// with transient errors, the runner shows retrying, with the error and
// the attempts, and tries again with backoff; once they work it goes on
// where it was, handling every event. A handler's transient error is
// waited out too, not counted as poison.
func TestTransientErrorsAreRetried(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	s := &flakyStore{Store: newStore(t, novamem.Config{})}
	var handlerFails atomic.Int32
	handlerFails.Store(3)
	rec := &recorder{fail: func(v OrderPlaced) error {
		if v.ID == "c" && handlerFails.Add(-1) >= 0 {
			return nova.Transient(errConnLost)
		}
		return nil
	}}
	place(t, s, reg, "a", "b")
	cps := flakyCheckpoints{projection.NewMemoryCheckpoints(), &s.down}
	r := start(t, projection.Config{Store: s, Projection: newProjection(t, reg, rec), Checkpoints: cps,
		RetryBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	waitFor(t, r, place(t, s, reg, "b2"))

	s.down.Store(true)
	pos := place(t, s, reg, "c", "d")
	st := waitStatus(t, r, "retrying twice", func(st projection.Status) bool {
		return st.State == projection.Retrying && st.Attempt >= 2
	})
	if !errors.Is(st.Warning, errConnLost) || !nova.IsTransient(st.Warning) || st.Err != nil || st.RetryAt.IsZero() {
		t.Fatalf("status %+v, want the transient error as its warning and a next attempt", st)
	}
	s.down.Store(false)
	waitFor(t, r, pos)
	st = r.Status()
	if st.State != projection.Running || st.Warning != nil || st.Attempt != 0 || !st.RetryAt.IsZero() {
		t.Fatalf("status %+v after recovery, want running with no warning", st)
	}
	got := rec.seen()
	slices.Sort(got)
	if want := []string{"a", "b", "b2", "c", "d"}; !slices.Equal(slices.Compact(got), want) {
		t.Fatalf("handled %v, want %v", got, want)
	}
	if handlerFails.Load() >= 0 {
		t.Fatal("the handler's transient failures were not all met")
	}
	if sk := r.Skipped(); len(sk) != 0 {
		t.Fatalf("skipped %v", sk)
	}

	// A runner started while the checkpoint store is down starts
	// retrying, and runs once it is back.
	s.down.Store(true)
	r2, err := projection.NewRunner(projection.Config{Store: s, Projection: newProjection(t, reg, &recorder{}), Checkpoints: cps,
		RetryBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := r2.Start(context.Background()); err != nil {
		t.Fatalf("Start while the checkpoints are down = %v, want it to start retrying", err)
	}
	t.Cleanup(func() { _ = r2.Stop(context.Background()) })
	waitStatus(t, r2, "retrying", func(st projection.Status) bool {
		return st.State == projection.Retrying && errors.Is(st.Warning, errConnLost)
	})
	s.down.Store(false)
	waitFor(t, r2, pos)
}

// flakyCommits fails its first commits with a transient error, before
// anything is applied, as a connection lost mid-commit does.
type flakyCommits struct {
	projection.TxCheckpoints
	fails atomic.Int32
}

func (f *flakyCommits) Commit(ctx context.Context, name, owner string, from, to nova.Position, apply func(ctx context.Context) error) error {
	if f.fails.Add(-1) >= 0 {
		return nova.Transient(errConnLost)
	}
	return f.TxCheckpoints.Commit(ctx, name, owner, from, to, apply)
}

// TestSQLTransientErrorsAreRetried: on a SQL read model, commits that
// fail transiently and a handler whose write fails transiently are
// retried until they succeed; every event is applied once.
func TestSQLTransientErrorsAreRetried(t *testing.T) {
	t.Parallel()
	m := newSQLModel(t)
	var handlerFails atomic.Int32
	handlerFails.Store(2)
	m.setFail(func(v OrderPlaced) error {
		if v.ID == "o5" && handlerFails.Add(-1) >= 0 {
			return nova.Transient(errConnLost)
		}
		return nil
	})
	cps := &flakyCommits{TxCheckpoints: m.cps}
	cps.fails.Store(3)
	cfg := m.config()
	cfg.Checkpoints, cfg.RetryBackoff, cfg.MaxBackoff = cps, time.Millisecond, 5*time.Millisecond
	pos := placeN(t, m, 0, 10)
	r := start(t, cfg)
	waitFor(t, r, pos)
	if totals, _, applied := m.totals(t); len(totals) != 10 || applied != 10 {
		t.Fatalf("model %v (%d applied), want 10 orders once", totals, applied)
	}
	if st := r.Status(); st.State != projection.Running || st.Skipped != 0 || st.Err != nil {
		t.Fatalf("status %+v", st)
	}
	// A handler's own error is still poison.
	m.setFail(func(v OrderPlaced) error { return errors.New("bad order") })
	placeN(t, m, 10, 11)
	if err := r.Wait(); !errors.Is(err, projection.ErrPoison) {
		t.Fatalf("Wait = %v, want poison for a handler's own error", err)
	}
}
