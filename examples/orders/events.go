package orders

import "github.com/nova-go/nova"

// Event type names, as stored.
const (
	EventPlaced        = "orders.placed"
	EventStockReserved = "orders.stock_reserved"
	EventPaid          = "orders.paid"
	EventShipped       = "orders.shipped"
	EventCancelled     = "orders.cancelled"
)

// Line is one product on an order. Prices are in cents.
type Line struct {
	// SKU names the product.
	SKU string `json:"sku"`
	// Quantity is how many, at least 1.
	Quantity int `json:"quantity"`
	// UnitPrice is the price of one, in cents, at least 1.
	UnitPrice int64 `json:"unit_price"`
}

// Placed records a new order (orders.placed).
type Placed struct {
	OrderID  string `json:"order_id"`
	Customer string `json:"customer"`
	Lines    []Line `json:"lines"`
	// Total is the sum of the lines, in cents.
	Total int64 `json:"total"`
}

// StockReserved records that the inventory holds the order's stock
// (orders.stock_reserved).
type StockReserved struct {
	OrderID       string `json:"order_id"`
	ReservationID string `json:"reservation_id"`
}

// Paid records a successful charge of the order's total (orders.paid).
type Paid struct {
	OrderID   string `json:"order_id"`
	PaymentID string `json:"payment_id"`
	Amount    int64  `json:"amount"`
}

// Shipped records that the order left the warehouse (orders.shipped).
type Shipped struct {
	OrderID    string `json:"order_id"`
	TrackingID string `json:"tracking_id"`
}

// Cancelled records a cancellation and what it leaves to undo
// (orders.cancelled).
type Cancelled struct {
	OrderID string `json:"order_id"`
	Reason  string `json:"reason"`
	// ReleaseStock is true when stock had been reserved and must be
	// released.
	ReleaseStock bool `json:"release_stock,omitempty"`
	// Refund is the amount paid that must be refunded, in cents.
	Refund int64 `json:"refund,omitempty"`
}

// Register registers the order events in r under their names
// ([EventPlaced], ...).
func Register(r *nova.Registry) error {
	for _, err := range []error{
		nova.Register[Placed](r, EventPlaced),
		nova.Register[StockReserved](r, EventStockReserved),
		nova.Register[Paid](r, EventPaid),
		nova.Register[Shipped](r, EventShipped),
		nova.Register[Cancelled](r, EventCancelled),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

// NewRegistry returns a registry with the order events registered.
func NewRegistry() *nova.Registry {
	r := nova.NewRegistry(nova.RegistryOptions{})
	if err := Register(r); err != nil {
		panic(err) // a fresh registry accepts these constant names
	}
	return r
}
