package orders_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/aggregate"
	"github.com/nova-go/nova/examples/orders"
)

var (
	lines  = []orders.Line{{SKU: "book", Quantity: 2, UnitPrice: 4500}, {SKU: "mug", Quantity: 1, UnitPrice: 1200}}
	place  = orders.PlaceOrder{OrderID: "7", Customer: "ada", Lines: lines}
	placed = orders.Placed{OrderID: "7", Customer: "ada", Lines: lines, Total: 10200}
	resvd  = orders.StockReserved{OrderID: "7", ReservationID: "res-7"}
	paid   = orders.Paid{OrderID: "7", PaymentID: "pay-7", Amount: 10200}
	ship   = orders.Shipped{OrderID: "7", TrackingID: "TRK-7"}
)

func cancelled(reason string) orders.Cancelled {
	return orders.Cancelled{OrderID: "7", Reason: reason}
}

// Decisions, one per command.
func placeIt(o *orders.Order) ([]any, error)   { return o.Place(place) }
func reserveIt(o *orders.Order) ([]any, error) { return o.ReserveStock("res-7") }
func payIt(o *orders.Order) ([]any, error)     { return o.Pay(10200, "pay-7") }
func shipIt(o *orders.Order) ([]any, error)    { return o.Ship("TRK-7") }
func cancelIt(o *orders.Order) ([]any, error)  { return o.Cancel("changed my mind") }

func TestTransitions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		given  []any
		when   func(*orders.Order) ([]any, error)
		then   []any
		status orders.Status
	}{
		{"place", nil, placeIt, []any{placed}, orders.StatusPlaced},
		{"reserve", []any{placed}, reserveIt, []any{resvd}, orders.StatusReserved},
		{"pay", []any{placed, resvd}, payIt, []any{paid}, orders.StatusPaid},
		{"ship", []any{placed, resvd, paid}, shipIt, []any{ship}, orders.StatusShipped},
		{"cancel placed", []any{placed}, cancelIt, []any{cancelled("changed my mind")}, orders.StatusCancelled},
		{"cancel reserved releases stock", []any{placed, resvd}, cancelIt,
			[]any{orders.Cancelled{OrderID: "7", Reason: "changed my mind", ReleaseStock: true}}, orders.StatusCancelled},
		{"cancel paid releases and refunds", []any{placed, resvd, paid}, cancelIt,
			[]any{orders.Cancelled{OrderID: "7", Reason: "changed my mind", ReleaseStock: true, Refund: 10200}}, orders.StatusCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			aggregate.Given[orders.Order](t, tt.given...).When(tt.when).Then(tt.then...).
				ThenState(func(o *orders.Order) {
					if o.Status != tt.status {
						t.Errorf("status = %q, want %q", o.Status, tt.status)
					}
				})
		})
	}
}

func TestApplyBuildsTheState(t *testing.T) {
	t.Parallel()
	aggregate.Given[orders.Order](t, placed, resvd, paid, ship).ThenState(func(o *orders.Order) {
		want := orders.Order{ID: "7", Customer: "ada", Status: orders.StatusShipped, Lines: lines, Total: 10200,
			ReservationID: "res-7", PaymentID: "pay-7", Paid: 10200, TrackingID: "TRK-7"}
		if o.ID != want.ID || o.Customer != want.Customer || o.Status != want.Status || o.Total != want.Total ||
			o.ReservationID != want.ReservationID || o.PaymentID != want.PaymentID || o.Paid != want.Paid ||
			o.TrackingID != want.TrackingID || len(o.Lines) != 2 {
			t.Errorf("state = %+v, want %+v", *o, want)
		}
	})
	aggregate.Given[orders.Order](t, placed, cancelled("out of stock")).ThenState(func(o *orders.Order) {
		if o.Status != orders.StatusCancelled || o.CancelReason != "out of stock" {
			t.Errorf("state = %+v, want cancelled for out of stock", *o)
		}
	})
}

func TestApplyRefusesForeignEvents(t *testing.T) {
	t.Parallel()
	var o orders.Order
	if err := o.Apply(struct{ X int }{1}); err == nil {
		t.Fatal("Apply accepted a foreign event")
	}
}

