package cqrs_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/cqrs"
)

// recovered runs fn and fails t if it panics.
func recovered(t *testing.T, what string, fn func()) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("%s re-panicked in the caller instead of returning an error: %v", what, p)
		}
	}()
	fn()
}

// wantPanic checks err is the recovered panic of value v, with a stack.
func wantPanic(t *testing.T, err error, v any) {
	t.Helper()
	var pe *nova.PanicError
	if !errors.As(err, &pe) || !errors.Is(err, nova.ErrPanic) {
		t.Fatalf("err = %v, want a *nova.PanicError", err)
	}
	if pe.Value != v {
		t.Errorf("panic value %v, want %v", pe.Value, v)
	}
	if !strings.Contains(string(pe.Stack), "cqrs_test") {
		t.Errorf("stack does not show the panicking test code:\n%s", pe.Stack)
	}
}

// TestPanickingHandlersAreErrors: a command or query handler that
// panics fails its dispatch with a *nova.PanicError; the middleware
// around it sees the error like any other.
func TestPanickingHandlersAreErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var seen []error
	logged := func(next cqrs.HandlerFunc) cqrs.HandlerFunc {
		return func(ctx context.Context, msg any) (any, error) {
			res, err := next(ctx, msg)
			seen = append(seen, err)
			return res, err
		}
	}
	bus := cqrs.NewCommandBus(logged)
	if err := cqrs.Handle(bus, func(context.Context, placeOrder) error { panic("command boom") }); err != nil {
		t.Fatal(err)
	}
	if err := cqrs.HandleResult(bus, func(context.Context, cancelOrder) (string, error) { panic("result boom") }); err != nil {
		t.Fatal(err)
	}
	recovered(t, "Dispatch", func() {
		err := bus.Dispatch(ctx, placeOrder{ID: "c1", Order: "o1", Lines: 1})
		wantPanic(t, err, "command boom")
	})
	recovered(t, "DispatchResult", func() {
		_, err := cqrs.DispatchResult[string](ctx, bus, cancelOrder{Order: "o1"})
		wantPanic(t, err, "result boom")
	})
	if len(seen) != 2 || !errors.Is(seen[0], nova.ErrPanic) || !errors.Is(seen[1], nova.ErrPanic) {
		t.Errorf("the middleware saw %v, want the two panics as errors", seen)
	}

	qbus := cqrs.NewQueryBus()
	if err := cqrs.HandleQuery(qbus, func(context.Context, getOrder) (orderView, error) { panic("query boom") }); err != nil {
		t.Fatal(err)
	}
	recovered(t, "Ask", func() {
		_, err := cqrs.Ask[orderView](ctx, qbus, getOrder{Order: "o1"})
		wantPanic(t, err, "query boom")
	})
	recovered(t, "QueryBus.Dispatch", func() {
		_, err := qbus.Dispatch(ctx, getOrder{Order: "o1"})
		wantPanic(t, err, "query boom")
	})
}

// TestPanickingMiddlewareIsAnError: middleware that panics, when the
// chain is built or when it handles a message, fails the dispatch with
// a *nova.PanicError, and the middleware outside it sees the error.
func TestPanickingMiddlewareIsAnError(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var outer error
	outerMW := func(next cqrs.HandlerFunc) cqrs.HandlerFunc {
		return func(ctx context.Context, msg any) (any, error) {
			res, err := next(ctx, msg)
			outer = err
			return res, err
		}
	}
	var calls atomic.Int32
	handling := func(cqrs.HandlerFunc) cqrs.HandlerFunc {
		return func(context.Context, any) (any, error) { panic("middleware boom") }
	}
	building := func(cqrs.HandlerFunc) cqrs.HandlerFunc { panic("build boom") }

	for _, tc := range []struct {
		name string
		mw   cqrs.Middleware
		v    any
	}{{"while handling", handling, "middleware boom"}, {"while building the chain", building, "build boom"}} {
		t.Run(tc.name, func(t *testing.T) {
			bus := cqrs.NewCommandBus(outerMW, tc.mw)
			if err := cqrs.Handle(bus, counting(&calls, nil)); err != nil {
				t.Fatal(err)
			}
			recovered(t, "Dispatch", func() {
				err := bus.Dispatch(ctx, placeOrder{ID: "c1", Order: "o1", Lines: 1})
				wantPanic(t, err, tc.v)
			})
			qbus := cqrs.NewQueryBus(tc.mw)
			if err := cqrs.HandleQuery(qbus, func(context.Context, getOrder) (orderView, error) { return orderView{}, nil }); err != nil {
				t.Fatal(err)
			}
			recovered(t, "Ask", func() {
				_, err := cqrs.Ask[orderView](ctx, qbus, getOrder{Order: "o1"})
				wantPanic(t, err, tc.v)
			})
		})
	}
	if !errors.Is(outer, nova.ErrPanic) {
		t.Errorf("the outer middleware saw %v, want the panic as an error", outer)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("the handler ran %d times behind a panicking middleware", n)
	}
}

// TestPanickingCommandIsNotMarkedHandled: under Idempotency, a command
// whose handler panicked is not recorded, its ID's lock is released, and
// sending it again runs it again.
func TestPanickingCommandIsNotMarkedHandled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	idem := cqrs.Idempotency(new(cqrs.MemoryHandled))
	bus := cqrs.NewCommandBus(idem)
	var calls atomic.Int32
	if err := cqrs.Handle(bus, func(context.Context, placeOrder) error {
		if calls.Add(1) == 1 {
			panic("first time")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	cmd := placeOrder{ID: "c1", Order: "o1", Lines: 1}
	recovered(t, "Dispatch", func() { wantPanic(t, bus.Dispatch(ctx, cmd), "first time") })
	if err := bus.Dispatch(ctx, cmd); err != nil {
		t.Fatalf("second dispatch: %v", err)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("handler ran %d times, want 2: a panicked command is not handled", n)
	}
}
