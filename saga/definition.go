package saga

import (
	"context"
	"time"

	"github.com/nova-go/nova"
)

// DefaultTimeout bounds each attempt of a step whose Timeout is zero.
const DefaultTimeout = 30 * time.Second

// StepContext is what a step's action or compensation learns about the call.
type StepContext struct {
	// Saga is the saga's name.
	Saga string
	// RunID is the run's ID.
	RunID string
	// Step is the step's name.
	Step string
	// Attempt is the attempt number, from 1.
	Attempt int
	// IdempotencyKey is "{saga}/{run}/{step}" for the action and
	// "{saga}/{run}/{step}/compensate" for the compensation, each part
	// with '%' written as "%25" and '/' as "%2F" (see [IdempotencyKey]):
	// the same on every attempt and different for every other call, to
	// pass to the systems the step calls.
	IdempotencyKey string
}

// Step is one unit of work of a saga and its undo.
type Step[D any] struct {
	// Name names the step; unique within the saga, a single topic token
	// (no dots, spaces or wildcards), and not "saga". Required.
	Name string
	// Execute does the work. What it writes into data is recorded when it
	// succeeds. A panic is recovered as a [*nova.PanicError] and fails the
	// attempt, as an error does. Required.
	Execute func(ctx context.Context, sc StepContext, data *D) error
	// Compensate undoes the work; nil means there is nothing to undo. What
	// it writes into data is recorded when it succeeds.
	Compensate func(ctx context.Context, sc StepContext, data *D) error
	// Retry is the action's retry policy; the zero value means defaults.
	Retry RetryPolicy
	// CompensateRetry is the compensation's retry policy; the zero value
	// means defaults.
	CompensateRetry RetryPolicy
	// Timeout bounds each attempt, of the action and of the compensation.
	// Zero means [DefaultTimeout]. When it passes, the attempt's ctx is
	// cancelled and the run moves on without waiting: a step must return
	// when its ctx is done, or its goroutine lingers until it does (its
	// writes go to its own copy of the data and are lost), and a
	// [Worker]'s Stop waits for it.
	Timeout time.Duration
	// StepTimeout, when positive, bounds the step's action across all its
	// attempts and retry waits, from the start of its first attempt: an
	// attempt is cut short when it passes, and no retry starts after it.
	// The step then fails with a [*TimeoutError] whose Scope is "step".
	// Compensations are not bounded by it.
	StepTimeout time.Duration
}

func (s Step[D]) timeout() time.Duration {
	if s.Timeout == 0 {
		return DefaultTimeout
	}
	return s.Timeout
}

// Definition is a validated saga: a name and ordered steps over data D.
type Definition[D any] struct {
	name    string
	steps   []Step[D]
	index   map[string]int
	timeout time.Duration
}

// WithTimeout returns a copy of d whose runs have an overall timeout: a
// run's deadline is set when it starts, and past it the step being
// executed fails with a [*TimeoutError] whose Scope is "saga" and the run
// compensates. Compensation itself is not bounded. Zero means no timeout;
// a negative timeout returns an error matching [nova.ErrInvalid].
func (d *Definition[D]) WithTimeout(timeout time.Duration) (*Definition[D], error) {
	if timeout < 0 {
		return nil, nova.Invalidf("saga", "saga %q: negative timeout %s", d.name, timeout)
	}
	c := *d
	c.timeout = timeout
	return &c, nil
}

// Timeout returns the run's overall timeout; zero means none.
func (d *Definition[D]) Timeout() time.Duration { return d.timeout }

// Name returns the saga's name.
func (d *Definition[D]) Name() string { return d.name }

// Steps returns the names of the steps in order.
func (d *Definition[D]) Steps() []string {
	names := make([]string, len(d.steps))
	for i, s := range d.steps {
		names[i] = s.Name
	}
	return names
}

// Define validates and returns a saga definition. name and every step name
// must be a single topic token (see [broker.ValidateTopic]): no dots,
// spaces or wildcards. Errors match [nova.ErrInvalid].
func Define[D any](name string, steps ...Step[D]) (*Definition[D], error) {
	if err := validName("saga name", name); err != nil {
		return nil, err
	}
	if len(steps) == 0 {
		return nil, nova.Invalidf("saga", "saga %q has no steps", name)
	}
	d := &Definition[D]{name: name, steps: make([]Step[D], len(steps)), index: make(map[string]int, len(steps))}
	for i, s := range steps {
		if err := validName("step name", s.Name); err != nil {
			return nil, err
		}
		if s.Name == sagaStep {
			return nil, nova.Invalidf("saga", "step name %q is reserved", sagaStep)
		}
		if _, dup := d.index[s.Name]; dup {
			return nil, nova.Invalidf("saga", "duplicate step name %q", s.Name)
		}
		if s.Execute == nil {
			return nil, nova.Invalidf("saga", "step %q has no Execute", s.Name)
		}
		if s.Timeout < 0 {
			return nil, nova.Invalidf("saga", "step %q: negative Timeout %s", s.Name, s.Timeout)
		}
		if s.StepTimeout < 0 {
			return nil, nova.Invalidf("saga", "step %q: negative StepTimeout %s", s.Name, s.StepTimeout)
		}
		if err := s.Retry.validate("step " + s.Name + " Retry"); err != nil {
			return nil, err
		}
		if err := s.CompensateRetry.validate("step " + s.Name + " CompensateRetry"); err != nil {
			return nil, err
		}
		d.index[s.Name] = i
		d.steps[i] = s
	}
	return d, nil
}

// sagaStep is the step name of whole-saga lifecycle events.
const sagaStep = "saga"
