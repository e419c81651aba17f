package telemetry_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/bridge"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/novamem"
	"github.com/nova-go/nova/saga"
	"github.com/nova-go/nova/telemetry"
)

func newBroker(t *testing.T) *broker.Memory {
	t.Helper()
	b, err := broker.NewMemory(broker.MemoryConfig{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// linksTo reports whether s links to sc.
func linksTo(s sdktrace.ReadOnlySpan, sc trace.SpanContext) bool {
	for _, l := range s.Links() {
		if l.SpanContext.TraceID() == sc.TraceID() && l.SpanContext.SpanID() == sc.SpanID() {
			return true
		}
	}
	return false
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type order struct{ ID string }

// A run started inside a request's trace and driven later by a worker, in
// a context with no span: each step's span links to the request's span
// (recorded with the run's first event), the lifecycle envelopes carry
// the step's trace context through the outbox relay to a subscriber, and
// the run is counted.
func TestSagaStepsLinkToStartAndRelayCarriesTrace(t *testing.T) {
	f := setup(t)
	store := newStore(t)
	b := newBroker(t)
	var mu sync.Mutex
	var envs []broker.Envelope
	sub, err := b.Subscribe(t.Context(), "saga.>", func(_ context.Context, e broker.Envelope) error {
		mu.Lock()
		envs = append(envs, e)
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	ended := make(chan saga.RunInfo, 1)
	c, err := saga.NewCoordinator(saga.Config{Runs: novamem.NewRunStore(store), Broker: b,
		OnEndFunc: func(_ context.Context, r saga.RunInfo) { ended <- r }})
	if err != nil {
		t.Fatal(err)
	}
	var charges atomic.Int32
	def, err := saga.Define("order",
		saga.Step[order]{Name: "reserve", Execute: func(context.Context, saga.StepContext, *order) error { return nil }},
		saga.Step[order]{Name: "charge", Retry: saga.RetryPolicy{Backoff: saga.Linear{Unit: time.Millisecond}},
			Execute: func(context.Context, saga.StepContext, *order) error {
				if charges.Add(1) == 1 {
					return errors.New("card service busy")
				}
				return nil
			}},
	)
	if err != nil {
		t.Fatal(err)
	}

	ctx, request := f.tracer.Tracer("test").Start(t.Context(), "request")
	if _, err := saga.Start(ctx, c, def, "o-1", order{ID: "o-1"}); err != nil {
		t.Fatal(err)
	}
	request.End()

	w, err := saga.NewWorker(c, saga.WorkerConfig{PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := saga.Register(w, def); err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())
	select {
	case r := <-ended:
		if r.Status != saga.Completed {
			t.Fatalf("run ended %s", r.Status)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the run did not end")
	}

	steps := f.ended("nova.saga.step")
	if len(steps) != 3 {
		t.Fatalf("%d step spans, want 3 (reserve, charge twice)", len(steps))
	}
	stepSpans := map[trace.SpanID]bool{}
	outcomes := map[string]int{}
	for _, s := range steps {
		if !linksTo(s, request.SpanContext()) {
			t.Errorf("step span %v does not link to the request span", s.Attributes())
		}
		if s.Parent().IsValid() {
			t.Errorf("a worker's step span has a parent %v", s.Parent())
		}
		stepSpans[s.SpanContext().SpanID()] = true
		for _, kv := range s.Attributes() {
			if kv.Key == "nova.outcome" {
				outcomes[kv.Value.AsString()]++
			}
		}
	}
	if outcomes["ok"] != 2 || outcomes["retry"] != 1 {
		t.Errorf("step outcomes %v, want 2 ok and 1 retry", outcomes)
	}

	waitFor(t, "the lifecycle envelopes", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range envs {
			if e.Topic == "saga.order.saga.completed" {
				return true
			}
		}
		return false
	})
	mu.Lock()
	for _, e := range envs {
		sc := trace.SpanContextFromContext(telemetry.EnvelopeContext(context.Background(), e))
		switch e.Topic {
		case "saga.order.reserve.started", "saga.order.charge.started", "saga.order.charge.succeeded":
			if !stepSpans[sc.SpanID()] {
				t.Errorf("envelope %s carries span %s, not a step's (headers %v)", e.Topic, sc.SpanID(), e.Headers)
			}
		}
	}
	mu.Unlock()
	if len(f.ended("nova.relay.publish")) == 0 {
		t.Error("no relay span")
	}

	m := f.collect(t)
	if n := sum(t, m["nova.saga.runs"], "nova.status", "completed"); n != 1 {
		t.Errorf("completed runs = %d, want 1", n)
	}
	if n := sum(t, m["nova.saga.step.retries"], "nova.step", "charge"); n != 1 {
		t.Errorf("charge retries = %d, want 1", n)
	}
}

type shipOrder struct{ ID string }

func (c shipOrder) CommandID() string { return c.ID }

// The trace context of an append survives a forwarder, the in-memory
// broker and an inbox in another context: the command the inbox
// dispatches runs in the append's trace.
func TestTraceSurvivesForwarderAndInbox(t *testing.T) {
	f := setup(t)
	inner := newStore(t)
	store := telemetry.Store(inner)
	b := newBroker(t)

	bus := cqrs.NewCommandBus()
	got := make(chan trace.SpanContext, 1)
	if err := cqrs.Handle(bus, func(ctx context.Context, cmd shipOrder) error {
		got <- trace.SpanContextFromContext(ctx)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	in, err := bridge.NewInbox(bridge.InboxConfig{Broker: b, Pattern: "events.>", Bus: bus,
		Decode: func(e broker.Envelope) (any, error) { return shipOrder{ID: e.ID}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer in.Stop(context.Background())
	fw, err := bridge.NewForwarder(bridge.ForwarderConfig{Store: inner, Broker: b})
	if err != nil {
		t.Fatal(err)
	}
	if err := fw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer fw.Stop(context.Background())

	ctx, request := f.tracer.Tracer("test").Start(t.Context(), "request")
	if _, err := store.Append(ctx, "order-1", nova.NoStream, event("OrderPlaced")); err != nil {
		t.Fatal(err)
	}
	request.End()
	appendSpan := f.ended("nova.append")[0].SpanContext()

	var sc trace.SpanContext
	select {
	case sc = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the inbox dispatched nothing")
	}
	if sc.TraceID() != request.SpanContext().TraceID() {
		t.Errorf("the inbox's command ran in trace %s, want the append's %s", sc.TraceID(), request.SpanContext().TraceID())
	}
	waitFor(t, "the inbox span", func() bool { return len(f.ended("nova.inbox.handle")) == 1 })
	inbox := f.ended("nova.inbox.handle")[0]
	if inbox.Parent().SpanID() != appendSpan.SpanID() || !inbox.Parent().IsRemote() {
		t.Errorf("inbox span's parent = %v, want the append span %s, remote", inbox.Parent(), appendSpan.SpanID())
	}
	cmd := f.ended("nova.command")
	if len(cmd) != 1 || cmd[0].Parent().SpanID() != inbox.SpanContext().SpanID() {
		t.Errorf("command span is not the inbox span's child: %v", cmd)
	}
	for _, name := range []string{"nova.forwarder.publish", "nova.projection.batch"} {
		waitFor(t, name, func() bool { return len(f.ended(name)) > 0 })
		sp := f.ended(name)
		if len(sp) == 0 || !linksTo(sp[0], appendSpan) {
			t.Errorf("%s span does not link to the append span: %v", name, sp)
		}
	}
	m := f.collect(t)
	if n := sum(t, m["nova.forwarder.envelopes"], "", ""); n != 1 {
		t.Errorf("forwarded envelopes = %d, want 1", n)
	}
}
