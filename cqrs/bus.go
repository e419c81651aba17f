package cqrs

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/instrument"
)

var (
	// ErrNoHandler is matched when a command or query has no handler for
	// its dynamic type.
	ErrNoHandler = errors.New("cqrs: no handler")
	// ErrHandlerExists is matched when a second handler is registered for
	// a command or query type.
	ErrHandlerExists = errors.New("cqrs: handler already registered")
	// ErrResultType is matched when a caller asks for a result of a type
	// the handler does not return. It also matches [nova.ErrInvalid].
	ErrResultType = errors.New("cqrs: wrong result type")
)

// HandlerFunc handles one message (a command or a query) and returns its
// result, nil for commands without one. It is what middleware wraps; the
// typed handlers given to [Handle], [HandleResult] and [HandleQuery] are
// adapted to it.
type HandlerFunc func(ctx context.Context, msg any) (any, error)

// Middleware wraps a handler: it may act before and after calling next,
// change ctx, or not call next at all. Middleware given to Use runs in
// the order given: the first is outermost.
type Middleware func(next HandlerFunc) HandlerFunc

// Kind says whether a message is a command or a query.
type Kind string

// The kinds of message.
const (
	KindCommand Kind = "command"
	KindQuery   Kind = "query"
)

type kindKey struct{}

// KindFrom returns the kind of message being handled in ctx, as set by
// the bus for its middleware, and "" outside a bus.
func KindFrom(ctx context.Context) Kind {
	k, _ := ctx.Value(kindKey{}).(Kind)
	return k
}

// registry is what both buses share: handlers by message type and a
// middleware chain.
type registry struct {
	mu       sync.RWMutex
	handlers map[reflect.Type]handler
	mw       []Middleware
}

type handler struct {
	fn     HandlerFunc
	result reflect.Type // nil when the handler returns no result
}

func (r *registry) use(mw []Middleware) {
	r.mu.Lock()
	r.mw = append(r.mw, mw...)
	r.mu.Unlock()
}

// register adds h for messages of type t.
func (r *registry) register(kind Kind, t reflect.Type, h handler) error {
	if t.Kind() == reflect.Interface {
		return invalidf("%s bus: handler for interface type %v: messages are routed by their concrete type", kind, t)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.handlers[t]; ok {
		return fmt.Errorf("%w for %s %v", ErrHandlerExists, kind, t)
	}
	if r.handlers == nil {
		r.handlers = make(map[reflect.Type]handler)
	}
	r.handlers[t] = h
	return nil
}

// lookup validates a dispatch and finds the message's handler, wrapped
// in the middleware chain. want is the result type the caller needs, nil
// for any.
func (r *registry) lookup(ctx context.Context, kind Kind, msg any, want reflect.Type) (HandlerFunc, error) {
	if msg == nil {
		return nil, invalidf("%s bus: nil %s", kind, kind)
	}
	t := reflect.TypeOf(msg)
	if v := reflect.ValueOf(msg); isNil(v) {
		return nil, invalidf("%s bus: nil %v", kind, t)
	}
	r.mu.RLock()
	h, ok := r.handlers[t]
	mw := slices.Clone(r.mw)
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w for %s %v", ErrNoHandler, kind, t)
	}
	if want != nil {
		if h.result == nil {
			return nil, &resultError{msg: fmt.Sprintf("cqrs: %s %v has a handler without a result, not one returning %v", kind, t, want)}
		}
		if !h.result.AssignableTo(want) {
			return nil, &resultError{msg: fmt.Sprintf("cqrs: %s %v has a handler returning %v, not %v", kind, t, h.result, want)}
		}
	}
	fn := guard(h.fn)
	for i, m := range slices.Backward(mw) {
		next, err := wrap(m, fn)
		if err != nil {
			return nil, fmt.Errorf("cqrs: %s bus: middleware %d: %w", kind, i, err)
		}
		fn = guard(next)
	}
	return fn, nil
}

// guard runs fn under recover: a panicking handler or middleware fails
// its message with a [*nova.PanicError], which the middleware outside it
// sees as an error like any other.
func guard(fn HandlerFunc) HandlerFunc {
	return func(ctx context.Context, msg any) (res any, err error) {
		defer nova.Recover(&err)
		return fn(ctx, msg)
	}
}

// wrap applies m to next under recover.
func wrap(m Middleware, next HandlerFunc) (fn HandlerFunc, err error) {
	defer nova.Recover(&err)
	return m(next), nil
}