func TestRules(t *testing.T) {
	t.Parallel()
	gone := cancelled("changed my mind")
	tests := []struct {
		name  string
		given []any
		when  func(*orders.Order) ([]any, error)
		want  error
	}{
		{"place twice", []any{placed}, placeIt, orders.ErrAlreadyPlaced},
		{"reserve unplaced", nil, reserveIt, orders.ErrNotFound},
		{"reserve twice", []any{placed, resvd}, reserveIt, orders.ErrAlreadyReserved},
		{"reserve paid", []any{placed, resvd, paid}, reserveIt, orders.ErrAlreadyReserved},
		{"reserve cancelled", []any{placed, gone}, reserveIt, orders.ErrCancelled},
		{"pay unplaced", nil, payIt, orders.ErrNotFound},
		{"pay unreserved", []any{placed}, payIt, orders.ErrNotReserved},
		{"pay twice", []any{placed, resvd, paid}, payIt, orders.ErrAlreadyPaid},
		{"pay shipped", []any{placed, resvd, paid, ship}, payIt, orders.ErrAlreadyPaid},
		{"pay cancelled", []any{placed, resvd, gone}, payIt, orders.ErrCancelled},
		{"pay wrong amount", []any{placed, resvd}, func(o *orders.Order) ([]any, error) { return o.Pay(100, "pay-7") }, orders.ErrAmountMismatch},
		{"pay nothing", []any{placed, resvd}, func(o *orders.Order) ([]any, error) { return o.Pay(0, "pay-7") }, nova.ErrInvalid},
		{"pay negative", []any{placed, resvd}, func(o *orders.Order) ([]any, error) { return o.Pay(-5, "pay-7") }, nova.ErrInvalid},
		{"ship unplaced", nil, shipIt, orders.ErrNotFound},
		{"ship unpaid", []any{placed}, shipIt, orders.ErrNotPaid},
		{"ship reserved", []any{placed, resvd}, shipIt, orders.ErrNotPaid},
		{"ship twice", []any{placed, resvd, paid, ship}, shipIt, orders.ErrAlreadyShipped},
		{"ship cancelled", []any{placed, gone}, shipIt, orders.ErrCancelled},
		{"cancel unplaced", nil, cancelIt, orders.ErrNotFound},
		{"cancel shipped", []any{placed, resvd, paid, ship}, cancelIt, orders.ErrAlreadyShipped},
		{"cancel twice", []any{placed, gone}, cancelIt, orders.ErrCancelled},
		{"cancel without reason", []any{placed}, func(o *orders.Order) ([]any, error) { return o.Cancel("") }, nova.ErrInvalid},
		{"reserve without reservation", []any{placed}, func(o *orders.Order) ([]any, error) { return o.ReserveStock("") }, nova.ErrInvalid},
		{"pay without payment ID", []any{placed, resvd}, func(o *orders.Order) ([]any, error) { return o.Pay(10200, "") }, nova.ErrInvalid},
		{"ship without tracking", []any{placed, resvd, paid}, func(o *orders.Order) ([]any, error) { return o.Ship("") }, nova.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			aggregate.Given[orders.Order](t, tt.given...).When(tt.when).ThenError(tt.want)
		})
	}
}

func TestErrNotFoundMatchesNova(t *testing.T) {
	t.Parallel()
	if !errors.Is(orders.ErrNotFound, nova.ErrNotFound) {
		t.Fatal("orders.ErrNotFound does not match nova.ErrNotFound")
	}
	if errors.Is(orders.ErrCancelled, nova.ErrNotFound) {
		t.Fatal("orders.ErrCancelled matches nova.ErrNotFound")
	}
}

