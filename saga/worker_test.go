package saga_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/novamem"
	"github.com/nova-go/nova/novapg"
	"github.com/nova-go/nova/novasqlite"
	"github.com/nova-go/nova/saga"
	"github.com/nova-go/nova/saga/sagatest"
)

// clock is a store clock a test moves forward.
type clock struct{ skew atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.skew.Load())) }
func (c *clock) advance(d time.Duration) { c.skew.Add(int64(d)) }

// backend makes a run store for a test.
type backend struct {
	name string
	open func(t testing.TB, clk *clock) saga.RunStore
}

func memBackend(t testing.TB, clk *clock) saga.RunStore {
	st, err := novamem.New(novamem.Config{NowFunc: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	runs := novamem.NewRunStore(st)
	return runs
}

func sqliteBackend(t testing.TB, _ *clock) saga.RunStore { return openSQLite(t, novasqlite.SyncFull) }

// openSQLite opens a run store on a new SQLite file with the durability
// given.
func openSQLite(t testing.TB, sync novasqlite.Synchronous) saga.RunStore {
	st, err := novasqlite.Open(context.Background(), novasqlite.Config{Path: filepath.Join(t.TempDir(), "runs.db"), Synchronous: sync})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	runs := novasqlite.NewRunStore(st)
	return runs
}

// pgBackend opens a store in a scratch schema of the test server's
// database, dropped at the end of the test; it skips without a server.
func pgBackend(t testing.TB, _ *clock) saga.RunStore {
	addr := testenv.Need(t, testenv.Postgres)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "saga_test_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	st, err := novapg.Open(ctx, novapg.Config{URL: addr, Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = st.Close()
		conn, err := pgx.Connect(ctx, addr)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	runs := novapg.NewRunStore(st)
	return runs
}

// backends are the run stores the worker tests run on. Tests that move
// the store's clock use the first, whose clock is the test's.
var backends = []backend{{name: "mem", open: memBackend}, {name: "sqlite", open: sqliteBackend}, {name: "pg", open: pgBackend}}

// fixture is a coordinator on a run store, with channels that receive the
// runs that end and the runs that get stuck.
type fixture struct {
	clk    *clock
	runs   saga.RunStore
	broker *broker.Memory
	c      *saga.Coordinator
	ended  chan saga.RunInfo
	stuck  chan saga.RunInfo
}

func setup(t *testing.T, b backend, lease time.Duration) *fixture {
	t.Helper()
	f := &fixture{clk: &clock{}, ended: make(chan saga.RunInfo, 1000), stuck: make(chan saga.RunInfo, 100)}
	f.runs = b.open(t, f.clk)
	m, err := broker.NewMemory(broker.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	f.broker = m
	f.c, err = saga.NewCoordinator(saga.Config{
		Runs: f.runs, Broker: m, Logger: quiet, Lease: lease,
		OnEndFunc:   func(_ context.Context, r saga.RunInfo) { f.ended <- r },
		OnStuckFunc: func(_ context.Context, r saga.RunInfo) { f.stuck <- r },
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// worker starts a worker on f's coordinator with the definitions, stopped
// at the end of the test. The returned cancel stops it without waiting.
func worker[D any](t *testing.T, f *fixture, cfg saga.WorkerConfig, defs ...*saga.Definition[D]) (*saga.Worker, context.CancelFunc) {
	t.Helper()
	w, err := saga.NewWorker(f.c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range defs {
		if err := saga.Register(w, d); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := w.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return w, cancel
}

// waitEnded waits for n runs to end and returns them by run ID.
func (f *fixture) waitEnded(t *testing.T, n int) map[string]saga.RunInfo {
	t.Helper()
	got := map[string]saga.RunInfo{}
	timeout := time.After(20 * time.Second)
	for len(got) < n {
		select {
		case r := <-f.ended:
			got[r.RunID] = r
		case <-timeout:
			t.Fatalf("%d of %d runs ended", len(got), n)
		}
	}
	return got
}

// waitFor polls cond until it holds, for state no hook reports.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

type trip struct {
	Done []string `json:"done"`
}

func tripStep(name string) saga.Step[trip] {
	return saga.Step[trip]{
		Name: name,
		Execute: func(_ context.Context, _ saga.StepContext, d *trip) error {
			d.Done = append(d.Done, name)
			return nil
		},
		Retry:           saga.RetryPolicy{MaxAttempts: 3, Backoff: saga.Linear{Unit: time.Millisecond}},
		CompensateRetry: saga.RetryPolicy{MaxAttempts: 2, Backoff: saga.Linear{Unit: time.Millisecond}},
	}
}

func tripSaga(t *testing.T, h *sagatest.Harness, steps ...saga.Step[trip]) *saga.Definition[trip] {
	t.Helper()
	if len(steps) == 0 {
		steps = []saga.Step[trip]{tripStep("a"), tripStep("b"), tripStep("c")}
	}
	def, err := saga.Define("trip", sagatest.Wrap(h, steps...)...)
	if err != nil {
		t.Fatal(err)
	}
	return def
}

var fastPoll = saga.WorkerConfig{Concurrency: 4, PollInterval: 5 * time.Millisecond}

// eachBackend runs test on every backend, in parallel.
func eachBackend(t *testing.T, test func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			test(t, b)
		})
	}
}

func TestWorkerDrivesStartedRuns(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		f := setup(t, b, 0)
		h := sagatest.New(nil, sagatest.Fault{Step: "c", RunID: "bad", Kind: sagatest.Fail, Err: saga.Permanent(errBoom)})
		def := tripSaga(t, h)
		ids := []string{"r0", "r1", "r2", "r3", "r4", "r5", "bad"}
		for _, id := range ids {
			x, err := saga.Start(t.Context(), f.c, def, id, trip{})
			if err != nil || x.Status != saga.Running || x.Version != 1 {
				t.Fatalf("start %s: %+v, %v", id, x, err)
			}
		}
		worker(t, f, fastPoll, def)
		ended := f.waitEnded(t, len(ids))
		for _, id := range ids {
			want := saga.Completed
			if id == "bad" {
				want = saga.Compensated
			}
			if ended[id].Status != want {
				t.Errorf("%s ended %s, want %s", id, ended[id].Status, want)
			}
			x, err := saga.Load(t.Context(), f.c, def, id)
			if err != nil || x.Status != want || (want == saga.Completed && !slices.Equal(x.Data.Done, []string{"a", "b", "c"})) {
				t.Errorf("%s: %+v, %v", id, x, err)
			}
		}
		counts, err := f.runs.Count(t.Context(), "trip")
		if err != nil || counts[saga.Completed] != 6 || counts[saga.Compensated] != 1 {
			t.Fatalf("counts %v, %v", counts, err)
		}
		// Starting a run that exists records nothing and returns it.
		x, err := saga.Start(t.Context(), f.c, def, "r0", trip{Done: []string{"again"}})
		if err != nil || x.Status != saga.Completed || len(x.Data.Done) != 3 {
			t.Fatalf("restart: %+v, %v", x, err)
		}
		// The worker's relay published every lifecycle event.
		waitFor(t, "the outbox to drain", func() bool {
			p, err := f.runs.Outbox().Pending(t.Context(), 1)
			return err == nil && len(p) == 0
		})
		if got, _ := f.broker.Poll(t.Context(), "saga.trip.saga.completed", 100); len(got) != 6 {
			t.Fatalf("%d completed events, want 6", len(got))
		}
		if got, _ := f.broker.Poll(t.Context(), "saga.trip.b.compensated", 100); len(got) != 1 || got[0].ID != "trip-bad-b-compensated-1" {
			t.Fatalf("compensated events %v", got)
		}
	})
}

func TestWorkerResumesInterruptedRun(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		f := setup(t, b, 0)
		var crash atomic.Pointer[func()]
		h := sagatest.New(func() { (*crash.Load())() },
			sagatest.Fault{Step: "b", Attempt: 1, Kind: sagatest.Crash},
			// In run "lost", b's outcome stays unknown and it then fails
			// for good: it is compensated all the same.
			sagatest.Fault{Step: "b", Attempt: 2, RunID: "lost", Kind: sagatest.Fail, Err: saga.Permanent(errBoom)})
		def := tripSaga(t, h)
		for _, id := range []string{"ok", "lost"} {
			w1, cancel := worker(t, f, saga.WorkerConfig{Concurrency: 1, PollInterval: 5 * time.Millisecond}, def)
			crashed := make(chan struct{})
			die := func() { cancel(); close(crashed) }
			crash.Store(&die)
			if _, err := saga.Start(t.Context(), f.c, def, id, trip{}); err != nil {
				t.Fatal(err)
			}
			<-crashed
			if err := w1.Stop(t.Context()); err != nil {
				t.Fatal(err)
			}
			// The stream stops at b's first attempt: its outcome is not
			// recorded.
			x, err := saga.Load(t.Context(), f.c, def, id)
			if err != nil || x.Status != saga.Running || x.Step != "b" || x.Attempt != 1 || !slices.Equal(x.CompletedSteps, []string{"a"}) {
				t.Fatalf("%s after the crash: %+v, %v", id, x, err)
			}
		}
		worker(t, f, fastPoll, def)
		ended := f.waitEnded(t, 2)
		if ended["ok"].Status != saga.Completed || ended["lost"].Status != saga.Compensated {
			t.Fatalf("ended %+v", ended)
		}
		x, _ := saga.Load(t.Context(), f.c, def, "lost")
		if !slices.Equal(x.CompensatedSteps, []string{"b", "a"}) {
			t.Fatalf("lost compensated %v, want [b a]", x.CompensatedSteps)
		}
		tl, err := saga.Timeline(t.Context(), f.runs, "trip", "ok")
		if err != nil {
			t.Fatal(err)
		}
		var unknown []saga.Entry
		for _, e := range tl {
			if e.Unknown {
				unknown = append(unknown, e)
			}
		}
		if len(unknown) != 1 || unknown[0].Type != saga.EventStepRetrying || unknown[0].Step != "b" || unknown[0].Attempt != 1 {
			t.Fatalf("unknown outcomes %+v", unknown)
		}
		// b ran twice in "ok": once before the crash, once after.
		var bCalls []int
		for _, c := range h.Calls() {
			if c.RunID == "ok" && c.Step == "b" && !c.Compensation {
				bCalls = append(bCalls, c.Attempt)
			}
		}
		if !slices.Equal(bCalls, []int{1, 2}) {
			t.Fatalf("b's attempts in ok: %v", bCalls)
		}
	})
}

func TestTwoWorkersNeverOverlap(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		f := setup(t, b, 0)
		slow := func(name string) saga.Step[trip] {
			s := tripStep(name)
			s.Execute = func(_ context.Context, _ saga.StepContext, d *trip) error {
				time.Sleep(time.Millisecond)
				d.Done = append(d.Done, name)
				return nil
			}
			return s
		}
		h := sagatest.New(nil)
		def := tripSaga(t, h, slow("a"), slow("b"), slow("c"))
		const n = 40
		for i := range n {
			if _, err := saga.Start(t.Context(), f.c, def, "r"+string(rune('A'+i)), trip{}); err != nil {
				t.Fatal(err)
			}
		}
		w1, _ := worker(t, f, fastPoll, def)
		w2, _ := worker(t, f, fastPoll, def)
		if w1.Owner() == w2.Owner() {
			t.Fatalf("two workers share owner %q", w1.Owner())
		}
		ended := f.waitEnded(t, n)
		for id, r := range ended {
			if r.Status != saga.Completed {
				t.Errorf("%s ended %s", id, r.Status)
			}
		}
		if o := h.Overlaps(); len(o) != 0 {
			t.Fatalf("runs driven twice at once: %v", o)
		}
		if calls := h.Calls(); len(calls) != 3*n {
			t.Fatalf("%d step calls, want %d", len(calls), 3*n)
		}
	})
}

