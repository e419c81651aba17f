package cqrs_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/novamem"
)

// PlaceOrder is a self-executing command ([cqrs.Command]): it executes
// against a command store and returns the aggregate's ID. Its ID makes it
// idempotent and becomes its events' causation ID.
type PlaceOrder struct {
	ID       string
	Order    string
	Customer string
}

func (c PlaceOrder) CommandID() string { return c.ID }

func (c PlaceOrder) Validate() error {
	if c.Customer == "" {
		return fmt.Errorf("order %s: no customer", c.Order)
	}
	return nil
}

func (c PlaceOrder) Execute(ctx context.Context, store cqrs.CommandStore) (string, error) {
	data, _ := json.Marshal(OrderPlaced{Customer: c.Customer})
	// An event ID derived from the command's type and ID makes a rerun a
	// no-op.
	key, _ := cqrs.KeyOf(c)
	event := nova.EventData{ID: key.EventID(0), Type: "order.placed", Data: data}
	_, err := store.SaveEvent(ctx, "order-"+c.Order, nova.NoStream, event)
	return "order-" + c.Order, err
}

// The self-executing command and query interfaces, satisfied.
var (
	_ cqrs.Command             = PlaceOrder{}
	_ cqrs.Query[OrderSummary] = GetOrderSummary{}
)

// OrderPlaced is the event PlaceOrder saves.
type OrderPlaced struct {
	Customer string `json:"customer"`
}

// OrderSummary is the read model; GetOrderSummary is a self-executing
// query ([cqrs.Query]), executing against a query store.
type OrderSummary struct {
	Order    string `json:"order"`
	Customer string `json:"customer"`
	Events   int    `json:"events"`
}

type GetOrderSummary struct{ Order string }

func (q GetOrderSummary) Execute(ctx context.Context, store cqrs.QueryStore) (OrderSummary, error) {
	return cqrs.GetProjection[OrderSummary](ctx, store, "order-summary:"+q.Order)
}

// Example shows a command going through a bus with middleware, its
// events in the store, a projection of them in a query store, and a
// query reading it back.
func Example() {
	ctx := context.Background()
	events, err := novamem.New(novamem.Config{})
	if err != nil {
		panic(err)
	}
	defer events.Close()
	// One in-memory value that is both a command store and a query store.
	store := novamem.NewCQRSStore(events, nil)

	idem := cqrs.Idempotency(new(cqrs.MemoryHandled))
	retry, err := cqrs.Retry(cqrs.RetryConfig{}) // on nova.ErrConcurrency, with defaults
	if err != nil {
		panic(err)
	}
	bus := cqrs.NewCommandBus(cqrs.Validation(), cqrs.Correlation(), idem, retry)
	// PlaceOrder's Execute is its handler on the bus, inside the bus's
	// middleware.
	if err := cqrs.RegisterCommand[PlaceOrder](bus, store); err != nil {
		panic(err)
	}

	qbus := new(cqrs.QueryBus)
	if err := cqrs.RegisterQuery[GetOrderSummary](qbus, store); err != nil {
		panic(err)
	}

	cmd := PlaceOrder{ID: "cmd-1", Order: "42", Customer: "ada"}
	fmt.Println("place:", bus.Dispatch(ctx, cmd))
	fmt.Println("again:", bus.Dispatch(ctx, cmd)) // already handled: not run twice
	fmt.Println("invalid:", bus.Dispatch(ctx, PlaceOrder{ID: "cmd-2", Order: "43"}))

	// A projection: fold the order's events into its summary. (The
	// projection runner does this from a subscription, with checkpoints.)
	var sum OrderSummary
	for e, err := range store.Events(ctx, "order-42") {
		if err != nil {
			panic(err)
		}
		var placed OrderPlaced
		if err := json.Unmarshal(e.Data, &placed); err != nil {
			panic(err)
		}
		sum = OrderSummary{Order: "42", Customer: placed.Customer, Events: sum.Events + 1}
		fmt.Printf("event %s v%d: correlation %s, causation %s\n", e.Type, e.Version, e.Metadata.CorrelationID, e.Metadata.CausationID)
	}
	if err := cqrs.UpsertProjection(ctx, store, "order-summary:42", sum); err != nil {
		panic(err)
	}

	view, err := cqrs.Ask[OrderSummary](ctx, qbus, GetOrderSummary{Order: "42"})
	fmt.Printf("query: %+v %v\n", view, err)
	_, err = cqrs.Ask[OrderSummary](ctx, qbus, GetOrderSummary{Order: "43"})
	fmt.Println("missing:", err)
	// Output:
	// place: <nil>
	// again: <nil>
	// invalid: cqrs: invalid command cqrs_test.PlaceOrder: order 43: no customer
	// event order.placed v1: correlation cmd-1, causation cmd-1
	// query: {Order:42 Customer:ada Events:1} <nil>
	// missing: novamem: projection "order-summary:43": nova: not found
}
