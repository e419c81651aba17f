package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
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
	"github.com/nova-go/nova/internal/services"
	"github.com/nova-go/nova/novasqlite"
	"github.com/nova-go/nova/projection"
	"github.com/nova-go/nova/saga"
	"github.com/nova-go/nova/telemetry"
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
		name:     "demo",
		summary:  "run the order domain on the store: place orders, drive them through their lifecycle, report",
		usage:    "[--store PATH|URL] [--orders N] [--reset] [--broker URL] [--json]",
		jsonHelp: "print the report as one JSON object",
		broker:   "relay the sagas' lifecycle events to this broker instead of one in the process: " + brokerHelp,
		flags: func(fs *flag.FlagSet, e *env) {
			fs.IntVar(&n, "orders", 16, "orders to place in this run")
			fs.BoolVar(&reset, "reset", false, "delete the store's file first and start over (only a file that is a Nova store)")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 0 {
				return usagef("demo takes no arguments, got %q", args)
			}
			if n < 1 || n > 100_000 {
				return usagef("--orders must be between 1 and 100000, got %d", n)
			}
			if e.broker != "" {
				if _, err := brokerOpener(e.broker); err != nil {
					return err
				}
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

// resetStore deletes a SQLite store's files, and only when the file is
// provably a Nova store (it carries Nova's application ID): another
// program's database, or any other file, is refused and left as it is.
// A demo running on the store is not pulled from under: its lock is
// checked first.
func resetStore(ctx context.Context, spec string) error {
	b, err := parseStore(spec)
	if err != nil {
		return err
	}
	switch b {
	case memoryBackend:
		return nil // always new
	case sqliteBackend:
	default:
		return usagef("--reset works on SQLite files only: to start over on %s, give another schema, database or stream in --store", b.name)
	}
	path := spec
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	ok, err := novasqlite.IsStore(ctx, path)
	if err != nil {
		return fmt.Errorf("--reset: %s: %w", path, err)
	}
	if !ok {
		return fmt.Errorf("--reset: %s is not a Nova store (it lacks Nova's application ID), leaving it alone: delete it yourself if it is yours", path)
	}
	// A store that opens is checked for a running demo; one that does
	// not (an older schema) is still Nova's.
	if s, err := novasqlite.Open(ctx, novasqlite.Config{Path: path, SkipMigrate: true}); err == nil {
		lockErr := func() error {
			svcs, err := servicesOf(s, "demo")
			if err != nil {
				return err
			}
			lock, err := lockDemo(ctx, svcs, spec)
			if err != nil {
				return err
			}
			return lock.release(ctx)
		}()
		if err := errors.Join(lockErr, s.Close()); err != nil {
			return fmt.Errorf("--reset: %w", err)
		}
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
	status orders.Status // "" for a run left stuck
	reason string
	err    error
}

func runDemo(ctx context.Context, e *env, n int) error {
	store, err := openStore(ctx, e.store)
	if err != nil {
		return err
	}
	defer store.Close()

	svcs, serr := servicesOf(store, "sagas")
	if serr != nil {
		svcs = nil // the store keeps events only: no sagas
	}
	var lock *demoLock
	if svcs != nil {
		if lock, err = lockDemo(ctx, svcs, e.store); err != nil {
			return err
		}
		defer lock.release(context.WithoutCancel(ctx))
	}
	var skipped []string
	if svcs != nil && (svcs.NeedRuns() != nil || svcs.NeedQueryStore() != nil) {
		// JetStream keeps checkpoints and snapshots but no saga runs
		// and no read models.
		skipped = []string{
			"the fulfilment sagas: " + svcs.NeedRuns().Error(),
			"the order-summary projection: " + svcs.NeedQueryStore().Error(),
		}
		svcs = nil
	}

	before, err := countOrders(ctx, store)
	if err != nil {
		return err
	}
	numbered := before
	if svcs != nil {
		// A run an interrupted demo started may not have placed its
		// order yet: number this run's orders after every run too.
		runs, err := countRuns(ctx, svcs.Runs)
		if err != nil {
			return err
		}
		numbered = max(numbered, runs)
	}
	eventsBefore, _, err := countLog(ctx, store)
	if err != nil {
		return err
	}

	jammed := ""
	if svcs != nil && n >= 2 {
		// One order per run is left stuck for an operator to fix.
		jammed = orders.SampleOrder(numbered + 2).OrderID
	}
	declined := func(id string, amount int64) bool { return id == jammed || amount > demoDeclineAbove }
	bank := &orders.Bank{DeclineFunc: declined}
	stock := newDemoStock(numbered+1, n, jammed, declined)
	// The service appends through the telemetry decorator: with an SDK
	// installed (see telemetry.go), each append is a span whose context
	// the events carry to the projection.
	svc, err := orders.NewService(orders.Config{Store: telemetry.Store(store), Inventory: stock, Payments: bank})
	if err != nil {
		return err
	}

	start := time.Now()
	var outcomes []demoOutcome
	var sagas *sagaDemo
	if svcs != nil {
		outcomes, sagas, err = runOrderSagas(ctx, e, store, svcs, svc, numbered+1, n)
		if err != nil {
			return err
		}
		sagas.jammed = jammed
	} else {
		outcomes = fulfilDirectly(ctx, svc, numbered, n)
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
		before: before, outcomes: outcomes, elapsed: elapsed,
		written: eventsAfter - eventsBefore, total: eventsAfter, last: last,
		stock: stock, bank: bank, sagas: sagas, skipped: skipped,
	})
}

// fulfilDirectly drives the orders with orders.Service.Fulfil, on stores
// that keep no saga runs (JetStream).
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
	before         int // orders in the store before the run
	outcomes       []demoOutcome
	elapsed        time.Duration
	written, total int
	last           nova.Position
	stock          *demoStock
	bank           *orders.Bank
	sagas          *sagaDemo // nil when the store keeps no saga runs
	skipped        []string  // the parts of the demo the store cannot run, and why
}

// demoJSON is the report of `nova demo --json`.
type demoJSON struct {
	Backend      string         `json:"backend"`
	Store        string         `json:"store"`
	OrdersBefore int            `json:"orders_before"`
	First        string         `json:"first_order"`
	Last         string         `json:"last_order"`
	Outcomes     map[string]int `json:"outcomes"`
	Failed       []string       `json:"failed,omitempty"`
	Charged      int64          `json:"charged_cents"`
	Refunded     int64          `json:"refunded_cents"`
	StockLeft    map[string]int `json:"stock_left"`
	Sagas        map[string]int `json:"sagas,omitempty"`
	Relayed      int            `json:"lifecycle_events_relayed,omitempty"`
	Broker       string         `json:"broker,omitempty"`
	Resumed      map[string]int `json:"resumed,omitempty"`
	Stuck        []string       `json:"stuck,omitempty"`
	Written      int            `json:"events_written"`
	Total        int            `json:"events_in_store"`
	Position     string         `json:"last_position"`
	Seconds      float64        `json:"seconds"`
	Skipped      []string       `json:"skipped,omitempty"`
}

// outcomeKey names an order's outcome in the report.
func outcomeKey(o demoOutcome) string {
	switch {
	case o.status == orders.StatusCancelled:
		return "cancelled: " + o.reason
	case o.err != nil:
		return "failed"
	case o.status == "":
		return "stuck: waiting for an operator"
	}
	return string(o.status)
}

func writeDemoReport(e *env, r demoReport) error {
	b, err := parseStore(e.store)
	if err != nil {
		return err
	}
	byOutcome := map[string]int{}
	var failed []demoOutcome
	for _, o := range r.outcomes {
		key := outcomeKey(o)
		if key == "failed" {
			failed = append(failed, o)
		}
		byOutcome[key]++
	}
	var failure error
	if len(failed) > 0 {
		failure = fmt.Errorf("%s failed unexpectedly", plural(len(failed), "order", ""))
	}
	if e.json {
		return errors.Join(writeDemoJSON(e, b, r, byOutcome, failed), failure)
	}

	w := e.stdout
	where := redact(e.store)
	if b == sqliteBackend {
		if abs, err := filepath.Abs(e.store); err == nil {
			where = abs
		}
	}
	run := "a new store"
	if r.before > 0 {
		run = fmt.Sprintf("continuing a store that had %s", plural(r.before, "order", ""))
	}
	fmt.Fprintf(w, "Nova demo: order fulfilment on %s (%s)\n\n", describeStore(b, e.store), run)

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
	if len(r.skipped) > 0 {
		fmt.Fprintf(w, "\nSkipped on this store:\n")
		for _, sk := range r.skipped {
			fmt.Fprintf(w, "  %s\n", sk)
		}
	}

	held, refunded := r.bank.Totals()
	fmt.Fprintf(w, "\nPayments: %s charged and kept, %s refunded for cancelled orders\n", money(held), money(refunded))
	var levels []string
	for _, p := range orders.Catalog() {
		levels = append(levels, fmt.Sprintf("%s %d", p.SKU, r.stock.Level(p.SKU)))
	}
	fmt.Fprintf(w, "Stock left (the run started with %d of each): %s\n", demoStockPerProduct, strings.Join(levels, ", "))

	store := shellQuote(redact(e.store))
	if r.sagas != nil {
		writeSagaReport(w, r.sagas, store)
	}

	fmt.Fprintf(w, "\nEvents: %d written by this run, %d in the store, last global position %s\n", r.written, r.total, r.last)
	fmt.Fprintf(w, "Data: %s\n", where)
	if b.persistent {
		first := r.outcomes[0].id
		fmt.Fprintf(w, "\nLook inside:\n  go run ./cmd/nova streams --store %s\n  go run ./cmd/nova read %s-%s --store %s\n",
			store, orders.Category, first, store)
		if r.sagas != nil {
			fmt.Fprintf(w, "  go run ./cmd/nova sagas --store %s\n  go run ./cmd/nova saga %s --store %s\n  go run ./cmd/nova projections --store %s\n",
				store, runRef(orders.SagaName, first), store, store)
		}
		if store != shellQuote(e.store) {
			fmt.Fprintf(w, "(the password is hidden: put yours in place of xxxxx)\n")
		}
		if b == sqliteBackend {
			fmt.Fprintf(w, "Run the demo again to continue on the same file, or with --reset to start over.\n")
		} else {
			fmt.Fprintf(w, "Run the demo again to continue on the same store.\n")
		}
	}
	return failure
}

func writeDemoJSON(e *env, b *backend, r demoReport, byOutcome map[string]int, failed []demoOutcome) error {
	held, refunded := r.bank.Totals()
	j := demoJSON{
		Backend: b.name, Store: redact(e.store), OrdersBefore: r.before,
		First: r.outcomes[0].id, Last: r.outcomes[len(r.outcomes)-1].id, Outcomes: byOutcome,
		Charged: held, Refunded: refunded, StockLeft: map[string]int{},
		Written: r.written, Total: r.total, Position: r.last.String(), Seconds: r.elapsed.Seconds(),
		Skipped: r.skipped,
	}
	for _, o := range failed {
		j.Failed = append(j.Failed, fmt.Sprintf("%s: %v", o.id, o.err))
	}
	for _, p := range orders.Catalog() {
		j.StockLeft[p.SKU] = r.stock.Level(p.SKU)
	}
	if s := r.sagas; s != nil {
		j.Sagas, j.Relayed, j.Resumed = map[string]int{}, s.relayed, map[string]int{}
		j.Broker = s.broker
		for st, c := range s.statuses {
			j.Sagas[string(st)] = c
		}
		for st, c := range s.resumed {
			j.Resumed[string(st)] = c
		}
		for _, id := range s.stuck {
			j.Stuck = append(j.Stuck, runRef(orders.SagaName, id))
		}
	}
	return json.NewEncoder(e.stdout).Encode(j)
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

// countRuns counts the fulfilment saga's runs, whatever their status.
func countRuns(ctx context.Context, runs saga.RunStore) (int, error) {
	counts, err := runs.Count(ctx, orders.SagaName)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range counts {
		n += c
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

// demoLockName is the lease that keeps a second demo off a store while
// one runs: a lease of the store's projection checkpoints, which
// `nova projections` does not list.
const demoLockName = "nova-demo.lock"

// demoLockTTL is how long the lock outlives a demo that died without
// releasing it; a running demo renews it every third of that.
const demoLockTTL = 15 * time.Second

// demoLock is a demo's hold on its store. Two demos on one store would
// drive each other's runs with stand-in stock and banks that live in
// each process, and each would wait for runs the other ended: so a
// second demo fails at once, saying which demo holds the store and until
// when, rather than waiting an unknown time for the first to end.
type demoLock struct {
	leaser projection.Leaser
	owner  string
	stop   chan struct{}
	done   chan struct{}
}

// lockDemo takes the demo lock of the store of svcs, spec, or fails
// naming who holds it. A store whose checkpoints take no leases (the
// in-memory one, which no other process sees) needs none.
func lockDemo(ctx context.Context, svcs *services.Services, spec string) (*demoLock, error) {
	l, ok := svcs.Checkpoints.(projection.Leaser)
	if !ok {
		return &demoLock{}, nil
	}
	host, _ := os.Hostname()
	var tag [4]byte
	_, _ = rand.Read(tag[:])
	owner := fmt.Sprintf("nova demo %x, pid %d on %s, started %s", tag, os.Getpid(), host, time.Now().Format(time.TimeOnly))
	got, err := l.Acquire(ctx, demoLockName, owner, demoLockTTL)
	if err != nil {
		return nil, fmt.Errorf("take the demo's lock on the store: %w", err)
	}
	if !got {
		return nil, fmt.Errorf("another demo is running on %s (%s): wait for it to end, or run this one with another --store",
			redact(spec), demoLockHolder(ctx, svcs))
	}
	d := &demoLock{leaser: l, owner: owner, stop: make(chan struct{}), done: make(chan struct{})}
	go d.renew(context.WithoutCancel(ctx))
	return d, nil
}

// demoLockHolder says who holds the demo lock and until when.
func demoLockHolder(ctx context.Context, svcs *services.Services) string {
	lister, ok := svcs.Checkpoints.(projection.CheckpointLister)
	if !ok {
		return "another nova demo"
	}
	infos, err := lister.List(ctx)
	if err != nil {
		return "another nova demo"
	}
	for _, in := range infos {
		if in.Name == demoLockName {
			return fmt.Sprintf("%s; if it was killed, its hold lapses at %s", in.LeaseOwner, in.LeaseUntil.Local().Format(time.TimeOnly))
		}
	}
	return "another nova demo"
}

// renew renews the lock every third of its TTL until release.
func (d *demoLock) renew(ctx context.Context) {
	defer close(d.done)
	t := time.NewTicker(demoLockTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
			_, _ = d.leaser.Acquire(ctx, demoLockName, d.owner, demoLockTTL)
		}
	}
}

// release stops renewing and gives the lock up.
func (d *demoLock) release(ctx context.Context) error {
	if d.leaser == nil {
		return nil
	}
	close(d.stop)
	<-d.done
	return d.leaser.Release(ctx, demoLockName, d.owner)
}