func TestExpiredLeaseIsFenced(t *testing.T) {
	t.Parallel()
	f := setup(t, backends[0], 60*time.Millisecond)
	entered := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	var leftA atomic.Bool
	var calls atomic.Int32
	step := saga.Step[trip]{Name: "a", Timeout: time.Minute, Execute: func(ctx context.Context, sc saga.StepContext, d *trip) error {
		calls.Add(1)
		if sc.Attempt == 1 {
			close(entered)
			<-ctx.Done() // the lease's loss cancels the attempt
			leftA.Store(true)
			<-release
			d.Done = append(d.Done, "stale")
			return nil
		}
		d.Done = append(d.Done, "fresh")
		return nil
	}}
	def, _ := saga.Define("fence", step)
	// A runs it inline, holding the lease under the coordinator's owner.
	aborted := make(chan error, 1)
	go func() {
		_, err := saga.Run(context.Background(), f.c, def, "r1", trip{})
		aborted <- err
	}()
	<-entered
	// A cannot renew (the store's clock jumps past the lease, as for a
	// process that paused): the run is anyone's, and A leaves it.
	f.clk.advance(time.Hour)
	if err := <-aborted; !errors.Is(err, saga.ErrAborted) || !errors.Is(err, saga.ErrLeaseLost) {
		t.Fatalf("A: %v", err)
	}
	waitFor(t, "A's attempt to see its ctx cancelled", leftA.Load)
	// A write under A's lost lease is refused.
	row, err := f.runs.Get(t.Context(), "fence", "r1")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.runs.Record(t.Context(), saga.Transition{Stream: saga.StreamName("fence", "r1"), Expected: nova.Exact(row.Version),
		Events: []nova.EventData{{Type: saga.EventRunCompleted, Data: []byte(`{}`)}},
		Run:    saga.RunInfo{Saga: "fence", RunID: "r1", Status: saga.Completed}, Owner: f.c.Owner(), Lease: time.Minute})
	if !errors.Is(err, saga.ErrLeaseLost) {
		t.Fatalf("stale write: %v", err)
	}
	worker(t, f, fastPoll, def)
	ended := f.waitEnded(t, 1)
	x, _ := saga.Load(t.Context(), f.c, def, "r1")
	if ended["r1"].Status != saga.Completed || !slices.Equal(x.Data.Done, []string{"fresh"}) || calls.Load() != 2 {
		t.Fatalf("x = %+v, calls %d", x, calls.Load())
	}
}

