package saga

import (
	"encoding/json"
	"fmt"
	"runtime/debug"
)

// PanicError is a panic in code given to the saga package, recovered: a
// step's action or compensation, [Config.OnStuckFunc] or
// [Config.OnEndFunc], a [Backoff], or the JSON methods of the saga's
// data. It keeps the stack of the goroutine that panicked, and its text
// ends with it, so that the run's timeline, its row and the logs show
// where. It takes the path an error from the same place takes: a step's
// or compensation's panic fails the attempt, retried and compensated per
// the step's policies; a hook's is logged.
type PanicError struct {
	// Func says what panicked, such as `step "charge"`.
	Func string
	// Value is the value passed to panic.
	Value any
	// Stack is the panicking goroutine's stack, as [debug.Stack] gives it.
	Stack []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("saga: %s panicked: %v\n\n%s", e.Func, e.Value, e.Stack)
}

// Unwrap returns the panic's value when it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// protect calls f and returns its error, or a [*PanicError] naming what
// when f panics.
func protect(what string, f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &PanicError{Func: what, Value: p, Stack: debug.Stack()}
		}
	}()
	return f()
}

// marshal encodes the saga's data, whose MarshalJSON may panic.
func marshal(v any) (b []byte, err error) {
	err = protect("the data's JSON encoding", func() error {
		b, err = json.Marshal(v)
		return err
	})
	return b, err
}

// unmarshal decodes the saga's data, whose UnmarshalJSON may panic.
func unmarshal(b []byte, v any) error {
	return protect("the data's JSON decoding", func() error { return json.Unmarshal(b, v) })
}
