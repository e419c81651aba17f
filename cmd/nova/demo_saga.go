package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/examples/orders"
	"github.com/nova-go/nova/internal/services"
	"github.com/nova-go/nova/projection"
	"github.com/nova-go/nova/saga"
)

// demoWait bounds how long the demo waits for its runs, and for those an
// earlier demo left, to end.
const demoWait = 2 * time.Minute

// sagaDemo is what the saga half of the demo adds to its report.
type sagaDemo struct {
	statuses map[saga.Status]int // this run's runs
	// resumed counts, by status, the runs an earlier demo left running
	// that this one drove to their end.
	resumed map[saga.Status]int
	// stuck are the IDs of this run's runs left Stuck; jammed the order
	// the demo jams on purpose ("" for none).
	stuck  []string
	jammed string
	// relayed is how many lifecycle envelopes the broker accepted from
	// the outbox, which the demo empties before it reports.
	relayed int
	// broker names where they went: the --broker URL (its password
	// hidden), or empty for the demo's in-process broker.
	broker  string
	summary *orders.Summary // the first order's summary, read by a query
	proj    projection.Status
	lag     projection.Lag
	// events and head are the log's length and last position once every
	// run ended, which the projection was waited for.
	events int
	head   nova.Position
}

// runEnds collects the IDs of runs as they end.
type runEnds struct {
	mu    sync.Mutex
	ended map[string]saga.Status
	ch    chan struct{} // closed and replaced on every end
}

func (r *runEnds) add(_ context.Context, info saga.RunInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ended[info.RunID] = info.Status
	close(r.ch)
	r.ch = make(chan struct{})
}

// pending counts the runs of ids that have not ended.
func (r *runEnds) pending(ids []string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, id := range ids {
		if _, ok := r.ended[id]; !ok {
			n++
		}
	}
	return n
}

// wait waits until every run of ids has ended (or is Stuck), and returns
// how many have not when ctx ends first.
func (r *runEnds) wait(ctx context.Context, ids []string) (left int, err error) {
	for {
		r.mu.Lock()
		ch := r.ch
		r.mu.Unlock()
		if left = r.pending(ids); left == 0 {
			return 0, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return left, ctx.Err()
		}
	}
}

// countingBroker is the demo's broker: it counts the distinct envelopes
// it accepts, so that the report's count does not depend on timing or on
// an envelope published twice.
type countingBroker struct {
	broker.Broker
	mu  sync.Mutex
	ids map[string]struct{}
}

func (b *countingBroker) Publish(ctx context.Context, e broker.Envelope) error {
	if err := b.Broker.Publish(ctx, e); err != nil {
		return err
	}
	b.mu.Lock()
	b.ids[e.ID] = struct{}{}
	b.mu.Unlock()
	return nil
}

func (b *countingBroker) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.ids)
}

// leftRuns returns the fulfilment runs that are neither ended nor Stuck:
// those an earlier demo started and did not finish (it was interrupted).
func leftRuns(ctx context.Context, runs saga.RunStore) ([]saga.RunInfo, error) {
	var left []saga.RunInfo
	for _, st := range []saga.Status{saga.Running, saga.Compensating} {
		f := saga.RunFilter{Saga: orders.SagaName, Status: st, Limit: 1000}
		for {
			page, err := runs.List(ctx, f)
			if err != nil {
				return nil, err
			}
			left = append(left, page...)
			if len(page) < f.Limit {
				break
			}
			f.AfterSaga, f.AfterRun = page[len(page)-1].Saga, page[len(page)-1].RunID
		}
	}
	return left, nil
}