func TestRetryWaitsOnDueTime(t *testing.T) {
	t.Parallel()
	f := setup(t, backends[0], 0)
	var tries atomic.Int32
	def, _ := saga.Define("later", saga.Step[trip]{Name: "a",
		Retry: saga.RetryPolicy{MaxAttempts: 2, Backoff: saga.Linear{Unit: time.Hour}},
		Execute: func(context.Context, saga.StepContext, *trip) error {
			if tries.Add(1) == 1 {
				return errBoom
			}
			return nil
		}})
	worker(t, f, fastPoll, def)
	if _, err := saga.Start(t.Context(), f.c, def, "r1", trip{}); err != nil {
		t.Fatal(err)
	}
	var row saga.RunInfo
	waitFor(t, "the retry to be scheduled and the run released", func() bool {
		row, _ = f.runs.Get(t.Context(), "later", "r1")
		return row.Attempt == 1 && row.Error != "" && row.LeaseOwner == ""
	})
	now, _ := f.runs.Now(t.Context())
	if wait := row.DueAt.Sub(now); wait < 59*time.Minute || wait > time.Hour || row.Status != saga.Running {
		t.Fatalf("row %+v due in %s", row, wait)
	}
	// No worker holds the run while it waits; it goes on once due.
	f.clk.advance(time.Hour)
	if ended := f.waitEnded(t, 1); ended["r1"].Status != saga.Completed || tries.Load() != 2 {
		t.Fatalf("ended %+v after %d tries", ended, tries.Load())
	}
	tl, _ := saga.Timeline(t.Context(), f.runs, "later", "r1")
	if i := slices.IndexFunc(tl, func(e saga.Entry) bool { return e.Type == saga.EventStepRetrying }); i < 0 || tl[i].Delay != time.Hour || tl[i].Error != errBoom.Error() {
		t.Fatalf("timeline %+v", tl)
	}
}

