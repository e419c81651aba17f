package saga_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/saga"
)

// hasStack reports whether s holds a goroutine's stack that passes
// through fn.
func hasStack(s, fn string) bool {
	return strings.Contains(s, "goroutine ") && strings.Contains(s, fn)
}

// timelineErrors returns the errors recorded in run r1's timeline.
func timelineErrors(t *testing.T, runs saga.RunStore, sagaName string) []string {
	t.Helper()
	tl, err := saga.Timeline(t.Context(), runs, sagaName, "r1")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range tl {
		if e.Error != "" {
			out = append(out, e.Error)
		}
	}
	return out
}

func panicky(_ context.Context, sc saga.StepContext, _ *order) error {
	panic("oops in " + sc.Step)
}

func TestStepPanicIsAFailedAttempt(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		var calls []string
		var mu sync.Mutex
		var n atomic.Int32
		def, _ := saga.Define("test-saga", pass("a", &calls, &mu), saga.Step[order]{
			Name:  "p",
			Retry: fast,
			Execute: func(ctx context.Context, sc saga.StepContext, d *order) error {
				n.Add(1)
				return panicky(ctx, sc, d)
			},
		})
		x, err := saga.Run(t.Context(), e.c, def, "r1", order{})
		var pe *nova.PanicError
		if !errors.Is(err, saga.ErrStepFailed) || !errors.As(err, &pe) || pe.Value != "oops in p" || !hasStack(string(pe.Stack), "panicky") {
			t.Fatalf("err = %v", err)
		}
		// Retried per the policy, then compensated.
		if n.Load() != int32(fast.MaxAttempts) || x.Status != saga.Compensated || !slices.Equal(x.CompensatedSteps, []string{"a"}) {
			t.Fatalf("%d attempts, %+v", n.Load(), x)
		}
		errs := timelineErrors(t, e.runs, "test-saga")
		if len(errs) != fast.MaxAttempts || !strings.Contains(errs[0], "oops in p") || !hasStack(errs[0], "panicky") {
			t.Fatalf("timeline errors %q", errs)
		}
	})
}

func TestCompensationPanicIsAFailedAttempt(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		var calls []string
		var mu sync.Mutex
		a := pass("a", &calls, &mu)
		a.Compensate = panicky
		a.CompensateRetry = saga.RetryPolicy{MaxAttempts: 2, Backoff: saga.Linear{Unit: time.Millisecond}}
		def, _ := saga.Define("test-saga", a, fail("b"))
		x, err := saga.Run(t.Context(), e.c, def, "r1", order{})
		var pe *nova.PanicError
		if !errors.Is(err, saga.ErrCompensationFailed) || !errors.As(err, &pe) || !hasStack(string(pe.Stack), "panicky") {
			t.Fatalf("err = %v", err)
		}
		if x.Status != saga.Stuck || x.StuckStep != "a" || !hasStack(x.CompensationFailure, "panicky") {
			t.Fatalf("x = %+v", x)
		}
		if row, err := e.runs.Get(t.Context(), "test-saga", "r1"); err != nil || !strings.Contains(row.Error, "oops in a") {
			t.Fatalf("row %+v, %v", row, err)
		}
	})
}

// lockedLog is a log output tests read while workers write.
type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestCallbackPanicsAreLogged(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		runs := b.open(t, &clock{})
		m, _ := broker.NewMemory(broker.MemoryConfig{})
		t.Cleanup(func() { _ = m.Close() })
		var logs lockedLog
		var ends, stucks atomic.Int32
		c, err := saga.NewCoordinator(saga.Config{
			Runs: runs, Broker: m, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			OnEndFunc:   func(context.Context, saga.RunInfo) { ends.Add(1); panic("end hook broke") },
			OnStuckFunc: func(context.Context, saga.RunInfo) { stucks.Add(1); panic("stuck hook broke") },
		})
		if err != nil {
			t.Fatal(err)
		}
		var calls []string
		var mu sync.Mutex
		a := pass("a", &calls, &mu)
		a.Compensate = func(context.Context, saga.StepContext, *order) error { return saga.Permanent(errBoom) }
		ok, _ := saga.Define("fine", pass("a", &calls, &mu))
		stuck, _ := saga.Define("stuck", a, fail("b"))

		// Run: the hook's panic does not reach the caller.
		if x, err := saga.Run(t.Context(), c, ok, "r0", order{}); err != nil || x.Status != saga.Completed {
			t.Fatalf("run: %+v, %v", x, err)
		}
		// A worker outlives its hooks' panics and goes on with other runs.
		w, _ := saga.NewWorker(c, fastPoll)
		_ = saga.Register(w, ok)
		_ = saga.Register(w, stuck)
		if err := w.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = w.Stop(context.Background()) })
		for _, id := range []string{"r1", "r2"} {
			if _, err := saga.Start(t.Context(), c, stuck, id, order{}); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range []string{"r1", "r2", "r3"} {
			if _, err := saga.Start(t.Context(), c, ok, id, order{}); err != nil {
				t.Fatal(err)
			}
		}
		// The hooks are called after each run's last transition: every run
		// gets there, and the hooks' panics are counted.
		waitFor(t, "every run to end or get stuck", func() bool {
			n, err := runs.Count(t.Context(), "")
			return err == nil && n[saga.Completed] == 4 && n[saga.Stuck] == 2 && ends.Load() == 6 && stucks.Load() == 2
		})
		// Each panic is logged with the hook's name and stack, once it is
		// recovered.
		waitFor(t, "the hooks' panics in the log", func() bool {
			out := logs.String()
			return strings.Count(out, "end hook broke") == 6 && strings.Count(out, "stuck hook broke") == 2
		})
		out := logs.String()
		for _, want := range []string{"OnEndFunc panicked", "OnStuckFunc panicked"} {
			if !strings.Contains(out, want) {
				t.Errorf("log lacks %q:\n%s", want, out)
			}
		}
		if !hasStack(out, "TestCallbackPanicsAreLogged") {
			t.Errorf("log lacks the hook's stack:\n%s", out)
		}
	})
}

