package orders

import (
	"context"
	"fmt"
	"sync"
)

// Inventory reserves stock for orders. Both methods are idempotent per
// order ID: reserving again for an order that holds a reservation returns
// that reservation, and releasing an order that holds none does nothing.
type Inventory interface {
	// Reserve holds every line's quantity for the order, all or none, and
	// returns a reservation ID. When some line cannot be held it fails
	// with an error matching [ErrOutOfStock].
	Reserve(ctx context.Context, orderID string, lines []Line) (reservationID string, err error)
	// Release gives the order's reserved stock back.
	Release(ctx context.Context, orderID string) error
}

// Stock is a deterministic in-memory [Inventory]: a level per SKU that
// reservations take from and releases give back. An unknown SKU has none.
// It is safe for concurrent use.
type Stock struct {
	mu     sync.Mutex
	levels map[string]int
	held   map[string][]Line
}

var _ Inventory = (*Stock)(nil)

// NewStock returns a stock with the given levels (copied; may be nil).
func NewStock(levels map[string]int) *Stock {
	s := &Stock{levels: make(map[string]int, len(levels)), held: make(map[string][]Line)}
	for sku, n := range levels {
		s.levels[sku] = n
	}
	return s
}

// Reserve implements [Inventory.Reserve].
func (s *Stock) Reserve(ctx context.Context, orderID string, lines []Line) (string, error) {
	if err := validateText("order ID", orderID); err != nil {
		return "", err
	}
	if len(lines) == 0 {
		return "", invalidf("reserve for order %s: no lines", orderID)
	}
	for i, l := range lines {
		if l.Quantity <= 0 {
			return "", invalidf("reserve for order %s: line %d: quantity %d is not positive", orderID, i+1, l.Quantity)
		}
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("orders: reserve for order %s: %w", orderID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := "res-" + orderID
	if _, ok := s.held[orderID]; ok {
		return id, nil
	}
	want := make(map[string]int, len(lines))
	for _, l := range lines {
		want[l.SKU] += l.Quantity
	}
	for _, l := range lines {
		if have := s.levels[l.SKU]; have < want[l.SKU] {
			return "", fmt.Errorf("%w: %s for order %s: want %d, have %d", ErrOutOfStock, l.SKU, orderID, want[l.SKU], have)
		}
	}
	for sku, n := range want {
		s.levels[sku] -= n
	}
	s.held[orderID] = append([]Line(nil), lines...)
	return id, nil
}

// Release implements [Inventory.Release].
func (s *Stock) Release(ctx context.Context, orderID string) error {
	if err := validateText("order ID", orderID); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.held[orderID] {
		s.levels[l.SKU] += l.Quantity
	}
	delete(s.held, orderID)
	return nil
}

// Level returns how many of sku are available (not reserved).
func (s *Stock) Level(sku string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.levels[sku]
}

// Holds reports whether the order holds a reservation.
func (s *Stock) Holds(orderID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.held[orderID]
	return ok
}
