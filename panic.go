package nova

import (
	"errors"
	"fmt"
	"runtime/debug"
)

// ErrPanic is matched by a [*PanicError]: user code (a handler, a step, a
// callback, middleware, an upcaster or a codec) panicked, and Nova
// recovered the panic and turned it into an error.
var ErrPanic = errors.New("nova: panic in user code")

// PanicError is a panic of user code, recovered. Nova runs every piece of
// user code it calls (handlers, steps, compensations, callbacks,
// middleware, upcasters, codecs) under recover: a panic there never kills
// the process or leaves a writer wedged, but becomes a PanicError that
// follows the same path as an error the code had returned (a projection's
// poison policy, a command's error to its caller, a step's retry policy).
//
// It matches [ErrPanic], and unwraps to the panic's value when that is an
// error (errors.As finds a runtime.Error, say). [IsTransient] is false for
// it, whatever it wraps: a panic is a bug, not a fault to wait out.
type PanicError struct {
	// Func says what panicked, such as `step "charge"`, when the code
	// that recovered it knows; it may be empty.
	Func string
	// Value is what was passed to panic.
	Value any
	// Stack is the stack of the goroutine that panicked, as
	// runtime/debug.Stack formats it, taken where the panic was recovered
	// (the panicking frames are on it).
	Stack []byte
}

// NewPanicError returns the error for the panic value v, with the
// current goroutine's stack. Call it in the deferred function that
// recovered v, so that the stack shows where the panic happened; or defer
// [Recover], which does both.
func NewPanicError(v any) *PanicError {
	return &PanicError{Value: v, Stack: debug.Stack()}
}

func (e *PanicError) Error() string {
	if e.Func != "" {
		return fmt.Sprintf("nova: %s panicked: %v", e.Func, e.Value)
	}
	return fmt.Sprintf("nova: panic: %v", e.Value)
}

// Unwrap returns the panic's value when it is an error, else nil.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// Is makes errors.Is(err, ErrPanic) true.
func (e *PanicError) Is(target error) bool { return target == ErrPanic }

// Recover, deferred directly by a function with a named error result,
// turns a panic of that function into a [*PanicError] stored in *err:
//
//	func call(fn func() error) (err error) {
//		defer nova.Recover(&err)
//		return fn()
//	}
//
// It must be the deferred function itself (defer nova.Recover(&err)), not
// called from one: only then does recover see the panic.
func Recover(err *error) {
	if v := recover(); v != nil {
		*err = NewPanicError(v)
	}
}

// callUpcaster runs up under recover.
func callUpcaster(up Upcaster, data []byte) (out []byte, err error) {
	defer Recover(&err)
	return up(data)
}

// marshal runs the codec's Marshal under recover.
func marshal(c Codec, v any) (data []byte, err error) {
	defer Recover(&err)
	return c.Marshal(v)
}

// unmarshal runs the codec's Unmarshal under recover.
func unmarshal(c Codec, data []byte, v any) (err error) {
	defer Recover(&err)
	return c.Unmarshal(data, v)
}
