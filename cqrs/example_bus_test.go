package cqrs_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/cqrs"
)

type RenameCustomer struct {
	Customer, Name string
}

type CustomerName struct{ Customer string }

// Handlers are typed functions; their type arguments are inferred.
func ExampleHandle() {
	ctx := context.Background()
	names := map[string]string{}

	bus := new(cqrs.CommandBus)
	if err := cqrs.Handle(bus, func(ctx context.Context, cmd RenameCustomer) error {
		names[cmd.Customer] = cmd.Name
		return nil
	}); err != nil {
		panic(err)
	}
	err := cqrs.Handle(bus, func(ctx context.Context, cmd RenameCustomer) error { return nil })
	fmt.Println(errors.Is(err, cqrs.ErrHandlerExists))

	fmt.Println(bus.Dispatch(ctx, RenameCustomer{Customer: "c1", Name: "Ada"}))
	err = bus.Dispatch(ctx, CustomerName{Customer: "c1"})
	fmt.Println(errors.Is(err, cqrs.ErrNoHandler), err)

	qbus := new(cqrs.QueryBus)
	if err := cqrs.HandleQuery(qbus, func(ctx context.Context, q CustomerName) (string, error) {
		name, ok := names[q.Customer]
		if !ok {
			return "", fmt.Errorf("customer %s: %w", q.Customer, nova.ErrNotFound)
		}
		return name, nil
	}); err != nil {
		panic(err)
	}
	fmt.Println(cqrs.Ask[string](ctx, qbus, CustomerName{Customer: "c1"}))
	_, err = cqrs.Ask[int](ctx, qbus, CustomerName{Customer: "c1"})
	fmt.Println(errors.Is(err, cqrs.ErrResultType))
	// Output:
	// true
	// <nil>
	// true cqrs: no handler for command cqrs_test.CustomerName
	// Ada <nil>
	// true
}

// Retry runs a handler again when it loses an optimistic concurrency
// race, with capped, jittered backoff.
func ExampleRetry() {
	retry, err := cqrs.Retry(cqrs.RetryConfig{Attempts: 3})
	if err != nil {
		panic(err)
	}
	bus := cqrs.NewCommandBus(retry)
	attempts := 0
	if err := cqrs.Handle(bus, func(ctx context.Context, cmd RenameCustomer) error {
		attempts++
		if attempts < 3 {
			return &nova.ConcurrencyError{Stream: "customer-" + cmd.Customer, Expected: nova.Exact(4), Actual: 5}
		}
		return nil
	}); err != nil {
		panic(err)
	}
	fmt.Println(bus.Dispatch(context.Background(), RenameCustomer{Customer: "c1", Name: "Ada"}), attempts)
	// Output: <nil> 3
}
