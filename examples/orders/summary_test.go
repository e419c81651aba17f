package orders_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/examples/orders"
	"github.com/nova-go/nova/novamem"
	"github.com/nova-go/nova/projection"
)

// lastPosition returns the position of the last event of an order's
// stream: what a caller waits for to read its own writes.
func lastPosition(t *testing.T, s nova.Store, orderID string) nova.Position {
	t.Helper()
	for e, err := range s.ReadStream(context.Background(), orders.Category+"-"+orderID, nova.ReadStreamOptions{Direction: nova.Backwards, Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		return e.Position
	}
	t.Fatalf("order %s has no events", orderID)
	return nova.Start
}

func startSummary(t *testing.T, e *env, qs cqrs.QueryStore) *projection.Runner {
	t.Helper()
	p, err := orders.NewSummaryProjection(orders.NewRegistry(), qs)
	if err != nil {
		t.Fatal(err)
	}
	r, err := projection.NewRunner(projection.Config{Store: e.store, Projection: p})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return r
}

// A command's events reach the summary, and a query reads them back once
// WaitFor says the projection has passed the command's last event.
func TestSummaryRoundTrip(t *testing.T) {
	t.Parallel()
	e := setup(t)
	qs := novamem.NewQueryStore()
	r := startSummary(t, e, qs)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	cases := []struct {
		cmd    orders.PlaceOrder
		status orders.Status
	}{
		{orders.SampleOrder(1), orders.StatusShipped},
		{orders.PlaceOrder{OrderID: "big", Customer: "c", Lines: []orders.Line{{SKU: orders.Catalog()[0].SKU, Quantity: 5, UnitPrice: 50_000}}}, orders.StatusCancelled},
	}
	for _, c := range cases {
		o, err := e.svc.Fulfil(ctx, c.cmd)
		if c.status == orders.StatusCancelled && !errors.Is(err, orders.ErrPaymentDeclined) {
			t.Fatalf("fulfil %s: %v, want a declined payment", c.cmd.OrderID, err)
		}
		if c.status != orders.StatusCancelled && err != nil {
			t.Fatalf("fulfil %s: %v", c.cmd.OrderID, err)
		}
		if err := r.WaitFor(ctx, lastPosition(t, e.store, c.cmd.OrderID)); err != nil {
			t.Fatal(err)
		}
		s, err := orders.GetSummary{OrderID: c.cmd.OrderID}.Execute(ctx, qs)
		if err != nil {
			t.Fatal(err)
		}
		if s.Status != c.status || s.Total != o.Total || s.Customer != c.cmd.Customer || s.OrderID != c.cmd.OrderID {
			t.Errorf("summary %+v, want status %s total %d", s, c.status, o.Total)
		}
		if c.status == orders.StatusCancelled && (s.Paid != 0 || s.Reason == "") {
			t.Errorf("cancelled summary %+v: want nothing paid and a reason", s)
		}
	}
	if _, err := (orders.GetSummary{OrderID: "never"}).Execute(ctx, qs); !errors.Is(err, orders.ErrNotFound) {
		t.Errorf("summary of an unknown order: %v, want ErrNotFound", err)
	}
	if _, err := (orders.GetSummary{}).Execute(ctx, qs); !errors.Is(err, nova.ErrInvalid) {
		t.Errorf("summary of an empty ID: %v, want ErrInvalid", err)
	}
}

// Delivering an event again changes nothing: the summary keeps the
// version it reflects.
func TestSummaryIgnoresRedelivery(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	qs := novamem.NewQueryStore()
	if _, err := e.svc.Fulfil(ctx, orders.SampleOrder(2)); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the whole log twice, as after a lost checkpoint
		r := startSummary(t, e, qs)
		if err := r.WaitFor(ctx, lastPosition(t, e.store, orders.SampleOrder(2).OrderID)); err != nil {
			t.Fatal(err)
		}
		if err := r.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}
	s, err := orders.GetSummary{OrderID: orders.SampleOrder(2).OrderID}.Execute(ctx, qs)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, l := range orders.SampleOrder(2).Lines {
		want += l.Quantity
	}
	if s.Items != want || s.Status != orders.StatusShipped {
		t.Errorf("after redelivery: %+v, want %d items, shipped", s, want)
	}
}
