package orders

import (
	"context"
	"fmt"
	"sync"
)

// Payments charges and refunds orders. Both methods are idempotent per
// order ID: charging an order again returns the first charge's payment ID,
// and refunding an order with no charge does nothing.
type Payments interface {
	// Charge takes amount (cents) for the order and returns a payment ID.
	// A refused charge fails with an error matching [ErrPaymentDeclined].
	Charge(ctx context.Context, orderID string, amount int64) (paymentID string, err error)
	// Refund gives the order's charge back.
	Refund(ctx context.Context, orderID string) error
}

// Bank is a deterministic in-memory [Payments]. Its zero value accepts
// every charge; DeclineFunc says which to decline. It is safe for
// concurrent use.
type Bank struct {
	// DeclineFunc reports whether to decline a charge. It must be
	// deterministic, so a repeated charge gets the same answer. Nil
	// accepts every charge.
	DeclineFunc func(orderID string, amount int64) bool

	mu       sync.Mutex
	charges  map[string]int64
	refunded int64
}

var _ Payments = (*Bank)(nil)

// DeclineAbove returns a [Bank.DeclineFunc] that declines charges over
// limit cents, as a card limit would.
func DeclineAbove(limit int64) func(orderID string, amount int64) bool {
	return func(_ string, amount int64) bool { return amount > limit }
}

// Charge implements [Payments.Charge].
func (b *Bank) Charge(ctx context.Context, orderID string, amount int64) (string, error) {
	if err := validateText("order ID", orderID); err != nil {
		return "", err
	}
	if amount <= 0 {
		return "", invalidf("charge for order %s: amount %d is not positive", orderID, amount)
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("orders: charge for order %s: %w", orderID, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	id := "pay-" + orderID
	if old, ok := b.charges[orderID]; ok {
		if old != amount {
			return "", fmt.Errorf("orders: charge for order %s: already charged %d, not %d", orderID, old, amount)
		}
		return id, nil
	}
	if b.DeclineFunc != nil && b.DeclineFunc(orderID, amount) {
		return "", fmt.Errorf("%w: %d for order %s", ErrPaymentDeclined, amount, orderID)
	}
	if b.charges == nil {
		b.charges = make(map[string]int64)
	}
	b.charges[orderID] = amount
	return id, nil
}

// Refund implements [Payments.Refund].
func (b *Bank) Refund(ctx context.Context, orderID string) error {
	if err := validateText("order ID", orderID); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refunded += b.charges[orderID]
	delete(b.charges, orderID)
	return nil
}

// Charged returns what the bank holds for the order: its charge, or 0
// when it has none or it was refunded.
func (b *Bank) Charged(orderID string) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.charges[orderID]
}

// Totals returns the sum of the charges held and of the refunds made.
func (b *Bank) Totals() (held, refunded int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, n := range b.charges {
		held += n
	}
	return held, b.refunded
}
