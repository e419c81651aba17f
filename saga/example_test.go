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
	store, _ := novamem.New(novamem.Config{})
	defer store.Close()
	b, _ := broker.NewMemory(broker.MemoryConfig{})
	defer b.Close()
	runs := novamem.NewRunStore(store)
	c, _ := saga.NewCoordinator(saga.Config{Runs: runs, Broker: b})

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

// A worker drives runs started elsewhere: Start records a run, due now,
// and returns; the worker claims it, runs its steps under a lease, and
// resumes it from its stream if a process dies on the way. Here the charge
// is declined and the reservation's release fails: the run is Stuck until
// an operator retries the release, which is in the run's timeline.
func ExampleWorker() {
	ctx := context.Background()
	store, _ := novamem.New(novamem.Config{})
	defer store.Close()
	runs := novamem.NewRunStore(store)
	ended := make(chan saga.RunInfo, 10)
	c, _ := saga.NewCoordinator(saga.Config{Runs: runs,
		OnEndFunc: func(_ context.Context, r saga.RunInfo) { ended <- r }})

	warehouseUp := make(chan struct{})
	def, _ := saga.Define("order",
		saga.Step[Order]{
			Name:    "reserve",
			Execute: func(context.Context, saga.StepContext, *Order) error { return nil },
			Compensate: func(context.Context, saga.StepContext, *Order) error {
				select {
				case <-warehouseUp:
					return nil
				default:
					return errors.New("warehouse unreachable")
				}
			},
			CompensateRetry: saga.RetryPolicy{MaxAttempts: 1},
		},
		saga.Step[Order]{
			Name:    "charge",
			Execute: func(context.Context, saga.StepContext, *Order) error { return saga.Permanent(errDeclined) },
		},
	)

	w, _ := saga.NewWorker(c, saga.WorkerConfig{})
	_ = saga.Register(w, def)
	_ = w.Start(ctx)
	defer w.Stop(ctx)

	_, _ = saga.Start(ctx, c, def, "order-3", Order{ID: "3"})
	r := <-ended
	fmt.Println(r.RunID, r.Status, r.Step)

	close(warehouseUp)
	_, _ = saga.RetryRun(ctx, runs, "order", "order-3", "alice", "warehouse back")
	r = <-ended
	fmt.Println(r.RunID, r.Status)

	timeline, _ := saga.Timeline(ctx, runs, "order", "order-3")
	for _, e := range timeline {
		fmt.Printf("%d %s step=%q attempt=%d status=%s", e.Version, e.Type, e.Step, e.Attempt, e.Status)
		if e.Actor != "" {
			fmt.Printf(" by %s: %s", e.Actor, e.Reason)
		}
		fmt.Println()
	}
	// Output:
	// order-3 stuck reserve
	// order-3 compensated
	// 1 saga.run_started step="" attempt=0 status=running
	// 2 saga.step_started step="reserve" attempt=1 status=running
	// 3 saga.step_succeeded step="reserve" attempt=1 status=running
	// 4 saga.step_started step="charge" attempt=1 status=running
	// 5 saga.step_failed step="charge" attempt=1 status=compensating
	// 6 saga.compensation_started step="reserve" attempt=1 status=compensating
	// 7 saga.compensation_failed step="reserve" attempt=1 status=stuck
	// 8 saga.run_retried step="" attempt=0 status=compensating by alice: warehouse back
	// 9 saga.compensation_started step="reserve" attempt=2 status=compensating
	// 10 saga.step_compensated step="reserve" attempt=2 status=compensating
	// 11 saga.run_compensated step="" attempt=0 status=compensated
}