func TestStepTimeoutAcrossRetries(t *testing.T) {
	t.Parallel()
	f := setup(t, backends[0], 0)
	h := sagatest.New(nil, sagatest.Fault{Step: "b", Kind: sagatest.Hang})
	b := tripStep("b")
	b.Timeout, b.StepTimeout = time.Minute, 30*time.Millisecond
	def := tripSaga(t, h, tripStep("a"), b)
	x, err := saga.Run(t.Context(), f.c, def, "r1", trip{})
	var te *saga.TimeoutError
	if !errors.As(err, &te) || te.Step != "b" || te.Scope != "step" || !strings.Contains(err.Error(), "step timeout") {
		t.Fatalf("err = %v", err)
	}
	// The step timed out once, with no retry, and is compensated.
	if x.Status != saga.Compensated || x.Attempt != 1 || !slices.Equal(x.CompensatedSteps, []string{"b", "a"}) {
		t.Fatalf("x = %+v", x)
	}

	// A step failing fast is not retried past its step timeout.
	var tries atomic.Int32
	flaky := saga.Step[trip]{Name: "flaky", StepTimeout: 40 * time.Millisecond,
		Retry: saga.RetryPolicy{MaxAttempts: 1000, Backoff: saga.Linear{Unit: 10 * time.Millisecond}},
		Execute: func(context.Context, saga.StepContext, *trip) error {
			tries.Add(1)
			return errBoom
		}}
	def2, _ := saga.Define("flaky", flaky)
	saga.SetSleep(f.c, func(ctx context.Context, d time.Duration) error { time.Sleep(d); return ctx.Err() })
	// It ends with its last error, or a step timeout when its time ran
	// out during the last wait.
	if _, err := saga.Run(t.Context(), f.c, def2, "r1", trip{}); !(errors.Is(err, errBoom) || errors.Is(err, saga.ErrTimeout)) || tries.Load() >= 10 {
		t.Fatalf("err %v after %d tries", err, tries.Load())
	}
}