// runOrderSagas runs this demo's orders, numbered from first, as
// fulfilment sagas on a worker, with the order-summary projection running
// beside them, and returns each order's outcome. Runs an interrupted demo
// left are resumed by the same worker and reported apart. Before it
// returns, every lifecycle event has been relayed from the outbox.
func runOrderSagas(ctx context.Context, e *env, store nova.Store, svcs *services.Services, svc *orders.Service, first, n int) ([]demoOutcome, *sagaDemo, error) {
	def, err := orders.FulfilSaga(svc)
	if err != nil {
		return nil, nil, err
	}
	var out broker.Broker
	if e.broker != "" {
		out, err = openBroker(ctx, e.broker)
	} else {
		out, err = broker.NewMemory(broker.MemoryConfig{})
	}
	if err != nil {
		return nil, nil, err
	}
	defer out.Close()
	bus := &countingBroker{Broker: out, ids: make(map[string]struct{})}

	left, err := leftRuns(ctx, svcs.Runs)
	if err != nil {
		return nil, nil, err
	}
	if len(left) > 0 {
		msg := fmt.Sprintf("nova demo: resuming %s found unfinished in the store (left by an interrupted demo, or made due again by an operator)",
			plural(len(left), "run", ""))
		var until time.Time
		for _, r := range left {
			if r.LeaseUntil.After(until) {
				until = r.LeaseUntil
			}
		}
		if wait := time.Until(until); wait > 0 {
			msg += fmt.Sprintf("; the last of their leases expires in %s, then they go on", wait.Round(time.Second))
		}
		fmt.Fprintln(e.stderr, msg)
	}

	ends := &runEnds{ended: make(map[string]saga.Status), ch: make(chan struct{})}
	// No log: the report says what became of every run, stuck ones too.
	coord, err := saga.NewCoordinator(saga.Config{Runs: svcs.Runs, Broker: bus, OnEndFunc: ends.add,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, nil, err
	}
	worker, err := saga.NewWorker(coord, saga.WorkerConfig{Concurrency: demoWorkers, PollInterval: 100 * time.Millisecond})
	if err != nil {
		return nil, nil, err
	}
	if err := saga.Register(worker, def); err != nil {
		return nil, nil, err
	}
	cfg, qs, err := summaryConfig(ctx, store, svcs)
	if err != nil {
		return nil, nil, err
	}
	runner, err := projection.NewRunner(cfg)
	if err != nil {
		return nil, nil, err
	}
	if err := runner.Start(ctx); err != nil {
		return nil, nil, err
	}
	defer runner.Stop(context.WithoutCancel(ctx))
	if err := worker.Start(ctx); err != nil {
		return nil, nil, err
	}
	defer worker.Stop(context.WithoutCancel(ctx))

	ids := make([]string, n)
	for i := range n {
		cmd := orders.SampleOrder(first + i)
		ids[i] = cmd.OrderID
		x, err := startTraced(ctx, cmd.OrderID, func(ctx context.Context) (saga.Execution[orders.Fulfilment], error) {
			return saga.Start(ctx, coord, def, cmd.OrderID, orders.Fulfilment{Order: cmd})
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, interrupted(ctx, e, ends.pending(append(ids[:i], runIDs(left)...)))
			}
			return nil, nil, fmt.Errorf("start saga for order %s: %w", cmd.OrderID, err)
		}
		if x.Status.Terminal() || x.Status == saga.Stuck {
			ends.add(ctx, saga.RunInfo{RunID: x.RunID, Status: x.Status})
		}
	}
	all := append(slices.Clone(ids), runIDs(left)...)
	wctx, cancel := context.WithTimeout(ctx, demoWait)
	defer cancel()
	if waiting, err := ends.wait(wctx, all); err != nil {
		if ctx.Err() != nil {
			return nil, nil, interrupted(ctx, e, waiting)
		}
		return nil, nil, fmt.Errorf("%s still going after %s: %w", plural(waiting, "run", ""), demoWait, err)
	}
	if err := worker.Stop(ctx); err != nil {
		return nil, nil, err
	}
	// The worker relayed while it ran; what it had no time for is relayed
	// now, so the outbox is empty and the count complete.
	relay, err := broker.NewRelay(svcs.Runs.Outbox(), bus, broker.RelayConfig{})
	if err != nil {
		return nil, nil, err
	}
	if _, err := relay.Flush(ctx); err != nil {
		return nil, nil, fmt.Errorf("relay the lifecycle events: %w", err)
	}
	if pending, err := svcs.Runs.Outbox().Pending(ctx, 1); err != nil || len(pending) > 0 {
		return nil, nil, errors.Join(errors.New("lifecycle events are left in the outbox"), err)
	}

	rep := &sagaDemo{statuses: make(map[saga.Status]int), resumed: make(map[saga.Status]int), relayed: bus.count()}
	if e.broker != "" {
		rep.broker = redact(e.broker)
	}
	for _, r := range left {
		info, err := svcs.Runs.Get(ctx, r.Saga, r.RunID)
		if err != nil {
			return nil, nil, err
		}
		rep.resumed[info.Status]++
	}
	outcomes := make([]demoOutcome, n)
	for i, id := range ids {
		x, err := saga.Load(ctx, coord, def, id)
		if err != nil {
			return nil, nil, err
		}
		rep.statuses[x.Status]++
		out := demoOutcome{id: id}
		switch x.Status {
		case saga.Completed:
			out.status = orders.StatusShipped
		case saga.Compensated, saga.Failed:
			out.status, out.reason = orders.StatusCancelled, failureReason(x.FailedStep, x.Failure)
		case saga.Stuck:
			rep.stuck = append(rep.stuck, id)
		default:
			out.err = fmt.Errorf("saga ended %s at step %s: %s%s", x.Status, x.Step, x.Failure, x.CompensationFailure)
		}
		outcomes[i] = out
	}

	// Read-your-writes: wait until the projection has passed the log's
	// head, then ask the query store.
	rep.events, rep.head, err = countLog(ctx, store)
	if err != nil {
		return nil, nil, err
	}
	if err := runner.WaitFor(wctx, rep.head); err != nil {
		return nil, nil, fmt.Errorf("order-summary projection: %w", err)
	}
	s, err := cqrs.Query[orders.Summary](orders.GetSummary{OrderID: ids[0]}).Execute(ctx, qs)
	if err != nil {
		return nil, nil, fmt.Errorf("query the summary of order %s: %w", ids[0], err)
	}
	rep.summary = &s
	rep.proj = runner.Status()
	if rep.lag, err = runner.Lag(ctx); err != nil {
		return nil, nil, err
	}
	return outcomes, rep, nil
}

// interrupted is the error of a demo stopped (Ctrl-C) with runs going:
// they are safe in the store, and the next demo resumes them.
func interrupted(ctx context.Context, e *env, going int) error {
	return fmt.Errorf("interrupted (%w) with %s still going: they are kept in the store, and the next 'nova demo --store %s' resumes them",
		context.Cause(ctx), plural(going, "run", ""), shellQuote(redact(e.store)))
}

func runIDs(runs []saga.RunInfo) []string {
	ids := make([]string, len(runs))
	for i, r := range runs {
		ids[i] = r.RunID
	}
	return ids
}

// failureReason says in a few words why a fulfilment saga failed.
func failureReason(step, failure string) string {
	switch step {
	case "reserve":
		return "out of stock, compensated"
	case "charge":
		return "payment declined, compensated"
	case "":
		return "compensated"
	}
	return fmt.Sprintf("%s failed (%s), compensated", step, oneLine(failure, 40))
}

// statusList is "8 completed, 7 compensated, 1 stuck".
func statusList(counts map[saga.Status]int) string {
	var parts []string
	for _, st := range []saga.Status{saga.Completed, saga.Compensated, saga.Failed, saga.Stuck, saga.Running, saga.Compensating} {
		if c := counts[st]; c > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c, st))
		}
	}
	return strings.Join(parts, ", ")
}