// dispatch runs msg's handler through the chain, inside a span
// "nova.command" or "nova.query" (see package telemetry) whose context
// the handler, and the appends it makes, see.
func (r *registry) dispatch(ctx context.Context, kind Kind, msg any, want reflect.Type) (res any, err error) {
	set := instrument.Get()
	start := time.Now()
	ctx, span := set.Tracer.Start(ctx, "nova."+string(kind), instrument.InternalSpan...)
	defer func() {
		measured := set.DispatchDuration.Enabled(ctx)
		if span.IsRecording() || measured {
			typ := "<nil>"
			if msg != nil {
				typ = reflect.TypeOf(msg).String()
			}
			outcome := "ok"
			if err != nil {
				outcome = "error"
			}
			attrs := []attribute.KeyValue{instrument.Kind.String(string(kind)), instrument.MessageType.String(typ), instrument.Outcome.String(outcome)}
			span.SetAttributes(attrs...)
			if measured {
				set.DispatchDuration.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(attrs...))
			}
		}
		instrument.End(span, err)
	}()
	fn, err := r.lookup(ctx, kind, msg, want)
	if err != nil {
		return nil, err
	}
	return fn(context.WithValue(ctx, kindKey{}, kind), msg)
}

func isNil(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface:
		return v.IsNil()
	}
	return false
}

// resultError matches ErrResultType and nova.ErrInvalid.
type resultError struct{ msg string }

func (e *resultError) Error() string { return e.msg }
func (e *resultError) Is(target error) bool {
	return target == ErrResultType || target == nova.ErrInvalid
}

// typed adapts a typed handler to a HandlerFunc.
func typed[M, R any](kind Kind, h func(context.Context, M) (R, error)) HandlerFunc {
	return func(ctx context.Context, msg any) (any, error) {
		m, ok := msg.(M)
		if !ok {
			return nil, invalidf("%s bus: handler of %v received a %T (a middleware changed the message)", kind, reflect.TypeFor[M](), msg)
		}
		return h(ctx, m)
	}
}

// result converts what a chain returned to R; nil (a command skipped by
// [Idempotency]) is R's zero value.
func result[R any](kind Kind, msg, res any) (R, error) {
	if res == nil {
		var zero R
		return zero, nil
	}
	r, ok := res.(R)
	if !ok {
		var zero R
		return zero, &resultError{msg: fmt.Sprintf("cqrs: %s %T returned a %T, not a %v", kind, msg, res, reflect.TypeFor[R]())}
	}
	return r, nil
}

// CommandBus routes each command to the one handler registered for its
// dynamic type, through a chain of middleware. The zero value is ready to
// use; it is safe for concurrent use, registration included.
type CommandBus struct {
	r registry
}

// NewCommandBus returns a bus with the given middleware (see
// [CommandBus.Use]).
func NewCommandBus(mw ...Middleware) *CommandBus {
	b := &CommandBus{}
	b.Use(mw...)
	return b
}

// Use appends middleware to the chain; the first given is outermost.
// It applies to every later dispatch.
func (b *CommandBus) Use(mw ...Middleware) { b.r.use(mw) }

// Handle registers h as the handler of commands of type C; C is
// inferred from h:
//
//	err := cqrs.Handle(bus, func(ctx context.Context, cmd PlaceOrder) error { ... })
//
// Commands are routed by their dynamic type, so a handler of *PlaceOrder
// does not receive a PlaceOrder value, and C may not be an interface
// type. A second handler for C, with or without a result, fails with an
// error matching [ErrHandlerExists].
func Handle[C any](b *CommandBus, h func(ctx context.Context, cmd C) error) error {
	fn := typed(KindCommand, func(ctx context.Context, cmd C) (any, error) {
		return nil, h(ctx, cmd)
	})
	return b.r.register(KindCommand, reflect.TypeFor[C](), handler{fn: fn})
}

// HandleResult registers h as the handler of commands of type C, with a
// result of type R that [DispatchResult] returns, for example the ID of
// what the command created. C and R are inferred from h.
func HandleResult[C, R any](b *CommandBus, h func(ctx context.Context, cmd C) (R, error)) error {
	return b.r.register(KindCommand, reflect.TypeFor[C](), handler{fn: typed(KindCommand, h), result: reflect.TypeFor[R]()})
}

// Dispatch runs cmd's handler through the middleware chain and returns
// its error; a result, if the handler has one, is dropped. A command
// type without a handler fails with an error matching [ErrNoHandler]; a
// nil command with one matching [nova.ErrInvalid].
func (b *CommandBus) Dispatch(ctx context.Context, cmd any) error {
	_, err := b.r.dispatch(ctx, KindCommand, cmd, nil)
	return err
}

// DispatchResult runs cmd's handler, registered with [HandleResult],
// and returns its result as an R. R is not inferred: write
// cqrs.DispatchResult[string](ctx, bus, cmd). If the handler returns no
// result or one not assignable to R, DispatchResult fails with an error
// matching [ErrResultType] before running anything. A command skipped by
// [Idempotency] as already handled yields R's zero value.
func DispatchResult[R any](ctx context.Context, b *CommandBus, cmd any) (R, error) {
	res, err := b.r.dispatch(ctx, KindCommand, cmd, reflect.TypeFor[R]())
	if err != nil {
		var zero R
		return zero, err
	}
	return result[R](KindCommand, cmd, res)
}
