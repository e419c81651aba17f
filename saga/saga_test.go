package saga_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/saga"
)

type order struct {
	Log         []string `json:"log"`
	Reservation string   `json:"reservation"`
	Seen        string   `json:"seen"`
	Undone      string   `json:"undone"`
}

type env struct {
	store  nova.Store
	runs   saga.RunStore
	broker *broker.Memory
	c      *saga.Coordinator
	delays []time.Duration
	mu     sync.Mutex
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newEnv(t *testing.T, b backend) *env {
	t.Helper()
	runs := b.open(t, &clock{})
	m, err := broker.NewMemory(broker.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	c, err := saga.NewCoordinator(saga.Config{Runs: runs, Broker: m, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{store: runs.Events(), runs: runs, broker: m, c: c}
	saga.SetSleep(c, func(ctx context.Context, d time.Duration) error {
		e.mu.Lock()
		e.delays = append(e.delays, d)
		e.mu.Unlock()
		return ctx.Err()
	})
	return e
}

// eachEnv runs a test on a fresh env of every backend, in parallel.
func eachEnv(t *testing.T, test func(t *testing.T, e *env)) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) { test(t, newEnv(t, b)) })
}

// fast retries quickly so tests do not wait.
var fast = saga.RetryPolicy{MaxAttempts: 3, Backoff: saga.Exponential{Base: time.Millisecond, Cap: 2 * time.Millisecond}}

func pass(name string, calls *[]string, mu *sync.Mutex) saga.Step[order] {
	rec := func(s string) {
		mu.Lock()
		*calls = append(*calls, s)
		mu.Unlock()
	}
	return saga.Step[order]{
		Name: name,
		Execute: func(_ context.Context, _ saga.StepContext, d *order) error {
			rec("exec:" + name)
			d.Log = append(d.Log, name)
			return nil
		},
		Compensate: func(_ context.Context, _ saga.StepContext, d *order) error {
			rec("comp:" + name)
			return nil
		},
		Retry: fast, CompensateRetry: fast,
	}
}

var errBoom = errors.New("boom")

func fail(name string) saga.Step[order] {
	return saga.Step[order]{
		Name:    name,
		Execute: func(context.Context, saga.StepContext, *order) error { return errBoom },
		Retry:   fast,
	}
}

func TestAllStepsSucceed(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		var calls []string
		var mu sync.Mutex
		def, err := saga.Define("test-saga", pass("a", &calls, &mu), pass("b", &calls, &mu), pass("c", &calls, &mu))
		if err != nil {
			t.Fatal(err)
		}
		x, err := saga.Run(t.Context(), e.c, def, "r1", order{})
		if err != nil {
			t.Fatal(err)
		}
		if x.Status != saga.Completed || !slices.Equal(x.CompletedSteps, []string{"a", "b", "c"}) || !slices.Equal(x.Data.Log, []string{"a", "b", "c"}) {
			t.Fatalf("execution = %+v", x)
		}
		if !slices.Equal(calls, []string{"exec:a", "exec:b", "exec:c"}) {
			t.Fatalf("calls = %v", calls)
		}
	})
}

func TestFailureCompensatesInReverse(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		var calls []string
		var mu sync.Mutex
		def, err := saga.Define("test-saga", pass("a", &calls, &mu), pass("b", &calls, &mu), fail("c"))
		if err != nil {
			t.Fatal(err)
		}
		x, err := saga.Run(t.Context(), e.c, def, "r1", order{})
		var sf *saga.StepFailedError
		if !errors.As(err, &sf) || sf.Step != "c" || !errors.Is(err, errBoom) || !errors.Is(err, saga.ErrStepFailed) {
			t.Fatalf("err = %v", err)
		}
		if x.Status != saga.Compensated || !slices.Equal(x.CompensatedSteps, []string{"b", "a"}) || x.FailedStep != "c" {
			t.Fatalf("execution = %+v", x)
		}
		if !slices.Equal(calls, []string{"exec:a", "exec:b", "comp:b", "comp:a"}) {
			t.Fatalf("calls = %v", calls)
		}
	})
}

