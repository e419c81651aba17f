package saga

import (
	"errors"
	"fmt"
)

var (
	// ErrStepFailed is matched by a [*StepFailedError].
	ErrStepFailed = errors.New("saga: step failed")
	// ErrCompensationFailed is matched by a [*CompensationFailedError].
	ErrCompensationFailed = errors.New("saga: compensation failed")
	// ErrTimeout is matched by a [*TimeoutError].
	ErrTimeout = errors.New("saga: step timed out")
	// ErrAborted is matched when a run stops before it ends, because its
	// ctx was cancelled or its lease was lost; the run stays at its
	// recorded status, and a worker resumes it.
	ErrAborted = errors.New("saga: run aborted")
	// ErrWrongStatus is matched when an operator action does not apply to
	// the run's status: retrying or skipping a run that is not Stuck,
	// abandoning one that has ended. Nothing is recorded.
	ErrWrongStatus = errors.New("saga: action does not apply to the run's status")
)

// StepFailedError is a step whose action failed for good.
type StepFailedError struct {
	// Step is the step's name.
	Step string
	// Err is the step's last error.
	Err error
}

func (e *StepFailedError) Error() string {
	return fmt.Sprintf("saga: step %q failed: %v", e.Step, e.Err)
}

// Unwrap returns the step's error.
func (e *StepFailedError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrStepFailed) true.
func (e *StepFailedError) Is(target error) bool { return target == ErrStepFailed }

// CompensationFailedError is a compensation that failed past its retry
// policy's limit; the run is Stuck.
type CompensationFailedError struct {
	// Step is the name of the step being compensated.
	Step string
	// Err is the compensation's last error.
	Err error
}

func (e *CompensationFailedError) Error() string {
	return fmt.Sprintf("saga: compensation of step %q failed: %v", e.Step, e.Err)
}

// Unwrap returns the compensation's error.
func (e *CompensationFailedError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrCompensationFailed) true.
func (e *CompensationFailedError) Is(target error) bool { return target == ErrCompensationFailed }

// TimeoutError is a step that ran out of time: its last attempt did not
// return within the attempt's timeout, or the step's or the saga's overall
// timeout passed. An attempt cut short has an unknown outcome, so the step
// is compensated.
type TimeoutError struct {
	// Step is the step's name.
	Step string
	// Scope is the timeout that passed: "" for the attempt's
	// ([Step.Timeout]), "step" for the step's across its retries
	// ([Step.StepTimeout]), "saga" for the run's ([Definition.WithTimeout]).
	Scope string
}

func (e *TimeoutError) Error() string {
	if e.Scope != "" {
		return fmt.Sprintf("saga: step %q timed out (%s timeout)", e.Step, e.Scope)
	}
	return fmt.Sprintf("saga: step %q timed out", e.Step)
}

// Is makes errors.Is(err, ErrTimeout) true.
func (e *TimeoutError) Is(target error) bool { return target == ErrTimeout }

// permanentError marks an error that must not be retried.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as permanent: a step or compensation returning it is
// not retried. errors.Is and errors.As see through the mark. Permanent(nil)
// is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or an error it wraps, was marked with
// [Permanent].
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}