func TestSagaTimeout(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		f := setup(t, b, 0)
		h := sagatest.New(nil, sagatest.Fault{Step: "b", Kind: sagatest.Hang})
		slow := tripStep("b")
		slow.Timeout = time.Minute
		def, err := tripSaga(t, h, tripStep("a"), slow, tripStep("c")).WithTimeout(500 * time.Millisecond)
		if err != nil || def.Timeout() != 500*time.Millisecond {
			t.Fatal(err)
		}
		x, err := saga.Run(t.Context(), f.c, def, "r1", trip{})
		var te *saga.TimeoutError
		if !errors.As(err, &te) || te.Step != "b" || te.Scope != "saga" {
			t.Fatalf("err = %v", err)
		}
		if x.Status != saga.Compensated || !slices.Equal(x.CompensatedSteps, []string{"b", "a"}) || x.Deadline.IsZero() {
			t.Fatalf("x = %+v", x)
		}
		row, _ := f.runs.Get(t.Context(), "trip", "r1")
		if !row.DeadlineAt.Equal(x.Deadline) || row.Status != saga.Compensated {
			t.Fatalf("row %+v, deadline %v", row, x.Deadline)
		}
		if _, err := def.WithTimeout(-1); !errors.Is(err, nova.ErrInvalid) {
			t.Fatalf("negative timeout: %v", err)
		}
	})
}