func TestFirstStepFailsCleanlyIsFailed(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		def, _ := saga.Define("test-saga", fail("a"))
		x, err := saga.Run(t.Context(), e.c, def, "r1", order{})
		if !errors.Is(err, saga.ErrStepFailed) || x.Status != saga.Failed || len(x.CompensatedSteps) != 0 {
			t.Fatalf("x = %+v, err = %v", x, err)
		}
	})
}

func TestTimeoutNamesStepAndCompensatesIt(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		var compensated atomic.Bool
		slow := saga.Step[order]{
			Name: "slow",
			Execute: func(ctx context.Context, _ saga.StepContext, _ *order) error {
				<-ctx.Done()
				return ctx.Err()
			},
			Compensate: func(context.Context, saga.StepContext, *order) error { compensated.Store(true); return nil },
			Timeout:    5 * time.Millisecond,
			Retry:      saga.RetryPolicy{MaxAttempts: 2, Backoff: saga.Linear{Unit: time.Millisecond}},
		}
		def, _ := saga.Define("test-saga", slow)
		x, err := saga.Run(t.Context(), e.c, def, "r1", order{})
		var te *saga.TimeoutError
		if !errors.As(err, &te) || te.Step != "slow" || !errors.Is(err, saga.ErrTimeout) {
			t.Fatalf("err = %v", err)
		}
		if want := `saga: step "slow" timed out`; err.Error() != want {
			t.Fatalf("message %q, want %q", err.Error(), want)
		}
		if !compensated.Load() || x.Status != saga.Compensated || x.Attempt == 0 {
			t.Fatalf("timed-out step not compensated: %+v", x)
		}
	})
}

func TestFailingCompensationEndsStuck(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		var calls []string
		var mu sync.Mutex
		errComp := errors.New("refund refused")
		var tries atomic.Int32
		bad := pass("a", &calls, &mu)
		bad.Compensate = func(context.Context, saga.StepContext, *order) error { tries.Add(1); return errComp }
		bad.CompensateRetry = saga.RetryPolicy{MaxAttempts: 2, Backoff: saga.Linear{Unit: time.Millisecond}}
		def, _ := saga.Define("test-saga", pass("z", &calls, &mu), bad, fail("b"))
		x, err := saga.Run(t.Context(), e.c, def, "r1", order{})
		if !errors.Is(err, saga.ErrStepFailed) || !errors.Is(err, errBoom) || !errors.Is(err, saga.ErrCompensationFailed) || !errors.Is(err, errComp) {
			t.Fatalf("err = %v", err)
		}
		var cf *saga.CompensationFailedError
		if !errors.As(err, &cf) || cf.Step != "a" {
			t.Fatalf("err = %v", err)
		}
		if x.Status != saga.Stuck || x.StuckStep != "a" || tries.Load() != 2 {
			t.Fatalf("x = %+v tries %d", x, tries.Load())
		}
		// Compensation stops at the stuck step: "z" is not undone before "a".
		if slices.Contains(calls, "comp:z") {
			t.Fatalf("calls = %v", calls)
		}
		if got, _ := saga.Load(t.Context(), e.c, def, "r1"); got.Status != saga.Stuck || got.StuckStep != "a" || got.CompensationFailure == "" {
			t.Fatalf("loaded %+v", got)
		}
		if got, err := e.broker.Poll(t.Context(), "saga.test-saga.a.compensation_failed", 10); err != nil || len(got) != 1 {
			t.Fatalf("compensation_failed events %v, %v", got, err)
		}
	})
}

