// Package sagatest injects faults into a saga's steps, to test that the
// engine survives them: a step that fails on a given attempt, one that
// hangs past its timeout, and one that crashes its process after its side
// effect and before its outcome is recorded. A [Harness] wraps the steps
// of a definition and keeps a log of every call, so that a test can check
// what the steps saw: that each started step was completed or compensated,
// and that no two calls of one run ever overlapped.
//
// It has no dependency beyond the standard library and package saga.
package sagatest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/nova-go/nova/saga"
)

// ErrInjected is the error a [Fail] fault returns when its Err is nil.
var ErrInjected = errors.New("sagatest: injected failure")

// Kind is what a [Fault] does.
type Kind int

const (
	// Fail returns the fault's Err instead of calling the step.
	Fail Kind = iota + 1
	// Hang blocks until the attempt's ctx is done (its timeout passes, or
	// the run stops) without calling the step, and returns ctx's error.
	Hang
	// Crash calls the step, then the harness's crash function, then blocks
	// until the attempt's ctx is done: the side effect happened and its
	// outcome is never recorded, as when the process dies between the two.
	// The crash function kills the process (os.Exit, SIGKILL) in a crash
	// test, or cancels the worker's ctx in an in-process test.
	Crash
)

func (k Kind) String() string {
	switch k {
	case Fail:
		return "fail"
	case Hang:
		return "hang"
	case Crash:
		return "crash"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Fault is one injected fault.
type Fault struct {
	// Step names the step; Compensation selects its compensation instead
	// of its action.
	Step         string
	Compensation bool
	// Attempt is the attempt the fault hits; 0 hits every attempt.
	Attempt int
	// RunID, when set, limits the fault to that run.
	RunID string
	// Kind is what the fault does.
	Kind Kind
	// Err is what a Fail fault returns; nil means [ErrInjected]. Wrap it
	// with saga.Permanent to skip the step's retries.
	Err error
}

func (f Fault) hits(sc saga.StepContext, comp bool) bool {
	return f.Step == sc.Step && f.Compensation == comp && (f.Attempt == 0 || f.Attempt == sc.Attempt) &&
		(f.RunID == "" || f.RunID == sc.RunID)
}

// Call is one call of a step's action or compensation, as the harness saw
// it.
type Call struct {
	saga.StepContext
	// Compensation is whether the call was the compensation.
	Compensation bool
	// Fault is the kind of fault injected into the call, 0 for none.
	Fault Kind
	// Err is what the call returned; a Crash call's is ctx's error.
	Err error
}

// Harness injects faults into the steps it wraps and logs their calls. It
// is safe for concurrent use.
type Harness struct {
	crash func()

	mu       sync.Mutex
	faults   []Fault
	calls    []Call
	active   map[string]int // run ID -> calls in progress
	overlaps []string       // runs that had two calls at once
}

// New returns a harness with the given faults. crash is what a [Crash]
// fault calls after the step's side effect; nil does nothing more than
// block until the attempt's ctx is done.
func New(crash func(), faults ...Fault) *Harness {
	return &Harness{crash: crash, faults: slices.Clone(faults), active: map[string]int{}}
}

// Add adds faults, for the calls that follow.
func (h *Harness) Add(faults ...Fault) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faults = append(h.faults, faults...)
}

// Clear removes every fault: later calls run the steps as they are.
func (h *Harness) Clear() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faults = nil
}

// Calls returns the calls so far, in the order they began.
func (h *Harness) Calls() []Call {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.calls)
}

// Overlaps returns the run IDs, one per occurrence, that had two calls of
// their steps in progress at once: a run driven by two workers at a time.
func (h *Harness) Overlaps() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.overlaps)
}

// Wrap returns steps whose actions and compensations go through h. A step
// without a compensation gets one, so that a fault can hit it; it does
// nothing else.
func Wrap[D any](h *Harness, steps ...saga.Step[D]) []saga.Step[D] {
	out := make([]saga.Step[D], len(steps))
	for i, s := range steps {
		s.Execute = wrap(h, false, s.Execute)
		s.Compensate = wrap(h, true, s.Compensate)
		out[i] = s
	}
	return out
}

func wrap[D any](h *Harness, comp bool, f func(context.Context, saga.StepContext, *D) error) func(context.Context, saga.StepContext, *D) error {
	return func(ctx context.Context, sc saga.StepContext, d *D) error {
		kind, i, ferr := h.begin(sc, comp)
		var err error
		switch kind {
		case Fail:
			err = ferr
		case Hang:
			<-ctx.Done()
			err = ctx.Err()
		default:
			if f != nil {
				err = f(ctx, sc, d)
			}
			if kind == Crash {
				if h.crash != nil {
					h.crash()
				}
				<-ctx.Done()
				err = ctx.Err()
			}
		}
		h.end(sc, i, err)
		return err
	}
}

func (h *Harness) begin(sc saga.StepContext, comp bool) (Kind, int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var kind Kind
	var err error
	for _, f := range h.faults {
		if f.hits(sc, comp) {
			kind, err = f.Kind, f.Err
			if err == nil {
				err = ErrInjected
			}
			break
		}
	}
	h.active[sc.RunID]++
	if h.active[sc.RunID] > 1 {
		h.overlaps = append(h.overlaps, sc.RunID)
	}
	h.calls = append(h.calls, Call{StepContext: sc, Compensation: comp, Fault: kind})
	return kind, len(h.calls) - 1, err
}

func (h *Harness) end(sc saga.StepContext, i int, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.active[sc.RunID]--
	h.calls[i].Err = err
}