func TestStuckRunsAndOperatorActions(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		f := setup(t, b, 0)
		h := sagatest.New(nil,
			sagatest.Fault{Step: "a", Compensation: true, Kind: sagatest.Fail},
			sagatest.Fault{Step: "c", Kind: sagatest.Fail, Err: saga.Permanent(errBoom)})
		def := tripSaga(t, h)
		ids := []string{"retry", "skip", "abandon"}
		for _, id := range ids {
			if _, err := saga.Start(t.Context(), f.c, def, id, trip{}); err != nil {
				t.Fatal(err)
			}
		}
		worker(t, f, fastPoll, def)
		for range ids {
			select {
			case r := <-f.stuck:
				if r.Status != saga.Stuck || r.Step != "a" {
					t.Fatalf("stuck %+v", r)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("no run got stuck")
			}
		}
		f.waitEnded(t, 3) // becoming Stuck ends the worker's part too
		counts, _ := f.runs.Count(t.Context(), "trip")
		listed, _ := f.runs.List(t.Context(), saga.RunFilter{Status: saga.Stuck})
		if counts[saga.Stuck] != 3 || len(listed) != 3 {
			t.Fatalf("counts %v, listed %d", counts, len(listed))
		}
		x, _ := saga.Load(t.Context(), f.c, def, "retry")
		if x.StuckStep != "a" || !slices.Equal(x.CompensatedSteps, []string{"b"}) || x.CompensationFailure == "" {
			t.Fatalf("stuck execution %+v", x)
		}

		// Wrong status and bad input change nothing.
		if _, err := saga.RetryRun(t.Context(), f.runs, "trip", "nope", "alice", ""); !errors.Is(err, nova.ErrNotFound) {
			t.Fatalf("missing run: %v", err)
		}
		bad := map[string]func() error{
			"no actor": func() error { _, err := saga.RetryRun(t.Context(), f.runs, "trip", "retry", "", "x"); return err },
			"no reason": func() error {
				_, err := saga.SkipCompensation(t.Context(), f.runs, "trip", "skip", "bob", "")
				return err
			},
			"abandon no reason": func() error {
				_, err := saga.AbandonRun(t.Context(), f.runs, "trip", "abandon", "carol", "")
				return err
			},
			"bad saga":         func() error { _, err := saga.RetryRun(t.Context(), f.runs, "a.b", "retry", "a", "x"); return err },
			"empty run":        func() error { _, err := saga.RetryRun(t.Context(), f.runs, "trip", "", "a", "x"); return err },
			"timeline no saga": func() error { _, err := saga.Timeline(t.Context(), f.runs, "", "retry"); return err },
		}
		for name, fn := range bad {
			if err := fn(); !errors.Is(err, nova.ErrInvalid) {
				t.Errorf("%s: %v, want ErrInvalid", name, err)
			}
		}
		if after, _ := saga.Load(t.Context(), f.c, def, "retry"); after.Version != x.Version {
			t.Fatalf("bad input recorded: version %d, was %d", after.Version, x.Version)
		}

		// Retry: the compensation now works.
		h.Clear()
		if info, err := saga.RetryRun(t.Context(), f.runs, "trip", "retry", "alice", "refunds are back"); err != nil || info.Status != saga.Compensating {
			t.Fatalf("retry: %+v, %v", info, err)
		}
		if ended := f.waitEnded(t, 1); ended["retry"].Status != saga.Compensated {
			t.Fatalf("after retry %+v", ended)
		}
		// Skip: a's compensation is skipped, with the reason.
		if _, err := saga.SkipCompensation(t.Context(), f.runs, "trip", "skip", "bob", "refunded by hand"); err != nil {
			t.Fatal(err)
		}
		if ended := f.waitEnded(t, 1); ended["skip"].Status != saga.Compensated {
			t.Fatalf("after skip %+v", ended)
		}
		sx, _ := saga.Load(t.Context(), f.c, def, "skip")
		if !slices.Equal(sx.SkippedSteps, []string{"a"}) || !slices.Equal(sx.CompensatedSteps, []string{"b"}) {
			t.Fatalf("skipped %+v", sx)
		}
		// Abandon: the run is Failed and nothing more runs.
		if info, err := saga.AbandonRun(t.Context(), f.runs, "trip", "abandon", "carol", "written off"); err != nil || info.Status != saga.Failed || !info.DueAt.IsZero() {
			t.Fatalf("abandon: %+v, %v", info, err)
		}
		for _, id := range ids {
			if _, err := saga.RetryRun(t.Context(), f.runs, "trip", id, "dave", "again"); !errors.Is(err, saga.ErrWrongStatus) {
				t.Fatalf("retry of %s after the end: %v", id, err)
			}
			if _, err := saga.AbandonRun(t.Context(), f.runs, "trip", id, "dave", "again"); !errors.Is(err, saga.ErrWrongStatus) {
				t.Fatalf("abandon of %s after the end: %v", id, err)
			}
		}
		// Each action is in the run's timeline with who and why.
		want := map[string][3]string{
			"retry":   {saga.EventRunRetried, "alice", "refunds are back"},
			"skip":    {saga.EventCompensationSkipped, "bob", "refunded by hand"},
			"abandon": {saga.EventRunAbandoned, "carol", "written off"},
		}
		for id, w := range want {
			tl, err := saga.Timeline(t.Context(), f.runs, "trip", id)
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(tl, func(e saga.Entry) bool { return e.Type == w[0] })
			if i < 0 || tl[i].Actor != w[1] || tl[i].Reason != w[2] || tl[i].At.IsZero() {
				t.Fatalf("%s timeline %+v", id, tl)
			}
		}
		tl, _ := saga.Timeline(t.Context(), f.runs, "trip", "abandon")
		if last := tl[len(tl)-1]; last.Status != saga.Failed {
			t.Fatalf("abandoned run ends %+v", last)
		}
		if _, err := saga.Timeline(t.Context(), f.runs, "trip", "nope"); !errors.Is(err, nova.ErrNotFound) {
			t.Fatalf("timeline of a missing run: %v", err)
		}
	})
}