func TestPanicInStepIsAnError(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		def, _ := saga.Define("test-saga", saga.Step[order]{Name: "p", Retry: saga.RetryPolicy{MaxAttempts: 1},
			Execute: func(context.Context, saga.StepContext, *order) error { panic("oops") }})
		if _, err := saga.Run(t.Context(), e.c, def, "r1", order{}); !errors.Is(err, saga.ErrStepFailed) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestEventsPublishedForEachStep(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		var calls []string
		var mu sync.Mutex
		def, _ := saga.Define("test-saga", pass("a", &calls, &mu), fail("b"))
		_, _ = saga.Run(t.Context(), e.c, def, "r1", order{})
		for _, topic := range []string{
			"saga.test-saga.a.started", "saga.test-saga.a.succeeded",
			"saga.test-saga.b.started", "saga.test-saga.b.failed",
			"saga.test-saga.a.compensating", "saga.test-saga.a.compensated",
			"saga.test-saga.saga.compensated",
		} {
			got, err := e.broker.Poll(t.Context(), topic, 10)
			if err != nil || len(got) == 0 {
				t.Fatalf("%s: %v, %v", topic, got, err)
			}
			env := got[0]
			if env.EventType != "saga.event" {
				t.Fatalf("%s: event type %q", topic, env.EventType)
			}
			if !jsonHas(env.Payload, "saga_id", "step", "status", "timestamp_ms", "run_id") {
				t.Fatalf("%s: payload %s", topic, env.Payload)
			}
		}
		if id := saga.EnvelopeID("test-saga", "r1", "a", "started", 1); id != "test.saga-r1-a-started-1" {
			t.Fatalf("id = %q", id)
		}
	})
}

func TestCompletedEventPublished(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		var calls []string
		var mu sync.Mutex
		def, _ := saga.Define("test-saga", pass("a", &calls, &mu))
		if _, err := saga.Run(t.Context(), e.c, def, "r1", order{}); err != nil {
			t.Fatal(err)
		}
		got, err := e.broker.Poll(t.Context(), "saga.test-saga.saga.completed", 10)
		if err != nil || len(got) != 1 || got[0].ID != "test.saga-r1-saga-completed-1" {
			t.Fatalf("%v, %v", got, err)
		}
	})
}

func TestTransientFailureRetried(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		var n atomic.Int32
		var attempts []int
		flaky := saga.Step[order]{
			Name: "flaky",
			Execute: func(_ context.Context, sc saga.StepContext, _ *order) error {
				attempts = append(attempts, sc.Attempt)
				if n.Add(1) == 1 {
					return errors.New("transient")
				}
				return nil
			},
			Retry: fast,
		}
		def, _ := saga.Define("test-saga", flaky)
		x, err := saga.Run(t.Context(), e.c, def, "r1", order{})
		if err != nil || x.Status != saga.Completed || x.Attempt != 0 {
			t.Fatalf("x = %+v, err = %v", x, err)
		}
		if n.Load() != 2 || !slices.Equal(attempts, []int{1, 2}) {
			t.Fatalf("attempts = %d %v", n.Load(), attempts)
		}
	})
}

func TestPermanentSkipsRetries(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		var n atomic.Int32
		st := saga.Step[order]{
			Name: "card",
			Execute: func(context.Context, saga.StepContext, *order) error {
				n.Add(1)
				return saga.Permanent(fmt.Errorf("declined: %w", errBoom))
			},
			Retry: saga.RetryPolicy{MaxAttempts: 5},
		}
		def, _ := saga.Define("test-saga", st)
		_, err := saga.Run(t.Context(), e.c, def, "r1", order{})
		if n.Load() != 1 || !errors.Is(err, errBoom) || !saga.IsPermanent(err) {
			t.Fatalf("calls %d, err %v", n.Load(), err)
		}
		if saga.Permanent(nil) != nil {
			t.Fatal("Permanent(nil) != nil")
		}
	})
}

func TestLinearPolicyDelays(t *testing.T) {
	t.Parallel()
	for attempt, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 300 * time.Millisecond} {
		if got := (saga.Linear{}).Delay(attempt); got != want {
			t.Errorf("Linear{}.Delay(%d) = %s, want %s", attempt, got, want)
		}
	}
	e := newEnv(t, backends[0])
	def, _ := saga.Define("test-saga", saga.Step[order]{Name: "x", Retry: saga.RetryPolicy{MaxAttempts: 3, Backoff: saga.Linear{}},
		Execute: func(context.Context, saga.StepContext, *order) error { return errBoom }})
	_, _ = saga.Run(t.Context(), e.c, def, "r1", order{})
	e.mu.Lock()
	defer e.mu.Unlock()
	if !slices.Equal(e.delays, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}) {
		t.Fatalf("delays = %v", e.delays)
	}
}

