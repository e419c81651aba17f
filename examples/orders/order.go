package orders

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Status is where an order is in its lifecycle.
type Status string

// The statuses. An order that was never placed has the empty status.
const (
	StatusPlaced    Status = "placed"
	StatusReserved  Status = "reserved"
	StatusPaid      Status = "paid"
	StatusShipped   Status = "shipped"
	StatusCancelled Status = "cancelled"
)

// Limits on what an order may hold; larger commands are invalid.
const (
	MaxLines     = 100
	MaxQuantity  = 1_000_000
	MaxUnitPrice = 100_000_000 // cents
	maxTextLen   = 200
)

// PlaceOrder is the command that places an order.
type PlaceOrder struct {
	// OrderID is the new order's ID, chosen by the caller (so a retried
	// command cannot place two orders). Required.
	OrderID string
	// Customer is who places the order. Required.
	Customer string
	// Lines are the products ordered: at least one, each SKU once.
	Lines []Line
}

// Validate checks the command: an order ID and a customer, at least one
// line, each with a SKU, a positive quantity and a positive unit price,
// no SKU twice. Errors match nova.ErrInvalid.
func (c PlaceOrder) Validate() error {
	if err := validateText("order ID", c.OrderID); err != nil {
		return err
	}
	if err := validateText("customer", c.Customer); err != nil {
		return err
	}
	switch {
	case len(c.Lines) == 0:
		return invalidf("order %s has no lines", c.OrderID)
	case len(c.Lines) > MaxLines:
		return invalidf("order %s has %d lines, more than the limit of %d", c.OrderID, len(c.Lines), MaxLines)
	}
	seen := make(map[string]bool, len(c.Lines))
	for i, l := range c.Lines {
		if err := validateText(fmt.Sprintf("line %d: SKU", i+1), l.SKU); err != nil {
			return err
		}
		switch {
		case seen[l.SKU]:
			return invalidf("line %d: SKU %q appears twice", i+1, l.SKU)
		case l.Quantity <= 0:
			return invalidf("line %d: quantity %d is not positive", i+1, l.Quantity)
		case l.Quantity > MaxQuantity:
			return invalidf("line %d: quantity %d is more than the limit of %d", i+1, l.Quantity, MaxQuantity)
		case l.UnitPrice <= 0:
			return invalidf("line %d: unit price %d is not positive", i+1, l.UnitPrice)
		case l.UnitPrice > MaxUnitPrice:
			return invalidf("line %d: unit price %d is more than the limit of %d", i+1, l.UnitPrice, MaxUnitPrice)
		}
		seen[l.SKU] = true
	}
	return nil
}

