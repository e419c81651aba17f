package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/nova-go/nova/examples/orders"
	"github.com/nova-go/nova/saga"
)

// demoStock is the demo's warehouse, an orders.Inventory. It allocates
// its stock to the run's orders in the order they were placed, as a
// warehouse serving a queue would, whatever order the saga workers reach
// them in: it plans the run's allocations before the first order (who
// gets stock, knowing which payments the bank declines and so which
// reservations come back) and then follows that plan. So identical demos
// have identical outcomes, and report identical counts. An order the plan
// does not know (a run an earlier demo left) is served from what is left.
//
// One order of the run, the jammed one, is special: its reservation takes
// nothing from the stock and can never be released, because the
// warehouse has picked its items already. The bank declines that order,
// so its saga compensates, the release fails for good, and the run is
// left Stuck for an operator (nova saga retry|skip|abandon). A later
// process, the next demo, releases it without fuss.
type demoStock struct {
	mu     sync.Mutex
	levels map[string]int
	held   map[string][]orders.Line
	plan   map[string]bool // order ID → the stock serves it
	jammed string
}

var _ orders.Inventory = (*demoStock)(nil)

// newDemoStock plans the stock of the run of n orders numbered from
// first, of which declined says which the bank refuses.
func newDemoStock(first, n int, jammed string, declined func(id string, amount int64) bool) *demoStock {
	d := &demoStock{levels: orders.CatalogStock(demoStockPerProduct), held: make(map[string][]orders.Line),
		plan: make(map[string]bool), jammed: jammed}
	left := orders.CatalogStock(demoStockPerProduct)
	for i := first; i < first+n; i++ {
		cmd := orders.SampleOrder(i)
		if cmd.OrderID == jammed {
			continue
		}
		want, total := wanted(cmd.Lines)
		ok := true
		for sku, q := range want {
			ok = ok && left[sku] >= q
		}
		d.plan[cmd.OrderID] = ok
		if ok && !declined(cmd.OrderID, total) {
			for sku, q := range want {
				left[sku] -= q
			}
		}
	}
	return d
}

// wanted sums the lines' quantities by SKU, and their price.
func wanted(lines []orders.Line) (map[string]int, int64) {
	want := make(map[string]int, len(lines))
	var total int64
	for _, l := range lines {
		want[l.SKU] += l.Quantity
		total += int64(l.Quantity) * l.UnitPrice
	}
	return want, total
}

// Reserve implements orders.Inventory.
func (d *demoStock) Reserve(ctx context.Context, orderID string, lines []orders.Line) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("warehouse: reserve for order %s: %w", orderID, err)
	}
	id := "res-" + orderID
	if orderID == d.jammed {
		return id, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.held[orderID]; ok {
		return id, nil
	}
	want, _ := wanted(lines)
	served, planned := d.plan[orderID]
	for sku, q := range want {
		if planned && !served || !planned && d.levels[sku] < q {
			return "", fmt.Errorf("%w: %s for order %s: want %d, the orders placed before it took the rest", orders.ErrOutOfStock, sku, orderID, q)
		}
	}
	// A planned reservation may take stock that an order placed before
	// it holds for a moment only (its payment will be declined): the plan
	// has given that back already.
	for sku, q := range want {
		d.levels[sku] -= q
	}
	d.held[orderID] = append([]orders.Line(nil), lines...)
	return id, nil
}

// Release implements orders.Inventory.
func (d *demoStock) Release(ctx context.Context, orderID string) error {
	if orderID == d.jammed {
		return saga.Permanent(fmt.Errorf("warehouse: the items of order %s were picked already: its reservation cannot be released", orderID))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, l := range d.held[orderID] {
		d.levels[l.SKU] += l.Quantity
	}
	delete(d.held, orderID)
	return nil
}

// Level returns how many of sku are left.
func (d *demoStock) Level(sku string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.levels[sku]
}