// outage is a broker whose publishes fail while down is set.
type outage struct {
	broker.Broker
	down atomic.Bool
}

func (o *outage) Publish(ctx context.Context, e broker.Envelope) error {
	if o.down.Load() {
		return errors.New("broker down")
	}
	return o.Broker.Publish(ctx, e)
}

func TestLifecycleEventsSurviveBrokerOutage(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		runs := b.open(t, &clock{})
		m, _ := broker.NewMemory(broker.MemoryConfig{})
		t.Cleanup(func() { _ = m.Close() })
		o := &outage{Broker: m}
		o.down.Store(true)
		c, _ := saga.NewCoordinator(saga.Config{Runs: runs, Broker: o, Logger: quiet})
		def := tripSaga(t, sagatest.New(nil))
		for _, id := range []string{"r1", "r2"} {
			if x, err := saga.Run(t.Context(), c, def, id, trip{}); err != nil || x.Status != saga.Completed {
				t.Fatalf("run during the outage: %+v, %v", x, err)
			}
		}
		pending, _ := runs.Outbox().Pending(t.Context(), 100)
		if len(pending) != 2*7 {
			t.Fatalf("%d envelopes wait in the outbox, want 14", len(pending))
		}
		o.down.Store(false)
		w, _ := saga.NewWorker(c, saga.WorkerConfig{PollInterval: 5 * time.Millisecond})
		_ = saga.Register(w, def)
		if err := w.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the relay to drain the outbox", func() bool {
			p, err := runs.Outbox().Pending(t.Context(), 1)
			return err == nil && len(p) == 0
		})
		if err := w.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"a.started", "a.succeeded", "b.started", "b.succeeded", "c.started", "c.succeeded", "saga.completed"} {
			if got, _ := m.Poll(t.Context(), "saga.trip."+s, 10); len(got) != 2 {
				t.Fatalf("%s: %d envelopes, want 2", s, len(got))
			}
		}
	})
}