func TestPlaceValidation(t *testing.T) {
	t.Parallel()
	ok := orders.Line{SKU: "book", Quantity: 1, UnitPrice: 100}
	tests := []struct {
		name    string
		cmd     orders.PlaceOrder
		mention string
	}{
		{"empty order ID", orders.PlaceOrder{Customer: "ada", Lines: []orders.Line{ok}}, "order ID"},
		{"control char in ID", orders.PlaceOrder{OrderID: "a\tb", Customer: "ada", Lines: []orders.Line{ok}}, "control"},
		{"C1 control char in ID", orders.PlaceOrder{OrderID: "a\u0085b", Customer: "ada", Lines: []orders.Line{ok}}, "control"},
		{"long ID", orders.PlaceOrder{OrderID: strings.Repeat("9", 201), Customer: "ada", Lines: []orders.Line{ok}}, "limit"},
		{"bad UTF-8", orders.PlaceOrder{OrderID: "\xff", Customer: "ada", Lines: []orders.Line{ok}}, "UTF-8"},
		{"empty customer", orders.PlaceOrder{OrderID: "7", Lines: []orders.Line{ok}}, "customer"},
		{"no lines", orders.PlaceOrder{OrderID: "7", Customer: "ada"}, "no lines"},
		{"too many lines", orders.PlaceOrder{OrderID: "7", Customer: "ada", Lines: manyLines(orders.MaxLines + 1)}, "lines"},
		{"empty SKU", orders.PlaceOrder{OrderID: "7", Customer: "ada", Lines: []orders.Line{{Quantity: 1, UnitPrice: 1}}}, "SKU"},
		{"SKU twice", orders.PlaceOrder{OrderID: "7", Customer: "ada", Lines: []orders.Line{ok, ok}}, "twice"},
		{"zero quantity", orders.PlaceOrder{OrderID: "7", Customer: "ada", Lines: []orders.Line{{SKU: "x", UnitPrice: 1}}}, "quantity"},
		{"negative quantity", orders.PlaceOrder{OrderID: "7", Customer: "ada", Lines: []orders.Line{{SKU: "x", Quantity: -1, UnitPrice: 1}}}, "quantity"},
		{"huge quantity", orders.PlaceOrder{OrderID: "7", Customer: "ada", Lines: []orders.Line{{SKU: "x", Quantity: orders.MaxQuantity + 1, UnitPrice: 1}}}, "quantity"},
		{"zero price", orders.PlaceOrder{OrderID: "7", Customer: "ada", Lines: []orders.Line{{SKU: "x", Quantity: 1}}}, "price"},
		{"negative price", orders.PlaceOrder{OrderID: "7", Customer: "ada", Lines: []orders.Line{{SKU: "x", Quantity: 1, UnitPrice: -1}}}, "price"},
		{"huge price", orders.PlaceOrder{OrderID: "7", Customer: "ada", Lines: []orders.Line{{SKU: "x", Quantity: 1, UnitPrice: orders.MaxUnitPrice + 1}}}, "price"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cmd.Validate()
			if !errors.Is(err, nova.ErrInvalid) || !strings.Contains(err.Error(), tt.mention) || !strings.HasPrefix(err.Error(), "orders: ") {
				t.Fatalf("Validate = %v; want an orders: error matching ErrInvalid mentioning %q", err, tt.mention)
			}
			aggregate.Given[orders.Order](t).
				When(func(o *orders.Order) ([]any, error) { return o.Place(tt.cmd) }).
				ThenError(nova.ErrInvalid)
		})
	}
}

func TestLargestOrderTotalDoesNotOverflow(t *testing.T) {
	t.Parallel()
	cmd := orders.PlaceOrder{OrderID: "big", Customer: "ada", Lines: manyLines(orders.MaxLines)}
	for i := range cmd.Lines {
		cmd.Lines[i].Quantity, cmd.Lines[i].UnitPrice = orders.MaxQuantity, orders.MaxUnitPrice
	}
	var o orders.Order
	evs, err := o.Place(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := evs[0].(orders.Placed).Total, int64(orders.MaxLines)*orders.MaxQuantity*orders.MaxUnitPrice; got != want || got <= 0 {
		t.Fatalf("total = %d, want %d", got, want)
	}
}

func manyLines(n int) []orders.Line {
	ls := make([]orders.Line, n)
	for i := range ls {
		ls[i] = orders.Line{SKU: "sku-" + strings.Repeat("x", i%5) + string(rune('a'+i%26)) + string(rune('a'+i/26)), Quantity: 1, UnitPrice: 1}
	}
	return ls
}
