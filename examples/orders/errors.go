package orders

import (
	"errors"

	"github.com/nova-go/nova"
)

// Business-rule errors. Callers branch on them with errors.Is.
var (
	// ErrNotFound is returned for a command on an order that was never
	// placed. It matches nova.ErrNotFound too.
	ErrNotFound error = notFoundError{}
	// ErrAlreadyPlaced is returned when placing an order whose ID is taken.
	ErrAlreadyPlaced = errors.New("orders: order already placed")
	// ErrAlreadyReserved is returned when reserving stock twice.
	ErrAlreadyReserved = errors.New("orders: stock already reserved")
	// ErrNotReserved is returned when paying before stock is reserved.
	ErrNotReserved = errors.New("orders: stock not reserved")
	// ErrAlreadyPaid is returned when paying an order twice.
	ErrAlreadyPaid = errors.New("orders: order already paid")
	// ErrNotPaid is returned when shipping an unpaid order.
	ErrNotPaid = errors.New("orders: order not paid")
	// ErrAlreadyShipped is returned when shipping twice or cancelling a
	// shipped order.
	ErrAlreadyShipped = errors.New("orders: order already shipped")
	// ErrCancelled is returned for any command on a cancelled order.
	ErrCancelled = errors.New("orders: order cancelled")
	// ErrAmountMismatch is returned when a payment is not for the order's
	// total.
	ErrAmountMismatch = errors.New("orders: payment amount does not match the order total")
	// ErrOutOfStock is returned by an [Inventory] that cannot reserve
	// every line, and by [Service.ReserveStock], which then cancels the
	// order.
	ErrOutOfStock = errors.New("orders: out of stock")
	// ErrPaymentDeclined is returned by [Payments] that refuse a charge,
	// and by [Service.Pay], which then cancels the order.
	ErrPaymentDeclined = errors.New("orders: payment declined")
)

// invalidf returns the error for a malformed command, an
// [*nova.InvalidError]: it matches nova.ErrInvalid.
func invalidf(format string, args ...any) error {
	return nova.Invalidf("orders", format, args...)
}

// notFoundError is [ErrNotFound]; it also matches nova.ErrNotFound.
type notFoundError struct{}

func (notFoundError) Error() string        { return "orders: order not placed" }
func (notFoundError) Is(target error) bool { return target == nova.ErrNotFound }
