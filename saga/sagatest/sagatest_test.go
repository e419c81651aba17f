package sagatest_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nova-go/nova/saga"
	"github.com/nova-go/nova/saga/sagatest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type data struct{ N int }

func call(ctx context.Context, t *testing.T, s saga.Step[data], comp bool, run string, attempt int) error {
	t.Helper()
	f := s.Execute
	if comp {
		f = s.Compensate
	}
	var d data
	return f(ctx, saga.StepContext{Saga: "s", RunID: run, Step: s.Name, Attempt: attempt}, &d)
}

func TestFaults(t *testing.T) {
	t.Parallel()
	errCustom := errors.New("custom")
	crashed := make(chan struct{}, 1)
	var effects int
	var mu sync.Mutex
	h := sagatest.New(func() { crashed <- struct{}{} },
		sagatest.Fault{Step: "a", Attempt: 2, Kind: sagatest.Fail},
		sagatest.Fault{Step: "a", Compensation: true, RunID: "r2", Kind: sagatest.Fail, Err: errCustom},
		sagatest.Fault{Step: "a", Attempt: 3, Kind: sagatest.Hang},
		sagatest.Fault{Step: "a", Attempt: 4, Kind: sagatest.Crash},
	)
	steps := sagatest.Wrap(h, saga.Step[data]{Name: "a", Execute: func(context.Context, saga.StepContext, *data) error {
		mu.Lock()
		effects++
		mu.Unlock()
		return nil
	}})
	a := steps[0]
	if err := call(t.Context(), t, a, false, "r1", 1); err != nil {
		t.Fatalf("attempt 1: %v", err)
	}
	if err := call(t.Context(), t, a, false, "r1", 2); !errors.Is(err, sagatest.ErrInjected) {
		t.Fatalf("attempt 2: %v", err)
	}
	// A step without a compensation gets one a fault can hit.
	if err := call(t.Context(), t, a, true, "r1", 1); err != nil {
		t.Fatalf("compensation r1: %v", err)
	}
	if err := call(t.Context(), t, a, true, "r2", 1); !errors.Is(err, errCustom) {
		t.Fatalf("compensation r2: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if err := call(ctx, t, a, false, "r1", 3); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hang: %v", err)
	}
	ctx, cancel = context.WithCancel(t.Context())
	go func() { <-crashed; cancel() }()
	if err := call(ctx, t, a, false, "r1", 4); !errors.Is(err, context.Canceled) {
		t.Fatalf("crash: %v", err)
	}
	mu.Lock()
	n := effects
	mu.Unlock()
	if n != 2 { // attempts 1 and 4: the crash comes after the side effect
		t.Fatalf("side effects %d, want 2", n)
	}
	calls := h.Calls()
	want := []sagatest.Kind{0, sagatest.Fail, 0, sagatest.Fail, sagatest.Hang, sagatest.Crash}
	if len(calls) != len(want) {
		t.Fatalf("%d calls, want %d", len(calls), len(want))
	}
	for i, c := range calls {
		if c.Fault != want[i] {
			t.Errorf("call %d fault %v, want %v", i, c.Fault, want[i])
		}
	}
	if calls[3].Err == nil || !calls[3].Compensation || calls[3].RunID != "r2" {
		t.Fatalf("call 3: %+v", calls[3])
	}
	if len(h.Overlaps()) != 0 {
		t.Fatalf("overlaps %v", h.Overlaps())
	}
	h.Clear()
	if err := call(t.Context(), t, a, false, "r1", 2); err != nil {
		t.Fatalf("after Clear: %v", err)
	}
	if sagatest.Crash.String() != "crash" || sagatest.Kind(9).String() != "Kind(9)" {
		t.Fatal("kind names")
	}
}

func TestOverlaps(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	release := make(chan struct{})
	h := sagatest.New(nil)
	steps := sagatest.Wrap(h, saga.Step[data]{Name: "a", Execute: func(ctx context.Context, sc saga.StepContext, _ *data) error {
		if sc.RunID == "r1" && sc.Attempt == 1 {
			close(entered)
			<-release
		}
		return nil
	}})
	done := make(chan error, 1)
	go func() { done <- call(t.Context(), t, steps[0], false, "r1", 1) }()
	<-entered
	_ = call(t.Context(), t, steps[0], false, "r1", 2)
	_ = call(t.Context(), t, steps[0], false, "r2", 1)
	close(release)
	<-done
	if o := h.Overlaps(); len(o) != 1 || o[0] != "r1" {
		t.Fatalf("overlaps %v, want [r1]", o)
	}
}
