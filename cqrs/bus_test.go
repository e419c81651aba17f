package cqrs_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/cqrs"
)

type placeOrder struct {
	ID    string
	Order string
	Lines int
}

func (c placeOrder) CommandID() string { return c.ID }

func (c placeOrder) Validate() error {
	if c.Order == "" {
		return errors.New("order: empty order ID")
	}
	if c.Lines <= 0 {
		return fmt.Errorf("order %s: %d lines, want at least one", c.Order, c.Lines)
	}
	return nil
}

type cancelOrder struct{ Order string }

type getOrder struct{ Order string }

type orderView struct {
	Order  string `json:"order"`
	Lines  int    `json:"lines"`
	Status string `json:"status"`
}

func (v orderView) String() string { return v.Order + ":" + v.Status }

// counting returns a handler that counts its calls and returns err.
func counting(n *atomic.Int32, err error) func(context.Context, placeOrder) error {
	return func(context.Context, placeOrder) error {
		n.Add(1)
		return err
	}
}

func TestHandleBadInput(t *testing.T) {
	t.Parallel()
	bus, qbus := new(cqrs.CommandBus), new(cqrs.QueryBus)
	tests := []struct {
		name    string
		err     error
		wantErr error
	}{
		{"interface command type", cqrs.Handle(bus, func(context.Context, any) error { return nil }), nova.ErrInvalid},
		{"interface command type with result", cqrs.HandleResult(bus, func(context.Context, fmt.Stringer) (int, error) { return 0, nil }), nova.ErrInvalid},
		{"query: interface type", cqrs.HandleQuery(qbus, func(context.Context, error) (int, error) { return 0, nil }), nova.ErrInvalid},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.wantErr) {
			t.Errorf("%s: %v, want an error matching %v", tt.name, tt.err, tt.wantErr)
		} else if !strings.HasPrefix(tt.err.Error(), "cqrs: ") {
			t.Errorf("%s: %q does not start with the package name", tt.name, tt.err)
		}
	}
	// A rejected registration adds nothing: the chain is still empty.
	var n atomic.Int32
	if err := cqrs.Handle(bus, counting(&n, nil)); err != nil {
		t.Fatal(err)
	}
	if err := bus.Dispatch(t.Context(), placeOrder{}); err != nil || n.Load() != 1 {
		t.Fatalf("Dispatch of an invalid command with no middleware = %v after %d calls, want it handled", err, n.Load())
	}
}

func TestDuplicateRegistration(t *testing.T) {
	t.Parallel()
	bus, qbus := new(cqrs.CommandBus), new(cqrs.QueryBus)
	var first, second atomic.Int32
	if err := cqrs.Handle(bus, counting(&first, nil)); err != nil {
		t.Fatal(err)
	}
	if err := cqrs.Handle(bus, counting(&second, nil)); !errors.Is(err, cqrs.ErrHandlerExists) {
		t.Fatalf("second Handle = %v, want ErrHandlerExists", err)
	}
	if err := cqrs.HandleResult(bus, func(context.Context, placeOrder) (int, error) { second.Add(1); return 0, nil }); !errors.Is(err, cqrs.ErrHandlerExists) {
		t.Fatalf("HandleResult after Handle = %v, want ErrHandlerExists", err)
	}
	// A pointer type is another type.
	if err := cqrs.Handle(bus, func(context.Context, *placeOrder) error { second.Add(1); return nil }); err != nil {
		t.Fatalf("Handle(*placeOrder): %v", err)
	}
	if err := bus.Dispatch(t.Context(), placeOrder{}); err != nil {
		t.Fatal(err)
	}
	if first.Load() != 1 || second.Load() != 0 {
		t.Fatalf("first handler ran %d times, second %d; want the first once", first.Load(), second.Load())
	}
	h := func(context.Context, getOrder) (orderView, error) { return orderView{}, nil }
	if err := cqrs.HandleQuery(qbus, h); err != nil {
		t.Fatal(err)
	}
	if err := cqrs.HandleQuery(qbus, func(context.Context, getOrder) (string, error) { return "", nil }); !errors.Is(err, cqrs.ErrHandlerExists) {
		t.Fatalf("second HandleQuery = %v, want ErrHandlerExists", err)
	}
	// Command and query buses are separate namespaces.
	if err := cqrs.Handle(bus, func(context.Context, getOrder) error { return nil }); err != nil {
		t.Fatalf("Handle(getOrder) on the command bus: %v", err)
	}
}