func validateText(what, s string) error {
	switch {
	case s == "":
		return invalidf("empty %s", what)
	case len(s) > maxTextLen:
		return invalidf("%s of %d bytes is longer than the limit of %d", what, len(s), maxTextLen)
	case !utf8.ValidString(s):
		return invalidf("%s %q is not valid UTF-8", what, s)
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 { // C0, DEL and C1
		return invalidf("%s %q contains a control character", what, s)
	}
	return nil
}

// Order is the order aggregate's state. It changes only through Apply;
// the decision methods read it and return events.
type Order struct {
	// ID is the order's ID, as placed.
	ID string `json:"id"`
	// Customer is who placed the order.
	Customer string `json:"customer"`
	// Status is where the order is in its lifecycle; empty for an order
	// never placed.
	Status Status `json:"status"`
	// Lines are the products ordered.
	Lines []Line `json:"lines"`
	// Total is the sum of the lines, in cents.
	Total int64 `json:"total"`
	// ReservationID is the inventory's reservation, once reserved.
	ReservationID string `json:"reservation_id,omitempty"`
	// PaymentID and Paid are the payment and its amount, once paid.
	PaymentID string `json:"payment_id,omitempty"`
	Paid      int64  `json:"paid,omitempty"`
	// TrackingID is the shipment's tracking ID, once shipped.
	TrackingID string `json:"tracking_id,omitempty"`
	// CancelReason says why the order was cancelled, once cancelled.
	CancelReason string `json:"cancel_reason,omitempty"`
}

// Apply folds one event into the order. It fails only for an event that
// is not an order event.
func (o *Order) Apply(event any) error {
	switch e := event.(type) {
	case Placed:
		o.ID, o.Customer, o.Status = e.OrderID, e.Customer, StatusPlaced
		o.Lines, o.Total = e.Lines, e.Total
	case StockReserved:
		o.Status, o.ReservationID = StatusReserved, e.ReservationID
	case Paid:
		o.Status, o.PaymentID, o.Paid = StatusPaid, e.PaymentID, e.Amount
	case Shipped:
		o.Status, o.TrackingID = StatusShipped, e.TrackingID
	case Cancelled:
		o.Status, o.CancelReason = StatusCancelled, e.Reason
	default:
		return fmt.Errorf("orders: order %s cannot apply a %T event", o.ID, event)
	}
	return nil
}

// Place decides a PlaceOrder command: an order ID may be placed once.
func (o *Order) Place(cmd PlaceOrder) ([]any, error) {
	if err := cmd.Validate(); err != nil {
		return nil, err
	}
	if o.Status != "" {
		return nil, fmt.Errorf("%w: %s", ErrAlreadyPlaced, o.ID)
	}
	var total int64
	for _, l := range cmd.Lines {
		total += int64(l.Quantity) * l.UnitPrice
	}
	lines := append([]Line(nil), cmd.Lines...)
	return []any{Placed{OrderID: cmd.OrderID, Customer: cmd.Customer, Lines: lines, Total: total}}, nil
}

// CanReserve reports why stock cannot be reserved for the order now, or
// nil.
func (o *Order) CanReserve() error {
	switch o.Status {
	case StatusPlaced:
		return nil
	case "":
		return ErrNotFound
	case StatusCancelled:
		return o.cancelled()
	case StatusReserved, StatusPaid, StatusShipped:
		return fmt.Errorf("%w: order %s is %s", ErrAlreadyReserved, o.ID, o.Status)
	}
	return o.unknownStatus()
}

// ReserveStock decides that the inventory's reservation holds the order's
// stock. It is valid only for a placed order.
func (o *Order) ReserveStock(reservationID string) ([]any, error) {
	if err := o.CanReserve(); err != nil {
		return nil, err
	}
	if err := validateText("reservation ID", reservationID); err != nil {
		return nil, err
	}
	return []any{StockReserved{OrderID: o.ID, ReservationID: reservationID}}, nil
}

// CanPay reports why the order cannot be paid with amount now, or nil:
// its stock must be reserved, it must not be paid yet, and amount must be
// its total.
func (o *Order) CanPay(amount int64) error {
	if amount <= 0 {
		return invalidf("payment amount %d is not positive", amount)
	}
	switch o.Status {
	case StatusReserved:
	case "":
		return ErrNotFound
	case StatusPlaced:
		return fmt.Errorf("%w: order %s", ErrNotReserved, o.ID)
	case StatusPaid, StatusShipped:
		return fmt.Errorf("%w: order %s", ErrAlreadyPaid, o.ID)
	case StatusCancelled:
		return o.cancelled()
	default:
		return o.unknownStatus()
	}
	if amount != o.Total {
		return fmt.Errorf("%w: paying %d for order %s of %d", ErrAmountMismatch, amount, o.ID, o.Total)
	}
	return nil
}

// Pay decides that the payment paymentID of amount pays the order.
func (o *Order) Pay(amount int64, paymentID string) ([]any, error) {
	if err := o.CanPay(amount); err != nil {
		return nil, err
	}
	if err := validateText("payment ID", paymentID); err != nil {
		return nil, err
	}
	return []any{Paid{OrderID: o.ID, PaymentID: paymentID, Amount: amount}}, nil
}

// Ship decides that the order shipped under trackingID. Only a paid order
// ships.
func (o *Order) Ship(trackingID string) ([]any, error) {
	switch o.Status {
	case StatusPaid:
	case "":
		return nil, ErrNotFound
	case StatusPlaced, StatusReserved:
		return nil, fmt.Errorf("%w: order %s is %s", ErrNotPaid, o.ID, o.Status)
	case StatusShipped:
		return nil, fmt.Errorf("%w: order %s", ErrAlreadyShipped, o.ID)
	case StatusCancelled:
		return nil, o.cancelled()
	default:
		return nil, o.unknownStatus()
	}
	if err := validateText("tracking ID", trackingID); err != nil {
		return nil, err
	}
	return []any{Shipped{OrderID: o.ID, TrackingID: trackingID}}, nil
}

// Cancel decides a cancellation for reason. An order can be cancelled
// until it ships; the event says whether stock must be released and how
// much must be refunded.
func (o *Order) Cancel(reason string) ([]any, error) {
	if err := validateText("cancellation reason", reason); err != nil {
		return nil, err
	}
	c := Cancelled{OrderID: o.ID, Reason: reason}
	switch o.Status {
	case StatusPlaced:
	case StatusReserved:
		c.ReleaseStock = true
	case StatusPaid:
		c.ReleaseStock, c.Refund = true, o.Paid
	case "":
		return nil, ErrNotFound
	case StatusShipped:
		return nil, fmt.Errorf("%w: order %s cannot be cancelled", ErrAlreadyShipped, o.ID)
	case StatusCancelled:
		return nil, o.cancelled()
	default:
		return nil, o.unknownStatus()
	}
	return []any{c}, nil
}

func (o *Order) cancelled() error {
	return fmt.Errorf("%w: order %s (%s)", ErrCancelled, o.ID, o.CancelReason)
}

func (o *Order) unknownStatus() error {
	return fmt.Errorf("orders: order %s has unknown status %q", o.ID, o.Status)
}
