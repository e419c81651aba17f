package orders_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/examples/orders"
)

func TestStock(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := orders.NewStock(map[string]int{"a": 5, "b": 1})

	id, err := s.Reserve(ctx, "1", []orders.Line{{SKU: "a", Quantity: 2}, {SKU: "b", Quantity: 1}})
	if err != nil || id == "" {
		t.Fatalf("Reserve = %q, %v", id, err)
	}
	again, err := s.Reserve(ctx, "1", []orders.Line{{SKU: "a", Quantity: 2}, {SKU: "b", Quantity: 1}})
	if err != nil || again != id || s.Level("a") != 3 {
		t.Fatalf("repeated Reserve = %q, %v, level a %d; want %q, taking nothing more", again, err, s.Level("a"), id)
	}
	// All or none: a is available, b is not, so neither is taken.
	_, err = s.Reserve(ctx, "2", []orders.Line{{SKU: "a", Quantity: 1}, {SKU: "b", Quantity: 1}})
	if !errors.Is(err, orders.ErrOutOfStock) || s.Level("a") != 3 || s.Holds("2") {
		t.Fatalf("Reserve past the level = %v, level a %d", err, s.Level("a"))
	}
	if _, err := s.Reserve(ctx, "3", []orders.Line{{SKU: "zzz", Quantity: 1}}); !errors.Is(err, orders.ErrOutOfStock) {
		t.Fatalf("Reserve of an unknown SKU = %v, want ErrOutOfStock", err)
	}
	if err := s.Release(ctx, "1"); err != nil {
		t.Fatal(err)
	}
	if s.Level("a") != 5 || s.Level("b") != 1 || s.Holds("1") {
		t.Fatalf("after release: a %d, b %d", s.Level("a"), s.Level("b"))
	}
	if err := s.Release(ctx, "1"); err != nil || s.Level("a") != 5 {
		t.Fatalf("second release = %v, level a %d", err, s.Level("a"))
	}
}

func TestBank(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	var zero orders.Bank // accepts everything
	if _, err := zero.Charge(ctx, "1", 1_000_000); err != nil {
		t.Fatalf("zero Bank declined: %v", err)
	}

	b := &orders.Bank{DeclineFunc: orders.DeclineAbove(500)}
	id, err := b.Charge(ctx, "1", 500)
	if err != nil || id == "" {
		t.Fatalf("Charge = %q, %v", id, err)
	}
	if again, err := b.Charge(ctx, "1", 500); err != nil || again != id {
		t.Fatalf("repeated Charge = %q, %v; want %q", again, err, id)
	}
	if _, err := b.Charge(ctx, "1", 400); err == nil {
		t.Fatal("a second charge of another amount succeeded")
	}
	if _, err := b.Charge(ctx, "2", 501); !errors.Is(err, orders.ErrPaymentDeclined) {
		t.Fatalf("Charge over the limit = %v, want ErrPaymentDeclined", err)
	}
	if held, _ := b.Totals(); held != 500 {
		t.Fatalf("held %d, want 500", held)
	}
	if err := b.Refund(ctx, "1"); err != nil {
		t.Fatal(err)
	}
	if err := b.Refund(ctx, "1"); err != nil {
		t.Fatal(err)
	}
	if held, refunded := b.Totals(); held != 0 || refunded != 500 || b.Charged("1") != 0 {
		t.Fatalf("after refunds: held %d, refunded %d", held, refunded)
	}
}

func TestStandInsRejectBadInput(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := orders.NewStock(map[string]int{"a": 5})
	b := &orders.Bank{}
	ok := []orders.Line{{SKU: "a", Quantity: 1}}
	tests := []struct {
		name string
		call func() error
	}{
		{"reserve empty ID", func() error { _, err := s.Reserve(ctx, "", ok); return err }},
		{"reserve no lines", func() error { _, err := s.Reserve(ctx, "1", nil); return err }},
		{"reserve zero quantity", func() error { _, err := s.Reserve(ctx, "1", []orders.Line{{SKU: "a"}}); return err }},
		{"release empty ID", func() error { return s.Release(ctx, "") }},
		{"charge empty ID", func() error { _, err := b.Charge(ctx, "", 1); return err }},
		{"charge zero", func() error { _, err := b.Charge(ctx, "1", 0); return err }},
		{"charge negative", func() error { _, err := b.Charge(ctx, "1", -1); return err }},
		{"refund empty ID", func() error { return b.Refund(ctx, "") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, nova.ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
		})
	}
	if s.Level("a") != 5 || s.Holds("1") {
		t.Error("bad input changed the stock")
	}
	if held, _ := b.Totals(); held != 0 {
		t.Error("bad input charged")
	}
}

func TestSampleOrders(t *testing.T) {
	t.Parallel()
	seen := make(map[int]bool)
	for i := range 500 {
		cmd := orders.SampleOrder(i)
		if err := cmd.Validate(); err != nil {
			t.Fatalf("sample %d is invalid: %v", i, err)
		}
		if !reflect.DeepEqual(cmd, orders.SampleOrder(i)) {
			t.Fatalf("sample %d differs between calls", i)
		}
		seen[len(cmd.Lines)] = true
	}
	if len(seen) != 3 {
		t.Errorf("line counts seen: %v, want 1, 2 and 3", seen)
	}
	if orders.SampleOrder(7).OrderID != "00007" {
		t.Errorf("sample 7 has ID %q", orders.SampleOrder(7).OrderID)
	}
}

func TestRegistry(t *testing.T) {
	t.Parallel()
	r := orders.NewRegistry()
	for _, e := range []any{orders.Placed{}, orders.StockReserved{}, orders.Paid{}, orders.Shipped{}, orders.Cancelled{}} {
		if _, err := r.TypeName(e); err != nil {
			t.Errorf("%T: %v", e, err)
		}
	}
	if err := orders.Register(r); err == nil {
		t.Error("registering twice succeeded")
	}
}