func TestExponentialBounded(t *testing.T) {
	t.Parallel()
	b := saga.Exponential{Base: 10 * time.Millisecond, Cap: 50 * time.Millisecond}
	for attempt := 1; attempt < 20; attempt++ {
		bound := min(10*time.Millisecond<<(attempt-1), 50*time.Millisecond)
		if attempt > 10 {
			bound = 50 * time.Millisecond
		}
		if d := b.Delay(attempt); d < 0 || d > bound {
			t.Fatalf("Delay(%d) = %s, bound %s", attempt, d, bound)
		}
	}
}

func TestMaxElapsedStopsRetries(t *testing.T) {
	t.Parallel()
	p := saga.RetryPolicy{MaxAttempts: 10, MaxElapsed: time.Second, Backoff: saga.Linear{Unit: time.Second}}
	if _, again := saga.NextDelay(p, 1, errBoom, 500*time.Millisecond); again {
		t.Fatal("retried past MaxElapsed")
	}
	if _, again := saga.NextDelay(p, 1, errBoom, 0); !again {
		t.Fatal("did not retry within MaxElapsed")
	}
}

func TestDataVisibleToLaterStepsAndCompensation(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		var seenByComp string
		reserve := saga.Step[order]{
			Name: "reserve",
			Execute: func(_ context.Context, sc saga.StepContext, d *order) error {
				d.Reservation = "res-" + sc.RunID
				return nil
			},
			Compensate: func(_ context.Context, sc saga.StepContext, d *order) error {
				seenByComp = d.Reservation
				if sc.IdempotencyKey != "test-saga/r1/reserve/compensate" {
					return saga.Permanent(fmt.Errorf("key %q", sc.IdempotencyKey))
				}
				d.Undone = d.Reservation
				return nil
			},
		}
		charge := saga.Step[order]{
			Name: "charge",
			Execute: func(_ context.Context, sc saga.StepContext, d *order) error {
				d.Seen = d.Reservation
				if sc.IdempotencyKey != "test-saga/r1/charge" {
					return saga.Permanent(fmt.Errorf("key %q", sc.IdempotencyKey))
				}
				return saga.Permanent(errBoom)
			},
		}
		def, _ := saga.Define("test-saga", reserve, charge)
		x, err := saga.Run(t.Context(), e.c, def, "r1", order{})
		if !errors.Is(err, errBoom) {
			t.Fatalf("err = %v", err)
		}
		if seenByComp != "res-r1" || x.Data.Undone != "res-r1" || x.Data.Reservation != "res-r1" {
			t.Fatalf("comp saw %q, data %+v", seenByComp, x.Data)
		}
		// A failed attempt's writes are not kept.
		if x.Data.Seen != "" {
			t.Fatalf("failed step's write kept: %+v", x.Data)
		}

		seenByCharge := ""
		charge.Execute = func(_ context.Context, _ saga.StepContext, d *order) error { seenByCharge = d.Reservation; return nil }
		def2, _ := saga.Define("test-saga", reserve, charge)
		if _, err := saga.Run(t.Context(), e.c, def2, "r2", order{}); err != nil || seenByCharge != "res-r2" {
			t.Fatalf("charge saw %q, err %v", seenByCharge, err)
		}
	})
}

func TestRunsDoNotOverwriteEachOther(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		var calls []string
		var mu sync.Mutex
		def, _ := saga.Define("test-saga", pass("a", &calls, &mu), pass("b", &calls, &mu))
		var wg sync.WaitGroup
		for _, id := range []string{"r1", "r2"} {
			wg.Go(func() {
				if _, err := saga.Run(t.Context(), e.c, def, id, order{Reservation: id}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		for _, id := range []string{"r1", "r2"} {
			x, err := saga.Load(t.Context(), e.c, def, id)
			if err != nil || x.Status != saga.Completed || x.Data.Reservation != id || x.RunID != id || len(x.Data.Log) != 2 {
				t.Fatalf("%s: %+v, %v", id, x, err)
			}
		}
		got, _ := e.broker.Poll(t.Context(), "saga.test-saga.a.started", 10)
		if len(got) != 2 || got[0].ID == got[1].ID {
			t.Fatalf("started events %v", got)
		}
	})
}

func TestStartingExistingRunReturnsIt(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		var n atomic.Int32
		def, _ := saga.Define("test-saga", saga.Step[order]{Name: "a", Execute: func(_ context.Context, _ saga.StepContext, d *order) error {
			n.Add(1)
			d.Reservation = "first"
			return nil
		}})
		first, err := saga.Run(t.Context(), e.c, def, "r1", order{})
		if err != nil {
			t.Fatal(err)
		}
		again, err := saga.Run(t.Context(), e.c, def, "r1", order{Reservation: "second"})
		if err != nil || n.Load() != 1 || again.Status != saga.Completed || again.Data.Reservation != "first" || again.Version != first.Version {
			t.Fatalf("again = %+v, err %v, calls %d", again, err, n.Load())
		}
	})
}