func TestWorkerBadInput(t *testing.T) {
	t.Parallel()
	f := setup(t, backends[0], 0)
	def := tripSaga(t, sagatest.New(nil))
	w, _ := saga.NewWorker(f.c, saga.WorkerConfig{})
	cases := map[string]func() error{
		"neg concurrency": func() error { _, err := saga.NewWorker(f.c, saga.WorkerConfig{Concurrency: -1}); return err },
		"neg poll":        func() error { _, err := saga.NewWorker(f.c, saga.WorkerConfig{PollInterval: -1}); return err },
		"nothing registered": func() error {
			return w.Start(t.Context())
		},
		"start no run": func() error { _, err := saga.Start(t.Context(), f.c, def, "", trip{}); return err },
		"short lease": func() error {
			_, err := saga.NewCoordinator(saga.Config{Runs: f.runs, Lease: time.Millisecond})
			return err
		},
	}
	for name, fn := range cases {
		if err := fn(); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if err := saga.Register(w, def); err != nil {
		t.Fatal(err)
	}
	if err := saga.Register(w, def); !errors.Is(err, nova.ErrInvalid) {
		t.Fatalf("second register: %v", err)
	}
	if err := w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := w.Start(t.Context()); !errors.Is(err, nova.ErrInvalid) {
		t.Fatalf("second start: %v", err)
	}
	if err := w.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n, _ := f.runs.Count(t.Context(), ""); len(n) != 0 {
		t.Fatalf("bad input recorded runs: %v", n)
	}
}

// failingRuns is a run store whose Record fails while down is set.
type failingRuns struct {
	saga.RunStore
	down    atomic.Bool
	records atomic.Int32
}

func (f *failingRuns) Record(ctx context.Context, t saga.Transition) (saga.RunInfo, error) {
	if f.down.Load() {
		f.records.Add(1)
		return saga.RunInfo{}, errors.New("database unavailable")
	}
	return f.RunStore.Record(ctx, t)
}

func TestWorkerBacksOffWhileTheStoreFails(t *testing.T) {
	t.Parallel()
	runs := &failingRuns{RunStore: memBackend(t, &clock{})}
	ended := make(chan saga.RunInfo, 1)
	c, _ := saga.NewCoordinator(saga.Config{Runs: runs, Logger: quiet,
		OnEndFunc: func(_ context.Context, r saga.RunInfo) { ended <- r }})
	def := tripSaga(t, sagatest.New(nil))
	if _, err := saga.Start(t.Context(), c, def, "r1", trip{}); err != nil {
		t.Fatal(err)
	}
	runs.down.Store(true)
	w, _ := saga.NewWorker(c, saga.WorkerConfig{PollInterval: 5 * time.Millisecond})
	_ = saga.Register(w, def)
	if err := w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Stop(context.Background()) }()
	waitFor(t, "a failed record", func() bool { return runs.records.Load() > 0 })
	time.Sleep(300 * time.Millisecond) // the outage lasts a while
	// Backing off from 10ms, doubling, the worker tried a handful of
	// times in 300ms, not once per poll.
	if n := runs.records.Load(); n > 10 {
		t.Fatalf("%d records tried during the outage", n)
	}
	runs.down.Store(false)
	select {
	case r := <-ended:
		if r.Status != saga.Completed {
			t.Fatalf("ended %+v", r)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the run did not end after the outage")
	}
}
