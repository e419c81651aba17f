package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/examples/orders"
	"github.com/nova-go/nova/novasqlite"
)

// Demo settings: enough orders and little enough stock that some run out,
// and a payment limit that declines the largest orders.
const (
	demoStockPerProduct = 8
	demoDeclineAbove    = 40_000 // cents
	demoWorkers         = 4
)

func demoCommand() *command {
	var n int
	var reset bool
	return &command{
		name:    "demo",
		summary: "run the order domain on the store: place orders, drive them through their lifecycle, report",
		usage:   "[--store PATH] [--orders N] [--reset]",
		flags: func(fs *flag.FlagSet, e *env) {
			fs.IntVar(&n, "orders", 16, "orders to place in this run")
			fs.BoolVar(&reset, "reset", false, "delete the store's file first and start over")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 0 {
				return usagef("demo takes no arguments, got %q", args)
			}
			if n < 1 || n > 100_000 {
				return usagef("--orders must be between 1 and 100000, got %d", n)
			}
			if reset {
				if err := resetStore(ctx, e.store); err != nil {
					return err
				}
			}
			return runDemo(ctx, e, n)
		},
	}
}

// resetStore deletes a SQLite store's files, after checking that the file
// is a Nova store, so a mistyped path cannot delete something else.
func resetStore(ctx context.Context, spec string) error {
	b, err := parseStore(spec)
	if err != nil {
		return err
	}
	if b != sqliteBackend {
		return usagef("--reset works on SQLite files only; %s stores are reset by dropping their schema", b.name)
	}
	path := spec
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	s, err := novasqlite.Open(ctx, novasqlite.Config{Path: path})
	if err != nil {
		return fmt.Errorf("--reset: %s is not a Nova store, leaving it alone: %w", path, err)
	}
	if err := s.Close(); err != nil {
		return err
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("--reset: %w", err)
		}
	}
	return nil
}

// demoOutcome is what became of one order.
type demoOutcome struct {
	id     string
	status orders.Status
	reason string
	err    error
}

func runDemo(ctx context.Context, e *env, n int) error {
	store, err := openStore(ctx, e.store)
	if err != nil {
		return err
	}
	defer store.Close()

	before, err := countOrders(ctx, store)
	if err != nil {
		return err
	}
	eventsBefore, _, err := countLog(ctx, store)
	if err != nil {
		return err
	}

	stock := orders.NewStock(orders.CatalogStock(demoStockPerProduct))
	bank := &orders.Bank{DeclineFunc: orders.DeclineAbove(demoDeclineAbove)}
	svc, err := orders.NewService(orders.Config{Store: store, Inventory: stock, Payments: bank})
	if err != nil {
		return err
	}

	start := time.Now()
	var outcomes []demoOutcome
	var sagas *sagaDemo
	if svcs, serr := servicesOf(store, "sagas"); serr == nil {
		outcomes, sagas, err = runOrderSagas(ctx, store, svcs, svc, before+1, n)
		if err != nil {
			return err
		}
	} else {
		outcomes = fulfilDirectly(ctx, svc, before, n)
	}
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return err
	}

	var eventsAfter int
	var last nova.Position
	if sagas != nil {
		eventsAfter, last = sagas.events, sagas.head // counted already
	} else if eventsAfter, last, err = countLog(ctx, store); err != nil {
		return err
	}
	return writeDemoReport(e, demoReport{
		first: before + 1, outcomes: outcomes, elapsed: elapsed,
		written: eventsAfter - eventsBefore, total: eventsAfter, last: last,
		stock: stock, bank: bank, sagas: sagas,
	})
}

// fulfilDirectly drives the orders with orders.Service.Fulfil, on stores
// that keep no saga runs (MySQL, JetStream).
func fulfilDirectly(ctx context.Context, svc *orders.Service, before, n int) []demoOutcome {
	outcomes := make([]demoOutcome, n)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range demoWorkers {
		wg.Go(func() {
			for i := range jobs {
				cmd := orders.SampleOrder(before + i + 1)
				o, err := svc.Fulfil(ctx, cmd)
				out := demoOutcome{id: cmd.OrderID, err: err}
				if o != nil {
					out.status, out.reason = o.Status, o.CancelReason
				}
				outcomes[i] = out
			}
		})
	}
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return outcomes
}

type demoReport struct {
	first          int
	outcomes       []demoOutcome
	elapsed        time.Duration
	written, total int
	last           nova.Position
	stock          *orders.Stock
	bank           *orders.Bank
	sagas          *sagaDemo // nil when the store keeps no saga runs
}

