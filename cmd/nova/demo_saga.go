package main

import (
	"context"
	"fmt"
	"io"
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

// sagaDemo is what the saga half of the demo adds to its report.
type sagaDemo struct {
	statuses  map[saga.Status]int
	published int             // lifecycle envelopes the broker delivered
	summary   *orders.Summary // the first order's summary, read by a query
	proj      projection.Status
	lag       projection.Lag
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

// wait waits until every run of ids has ended.
func (r *runEnds) wait(ctx context.Context, ids []string) error {
	for {
		r.mu.Lock()
		left := 0
		for _, id := range ids {
			if _, ok := r.ended[id]; !ok {
				left++
			}
		}
		ch := r.ch
		r.mu.Unlock()
		if left == 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%d runs still going: %w", left, ctx.Err())
		}
	}
}

// runOrderSagas runs this demo's orders as fulfilment sagas on a worker,
// with the order-summary projection running beside them, and returns each
// order's outcome.
func runOrderSagas(ctx context.Context, store nova.Store, svcs *services.Services, svc *orders.Service, first, n int) ([]demoOutcome, *sagaDemo, error) {
	def, err := orders.FulfilSaga(svc)
	if err != nil {
		return nil, nil, err
	}
	bus, err := broker.NewMemory(nil)
	if err != nil {
		return nil, nil, err
	}
	defer bus.Close()
	var mu sync.Mutex
	published := 0
	sub, err := bus.Subscribe(ctx, "saga.>", func(context.Context, broker.Envelope) error {
		mu.Lock()
		published++
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	defer sub.Unsubscribe()

	ends := &runEnds{ended: make(map[string]saga.Status), ch: make(chan struct{})}
	coord, err := saga.NewCoordinator(saga.Config{Runs: svcs.Runs, Broker: bus, OnEndFunc: ends.add})
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
		x, err := saga.Start(ctx, coord, def, cmd.OrderID, orders.Fulfilment{Order: cmd})
		if err != nil {
			return nil, nil, fmt.Errorf("start saga for order %s: %w", cmd.OrderID, err)
		}
		if x.Status.Terminal() {
			ends.add(ctx, saga.RunInfo{RunID: x.RunID, Status: x.Status})
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := ends.wait(wctx, ids); err != nil {
		return nil, nil, err
	}
	if err := worker.Stop(ctx); err != nil {
		return nil, nil, err
	}

	rep := &sagaDemo{statuses: make(map[saga.Status]int)}
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
	mu.Lock()
	rep.published = published
	mu.Unlock()
	return outcomes, rep, nil
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

func writeSagaReport(w io.Writer, s *sagaDemo) {
	var parts []string
	for _, st := range allStatuses {
		if c := s.statuses[st]; c > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c, st))
		}
	}
	fmt.Fprintf(w, "\nSagas: %s; %d lifecycle events relayed from the outbox to the broker\n", strings.Join(parts, ", "), s.published)
	fmt.Fprintf(w, "Projection %s: checkpoint %s, %d events handled, %d behind\n", s.proj.Name, s.proj.Checkpoint, s.proj.Handled, s.lag.Events)
	if x := s.summary; x != nil {
		fmt.Fprintf(w, "Query GetSummary{%s}: %s, %d items, total %s, customer %s", x.OrderID, x.Status, x.Items, money(x.Total), x.Customer)
		if x.Reason != "" {
			fmt.Fprintf(w, " (%s)", x.Reason)
		}
		fmt.Fprintln(w)
	}
}