func TestLoadRebuildsExecution(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		var calls []string
		var mu sync.Mutex
		def, _ := saga.Define("test-saga", pass("a", &calls, &mu), pass("b", &calls, &mu), fail("c"))
		x, _ := saga.Run(t.Context(), e.c, def, "r1", order{Reservation: "x"})
		got, err := saga.Load(t.Context(), e.c, def, "r1")
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != x.Status || got.Version != x.Version || !slices.Equal(got.CompletedSteps, x.CompletedSteps) ||
			!slices.Equal(got.CompensatedSteps, x.CompensatedSteps) || !slices.Equal(got.Data.Log, x.Data.Log) ||
			got.Data.Reservation != "x" || got.FailedStep != "c" || got.Failure != x.Failure || got.StartedAt.IsZero() {
			t.Fatalf("loaded %+v\nran    %+v", got, x)
		}
		// Every transition is in the stream with consecutive versions.
		var types []string
		for ev, err := range e.store.ReadStream(t.Context(), saga.StreamName("test-saga", "r1"), nova.ReadStreamOptions{}) {
			if err != nil {
				t.Fatal(err)
			}
			types = append(types, ev.Type)
		}
		want := []string{saga.EventRunStarted,
			saga.EventStepStarted, saga.EventStepSucceeded, saga.EventStepStarted, saga.EventStepSucceeded,
			saga.EventStepStarted, saga.EventStepRetrying, saga.EventStepStarted, saga.EventStepRetrying, saga.EventStepStarted, saga.EventStepFailed,
			saga.EventCompensationStarted, saga.EventStepCompensated, saga.EventCompensationStarted, saga.EventStepCompensated,
			saga.EventRunCompensated}
		if !slices.Equal(types, want) {
			t.Fatalf("stream\n got %v\nwant %v", types, want)
		}
		if _, err := saga.Load(t.Context(), e.c, def, "missing"); !errors.Is(err, nova.ErrNotFound) {
			t.Fatalf("missing run: %v", err)
		}
	})
}

func TestCancelledRunIsAborted(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		ctx, cancel := context.WithCancel(t.Context())
		def, _ := saga.Define("test-saga", saga.Step[order]{Name: "a", Execute: func(ctx context.Context, _ saga.StepContext, _ *order) error {
			cancel()
			<-ctx.Done()
			return ctx.Err()
		}})
		x, err := saga.Run(ctx, e.c, def, "r1", order{})
		if !errors.Is(err, saga.ErrAborted) || x.Status != saga.Running {
			t.Fatalf("x = %+v, err = %v", x, err)
		}
	})
}

