package orders

import (
	"context"
	"errors"
	"fmt"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/aggregate"
)

// Category is the stream category of orders: order 42's events are in
// stream "order-42".
const Category = "order"

// Config configures a [Service]. Store, Inventory and Payments are
// required; the zero value of the rest means its default.
type Config struct {
	// Store holds the orders' events. Required.
	Store nova.Store
	// Inventory reserves and releases stock. Required; [Stock] is an
	// in-memory stand-in.
	Inventory Inventory
	// Payments charges and refunds. Required; [Bank] is an in-memory
	// stand-in.
	Payments Payments
	// Registry must have the order events registered ([Register]).
	// Default [NewRegistry].
	Registry *nova.Registry
	// Snapshots, when set, stores snapshots of orders every
	// SnapshotEvery events (default that of package aggregate). Orders
	// are short streams, so this is mostly for showing snapshots at work.
	Snapshots     aggregate.SnapshotStore
	SnapshotEvery int
	// MetadataFunc returns the metadata saved with the events a call
	// produces, for example the request's correlation ID carried in ctx.
	// Default: none.
	MetadataFunc func(ctx context.Context) nova.Metadata
}

// validate reports the first bad field; it changes nothing.
func (c Config) validate() error {
	switch {
	case c.Store == nil:
		return invalidf("config: Store is nil")
	case c.Inventory == nil:
		return invalidf("config: Inventory is nil")
	case c.Payments == nil:
		return invalidf("config: Payments is nil")
	case c.SnapshotEvery < 0:
		return invalidf("config: negative SnapshotEvery %d", c.SnapshotEvery)
	}
	return nil
}

// withDefaults returns c with each zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Registry == nil {
		c.Registry = NewRegistry()
	}
	return c
}

// Service handles order commands: it validates them, calls the inventory
// and payment systems, and records the outcome in each order's stream. It
// is safe for concurrent use.
//
// Calls to the outside world are made outside the decision, keyed by
// order ID so repeating them is harmless, and the decision then re-checks
// the rules against the order as it is when saved. When the outside world
// refuses, the order is cancelled and what was done is undone.
type Service struct {
	repo *aggregate.Repository[Order]
	inv  Inventory
	pay  Payments
	meta func(context.Context) nova.Metadata
}

// NewService returns a service. A config that is not valid fails with an
// error matching nova.ErrInvalid.
func NewService(cfg Config) (*Service, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	repo, err := aggregate.NewRepository[Order](aggregate.Config{
		Store:         cfg.Store,
		Registry:      cfg.Registry,
		Category:      Category,
		Snapshots:     cfg.Snapshots,
		SnapshotEvery: cfg.SnapshotEvery,
	})
	if err != nil {
		return nil, fmt.Errorf("orders: %w", err)
	}
	return &Service{repo: repo, inv: cfg.Inventory, pay: cfg.Payments, meta: cfg.MetadataFunc}, nil
}

// Repository returns the repository the service saves orders through, for
// callers that need versions or their own decisions.
func (s *Service) Repository() *aggregate.Repository[Order] { return s.repo }

// Get returns the order as it is now, or an error matching [ErrNotFound].
func (s *Service) Get(ctx context.Context, orderID string) (*Order, error) {
	if err := validateText("order ID", orderID); err != nil {
		return nil, err
	}
	root, err := s.repo.Load(ctx, orderID)
	if errors.Is(err, nova.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, orderID)
	}
	if err != nil {
		return nil, err
	}
	return root.State, nil
}

// update runs one decision through the repository.
func (s *Service) update(ctx context.Context, orderID string, decide func(*Order) ([]any, error)) (*Order, error) {
	var opts *aggregate.SaveOptions
	if s.meta != nil {
		opts = &aggregate.SaveOptions{Metadata: s.meta(ctx)}
	}
	root, err := s.repo.Update(ctx, orderID, decide, opts)
	if err == ErrNotFound {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, orderID)
	}
	if err != nil {
		return nil, err
	}
	return root.State, nil
}

// Place places a new order. A malformed command fails with an error
// matching nova.ErrInvalid; an order ID already used with [ErrAlreadyPlaced].
func (s *Service) Place(ctx context.Context, cmd PlaceOrder) (*Order, error) {
	if err := validateText("order ID", cmd.OrderID); err != nil {
		return nil, err
	}
	if err := cmd.Validate(); err != nil {
		return nil, err
	}
	return s.update(ctx, cmd.OrderID, func(o *Order) ([]any, error) { return o.Place(cmd) })
}