func TestDispatchBadInput(t *testing.T) {
	t.Parallel()
	bus := new(cqrs.CommandBus)
	var n atomic.Int32
	if err := cqrs.Handle(bus, func(context.Context, *placeOrder) error { n.Add(1); return nil }); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	tests := []struct {
		name    string
		cmd     any
		wantErr error
	}{
		{"nil command", nil, nova.ErrInvalid},
		{"nil pointer command", (*placeOrder)(nil), nova.ErrInvalid},
		{"unknown command", cancelOrder{}, cqrs.ErrNoHandler},
		{"value of a pointer-handled type", placeOrder{}, cqrs.ErrNoHandler},
		{"string", "place order", cqrs.ErrNoHandler},
	}
	for _, tt := range tests {
		err := bus.Dispatch(ctx, tt.cmd)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: Dispatch = %v, want an error matching %v", tt.name, err, tt.wantErr)
		}
		if _, err := cqrs.DispatchResult[int](ctx, bus, tt.cmd); !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: DispatchResult = %v, want an error matching %v", tt.name, err, tt.wantErr)
		}
	}
	if err := bus.Dispatch(ctx, cancelOrder{Order: "7"}); err == nil || !strings.Contains(err.Error(), "cqrs_test.cancelOrder") {
		t.Errorf("unknown command error %q does not name the type", err)
	}
	if n.Load() != 0 {
		t.Fatalf("handler ran %d times on bad input", n.Load())
	}
	if err := bus.Dispatch(ctx, &placeOrder{}); err != nil || n.Load() != 1 {
		t.Fatalf("Dispatch(&placeOrder{}) = %v, %d calls", err, n.Load())
	}
}