func writeSagaReport(w io.Writer, s *sagaDemo, store string) {
	to := "the broker"
	if s.broker != "" {
		to = s.broker
	}
	fmt.Fprintf(w, "\nSagas: %s; %s relayed from the outbox to %s, none left in the outbox\n",
		statusList(s.statuses), plural(s.relayed, "lifecycle event", ""), to)
	if n := sum(s.resumed); n > 0 {
		fmt.Fprintf(w, "Resumed %s found unfinished (not counted above): now %s\n", plural(n, "run", ""), statusList(s.resumed))
	}
	fmt.Fprintf(w, "Projection %s: checkpoint %s, %s handled, %d behind\n", s.proj.Name, s.proj.Checkpoint, plural(int(s.proj.Handled), "event", ""), s.lag.Events)
	if x := s.summary; x != nil {
		fmt.Fprintf(w, "Query GetSummary{%s}: %s, %s, total %s, customer %s", x.OrderID, x.Status, plural(x.Items, "item", ""), money(x.Total), x.Customer)
		if x.Reason != "" {
			fmt.Fprintf(w, " (%s)", x.Reason)
		}
		fmt.Fprintln(w)
	}
	for _, id := range s.stuck {
		ref := runRef(orders.SagaName, id)
		why := "a compensation failed for good"
		if id == s.jammed {
			why = "its payment was declined, and its stock reservation cannot be released: the warehouse had picked the items already"
		}
		fmt.Fprintf(w, "\nStuck: run %s waits for an operator (%s).\n", ref, why)
		fmt.Fprintf(w, "  See its timeline:  go run ./cmd/nova saga %s --store %s\n", ref, store)
		fmt.Fprintf(w, "  Then choose one:\n")
		fmt.Fprintf(w, "    go run ./cmd/nova saga retry %s --store %s\n", ref, store)
		fmt.Fprintf(w, "        try the failed compensation again (the next demo's warehouse releases it)\n")
		fmt.Fprintf(w, "    go run ./cmd/nova saga skip %s --reason 'released by hand' --store %s\n", ref, store)
		fmt.Fprintf(w, "        record it as done by hand and go on compensating\n")
		fmt.Fprintf(w, "    go run ./cmd/nova saga abandon %s --reason 'written off' --store %s\n", ref, store)
		fmt.Fprintf(w, "        end the run as failed, compensating nothing more\n")
		fmt.Fprintf(w, "  retry and skip make the run due again: the next 'nova demo' on this store finishes it.\n")
	}
}

func sum(m map[saga.Status]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}
