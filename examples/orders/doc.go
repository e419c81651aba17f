// Package orders is a small order-fulfilment domain built on Nova: the
// domain that `nova demo` runs and the documentation uses.
//
// # The lifecycle
//
// An order is placed, its stock is reserved, it is paid, and it is
// shipped. Until it ships it can be cancelled. Every step is a command
// that the Order aggregate either refuses with a business-rule error or
// accepts by producing one event:
//
//	placed ──reserve──▶ reserved ──pay──▶ paid ──ship──▶ shipped
//	   │                    │               │
//	   └──────cancel────────┴──────cancel───┴──▶ cancelled
//
// The events are Go structs registered under stable names ([NewRegistry]):
// orders.placed ([Placed]), orders.stock_reserved ([StockReserved]),
// orders.paid ([Paid]), orders.shipped ([Shipped]) and orders.cancelled
// ([Cancelled]). A cancellation records what must be undone: stock to
// release and an amount to refund.
//
// # Deciding and applying
//
// [Order] is the aggregate's state. Its Apply method folds events in and
// never fails on an event its own decisions produced; its decision methods
// ([Order.Place], [Order.ReserveStock], [Order.Pay], [Order.Ship],
// [Order.Cancel]) check the rules and return the events to record, without
// changing the state. That split is what makes them easy to test with
// aggregate.Given, and safe to run again when a save meets a concurrent
// writer.
//
// # The service
//
// [Service] is the application layer: each method takes a context and a
// command, talks to the outside world ([Inventory], [Payments]) and records
// the outcome through an aggregate.Repository. Calls to the outside world
// happen outside the decision, keyed by order ID so that repeating them is
// harmless. When the outside world says no, the service cancels the order
// and returns the reason: [Service.ReserveStock] fails with [ErrOutOfStock]
// and [Service.Pay] with [ErrPaymentDeclined], the order then being
// cancelled, its stock released. [Service.Fulfil] drives one order through
// the whole lifecycle, which is what the demo does for many orders.
//
// [Stock] and [Bank] are deterministic in-memory stand-ins for the
// inventory and payment systems, with failures configured up front: a SKU
// runs out of stock when its level is used up, and [DeclineAbove] declines
// charges over a limit. [SampleOrder] makes reproducible orders from a
// small [Catalog].
package orders
