package saga_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/saga"
	"github.com/nova-go/nova/saga/sagatest"
)

// startWorker starts a worker on f's coordinator with def, not stopped by
// the test's cleanup: the test stops it.
func startWorker[D any](t *testing.T, f *fixture, def *saga.Definition[D]) *saga.Worker {
	t.Helper()
	w, err := saga.NewWorker(f.c, fastPoll)
	if err != nil {
		t.Fatal(err)
	}
	if err := saga.Register(w, def); err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return w
}

func TestWorkerStopWaitsForSteps(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		f := setup(t, b, 0)
		entered := make(chan struct{})
		var once sync.Once
		var returned atomic.Bool
		def, err := saga.Define("slow", saga.Step[trip]{Name: "wait", Execute: func(ctx context.Context, _ saga.StepContext, _ *trip) error {
			once.Do(func() { close(entered) })
			<-ctx.Done()
			time.Sleep(20 * time.Millisecond) // cleans up after the cancel
			returned.Store(true)
			return ctx.Err()
		}})
		if err != nil {
			t.Fatal(err)
		}
		w := startWorker(t, f, def)
		if _, err := saga.Start(t.Context(), f.c, def, "r1", trip{}); err != nil {
			t.Fatal(err)
		}
		<-entered
		if err := w.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		if !returned.Load() {
			t.Fatal("Stop returned before the cancelled step did")
		}
	})
}

func TestWorkerStopOwnsStepsPastItsCtx(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		f := setup(t, b, 0)
		entered := make(chan struct{})
		release := make(chan struct{})
		var once sync.Once
		var returned atomic.Bool
		def, err := saga.Define("deaf", saga.Step[trip]{Name: "wait", Execute: func(context.Context, saga.StepContext, *trip) error {
			once.Do(func() { close(entered) })
			<-release // ignores its ctx
			time.Sleep(20 * time.Millisecond)
			returned.Store(true)
			return nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		w := startWorker(t, f, def)
		if _, err := saga.Start(t.Context(), f.c, def, "r1", trip{}); err != nil {
			t.Fatal(err)
		}
		<-entered
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := w.Stop(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Stop with a step still running and a done ctx: %v, want ctx's error", err)
		}
		// The worker still owns the step: a later Stop waits for it.
		close(release)
		if err := w.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		if !returned.Load() {
			t.Fatal("the second Stop returned before the step did")
		}
	})
}

func TestWorkerStopWaitsForAbandonedAttempts(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		f := setup(t, b, 0)
		release := make(chan struct{})
		var n atomic.Int32
		var returned atomic.Bool
		def, err := saga.Define("overrun", saga.Step[trip]{
			Name:    "deaf",
			Timeout: 10 * time.Millisecond,
			Retry:   saga.RetryPolicy{MaxAttempts: 2, Backoff: saga.Linear{Unit: time.Millisecond}},
			Execute: func(context.Context, saga.StepContext, *trip) error {
				if n.Add(1) == 1 {
					<-release // overruns its timeout, ignoring its ctx
					time.Sleep(20 * time.Millisecond)
					returned.Store(true)
				}
				return nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		w := startWorker(t, f, def)
		if _, err := saga.Start(t.Context(), f.c, def, "r1", trip{}); err != nil {
			t.Fatal(err)
		}
		// The second attempt completes the run while the first still runs.
		if ended := f.waitEnded(t, 1); ended["r1"].Status != saga.Completed {
			t.Fatalf("ended %+v", ended)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := w.Stop(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Stop with an abandoned attempt running and a done ctx: %v, want ctx's error", err)
		}
		close(release)
		if err := w.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		if !returned.Load() {
			t.Fatal("Stop returned before the abandoned attempt did")
		}
	})
}

func TestStuckRunPublishesSagaEvent(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		f := setup(t, b, 0)
		h := sagatest.New(nil,
			sagatest.Fault{Step: "a", Compensation: true, Kind: sagatest.Fail},
			sagatest.Fault{Step: "c", Kind: sagatest.Fail, Err: saga.Permanent(errBoom)})
		def := tripSaga(t, h)
		if _, err := saga.Start(t.Context(), f.c, def, "r1", trip{}); err != nil {
			t.Fatal(err)
		}
		worker(t, f, fastPoll, def)
		drained := func() bool {
			p, err := f.runs.Outbox().Pending(t.Context(), 1)
			return err == nil && len(p) == 0
		}
		for i := 1; i <= 2; i++ {
			select {
			case <-f.stuck:
			case <-time.After(20 * time.Second):
				t.Fatalf("the run did not get stuck (%d)", i)
			}
			waitFor(t, "the outbox to drain", drained)
			got, err := f.broker.Poll(t.Context(), "saga.trip.saga.stuck", 10)
			if err != nil || len(got) != 1 {
				t.Fatalf("stuck events (%d): %v, %v; want one", i, got, err)
			}
			e := got[0]
			var p map[string]any
			if err := json.Unmarshal(e.Payload, &p); err != nil {
				t.Fatal(err)
			}
			if e.ID != saga.EnvelopeID("trip", "r1", "saga", "stuck", i) || e.Key != "r1" || e.EventType != "saga.event" ||
				p["saga_id"] != "trip" || p["run_id"] != "r1" || p["step"] != "saga" || p["status"] != "stuck" || p["attempt"] != float64(i) {
				t.Fatalf("stuck event (%d): %+v %s", i, e, e.Payload)
			}
			if i == 1 {
				// An operator retries; the compensation fails again.
				if _, err := saga.RetryRun(t.Context(), f.runs, "trip", "r1", "alice", "try again"); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}

// TestWorkerRestart checks the restart rule of every long-running
// component: one run at a time, and a stopped worker starts again.
func TestWorkerRestart(t *testing.T) {
	t.Parallel()
	f := setup(t, backends[0], 0)
	def := tripSaga(t, sagatest.New(nil))
	w := startWorker(t, f, def)
	stopped := w.Stopped()
	select {
	case <-stopped:
		t.Fatal("Stopped is closed while the worker runs")
	default:
	}
	if err := w.Start(t.Context()); !errors.Is(err, nova.ErrInvalid) {
		t.Fatalf("Start while running = %v, want ErrInvalid", err)
	}
	if err := saga.Register(w, def); !errors.Is(err, nova.ErrInvalid) {
		t.Fatalf("Register while running = %v, want ErrInvalid", err)
	}
	if _, err := saga.Start(t.Context(), f.c, def, "r1", trip{}); err != nil {
		t.Fatal(err)
	}
	if ended := f.waitEnded(t, 1); ended["r1"].Status != saga.Completed {
		t.Fatalf("first run: ended %+v", ended)
	}
	if err := w.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stopped:
	default:
		t.Fatal("Stopped is open after Stop returned nil")
	}

	// Stopped: a saga registered now is driven after the restart.
	other, err := saga.Define("other", saga.Step[trip]{Name: "only", Execute: func(context.Context, saga.StepContext, *trip) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if err := saga.Register(w, other); err != nil {
		t.Fatalf("Register on a stopped worker = %v", err)
	}
	if err := w.Start(t.Context()); err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer func() {
		if err := w.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	if _, err := saga.Start(t.Context(), f.c, def, "r2", trip{}); err != nil {
		t.Fatal(err)
	}
	if _, err := saga.Start(t.Context(), f.c, other, "r3", trip{}); err != nil {
		t.Fatal(err)
	}
	ended := f.waitEnded(t, 2)
	if ended["r2"].Status != saga.Completed || ended["r3"].Status != saga.Completed {
		t.Fatalf("after the restart: ended %+v", ended)
	}
}
