package orders_test

import (
	"context"
	"errors"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/examples/orders"
	"github.com/nova-go/nova/novamem"
	"github.com/nova-go/nova/saga"
)

func runFulfil(t *testing.T, e *env, cmd orders.PlaceOrder) (saga.Execution[orders.Fulfilment], error) {
	t.Helper()
	def, err := orders.FulfilSaga(e.svc)
	if err != nil {
		t.Fatal(err)
	}
	runs := novamem.NewRunStore(e.store)
	c, err := saga.NewCoordinator(saga.Config{Runs: runs})
	if err != nil {
		t.Fatal(err)
	}
	return saga.Run(context.Background(), c, def, cmd.OrderID, orders.Fulfilment{Order: cmd})
}

func TestFulfilSaga(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sku := orders.Catalog()[0].SKU

	t.Run("completes", func(t *testing.T) {
		t.Parallel()
		e := setup(t)
		cmd := orders.SampleOrder(1)
		x, err := runFulfil(t, e, cmd)
		if err != nil || x.Status != saga.Completed {
			t.Fatalf("run: %s, %v", x.Status, err)
		}
		o, err := e.svc.Get(ctx, cmd.OrderID)
		if err != nil {
			t.Fatal(err)
		}
		if o.Status != orders.StatusShipped || x.Data.TrackingID != o.TrackingID || x.Data.PaymentID == "" || x.Data.ReservationID == "" {
			t.Errorf("order %+v, saga data %+v", o, x.Data)
		}
		if e.bank.Charged(cmd.OrderID) != o.Total {
			t.Errorf("bank holds %d, want %d", e.bank.Charged(cmd.OrderID), o.Total)
		}
		// A second Run of the same order changes nothing.
		again, err := runFulfil(t, e, cmd)
		if err != nil || again.Version != x.Version {
			t.Errorf("second run: %v, version %d, want %d", err, again.Version, x.Version)
		}
	})

	t.Run("declined payment compensates", func(t *testing.T) {
		t.Parallel()
		e := setup(t)
		cmd := orders.PlaceOrder{OrderID: "big", Customer: "c", Lines: []orders.Line{{SKU: sku, Quantity: 3, UnitPrice: 50_000}}}
		before := e.stock.Level(sku)
		x, err := runFulfil(t, e, cmd)
		if !errors.Is(err, orders.ErrPaymentDeclined) || x.Status != saga.Compensated {
			t.Fatalf("run: %s, %v; want compensated after a declined payment", x.Status, err)
		}
		if got := x.CompensatedSteps; len(got) != 2 || got[0] != "reserve" || got[1] != "place" {
			t.Errorf("compensated %v, want [reserve place]", got)
		}
		o, err := e.svc.Get(ctx, cmd.OrderID)
		if err != nil {
			t.Fatal(err)
		}
		if o.Status != orders.StatusCancelled || o.CancelReason != orders.CompensatedReason {
			t.Errorf("order %s (%s), want cancelled", o.Status, o.CancelReason)
		}
		if e.stock.Level(sku) != before || e.stock.Holds(cmd.OrderID) {
			t.Errorf("stock %d (held %v), want %d released", e.stock.Level(sku), e.stock.Holds(cmd.OrderID), before)
		}
	})

	t.Run("out of stock is not retried", func(t *testing.T) {
		t.Parallel()
		e := setup(t)
		cmd := orders.PlaceOrder{OrderID: "many", Customer: "c", Lines: []orders.Line{{SKU: sku, Quantity: 1000, UnitPrice: 1}}}
		x, err := runFulfil(t, e, cmd)
		if !errors.Is(err, orders.ErrOutOfStock) || x.Status != saga.Compensated || x.Attempt != 1 {
			t.Fatalf("run: %s attempt %d, %v; want compensated after one attempt", x.Status, x.Attempt, err)
		}
		if o, _ := e.svc.Get(ctx, cmd.OrderID); o == nil || o.Status != orders.StatusCancelled {
			t.Errorf("order %+v, want cancelled", o)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		t.Parallel()
		e := setup(t)
		x, err := runFulfil(t, e, orders.PlaceOrder{OrderID: "empty", Customer: "c"})
		if !errors.Is(err, nova.ErrInvalid) || x.Status != saga.Failed {
			t.Errorf("order without lines: %s, %v; want failed, nothing to compensate", x.Status, err)
		}
	})
}
