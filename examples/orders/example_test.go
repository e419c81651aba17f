package orders_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/nova-go/nova/examples/orders"
	"github.com/nova-go/nova/novamem"
)

func Example() {
	ctx := context.Background()
	store, err := novamem.New(novamem.Config{})
	if err != nil {
		panic(err)
	}
	defer store.Close()

	svc, err := orders.NewService(orders.Config{
		Store:     store,
		Inventory: orders.NewStock(map[string]int{"book": 3, "chair": 5}),
		Payments:  &orders.Bank{DeclineFunc: orders.DeclineAbove(50_000)},
	})
	if err != nil {
		panic(err)
	}

	for _, cmd := range []orders.PlaceOrder{
		{OrderID: "1", Customer: "ada", Lines: []orders.Line{{SKU: "book", Quantity: 2, UnitPrice: 4_500}}},
		{OrderID: "2", Customer: "bob", Lines: []orders.Line{{SKU: "book", Quantity: 2, UnitPrice: 4_500}}},
		{OrderID: "3", Customer: "cy", Lines: []orders.Line{{SKU: "chair", Quantity: 3, UnitPrice: 24_900}}},
	} {
		o, err := svc.Fulfil(ctx, cmd)
		switch {
		case errors.Is(err, orders.ErrOutOfStock), errors.Is(err, orders.ErrPaymentDeclined):
			fmt.Printf("order %s: %s (%s)\n", o.ID, o.Status, o.CancelReason)
		case err != nil:
			panic(err)
		default:
			fmt.Printf("order %s: %s, %d paid\n", o.ID, o.Status, o.Paid)
		}
	}
	// Output:
	// order 1: shipped, 9000 paid
	// order 2: cancelled (out of stock)
	// order 3: cancelled (payment declined)
}
