package orders_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/examples/orders"
	"github.com/nova-go/nova/novamem"
)

type env struct {
	store *novamem.Store
	stock *orders.Stock
	bank  *orders.Bank
	svc   *orders.Service
}

// setup builds a service over novamem with 10 of every catalog product and
// a bank that declines charges over 100,000 cents.
func setup(t *testing.T) *env {
	t.Helper()
	store, err := novamem.New(novamem.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := &env{store: store, stock: orders.NewStock(orders.CatalogStock(10)), bank: &orders.Bank{DeclineFunc: orders.DeclineAbove(100_000)}}
	e.svc, err = orders.NewService(orders.Config{Store: store, Inventory: e.stock, Payments: e.bank})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) types(t *testing.T, orderID string) []string {
	t.Helper()
	var out []string
	for ev, err := range e.store.ReadStream(t.Context(), "order-"+orderID, nova.ReadStreamOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev.Type)
	}
	return out
}

func (e *env) logLen(t *testing.T) int {
	t.Helper()
	n := 0
	for _, err := range e.store.ReadAll(t.Context(), nova.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

func order(id string, ls ...orders.Line) orders.PlaceOrder {
	return orders.PlaceOrder{OrderID: id, Customer: "ada", Lines: ls}
}

func line(sku string, q int) orders.Line {
	for _, p := range orders.Catalog() {
		if p.SKU == sku {
			return orders.Line{SKU: sku, Quantity: q, UnitPrice: p.Price}
		}
	}
	panic("no such product " + sku)
}

func TestFulfilShips(t *testing.T) {
	t.Parallel()
	e := setup(t)
	o, err := e.svc.Fulfil(t.Context(), order("1", line("book", 2), line("mug", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if o.Status != orders.StatusShipped || o.Total != 10_200 || o.TrackingID != "TRK-1" {
		t.Fatalf("order = %+v, want shipped, total 10200", *o)
	}
	want := []string{orders.EventPlaced, orders.EventStockReserved, orders.EventPaid, orders.EventShipped}
	if got := e.types(t, "1"); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("stream = %v, want %v", got, want)
	}
	if e.stock.Level("book") != 8 || e.stock.Level("mug") != 9 {
		t.Errorf("stock book %d mug %d, want 8 and 9", e.stock.Level("book"), e.stock.Level("mug"))
	}
	if e.bank.Charged("1") != 10_200 {
		t.Errorf("bank holds %d for the order, want 10200", e.bank.Charged("1"))
	}
	got, err := e.svc.Get(t.Context(), "1")
	if err != nil || got.Status != orders.StatusShipped {
		t.Fatalf("Get = %+v, %v", got, err)
	}
}

func TestFulfilOutOfStockCancels(t *testing.T) {
	t.Parallel()
	e := setup(t)
	o, err := e.svc.Fulfil(t.Context(), order("1", line("book", 2), line("lamp", 11)))
	if !errors.Is(err, orders.ErrOutOfStock) {
		t.Fatalf("Fulfil = %v, want ErrOutOfStock", err)
	}
	if o == nil || o.Status != orders.StatusCancelled || o.CancelReason != "out of stock" {
		t.Fatalf("order = %+v, want cancelled for out of stock", o)
	}
	want := []string{orders.EventPlaced, orders.EventCancelled}
	if got := e.types(t, "1"); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("stream = %v, want %v", got, want)
	}
	if e.stock.Level("book") != 10 || e.stock.Level("lamp") != 10 || e.stock.Holds("1") {
		t.Errorf("stock touched: book %d lamp %d", e.stock.Level("book"), e.stock.Level("lamp"))
	}
}

func TestFulfilDeclinedPaymentCancelsAndReleases(t *testing.T) {
	t.Parallel()
	e := setup(t)
	o, err := e.svc.Fulfil(t.Context(), order("1", line("chair", 5))) // 124,500 > 100,000
	if !errors.Is(err, orders.ErrPaymentDeclined) {
		t.Fatalf("Fulfil = %v, want ErrPaymentDeclined", err)
	}
	if o == nil || o.Status != orders.StatusCancelled || o.CancelReason != "payment declined" {
		t.Fatalf("order = %+v, want cancelled for payment declined", o)
	}
	want := []string{orders.EventPlaced, orders.EventStockReserved, orders.EventCancelled}
	if got := e.types(t, "1"); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("stream = %v, want %v", got, want)
	}
	if e.stock.Level("chair") != 10 || e.stock.Holds("1") {
		t.Errorf("stock not released: chair %d", e.stock.Level("chair"))
	}
	if held, _ := e.bank.Totals(); held != 0 {
		t.Errorf("bank holds %d, want 0", held)
	}
}

func TestCancelCompensates(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := t.Context()
	for _, step := range []func() (*orders.Order, error){
		func() (*orders.Order, error) { return e.svc.Place(ctx, order("1", line("pen", 3))) },
		func() (*orders.Order, error) { return e.svc.ReserveStock(ctx, "1") },
		func() (*orders.Order, error) { return e.svc.Pay(ctx, "1", 7_500) },
	} {
		if _, err := step(); err != nil {
			t.Fatal(err)
		}
	}
	if e.stock.Level("pen") != 7 || e.bank.Charged("1") != 7_500 {
		t.Fatalf("before cancel: pen %d, charged %d", e.stock.Level("pen"), e.bank.Charged("1"))
	}
	o, err := e.svc.Cancel(ctx, "1", "customer request")
	if err != nil {
		t.Fatal(err)
	}
	if o.Status != orders.StatusCancelled {
		t.Fatalf("status = %s", o.Status)
	}
	if _, refunded := e.bank.Totals(); e.stock.Level("pen") != 10 || e.bank.Charged("1") != 0 || refunded != 7_500 {
		t.Errorf("after cancel: pen %d, charged %d, refunded %d; want 10, 0, 7500", e.stock.Level("pen"), e.bank.Charged("1"), refunded)
	}
	if _, err := e.svc.Cancel(ctx, "1", "again"); !errors.Is(err, orders.ErrCancelled) {
		t.Errorf("second Cancel = %v, want ErrCancelled", err)
	}
}

func TestServiceRules(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := t.Context()
	if _, err := e.svc.Fulfil(ctx, order("shipped", line("mug", 1))); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Place(ctx, order("placed", line("mug", 1))); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"get unknown", func() error { _, err := e.svc.Get(ctx, "nope"); return err }, orders.ErrNotFound},
		{"get unknown is nova not found", func() error { _, err := e.svc.Get(ctx, "nope"); return err }, nova.ErrNotFound},
		{"reserve unknown", func() error { _, err := e.svc.ReserveStock(ctx, "nope"); return err }, orders.ErrNotFound},
		{"pay unknown", func() error { _, err := e.svc.Pay(ctx, "nope", 100); return err }, orders.ErrNotFound},
		{"ship unknown", func() error { _, err := e.svc.Ship(ctx, "nope"); return err }, orders.ErrNotFound},
		{"cancel unknown", func() error { _, err := e.svc.Cancel(ctx, "nope", "why"); return err }, orders.ErrNotFound},
		{"place twice", func() error { _, err := e.svc.Place(ctx, order("placed", line("mug", 1))); return err }, orders.ErrAlreadyPlaced},
		{"pay unreserved", func() error { _, err := e.svc.Pay(ctx, "placed", 1_200); return err }, orders.ErrNotReserved},
		{"ship unpaid", func() error { _, err := e.svc.Ship(ctx, "placed"); return err }, orders.ErrNotPaid},
		{"reserve shipped", func() error { _, err := e.svc.ReserveStock(ctx, "shipped"); return err }, orders.ErrAlreadyReserved},
		{"pay shipped", func() error { _, err := e.svc.Pay(ctx, "shipped", 1_200); return err }, orders.ErrAlreadyPaid},
		{"ship twice", func() error { _, err := e.svc.Ship(ctx, "shipped"); return err }, orders.ErrAlreadyShipped},
		{"cancel shipped", func() error { _, err := e.svc.Cancel(ctx, "shipped", "late"); return err }, orders.ErrAlreadyShipped},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := e.svc.Ship(ctx, "nope"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("not-found error %v does not name the order", err)
	}
	if got := e.types(t, "nope"); len(got) != 0 {
		t.Errorf("commands on an unknown order wrote %v", got)
	}
}

func TestServiceBadInput(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := t.Context()
	if _, err := e.svc.Place(ctx, order("1", line("mug", 1))); err != nil {
		t.Fatal(err)
	}
	before := e.logLen(t)
	tests := []struct {
		name string
		call func() error
	}{
		{"new nil store", func() error {
			_, err := orders.NewService(orders.Config{Inventory: e.stock, Payments: e.bank})
			return err
		}},
		{"new nil inventory", func() error {
			_, err := orders.NewService(orders.Config{Store: e.store, Payments: e.bank})
			return err
		}},
		{"new nil payments", func() error {
			_, err := orders.NewService(orders.Config{Store: e.store, Inventory: e.stock})
			return err
		}},
		{"new negative snapshot interval", func() error {
			_, err := orders.NewService(orders.Config{Store: e.store, Inventory: e.stock, Payments: e.bank, SnapshotEvery: -1})
			return err
		}},
		{"place empty ID", func() error { _, err := e.svc.Place(ctx, order("", line("mug", 1))); return err }},
		{"place no lines", func() error { _, err := e.svc.Place(ctx, order("2")); return err }},
		{"place zero quantity", func() error { _, err := e.svc.Place(ctx, order("2", line("mug", 0))); return err }},
		{"place negative price", func() error {
			_, err := e.svc.Place(ctx, order("2", orders.Line{SKU: "mug", Quantity: 1, UnitPrice: -1}))
			return err
		}},
		{"get empty ID", func() error { _, err := e.svc.Get(ctx, ""); return err }},
		{"reserve empty ID", func() error { _, err := e.svc.ReserveStock(ctx, ""); return err }},
		{"pay empty ID", func() error { _, err := e.svc.Pay(ctx, "", 1_200); return err }},
		{"pay zero", func() error { _, err := e.svc.Pay(ctx, "1", 0); return err }},
		{"pay negative", func() error { _, err := e.svc.Pay(ctx, "1", -1_200); return err }},
		{"ship empty ID", func() error { _, err := e.svc.Ship(ctx, ""); return err }},
		{"cancel empty ID", func() error { _, err := e.svc.Cancel(ctx, "", "why"); return err }},
		{"cancel empty reason", func() error { _, err := e.svc.Cancel(ctx, "1", ""); return err }},
		{"fulfil bad command", func() error { _, err := e.svc.Fulfil(ctx, order("2")); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, nova.ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
		})
	}
	if after := e.logLen(t); after != before {
		t.Errorf("bad input wrote %d events", after-before)
	}
	if e.stock.Holds("1") || e.bank.Charged("1") != 0 {
		t.Error("bad input reached the inventory or the bank")
	}
}

func TestMetadataFunc(t *testing.T) {
	t.Parallel()
	store, err := novamem.New(novamem.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	type key struct{}
	svc, err := orders.NewService(orders.Config{
		Store: store, Inventory: orders.NewStock(orders.CatalogStock(5)), Payments: &orders.Bank{},
		MetadataFunc: func(ctx context.Context) nova.Metadata {
			id, _ := ctx.Value(key{}).(string)
			return nova.Metadata{CorrelationID: id}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.WithValue(t.Context(), key{}, "req-42")
	if _, err := svc.Fulfil(ctx, order("1", line("pen", 1))); err != nil {
		t.Fatal(err)
	}
	n := 0
	for ev, err := range store.ReadStream(ctx, "order-1", nova.ReadStreamOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if ev.Metadata.CorrelationID != "req-42" {
			t.Errorf("%s has correlation ID %q, want req-42", ev.Type, ev.Metadata.CorrelationID)
		}
	}
	if n != 4 {
		t.Errorf("%d events, want 4", n)
	}
}

// TestManyOrdersBalance runs sample orders concurrently against limited
// stock and a picky bank, then checks that every order ended shipped or
// cancelled, and that stock and money add up.
func TestManyOrdersBalance(t *testing.T) {
	t.Parallel()
	const n, workers = 60, 4
	e := setup(t)
	ctx := t.Context()
	var (
		mu      sync.Mutex
		results = make(map[string]*orders.Order)
		wg      sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				o, err := e.svc.Fulfil(ctx, orders.SampleOrder(i))
				if err != nil && !errors.Is(err, orders.ErrOutOfStock) && !errors.Is(err, orders.ErrPaymentDeclined) {
					t.Errorf("order %d: %v", i, err)
				}
				mu.Lock()
				results[orders.SampleOrder(i).OrderID] = o
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	used := make(map[string]int)
	var shippedTotal int64
	var shipped, cancelled int
	for id, o := range results {
		switch {
		case o == nil:
			t.Errorf("order %s: no final state", id)
		case o.Status == orders.StatusShipped:
			shipped++
			shippedTotal += o.Total
			for _, l := range o.Lines {
				used[l.SKU] += l.Quantity
			}
		case o.Status == orders.StatusCancelled:
			cancelled++
		default:
			t.Errorf("order %s ended %s", id, o.Status)
		}
	}
	if shipped == 0 || cancelled == 0 {
		t.Errorf("%d shipped, %d cancelled: want some of each", shipped, cancelled)
	}
	for sku, level := range orders.CatalogStock(10) {
		if got := e.stock.Level(sku); got != level-used[sku] {
			t.Errorf("stock of %s = %d, want %d - %d shipped", sku, got, level, used[sku])
		}
	}
	if held, _ := e.bank.Totals(); held != shippedTotal {
		t.Errorf("bank holds %d, want %d (the shipped orders' totals)", held, shippedTotal)
	}
	t.Logf("%d shipped, %d cancelled", shipped, cancelled)
}

// TestCancelRacesPay has Cancel and Pay race on one order many times:
// whichever wins, the order's money and stock end consistent.
func TestCancelRacesPay(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := t.Context()
	for i := range 20 {
		id := fmt.Sprintf("race-%d", i)
		if _, err := e.svc.Place(ctx, order(id, line("mug", 1))); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.ReserveStock(ctx, id); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Go(func() { _, _ = e.svc.Pay(ctx, id, 1_200) })
		wg.Go(func() { _, _ = e.svc.Cancel(ctx, id, "race") })
		wg.Wait()
		o, err := e.svc.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		switch o.Status {
		case orders.StatusCancelled:
			if e.bank.Charged(id) != 0 || e.stock.Holds(id) {
				t.Errorf("%s cancelled but bank holds %d, stock held %v", id, e.bank.Charged(id), e.stock.Holds(id))
			}
		case orders.StatusPaid:
			if e.bank.Charged(id) != 1_200 || !e.stock.Holds(id) {
				t.Errorf("%s paid but bank holds %d, stock held %v", id, e.bank.Charged(id), e.stock.Holds(id))
			}
		default:
			t.Errorf("%s ended %s", id, o.Status)
		}
	}
}

func TestSnapshots(t *testing.T) {
	t.Parallel()
	store, err := novamem.New(novamem.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	svc, err := orders.NewService(orders.Config{
		Store: store, Inventory: orders.NewStock(orders.CatalogStock(5)), Payments: &orders.Bank{},
		Snapshots: store, SnapshotEvery: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := svc.Fulfil(ctx, order("1", line("pen", 1))); err != nil {
		t.Fatal(err)
	}
	snap, err := store.LoadSnapshot(ctx, "order-1")
	if err != nil {
		t.Fatal(err)
	}
	if snap.Version != 4 {
		t.Errorf("snapshot at version %d, want 4", snap.Version)
	}
	o, err := svc.Get(ctx, "1")
	if err != nil || o.Status != orders.StatusShipped || o.TrackingID != "TRK-1" || len(o.Lines) != 1 {
		t.Fatalf("Get from the snapshot = %+v, %v", o, err)
	}
}
