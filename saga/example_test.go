package saga_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/novamem"
	"github.com/nova-go/nova/saga"
)

// Order is the saga data the steps share.
type Order struct {
	ID          string
	Card        string
	Reservation string
	Payment     string
}

var errDeclined = errors.New("card declined")

// A three-step order saga: reserve stock, charge the card, ship. The second
// run's card is declined, so its reservation is released.
func Example() {
	ctx := context.Background()
	store, _ := novamem.New(nil)
	defer store.Close()
	b, _ := broker.NewMemory(nil)
	defer b.Close()
	c, _ := saga.NewCoordinator(saga.Config{Runs: novamem.NewRunStore(store), Broker: b})

	def, err := saga.Define("order",
		saga.Step[Order]{
			Name: "reserve",
			Execute: func(_ context.Context, sc saga.StepContext, o *Order) error {
				o.Reservation = "R-" + o.ID
				fmt.Println("reserve", o.ID, "key", sc.IdempotencyKey)
				return nil
			},
			Compensate: func(_ context.Context, _ saga.StepContext, o *Order) error {
				fmt.Println("release", o.Reservation)
				return nil
			},
		},
		saga.Step[Order]{
			Name: "charge",
			Execute: func(_ context.Context, _ saga.StepContext, o *Order) error {
				if o.Card == "bad" {
					fmt.Println("charge", o.ID, "declined")
					return saga.Permanent(errDeclined)
				}
				o.Payment = "P-" + o.ID
				fmt.Println("charge", o.ID)
				return nil
			},
			Compensate: func(_ context.Context, _ saga.StepContext, o *Order) error {
				fmt.Println("refund", o.Payment)
				return nil
			},
		},
		saga.Step[Order]{
			Name: "ship",
			Execute: func(_ context.Context, _ saga.StepContext, o *Order) error {
				fmt.Println("ship", o.ID, "with", o.Reservation, o.Payment)
				return nil
			},
		},
	)
	if err != nil {
		fmt.Println(err)
		return
	}

	x, err := saga.Run(ctx, c, def, "order-1", Order{ID: "1", Card: "good"})
	fmt.Println(x.Status, x.CompletedSteps, err)

	x, err = saga.Run(ctx, c, def, "order-2", Order{ID: "2", Card: "bad"})
	fmt.Println(x.Status, x.CompensatedSteps, err, errors.Is(err, errDeclined))

	loaded, _ := saga.Load(ctx, c, def, "order-2")
	fmt.Println("loaded:", loaded.Status, loaded.FailedStep, loaded.Data.Reservation)

	events, _ := b.Poll(ctx, "saga.order.reserve.compensated", 10)
	fmt.Println("event:", events[0].ID)
	// Output:
	// reserve 1 key order/order-1/reserve
	// charge 1
	// ship 1 with R-1 P-1
	// completed [reserve charge ship] <nil>
	// reserve 2 key order/order-2/reserve
	// charge 2 declined
	// release R-2
	// compensated [reserve] saga: step "charge" failed: card declined true
	// loaded: compensated charge R-2
	// event: order-order-2-reserve-compensated-1
}
