package cqrs

import (
	"context"
	"reflect"
)

// QueryBus routes each query to the one handler registered for its
// dynamic type, through a chain of middleware, and returns the handler's
// result. The zero value is ready to use; it is safe for concurrent use,
// registration included.
type QueryBus struct {
	r registry
}

// NewQueryBus returns a bus with the given middleware (see
// [QueryBus.Use]).
func NewQueryBus(mw ...Middleware) *QueryBus {
	b := &QueryBus{}
	b.Use(mw...)
	return b
}

// Use appends middleware to the chain; the first given is outermost.
// It applies to every later query.
func (b *QueryBus) Use(mw ...Middleware) { b.r.use(mw) }

// HandleQuery registers h as the handler of queries of type Q, answering
// with an R; both are inferred from h:
//
//	err := cqrs.HandleQuery(qbus, func(ctx context.Context, q GetOrder) (OrderView, error) { ... })
//
// Queries are routed by their dynamic type; Q may not be an interface
// type. A second handler for Q fails with an error matching
// [ErrHandlerExists].
func HandleQuery[Q, R any](b *QueryBus, h func(ctx context.Context, q Q) (R, error)) error {
	return b.r.register(KindQuery, reflect.TypeFor[Q](), handler{fn: typed(KindQuery, h), result: reflect.TypeFor[R]()})
}

// Ask runs q's handler through the middleware chain and returns its
// result as an R. R is not inferred: write
// cqrs.Ask[OrderView](ctx, qbus, GetOrder{ID: id}). A query type without
// a handler fails with an error matching [ErrNoHandler]; a handler whose
// result is not assignable to R with one matching [ErrResultType],
// before it runs; a nil query with one matching [nova.ErrInvalid].
func Ask[R any](ctx context.Context, b *QueryBus, q any) (R, error) {
	var zero R
	res, err := b.r.dispatch(ctx, KindQuery, q, reflect.TypeFor[R]())
	if err != nil {
		return zero, err
	}
	return result[R](KindQuery, q, res)
}

// Dispatch runs q's handler and returns its result untyped, for code
// that routes queries it does not know, such as an HTTP gateway.
func (b *QueryBus) Dispatch(ctx context.Context, q any) (any, error) {
	return b.r.dispatch(ctx, KindQuery, q, nil)
}
