package nova_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/nova-go/nova"
)

// noPanic runs fn and fails t if it panics: user code that panics must
// come back as an error.
func noPanic(t *testing.T, what string, fn func()) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("%s panicked instead of returning an error: %v", what, p)
		}
	}()
	fn()
}

// checkPanicError checks that err is a recovered panic of value want,
// with a stack that shows the panicking function.
func checkPanicError(t *testing.T, err error, want any, frame string) {
	t.Helper()
	if !errors.Is(err, nova.ErrPanic) {
		t.Fatalf("err = %v, want one matching nova.ErrPanic", err)
	}
	var pe *nova.PanicError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want a *nova.PanicError in its chain", err)
	}
	if pe.Value != want {
		t.Errorf("PanicError.Value = %v, want %v", pe.Value, want)
	}
	if !strings.Contains(string(pe.Stack), frame) {
		t.Errorf("PanicError.Stack does not show %q:\n%s", frame, pe.Stack)
	}
	if nova.IsTransient(err) {
		t.Errorf("IsTransient(%v) = true for a panic", err)
	}
}

func TestPanicError(t *testing.T) {
	t.Parallel()
	cause := errors.New("boom")
	var err error
	func() {
		defer nova.Recover(&err)
		panic(cause)
	}()
	checkPanicError(t, err, any(cause), "TestPanicError")
	if !errors.Is(err, cause) {
		t.Errorf("errors.Is(%v, cause) = false: a panic with an error value unwraps to it", err)
	}
	if msg := err.Error(); msg != "nova: panic: boom" {
		t.Errorf("Error() = %q", msg)
	}
	if got := (&nova.PanicError{Value: "x"}).Unwrap(); got != nil {
		t.Errorf("Unwrap of a non-error value = %v, want nil", got)
	}

	err = nil
	func() {
		defer nova.Recover(&err)
	}()
	if err != nil {
		t.Errorf("Recover without a panic set err to %v", err)
	}
}

func TestTransient(t *testing.T) {
	t.Parallel()
	cause := errors.New("connection reset")
	if nova.Transient(nil) != nil {
		t.Error("Transient(nil) != nil")
	}
	tr := nova.Transient(cause)
	wrapped := fmt.Errorf("novaxyz: read: %w", tr)
	for _, err := range []error{tr, wrapped} {
		if !nova.IsTransient(err) || !errors.Is(err, nova.ErrTransient) || !errors.Is(err, cause) {
			t.Errorf("%v: IsTransient, Is(ErrTransient) and Is(cause) should all hold", err)
		}
	}
	if tr.Error() != cause.Error() {
		t.Errorf("Transient changed the message: %q", tr.Error())
	}
	for _, err := range []error{nil, cause, nova.ErrConcurrency, &nova.PanicError{Value: tr}} {
		if nova.IsTransient(err) {
			t.Errorf("IsTransient(%v) = true", err)
		}
	}
	if !nova.IsTransient(fmt.Errorf("x: %w", methodErr(true))) || nova.IsTransient(methodErr(false)) {
		t.Error("IsTransient should follow a Transient() bool method")
	}
}

type methodErr bool

func (e methodErr) Error() string   { return "method" }
func (e methodErr) Transient() bool { return bool(e) }

type panicCodec struct{ onMarshal, onUnmarshal bool }

func (c panicCodec) Marshal(v any) ([]byte, error) {
	if c.onMarshal {
		panic("marshal boom")
	}
	return nova.JSON.Marshal(v)
}

func (c panicCodec) Unmarshal(data []byte, v any) error {
	if c.onUnmarshal {
		panic("unmarshal boom")
	}
	return nova.JSON.Unmarshal(data, v)
}

type thing struct{ A string }

// TestRegistryRecoversUserCode: a panicking upcaster or codec fails the
// call with a *nova.PanicError instead of panicking in the caller.
func TestRegistryRecoversUserCode(t *testing.T) {
	t.Parallel()
	r := nova.NewRegistry(nova.RegistryOptions{})
	nova.MustRegister[thing](r, "thing")
	must(t, r.Upcast("thing", 1, func([]byte) ([]byte, error) { panic("upcast boom") }))
	e := nova.Event{ID: "e1", Stream: "s", Type: "thing", Version: 1, Data: []byte(`{"A":"x"}`)}
	noPanic(t, "Upcasted", func() {
		_, err := r.Upcasted(e)
		checkPanicError(t, err, any("upcast boom"), "TestRegistryRecoversUserCode")
		if !strings.Contains(err.Error(), `upcast "thing"`) {
			t.Errorf("error %q does not say what panicked", err)
		}
	})
	noPanic(t, "Decode", func() {
		_, err := r.Decode(e)
		checkPanicError(t, err, any("upcast boom"), "TestRegistryRecoversUserCode")
	})

	enc := nova.NewRegistry(nova.RegistryOptions{Codec: panicCodec{onMarshal: true}})
	nova.MustRegister[thing](enc, "thing")
	noPanic(t, "Encode", func() {
		_, err := enc.Encode(thing{A: "x"}, nova.Metadata{})
		checkPanicError(t, err, any("marshal boom"), "panicCodec.Marshal")
	})
	dec := nova.NewRegistry(nova.RegistryOptions{Codec: panicCodec{onUnmarshal: true}})
	nova.MustRegister[thing](dec, "thing")
	noPanic(t, "Decode", func() {
		_, err := dec.Decode(nova.Event{ID: "e1", Stream: "s", Type: "thing", Version: 1, Data: []byte(`{}`)})
		checkPanicError(t, err, any("unmarshal boom"), "panicCodec.Unmarshal")
	})
}
