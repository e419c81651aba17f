package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/bridge"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/novamem"
	"github.com/nova-go/nova/projection"
)

func newStore(t *testing.T) *novamem.Store {
	t.Helper()
	s, err := novamem.New(novamem.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newBroker(t *testing.T) *broker.Memory {
	t.Helper()
	b, err := broker.NewMemory(broker.MemoryConfig{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// appendEvents appends n events of type typ to stream, with a correlation
// ID, and returns the position of the last.
func appendEvents(t *testing.T, s nova.Store, stream, typ string, n int) nova.Position {
	t.Helper()
	var evs []nova.EventData
	for i := range n {
		evs = append(evs, nova.EventData{
			ID:       nova.NewEventID(),
			Type:     typ,
			Data:     fmt.Appendf(nil, `{"n":%d}`, i),
			Metadata: nova.Metadata{CorrelationID: "corr-" + stream, CausationID: "cause-" + strconv.Itoa(i)},
		})
	}
	res, err := s.Append(t.Context(), stream, nova.Any, evs...)
	if err != nil {
		t.Fatal(err)
	}
	return res.Position
}

// collect subscribes to pattern and returns a function that waits for n
// envelopes and returns them in arrival order.
func collect(t *testing.T, b broker.Broker, pattern string) func(n int) []broker.Envelope {
	t.Helper()
	var mu sync.Mutex
	var got []broker.Envelope
	sub, err := b.Subscribe(t.Context(), pattern, func(_ context.Context, e broker.Envelope) error {
		mu.Lock()
		got = append(got, e)
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	return func(n int) []broker.Envelope {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			k := len(got)
			out := append([]broker.Envelope(nil), got...)
			mu.Unlock()
			if k >= n {
				return out
			}
			if time.Now().After(deadline) {
				t.Fatalf("got %d envelopes, want %d", k, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

var quiet = slog.New(slog.DiscardHandler)

func start(t *testing.T, cfg bridge.ForwarderConfig) *bridge.Forwarder {
	t.Helper()
	f, err := bridge.NewForwarder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Stop(context.Background()) })
	return f
}

func TestForwarderPublishesTheLogInOrder(t *testing.T) {
	s := newStore(t)
	b := newBroker(t)
	wait := collect(t, b, "events.>")

	appendEvents(t, s, "order-1", "OrderPlaced", 3)
	appendEvents(t, s, "payment-9", "PaymentTaken", 2)
	f := start(t, bridge.ForwarderConfig{Store: s, Broker: b, BatchSize: 2})
	last := appendEvents(t, s, "order-1", "OrderShipped", 1)
	if err := f.WaitFor(t.Context(), last); err != nil {
		t.Fatal(err)
	}
	got := wait(6)

	var want []nova.Event
	for e, err := range s.ReadAll(t.Context(), nova.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, e)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d envelopes, want %d", len(got), len(want))
	}
	for i, e := range want {
		env := got[i]
		wantTopic := "events." + bridge.Category(e.Stream) + "." + e.Type
		switch {
		case env.ID != e.ID, env.Topic != wantTopic, env.Key != e.Stream, env.EventType != e.Type:
			t.Fatalf("envelope %d = %s %s key %s type %s; want %s %s key %s type %s",
				i, env.ID, env.Topic, env.Key, env.EventType, e.ID, wantTopic, e.Stream, e.Type)
		case string(env.Payload) != string(e.Data):
			t.Fatalf("envelope %d payload %s, want %s", i, env.Payload, e.Data)
		case env.Headers[bridge.HeaderStream] != e.Stream,
			env.Headers[bridge.HeaderVersion] != strconv.FormatUint(e.Version, 10),
			env.Headers[bridge.HeaderPosition] != e.Position.String(),
			env.Headers[bridge.HeaderCorrelationID] != e.Metadata.CorrelationID,
			env.Headers[bridge.HeaderCausationID] != e.Metadata.CausationID:
			t.Fatalf("envelope %d headers %v do not describe event %+v", i, env.Headers, e)
		case !env.Timestamp.Equal(e.RecordedAt.Truncate(time.Millisecond)) && !env.Timestamp.Equal(e.RecordedAt):
			t.Fatalf("envelope %d timestamp %v, want %v", i, env.Timestamp, e.RecordedAt)
		}
	}
	if n := f.Published(); n != 6 {
		t.Fatalf("Published() = %d, want 6", n)
	}
}

func TestForwarderFilters(t *testing.T) {
	s := newStore(t)
	b := newBroker(t)
	wait := collect(t, b, ">")

	appendEvents(t, s, "order-1", "OrderPlaced", 2)
	appendEvents(t, s, "order-2", "OrderNoted", 2)
	appendEvents(t, s, "payment-1", "OrderPlaced", 2)
	last := appendEvents(t, s, "cart", "OrderPlaced", 1)
	f := start(t, bridge.ForwarderConfig{
		Store: s, Broker: b,
		Categories: []string{"order", "cart"},
		Types:      []string{"OrderPlaced"},
		Topic:      func(e nova.Event) string { return "out." + e.Type },
	})
	if err := f.WaitFor(t.Context(), last); err != nil {
		t.Fatal(err)
	}
	wait(3)
	time.Sleep(50 * time.Millisecond) // anything more would arrive by now
	got := wait(3)
	if len(got) != 3 {
		t.Fatalf("got %d envelopes, want 3 (order-1 ×2, cart)", len(got))
	}
	for i, stream := range []string{"order-1", "order-1", "cart"} {
		if got[i].Key != stream || got[i].Topic != "out.OrderPlaced" {
			t.Fatalf("envelope %d: key %s topic %s, want %s out.OrderPlaced", i, got[i].Key, got[i].Topic, stream)
		}
	}
}

func TestForwarderResumesFromItsCheckpoint(t *testing.T) {
	s := newStore(t)
	b := newBroker(t)
	cp := projection.NewMemoryCheckpoints()

	first := appendEvents(t, s, "order-1", "OrderPlaced", 5)
	f1 := start(t, bridge.ForwarderConfig{Store: s, Broker: b, Checkpoints: cp})
	if err := f1.WaitFor(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	if err := f1.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, _ := cp.Load(t.Context(), bridge.DefaultForwarderName); got != first {
		t.Fatalf("checkpoint after the first forwarder = %v, want %v", got, first)
	}

	last := appendEvents(t, s, "order-1", "OrderPlaced", 3)
	f2 := start(t, bridge.ForwarderConfig{Store: s, Broker: b, Checkpoints: cp})
	if err := f2.WaitFor(t.Context(), last); err != nil {
		t.Fatal(err)
	}
	if n := f2.Published(); n != 3 {
		t.Fatalf("the restarted forwarder published %d envelopes, want the 3 after its checkpoint", n)
	}
	got, err := b.Poll(t.Context(), "events.order.OrderPlaced", 100)
	if err != nil || len(got) != 8 {
		t.Fatalf("Poll = %d envelopes, %v; want 8", len(got), err)
	}
}

// flaky fails every Publish and PublishBatch while down is set.
type flaky struct {
	broker.Broker
	down  atomic.Bool
	fails atomic.Int64
}

func (f *flaky) Publish(ctx context.Context, e broker.Envelope) error {
	if f.down.Load() {
		f.fails.Add(1)
		return errors.New("connection refused")
	}
	return f.Broker.Publish(ctx, e)
}

func TestForwarderWaitsOutABrokerOutage(t *testing.T) {
	s := newStore(t)
	mem := newBroker(t)
	b := &flaky{Broker: mem}
	b.down.Store(true)
	cp := projection.NewMemoryCheckpoints()

	last := appendEvents(t, s, "order-1", "OrderPlaced", 4)
	f := start(t, bridge.ForwarderConfig{Store: s, Broker: b, Checkpoints: cp, Logger: quiet})
	retrying := false
	deadline := time.Now().Add(10 * time.Second)
	for b.fails.Load() < 3 || !retrying {
		if time.Now().After(deadline) {
			t.Fatalf("after %d failed publishes the forwarder had not tried again and shown %s", b.fails.Load(), projection.Retrying)
		}
		retrying = retrying || f.Status().State == projection.Retrying
		time.Sleep(time.Millisecond)
	}
	if got, _ := cp.Load(t.Context(), bridge.DefaultForwarderName); got != nova.Start {
		t.Fatalf("checkpoint moved to %v while the broker refused every publish", got)
	}
	b.down.Store(false)
	if err := f.WaitFor(t.Context(), last); err != nil {
		t.Fatal(err)
	}
	got, err := mem.Poll(t.Context(), "events.order.OrderPlaced", 100)
	if err != nil || len(got) != 4 {
		t.Fatalf("Poll after the outage = %d envelopes, %v; want 4", len(got), err)
	}
}

func TestForwarderStopsOnAnEventItCannotSend(t *testing.T) {
	s := newStore(t)
	b := newBroker(t)
	cp := projection.NewMemoryCheckpoints()

	good := appendEvents(t, s, "order-1", "OrderPlaced", 2)
	if _, err := s.Append(t.Context(), "order-1", nova.Any, nova.EventData{Type: "Raw", Data: []byte("not json")}); err != nil {
		t.Fatal(err)
	}
	appendEvents(t, s, "order-1", "OrderPlaced", 1)
	f := start(t, bridge.ForwarderConfig{Store: s, Broker: b, Checkpoints: cp})
	select {
	case <-f.Stopped():
	case <-time.After(10 * time.Second):
		t.Fatal("the forwarder did not stop on an event whose data is not JSON")
	}
	var pe *projection.PoisonError
	if err := f.Wait(); !errors.As(err, &pe) || !errors.Is(err, nova.ErrInvalid) || pe.Type != "Raw" {
		t.Fatalf("Wait() = %v, want a *projection.PoisonError naming the Raw event, matching nova.ErrInvalid", err)
	}
	if got, _ := cp.Load(t.Context(), bridge.DefaultForwarderName); got != good {
		t.Fatalf("checkpoint = %v, want %v, the event before the one it cannot send", got, good)
	}
	if got, _ := b.Poll(t.Context(), "events.order.OrderPlaced", 100); len(got) != 2 {
		t.Fatalf("published %d envelopes, want the 2 before the bad event", len(got))
	}
}

func TestForwarderConfigErrors(t *testing.T) {
	s := newStore(t)
	b := newBroker(t)
	for name, cfg := range map[string]bridge.ForwarderConfig{
		"no store":       {Broker: b},
		"no broker":      {Store: s},
		"batch too big":  {Store: s, Broker: b, BatchSize: nova.MaxBatch + 1},
		"negative batch": {Store: s, Broker: b, BatchSize: -1},
		"empty category": {Store: s, Broker: b, Categories: []string{""}},
		"empty type":     {Store: s, Broker: b, Types: []string{"a", ""}},
		"timeout":        {Store: s, Broker: b, PublishTimeout: -time.Second},
	} {
		if _, err := bridge.NewForwarder(cfg); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("%s: NewForwarder = %v, want an error matching nova.ErrInvalid", name, err)
		}
	}
}