func TestDispatchResult(t *testing.T) {
	t.Parallel()
	bus := new(cqrs.CommandBus)
	var n atomic.Int32
	boom := errors.New("boom")
	if err := cqrs.HandleResult(bus, func(_ context.Context, c placeOrder) (string, error) {
		n.Add(1)
		if c.Order == "fail" {
			return "", boom
		}
		return "order-" + c.Order, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := cqrs.Handle(bus, func(context.Context, cancelOrder) error { n.Add(1); return nil }); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	id, err := cqrs.DispatchResult[string](ctx, bus, placeOrder{Order: "7"})
	if err != nil || id != "order-7" {
		t.Fatalf("DispatchResult = %q, %v; want order-7", id, err)
	}
	if _, err := cqrs.DispatchResult[string](ctx, bus, placeOrder{Order: "fail"}); !errors.Is(err, boom) {
		t.Fatalf("DispatchResult of a failing handler = %v, want boom", err)
	}
	if err := bus.Dispatch(ctx, placeOrder{Order: "8"}); err != nil {
		t.Fatalf("Dispatch of a command with a result: %v", err)
	}
	if any, err := cqrs.DispatchResult[any](ctx, bus, placeOrder{Order: "9"}); err != nil || any != "order-9" {
		t.Fatalf("DispatchResult[any] = %v, %v", any, err)
	}
	calls := n.Load()
	for _, tt := range []struct {
		name string
		err  error
	}{
		{"int for string", func() error { _, err := cqrs.DispatchResult[int](ctx, bus, placeOrder{Order: "7"}); return err }()},
		{"stringer for string", func() error {
			_, err := cqrs.DispatchResult[fmt.Stringer](ctx, bus, placeOrder{Order: "7"})
			return err
		}()},
		{"result of a handler without one", func() error { _, err := cqrs.DispatchResult[string](ctx, bus, cancelOrder{}); return err }()},
	} {
		if !errors.Is(tt.err, cqrs.ErrResultType) || !errors.Is(tt.err, nova.ErrInvalid) {
			t.Errorf("%s: %v, want an error matching ErrResultType and nova.ErrInvalid", tt.name, tt.err)
		}
	}
	if n.Load() != calls {
		t.Fatalf("a handler ran although the result type was wrong")
	}
}

func TestAsk(t *testing.T) {
	t.Parallel()
	qbus := new(cqrs.QueryBus)
	views := map[string]orderView{"7": {Order: "7", Lines: 2, Status: "placed"}}
	if err := cqrs.HandleQuery(qbus, func(_ context.Context, q getOrder) (orderView, error) {
		v, ok := views[q.Order]
		if !ok {
			return orderView{}, fmt.Errorf("order %s: %w", q.Order, nova.ErrNotFound)
		}
		return v, nil
	}); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	v, err := cqrs.Ask[orderView](ctx, qbus, getOrder{Order: "7"})
	if err != nil || v != views["7"] {
		t.Fatalf("Ask = %+v, %v", v, err)
	}
	if _, err := cqrs.Ask[orderView](ctx, qbus, getOrder{Order: "8"}); !errors.Is(err, nova.ErrNotFound) {
		t.Fatalf("Ask of a missing order = %v, want the handler's error", err)
	}
	if s, err := cqrs.Ask[fmt.Stringer](ctx, qbus, getOrder{Order: "7"}); err != nil || s.String() != "7:placed" {
		t.Fatalf("Ask[fmt.Stringer] = %v, %v", s, err)
	}
	if r, err := qbus.Dispatch(ctx, getOrder{Order: "7"}); err != nil || r != views["7"] {
		t.Fatalf("Dispatch = %v, %v", r, err)
	}
	for _, tt := range []struct {
		name    string
		err     error
		wantErr error
	}{
		{"nil query", func() error { _, err := cqrs.Ask[orderView](ctx, qbus, nil); return err }(), nova.ErrInvalid},
		{"unknown query", func() error { _, err := cqrs.Ask[orderView](ctx, qbus, cancelOrder{}); return err }(), cqrs.ErrNoHandler},
		{"wrong result type", func() error { _, err := cqrs.Ask[string](ctx, qbus, getOrder{Order: "7"}); return err }(), cqrs.ErrResultType},
	} {
		if !errors.Is(tt.err, tt.wantErr) {
			t.Errorf("%s: %v, want an error matching %v", tt.name, tt.err, tt.wantErr)
		}
	}
}

// recorder is middleware that records when it runs.
func recorder(name string, log *[]string, mu *sync.Mutex) cqrs.Middleware {
	return func(next cqrs.HandlerFunc) cqrs.HandlerFunc {
		return func(ctx context.Context, msg any) (any, error) {
			mu.Lock()
			*log = append(*log, name+">"+string(cqrs.KindFrom(ctx)))
			mu.Unlock()
			res, err := next(ctx, msg)
			mu.Lock()
			*log = append(*log, "<"+name)
			mu.Unlock()
			return res, err
		}
	}
}

func TestMiddlewareOrder(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var log []string
	bus := cqrs.NewCommandBus(recorder("a", &log, &mu))
	bus.Use(recorder("b", &log, &mu), recorder("c", &log, &mu))
	if err := cqrs.Handle(bus, func(context.Context, placeOrder) error {
		mu.Lock()
		log = append(log, "handler")
		mu.Unlock()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := bus.Dispatch(t.Context(), placeOrder{}); err != nil {
		t.Fatal(err)
	}
	want := []string{"a>command", "b>command", "c>command", "handler", "<c", "<b", "<a"}
	if !slices.Equal(log, want) {
		t.Fatalf("order = %v, want %v", log, want)
	}

	log = nil
	qbus := cqrs.NewQueryBus(recorder("x", &log, &mu), recorder("y", &log, &mu))
	if err := cqrs.HandleQuery(qbus, func(context.Context, getOrder) (int, error) { return 1, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := cqrs.Ask[int](t.Context(), qbus, getOrder{}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"x>query", "y>query", "<y", "<x"}; !slices.Equal(log, want) {
		t.Fatalf("query order = %v, want %v", log, want)
	}
	if k := cqrs.KindFrom(t.Context()); k != "" {
		t.Fatalf("KindFrom outside a bus = %q", k)
	}
}

func TestMiddlewareMisbehaving(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	var n atomic.Int32
	swap := cqrs.NewCommandBus(func(next cqrs.HandlerFunc) cqrs.HandlerFunc {
		return func(ctx context.Context, _ any) (any, error) { return next(ctx, cancelOrder{}) }
	})
	if err := cqrs.Handle(swap, counting(&n, nil)); err != nil {
		t.Fatal(err)
	}
	if err := swap.Dispatch(ctx, placeOrder{}); !errors.Is(err, nova.ErrInvalid) {
		t.Fatalf("middleware changing the message type: %v, want nova.ErrInvalid", err)
	}
	if n.Load() != 0 {
		t.Fatalf("handler ran %d times", n.Load())
	}
	// A middleware returning a result of another type is caught by the
	// typed caller.
	qbus := cqrs.NewQueryBus(func(cqrs.HandlerFunc) cqrs.HandlerFunc {
		return func(context.Context, any) (any, error) { return 42, nil }
	})
	if err := cqrs.HandleQuery(qbus, func(context.Context, getOrder) (string, error) { return "", nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := cqrs.Ask[string](ctx, qbus, getOrder{}); !errors.Is(err, cqrs.ErrResultType) {
		t.Fatalf("middleware returning an int for a string: %v, want ErrResultType", err)
	}
}

// The bus is safe for concurrent dispatch, registration and Use.
func TestBusConcurrent(t *testing.T) {
	t.Parallel()
	bus := new(cqrs.CommandBus)
	var n atomic.Int32
	if err := cqrs.Handle(bus, counting(&n, nil)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if err := bus.Dispatch(t.Context(), placeOrder{}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			bus.Use(func(next cqrs.HandlerFunc) cqrs.HandlerFunc { return next })
		}
	})
	wg.Go(func() {
		if err := cqrs.Handle(bus, func(context.Context, cancelOrder) error { return nil }); err != nil {
			t.Error(err)
		}
	})
	wg.Wait()
	if n.Load() != 400 {
		t.Fatalf("handled %d commands, want 400", n.Load())
	}
}

func TestResultTypeMessage(t *testing.T) {
	t.Parallel()
	qbus := new(cqrs.QueryBus)
	if err := cqrs.HandleQuery(qbus, func(context.Context, getOrder) (orderView, error) { return orderView{}, nil }); err != nil {
		t.Fatal(err)
	}
	_, err := cqrs.Ask[string](t.Context(), qbus, getOrder{})
	if want := "cqrs: query cqrs_test.getOrder has a handler returning cqrs_test.orderView, not string"; err == nil || err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
}