func writeDemoReport(e *env, r demoReport) error {
	w := e.stdout
	b, err := parseStore(e.store)
	if err != nil {
		return err
	}
	where := redact(e.store)
	if b == sqliteBackend {
		if abs, err := filepath.Abs(e.store); err == nil {
			where = abs
		}
	}
	run := "a new store"
	if r.first > 1 {
		run = fmt.Sprintf("continuing a store that had %d orders", r.first-1)
	}
	fmt.Fprintf(w, "Nova demo: order fulfilment on %s (%s)\n\n", describeStore(b, e.store), run)

	byOutcome := map[string]int{}
	var failed []demoOutcome
	for _, o := range r.outcomes {
		key := string(o.status)
		switch {
		case o.status == orders.StatusCancelled:
			key = "cancelled: " + o.reason
		case o.err != nil:
			failed = append(failed, o)
			key = "failed"
		}
		byOutcome[key]++
	}
	how := "driven through place -> reserve stock -> pay -> ship"
	if r.sagas != nil {
		how = "run as durable sagas (place -> reserve -> charge -> ship, compensated in reverse on a refusal)"
	}
	fmt.Fprintf(w, "Orders %s to %s %s in %v:\n",
		r.outcomes[0].id, r.outcomes[len(r.outcomes)-1].id, how, r.elapsed.Round(time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, key := range sortedKeys(byOutcome) {
		fmt.Fprintf(tw, "  %s\t%d\n", key, byOutcome[key])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, o := range failed {
		fmt.Fprintf(w, "  order %s failed unexpectedly: %v\n", o.id, o.err)
	}

	held, refunded := r.bank.Totals()
	fmt.Fprintf(w, "\nPayments: %s charged and kept, %s refunded for cancelled orders\n", money(held), money(refunded))
	var levels []string
	for _, p := range orders.Catalog() {
		levels = append(levels, fmt.Sprintf("%s %d", p.SKU, r.stock.Level(p.SKU)))
	}
	fmt.Fprintf(w, "Stock left (the run started with %d of each): %s\n", demoStockPerProduct, strings.Join(levels, ", "))

	if r.sagas != nil {
		writeSagaReport(w, r.sagas)
	}

	fmt.Fprintf(w, "\nEvents: %d written by this run, %d in the store, last global position %s\n", r.written, r.total, r.last)
	fmt.Fprintf(w, "Data: %s\n", where)
	if b.persistent {
		first := r.outcomes[0].id
		store := shellQuote(e.store)
		fmt.Fprintf(w, "\nLook inside:\n  go run ./cmd/nova streams --store %s\n  go run ./cmd/nova read %s-%s --store %s\n",
			store, orders.Category, first, store)
		if r.sagas != nil {
			fmt.Fprintf(w, "  go run ./cmd/nova sagas --store %s\n  go run ./cmd/nova saga %s/%s --store %s\n  go run ./cmd/nova projections --store %s\n",
				store, orders.SagaName, first, store, store)
		}
		if b == sqliteBackend {
			fmt.Fprintf(w, "Run the demo again to continue on the same file, or with --reset to start over.\n")
		} else {
			fmt.Fprintf(w, "Run the demo again to continue on the same store.\n")
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d orders failed unexpectedly", len(failed))
	}
	return nil
}

func describeStore(b *backend, spec string) string {
	switch b {
	case memoryBackend:
		return "an in-memory store"
	case sqliteBackend:
		return "SQLite file " + spec
	}
	return b.name + " store " + redact(spec)
}

// shellQuote quotes s for a POSIX shell when it holds anything but plain
// path characters, so the printed commands can be pasted as they are.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// countOrders counts the order streams, to number this run's orders after
// the previous runs'.
func countOrders(ctx context.Context, s nova.Store) (int, error) {
	prefix := orders.Category + "-"
	n := 0
	for info, err := range s.Streams(ctx, nova.StreamsOptions{After: prefix}) {
		if err != nil {
			return 0, err
		}
		if !strings.HasPrefix(info.Stream, prefix) {
			break
		}
		n++
	}
	return n, nil
}

// countLog counts the events of the global log and returns the last
// position, reading it as a stream, never all at once.
func countLog(ctx context.Context, s nova.Store) (int, nova.Position, error) {
	n, last := 0, nova.Start
	for ev, err := range s.ReadAll(ctx, nova.ReadAllOptions{}) {
		if err != nil {
			return 0, last, err
		}
		n++
		last = ev.Position
	}
	return n, last, nil
}

func money(cents int64) string {
	return fmt.Sprintf("$%d.%02d", cents/100, cents%100)
}

// sortedKeys orders the outcomes: shipped first, then the rest by name.
func sortedKeys(m map[string]int) []string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		shippedA, shippedB := a == string(orders.StatusShipped), b == string(orders.StatusShipped)
		if shippedA != shippedB {
			if shippedA {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	return keys
}
