package nova

import "errors"

// ErrTransient is matched by errors that waiting and trying again may
// cure, because the fault is the server's or the network's, not the
// call's: a lost connection, a server restarting or shutting down, a
// serialization failure, a deadlock victim, a database file busy. The
// backends mark such errors with [Transient] once their own retries are
// spent, so that long-running components (projection runners, saga
// workers) wait them out with backoff instead of treating them as a
// failure of the user's code. Test for them with [IsTransient].
var ErrTransient = errors.New("nova: transient failure")

// Transient returns err marked as transient: [IsTransient] and
// errors.Is(_, [ErrTransient]) are true for the result, which has err's
// message and unwraps to err. A nil err stays nil.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return &transientError{err: err}
}

type transientError struct{ err error }

func (e *transientError) Error() string        { return e.err.Error() }
func (e *transientError) Unwrap() error        { return e.err }
func (e *transientError) Is(target error) bool { return target == ErrTransient }

// IsTransient reports whether err is transient: it matches
// [ErrTransient], or an error in its chain has a method Transient() bool
// that returns true (for stores outside this module). A [*PanicError] in
// the chain makes it false: a panic is a bug to report, not a fault to
// wait out.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	var pe *PanicError
	if errors.As(err, &pe) {
		return false
	}
	if errors.Is(err, ErrTransient) {
		return true
	}
	var t interface{ Transient() bool }
	return errors.As(err, &t) && t.Transient()
}