// ReserveStock reserves the order's stock. When the inventory is out of
// stock the order is cancelled (reason "out of stock") and the error
// matches [ErrOutOfStock].
func (s *Service) ReserveStock(ctx context.Context, orderID string) (*Order, error) {
	o, err := s.Get(ctx, orderID)
	if err != nil {
		return nil, err
	}
	if err := o.CanReserve(); err != nil {
		return nil, err
	}
	resID, err := s.inv.Reserve(ctx, orderID, o.Lines)
	if errors.Is(err, ErrOutOfStock) {
		return nil, s.refused(ctx, orderID, "out of stock", err)
	}
	if err != nil {
		return nil, fmt.Errorf("orders: reserve stock for order %s: %w", orderID, err)
	}
	o, err = s.update(ctx, orderID, func(o *Order) ([]any, error) { return o.ReserveStock(resID) })
	if errors.Is(err, ErrCancelled) {
		// Cancelled while the stock was being reserved, before the
		// reservation was recorded: nobody else will release it.
		if rerr := s.inv.Release(ctx, orderID); rerr != nil {
			err = errors.Join(err, fmt.Errorf("orders: release stock of order %s: %w", orderID, rerr))
		}
	}
	return o, err
}

// Pay charges amount, which must be the order's total, for an order whose
// stock is reserved. When the charge is declined the order is cancelled
// (reason "payment declined"), its stock released, and the error matches
// [ErrPaymentDeclined].
func (s *Service) Pay(ctx context.Context, orderID string, amount int64) (*Order, error) {
	o, err := s.Get(ctx, orderID)
	if err != nil {
		return nil, err
	}
	if err := o.CanPay(amount); err != nil {
		return nil, err
	}
	payID, err := s.pay.Charge(ctx, orderID, amount)
	if errors.Is(err, ErrPaymentDeclined) {
		return nil, s.refused(ctx, orderID, "payment declined", err)
	}
	if err != nil {
		return nil, fmt.Errorf("orders: charge order %s: %w", orderID, err)
	}
	o, err = s.update(ctx, orderID, func(o *Order) ([]any, error) { return o.Pay(amount, payID) })
	if errors.Is(err, ErrCancelled) {
		// Cancelled while the charge was made: the cancellation did not
		// know about it, so refund here.
		if rerr := s.pay.Refund(ctx, orderID); rerr != nil {
			err = errors.Join(err, fmt.Errorf("orders: refund order %s: %w", orderID, rerr))
		}
	}
	return o, err
}

// Ship ships a paid order.
func (s *Service) Ship(ctx context.Context, orderID string) (*Order, error) {
	if err := validateText("order ID", orderID); err != nil {
		return nil, err
	}
	return s.update(ctx, orderID, func(o *Order) ([]any, error) { return o.Ship("TRK-" + orderID) })
}

// Cancel cancels an order that has not shipped, then releases its stock
// and refunds its payment as the cancellation records. The reason is
// required.
func (s *Service) Cancel(ctx context.Context, orderID, reason string) (*Order, error) {
	if err := validateText("order ID", orderID); err != nil {
		return nil, err
	}
	if err := validateText("cancellation reason", reason); err != nil {
		return nil, err
	}
	var c Cancelled
	o, err := s.update(ctx, orderID, func(o *Order) ([]any, error) {
		evs, err := o.Cancel(reason)
		if err == nil {
			c = evs[0].(Cancelled)
		}
		return evs, err
	})
	if err != nil {
		return nil, err
	}
	var errs []error
	if c.ReleaseStock {
		if err := s.inv.Release(ctx, orderID); err != nil {
			errs = append(errs, fmt.Errorf("orders: order %s cancelled, but releasing its stock failed: %w", orderID, err))
		}
	}
	if c.Refund > 0 {
		if err := s.pay.Refund(ctx, orderID); err != nil {
			errs = append(errs, fmt.Errorf("orders: order %s cancelled, but refunding %d failed: %w", orderID, c.Refund, err))
		}
	}
	return o, errors.Join(errs...)
}

// refused cancels an order the outside world said no to and returns why.
func (s *Service) refused(ctx context.Context, orderID, reason string, cause error) error {
	if _, err := s.Cancel(ctx, orderID, reason); err != nil {
		return errors.Join(cause, err)
	}
	return fmt.Errorf("orders: order %s cancelled: %w", orderID, cause)
}

// Fulfil drives a new order through its whole lifecycle: place, reserve
// stock, pay the total, ship. It stops at the first step that fails and
// returns that step's error together with the order as it then is (nil if
// it was never placed): an order that ran out of stock or whose payment
// was declined comes back cancelled, with an error matching
// [ErrOutOfStock] or [ErrPaymentDeclined].
func (s *Service) Fulfil(ctx context.Context, cmd PlaceOrder) (*Order, error) {
	o, err := s.Place(ctx, cmd)
	if err != nil {
		return nil, err
	}
	id := cmd.OrderID
	steps := []func() (*Order, error){
		func() (*Order, error) { return s.ReserveStock(ctx, id) },
		func() (*Order, error) { return s.Pay(ctx, id, o.Total) },
		func() (*Order, error) { return s.Ship(ctx, id) },
	}
	for _, step := range steps {
		next, err := step()
		if err != nil {
			if now, gerr := s.Get(ctx, id); gerr == nil {
				return now, err
			}
			return o, err
		}
		o = next
	}
	return o, nil
}