func TestBadInput(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		ok := saga.Step[order]{Name: "a", Execute: func(context.Context, saga.StepContext, *order) error { return nil }}
		def, _ := saga.Define("test-saga", ok)
		defines := map[string]func() error{
			"empty name":      func() error { _, err := saga.Define("", ok); return err },
			"dotted name":     func() error { _, err := saga.Define("a.b", ok); return err },
			"no steps":        func() error { _, err := saga.Define[order]("s"); return err },
			"duplicate steps": func() error { _, err := saga.Define("s", ok, ok); return err },
			"nil execute":     func() error { _, err := saga.Define("s", saga.Step[order]{Name: "a"}); return err },
			"empty step":      func() error { _, err := saga.Define("s", saga.Step[order]{Execute: ok.Execute}); return err },
			"reserved step": func() error {
				_, err := saga.Define("s", saga.Step[order]{Name: "saga", Execute: ok.Execute})
				return err
			},
			"wildcard step": func() error { _, err := saga.Define("s", saga.Step[order]{Name: "*", Execute: ok.Execute}); return err },
			"negative timeout": func() error {
				_, err := saga.Define("s", saga.Step[order]{Name: "a", Execute: ok.Execute, Timeout: -1})
				return err
			},
			"negative attempts": func() error {
				_, err := saga.Define("s", saga.Step[order]{Name: "a", Execute: ok.Execute, Retry: saga.RetryPolicy{MaxAttempts: -1}})
				return err
			},
			"empty run": func() error { _, err := saga.Run(t.Context(), e.c, def, "", order{}); return err },
			"long run id": func() error {
				_, err := saga.Run(t.Context(), e.c, def, string(make([]byte, 200)), order{})
				return err
			},
			"load empty": func() error { _, err := saga.Load(t.Context(), e.c, def, ""); return err },
			"no store":   func() error { _, err := saga.NewCoordinator(saga.Config{}); return err },
			"neg lease":  func() error { _, err := saga.NewCoordinator(saga.Config{Runs: e.runs, Lease: -1}); return err },
			"bad data": func() error {
				d2, _ := saga.Define("s2", saga.Step[chan int]{Name: "a", Execute: func(context.Context, saga.StepContext, *chan int) error { return nil }})
				_, err := saga.Run(t.Context(), e.c, d2, "r1", make(chan int))
				return err
			},
		}
		for name, f := range defines {
			if err := f(); !errors.Is(err, nova.ErrInvalid) {
				t.Errorf("%s: err = %v, want ErrInvalid", name, err)
			}
		}
		// Nothing was written.
		for s, err := range e.store.Streams(t.Context(), nova.StreamsOptions{}) {
			t.Errorf("stream %v written (%v)", s, err)
		}
	})
}

func jsonHas(raw []byte, keys ...string) bool {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return false
	}
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			return false
		}
	}
	return true
}

func TestFailedPublishDoesNotStopSaga(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		_ = e.broker.Close() // every publish now fails
		var calls []string
		var mu sync.Mutex
		def, _ := saga.Define("test-saga", pass("a", &calls, &mu), pass("b", &calls, &mu))
		if x, err := saga.Run(t.Context(), e.c, def, "r1", order{}); err != nil || x.Status != saga.Completed {
			t.Fatalf("x = %+v, err = %v", x, err)
		}
	})
}

func TestAbandonedAttemptCannotChangeData(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		release := make(chan struct{})
		finished := make(chan struct{})
		var n atomic.Int32
		def, _ := saga.Define("test-saga", saga.Step[order]{
			Name:    "deaf",
			Timeout: 5 * time.Millisecond,
			Retry:   saga.RetryPolicy{MaxAttempts: 2, Backoff: saga.Linear{Unit: time.Millisecond}},
			Execute: func(_ context.Context, _ saga.StepContext, d *order) error {
				if n.Add(1) == 1 {
					<-release // ignores its ctx and overruns
					d.Reservation = "late"
					close(finished)
					return nil
				}
				d.Log = append(d.Log, "second")
				return nil
			},
		})
		x, err := saga.Run(t.Context(), e.c, def, "r1", order{})
		close(release)
		<-finished
		if err != nil || x.Status != saga.Completed || x.Data.Reservation != "" || !slices.Equal(x.Data.Log, []string{"second"}) {
			t.Fatalf("x = %+v, err = %v", x, err)
		}
	})
}

func TestConcurrentStartRunsOnce(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		entered := make(chan struct{})
		release := make(chan struct{})
		var n atomic.Int32
		def, _ := saga.Define("test-saga", saga.Step[order]{Name: "a", Execute: func(context.Context, saga.StepContext, *order) error {
			n.Add(1)
			close(entered)
			<-release
			return nil
		}})
		done := make(chan error, 1)
		go func() {
			_, err := saga.Run(t.Context(), e.c, def, "r1", order{})
			done <- err
		}()
		<-entered
		x, err := saga.Run(t.Context(), e.c, def, "r1", order{})
		if err != nil || x.Status != saga.Running || x.Step != "a" {
			t.Fatalf("second start: %+v, %v", x, err)
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if n.Load() != 1 {
			t.Fatalf("step ran %d times", n.Load())
		}
	})
}