// touchy is saga data whose codec panics: MarshalJSON when Boom is set,
// UnmarshalJSON when it reads poison back.
type touchy struct {
	Boom   bool     `json:"boom,omitempty"`
	Poison bool     `json:"poison,omitempty"`
	Log    []string `json:"log,omitempty"`
}

func (d touchy) MarshalJSON() ([]byte, error) {
	if d.Boom {
		panic("marshal boom")
	}
	type plain touchy
	return json.Marshal(plain(d))
}

func (d *touchy) UnmarshalJSON(b []byte) error {
	type plain touchy
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	if p.Poison {
		panic("unmarshal poison")
	}
	*d = touchy(p)
	return nil
}

func TestCodecPanicsAreErrors(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		step := func(name string, f func(*touchy)) saga.Step[touchy] {
			return saga.Step[touchy]{Name: name, Retry: saga.RetryPolicy{MaxAttempts: 2, Backoff: saga.Linear{Unit: time.Millisecond}},
				Execute: func(_ context.Context, _ saga.StepContext, d *touchy) error {
					d.Log = append(d.Log, name)
					f(d)
					return nil
				},
				Compensate: func(_ context.Context, _ saga.StepContext, d *touchy) error {
					d.Log = append(d.Log, "undo "+name)
					return nil
				},
			}
		}
		nothing := func(*touchy) {}

		// Initial data that panics to encode is bad input; nothing is
		// written.
		def, _ := saga.Define("codec", step("a", nothing))
		for name, f := range map[string]func() error{
			"Run":   func() error { _, err := saga.Run(t.Context(), e.c, def, "r0", touchy{Boom: true}); return err },
			"Start": func() error { _, err := saga.Start(t.Context(), e.c, def, "r0", touchy{Boom: true}); return err },
		} {
			var pe *nova.PanicError
			if err := f(); !errors.Is(err, nova.ErrInvalid) || !errors.As(err, &pe) {
				t.Fatalf("%s with data that panics to encode: %v", name, err)
			}
		}
		if _, err := e.runs.Get(t.Context(), "codec", "r0"); !errors.Is(err, nova.ErrNotFound) {
			t.Fatalf("a run was recorded: %v", err)
		}

		// A step whose data panics to encode: its attempts fail, and it is
		// compensated, since its action ran.
		def, _ = saga.Define("codec", step("a", nothing), step("b", func(d *touchy) { d.Boom = true }))
		x, err := saga.Run(t.Context(), e.c, def, "r1", touchy{})
		var pe *nova.PanicError
		if !errors.Is(err, saga.ErrStepFailed) || !errors.As(err, &pe) || pe.Value != "marshal boom" {
			t.Fatalf("encode panic: err = %v", err)
		}
		if x.Status != saga.Compensated || !slices.Equal(x.CompensatedSteps, []string{"b", "a"}) {
			t.Fatalf("encode panic: %+v", x)
		}
		if errs := timelineErrors(t, e.runs, "codec"); len(errs) != 2 || !strings.Contains(errs[0], "marshal boom") || !hasStack(errs[0], "MarshalJSON") {
			t.Fatalf("encode panic: timeline errors %q", errs)
		}

		// Data that panics to decode: the next step's attempts fail, and
		// so does the compensation, which must read it too: the run is
		// Stuck, and loading it is an error.
		def, _ = saga.Define("poison", step("a", func(d *touchy) { d.Poison = true }), step("b", nothing))
		x, err = saga.Run(t.Context(), e.c, def, "r1", touchy{})
		if !errors.Is(err, saga.ErrStepFailed) || !errors.Is(err, saga.ErrCompensationFailed) || !errors.As(err, &pe) || pe.Value != "unmarshal poison" {
			t.Fatalf("decode panic: err = %v", err)
		}
		if x.Status != saga.Stuck || !hasStack(x.Failure, "UnmarshalJSON") {
			t.Fatalf("decode panic: %+v", x)
		}
		if _, err := saga.Load(t.Context(), e.c, def, "r1"); !errors.As(err, &pe) {
			t.Fatalf("load of poisoned data: %v", err)
		}
	})
}

// brokenBackoff panics when asked for a delay.
type brokenBackoff struct{}

func (brokenBackoff) Delay(int) time.Duration { panic("no delay for you") }

func TestBackoffPanicEndsRetries(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		var calls []string
		var mu sync.Mutex
		var n atomic.Int32
		def, _ := saga.Define("test-saga", pass("a", &calls, &mu), saga.Step[order]{
			Name:    "b",
			Retry:   saga.RetryPolicy{MaxAttempts: 5, Backoff: brokenBackoff{}},
			Execute: func(context.Context, saga.StepContext, *order) error { n.Add(1); return errBoom },
		})
		x, err := saga.Run(t.Context(), e.c, def, "r1", order{})
		var pe *nova.PanicError
		if !errors.Is(err, saga.ErrStepFailed) || !errors.Is(err, errBoom) || !errors.As(err, &pe) || pe.Value != "no delay for you" {
			t.Fatalf("err = %v", err)
		}
		if n.Load() != 1 || x.Status != saga.Compensated || !slices.Equal(x.CompensatedSteps, []string{"a"}) {
			t.Fatalf("%d attempts, %+v", n.Load(), x)
		}
		if errs := timelineErrors(t, e.runs, "test-saga"); len(errs) != 1 || !hasStack(errs[0], "brokenBackoff") {
			t.Fatalf("timeline errors %q", errs)
		}
	})
}
