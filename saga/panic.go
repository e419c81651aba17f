package saga

import (
	"encoding/json"
	"runtime/debug"

	"github.com/nova-go/nova"
)

// stackError is a recovered panic whose text ends with the stack, so that
// the run's timeline, its row and the logs show where it happened. It
// unwraps to the [*nova.PanicError], which errors.As finds.
type stackError struct{ p *nova.PanicError }

func (e stackError) Error() string { return e.p.Error() + "\n\n" + string(e.p.Stack) }

func (e stackError) Unwrap() error { return e.p }

// protect calls f and returns its error, or, when f panics, a
// [*nova.PanicError] naming what, with the stack in its text.
func protect(what string, f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = stackError{&nova.PanicError{Func: what, Value: v, Stack: debug.Stack()}}
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