// TestOperatorActionsPublishLifecycleEvents: each operator action puts its
// lifecycle event in the outbox with the event that records it, as the
// engine does for its own transitions; an action refused puts nothing
// there.
func TestOperatorActionsPublishLifecycleEvents(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		var calls []string
		var mu sync.Mutex
		bad := pass("a", &calls, &mu)
		bad.Compensate = func(context.Context, saga.StepContext, *order) error { return errBoom }
		bad.CompensateRetry = saga.RetryPolicy{MaxAttempts: 1}
		def, _ := saga.Define("test-saga", pass("z", &calls, &mu), bad, fail("b"))
		for _, id := range []string{"r1", "r2", "r3"} {
			if x, _ := saga.Run(t.Context(), e.c, def, id, order{}); x.Status != saga.Stuck {
				t.Fatalf("run %s: %s, want stuck", id, x.Status)
			}
		}
		box := e.runs.Outbox()
		// pending returns what waits in the outbox and marks it sent.
		pending := func() []broker.Envelope {
			t.Helper()
			msgs, err := box.Pending(t.Context(), 100)
			if err != nil {
				t.Fatal(err)
			}
			var envs []broker.Envelope
			var seqs []int64
			for _, m := range msgs {
				envs, seqs = append(envs, m.Envelope), append(seqs, m.Seq)
			}
			if len(seqs) > 0 {
				if err := box.MarkSent(t.Context(), seqs); err != nil {
					t.Fatal(err)
				}
			}
			return envs
		}
		if got := pending(); len(got) != 0 {
			t.Fatalf("%d envelopes wait after Run flushed the outbox", len(got))
		}
		for _, c := range []struct {
			run, step, status string
			act               func(ctx context.Context, runs saga.RunStore, sagaName, runID, actor, reason string) (saga.RunInfo, error)
		}{
			{"r1", "saga", "retried", saga.RetryRun},
			{"r2", "a", "compensation_skipped", saga.SkipCompensation},
			{"r3", "saga", "abandoned", saga.AbandonRun},
		} {
			if _, err := c.act(t.Context(), e.runs, "test-saga", c.run, "alice", "operator says so"); err != nil {
				t.Fatalf("%s on %s: %v", c.status, c.run, err)
			}
			got := pending()
			if len(got) != 1 {
				t.Fatalf("%s on %s: %d envelopes in the outbox, want 1", c.status, c.run, len(got))
			}
			env := got[0]
			var p struct {
				SagaID  string `json:"saga_id"`
				RunID   string `json:"run_id"`
				Step    string `json:"step"`
				Status  string `json:"status"`
				Attempt int    `json:"attempt"`
			}
			if err := json.Unmarshal(env.Payload, &p); err != nil {
				t.Fatal(err)
			}
			if env.Topic != saga.Topic("test-saga", c.step, c.status) || env.Key != c.run ||
				env.ID != saga.EnvelopeID("test-saga", c.run, c.step, c.status, 1) ||
				p.SagaID != "test-saga" || p.RunID != c.run || p.Step != c.step || p.Status != c.status || p.Attempt != 1 {
				t.Errorf("%s on %s: envelope %s %s %s %+v", c.status, c.run, env.ID, env.Topic, env.Key, p)
			}
		}
		// Refused actions publish nothing.
		if _, err := saga.AbandonRun(t.Context(), e.runs, "test-saga", "r3", "alice", "again"); !errors.Is(err, saga.ErrWrongStatus) {
			t.Fatalf("abandon of an abandoned run: %v", err)
		}
		if _, err := saga.RetryRun(t.Context(), e.runs, "test-saga", "r1", "alice", "again"); !errors.Is(err, saga.ErrWrongStatus) {
			t.Fatalf("retry of a compensating run: %v", err)
		}
		if got := pending(); len(got) != 0 {
			t.Fatalf("refused actions put %d envelopes in the outbox", len(got))
		}
	})
}
