package bridge_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/bridge"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/cqrs"
)

// ReserveStock is the command the inbox test's messages ask for.
type ReserveStock struct {
	ID  string
	SKU string `json:"sku"`
	Qty int    `json:"qty"`
}

func (c ReserveStock) CommandID() string { return c.ID }

func decodeReserve(e broker.Envelope) (any, error) {
	var c ReserveStock
	if err := json.Unmarshal(e.Payload, &c); err != nil {
		return nil, err
	}
	if c.SKU == "" {
		return nil, nil // not for us: acknowledge and drop
	}
	c.ID = e.ID
	return c, nil
}

// stockBus returns a bus whose ReserveStock handler appends one event to
// the SKU's stream under the ID derived from the command's key, and counts
// its runs. fail, when it returns true, fails a command after it ran:
// the message is then delivered again.
func stockBus(t *testing.T, s nova.Store, runs *atomic.Int64, fail func() bool) *cqrs.CommandBus {
	t.Helper()
	idem := cqrs.Idempotency(&cqrs.MemoryHandled{})
	lose := func(next cqrs.HandlerFunc) cqrs.HandlerFunc {
		return func(ctx context.Context, msg any) (any, error) {
			r, err := next(ctx, msg)
			if err == nil && fail != nil && fail() {
				return nil, errors.New("acknowledgement lost")
			}
			return r, err
		}
	}
	bus := cqrs.NewCommandBus(lose, cqrs.Correlation(), idem)
	err := cqrs.Handle(bus, func(ctx context.Context, c ReserveStock) error {
		runs.Add(1)
		key, _ := cqrs.KeyOf(c)
		md := cqrs.StampMetadata(ctx, nova.Metadata{})
		_, err := s.Append(ctx, "stock-"+c.SKU, nova.Any, nova.EventData{
			ID: key.EventID(0), Type: "StockReserved", Data: []byte(`{"qty":1}`), Metadata: md,
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return bus
}

func startInbox(t *testing.T, cfg bridge.InboxConfig) *bridge.Inbox {
	t.Helper()
	in, err := bridge.NewInbox(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Stop(context.Background()) })
	return in
}

func streamLen(t *testing.T, s nova.Store, stream string) []nova.Event {
	t.Helper()
	var evs []nova.Event
	for e, err := range s.ReadStream(t.Context(), stream, nova.ReadStreamOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	return evs
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestInboxRedeliveryChangesNothing(t *testing.T) {
	s := newStore(t)
	b := newBroker(t)
	var runs atomic.Int64
	var failed atomic.Bool
	// The first run succeeds but its acknowledgement is lost, so the
	// message comes again.
	bus := stockBus(t, s, &runs, func() bool { return !failed.Swap(true) })
	startInbox(t, bridge.InboxConfig{Broker: b, Pattern: "stock.>", Bus: bus, Decode: decodeReserve})

	env, _ := broker.NewEnvelope("msg-1", "stock.reserve", "ReserveStock", map[string]any{"sku": "A1", "qty": 1})
	env.Headers = map[string]string{bridge.HeaderCorrelationID: "order-7"}
	if err := b.Publish(t.Context(), env); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a second delivery", func() bool { return failed.Load() && runs.Load() >= 1 })
	time.Sleep(100 * time.Millisecond) // the redelivery's backoff is a few ms

	evs := streamLen(t, s, "stock-A1")
	if len(evs) != 1 {
		t.Fatalf("stream holds %d events after a redelivery, want 1", len(evs))
	}
	if md := evs[0].Metadata; md.CorrelationID != "order-7" || md.CausationID != "msg-1" {
		t.Fatalf("event metadata = %+v, want correlation order-7 and causation msg-1", md)
	}
	if dl, _ := b.PollDLQ(t.Context(), "stock.reserve", 10); len(dl) != 0 {
		t.Fatalf("dead letters = %+v, want none", dl)
	}

	// A process that restarts keeps no HandledStore: the message coming
	// again runs the command again, whose append is an idempotent retry.
	b2 := newBroker(t)
	var runs2 atomic.Int64
	startInbox(t, bridge.InboxConfig{Broker: b2, Pattern: "stock.>", Bus: stockBus(t, s, &runs2, nil), Decode: decodeReserve})
	if err := b2.Publish(t.Context(), env); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the command after a restart", func() bool { return runs2.Load() == 1 })
	time.Sleep(50 * time.Millisecond)
	if evs := streamLen(t, s, "stock-A1"); len(evs) != 1 {
		t.Fatalf("stream holds %d events after the message came again to a restarted service, want 1", len(evs))
	}
}

func TestInboxDeadLettersWhatItCannotRun(t *testing.T) {
	s := newStore(t)
	b, err := broker.NewMemory(broker.MemoryConfig{MaxAttempts: 2, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	var runs atomic.Int64
	bus := stockBus(t, s, &runs, nil)
	startInbox(t, bridge.InboxConfig{Broker: b, Pattern: "stock.>", Bus: bus, Decode: func(e broker.Envelope) (any, error) {
		if e.EventType == "Anonymous" {
			return struct{ SKU string }{"A1"}, nil
		}
		return decodeReserve(e)
	}})

	bad := broker.Envelope{ID: "bad-json", Topic: "stock.reserve", EventType: "ReserveStock", Payload: json.RawMessage(`[1,2]`)}
	anon := broker.Envelope{ID: "anon", Topic: "stock.anon", EventType: "Anonymous", Payload: json.RawMessage(`{}`)}
	skip := broker.Envelope{ID: "skip", Topic: "stock.other", EventType: "Other", Payload: json.RawMessage(`{"qty":3}`)}
	if err := broker.PublishAll(t.Context(), b, bad, anon, skip); err != nil {
		t.Fatal(err)
	}
	var dls []broker.DeadLetter
	eventually(t, "two dead letters", func() bool {
		for _, topic := range []string{"stock.reserve", "stock.anon"} {
			got, _ := b.PollDLQ(t.Context(), topic, 10)
			dls = append(dls, got...)
		}
		return len(dls) == 2
	})
	for _, d := range dls {
		switch d.Envelope.ID {
		case "bad-json":
			if !strings.Contains(d.Reason, "decode") {
				t.Errorf("dead letter of a payload Decode refused: reason %q, want it to say decode", d.Reason)
			}
		case "anon":
			if !strings.Contains(d.Reason, "carries no ID") {
				t.Errorf("dead letter of a command without ID: reason %q", d.Reason)
			}
		}
	}
	if dl, _ := b.PollDLQ(t.Context(), "stock.other", 10); len(dl) != 0 || runs.Load() != 0 {
		t.Fatalf("a message Decode passed over was dead-lettered (%v) or ran (%d runs)", dl, runs.Load())
	}
}

func TestInboxStartStop(t *testing.T) {
	s := newStore(t)
	b := newBroker(t)
	var runs atomic.Int64
	in := startInbox(t, bridge.InboxConfig{Broker: b, Pattern: "stock.>", Bus: stockBus(t, s, &runs, nil), Decode: decodeReserve})
	if err := in.Start(t.Context()); err == nil {
		t.Fatal("a second Start of a running inbox succeeded")
	}
	if err := in.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	<-in.Stopped()
	if err := in.Start(t.Context()); err != nil {
		t.Fatalf("Start after Stop: %v", err)
	}
	env, _ := broker.NewEnvelope("m", "stock.x", "ReserveStock", map[string]any{"sku": "B"})
	if err := b.Publish(t.Context(), env); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a command after a restart of the inbox", func() bool { return runs.Load() == 1 })
}

func TestInboxConfigErrors(t *testing.T) {
	b := newBroker(t)
	bus := cqrs.NewCommandBus()
	dec := func(broker.Envelope) (any, error) { return nil, nil }
	noGroups := struct{ broker.Broker }{b}
	for name, cfg := range map[string]bridge.InboxConfig{
		"no broker":    {Pattern: "a", Bus: bus, Decode: dec},
		"no bus":       {Broker: b, Pattern: "a", Decode: dec},
		"no decode":    {Broker: b, Pattern: "a", Bus: bus},
		"no pattern":   {Broker: b, Bus: bus, Decode: dec},
		"bad pattern":  {Broker: b, Pattern: "a.>.b", Bus: bus, Decode: dec},
		"group, no gs": {Broker: noGroups, Pattern: "a", Group: "g", Bus: bus, Decode: dec},
	} {
		if _, err := bridge.NewInbox(cfg); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("%s: NewInbox = %v, want an error matching nova.ErrInvalid", name, err)
		}
	}
}

// TestInboxStopped checks the inbox's life cycle as the other workers
// have it: Stopped is closed before Start, open while it runs, closed
// after Stop and after the broker's Close ends its subscription, and the
// inbox starts again once it is closed.
func TestInboxStopped(t *testing.T) {
	s := newStore(t)
	b := newBroker(t)
	var runs atomic.Int64
	in, err := bridge.NewInbox(bridge.InboxConfig{Broker: b, Pattern: "stock.>", Bus: stockBus(t, s, &runs, nil), Decode: decodeReserve})
	if err != nil {
		t.Fatal(err)
	}
	closed := func(what string, want bool) {
		t.Helper()
		select {
		case <-in.Stopped():
			if !want {
				t.Fatalf("%s: Stopped is closed, want it open", what)
			}
		case <-time.After(50 * time.Millisecond):
			if want {
				t.Fatalf("%s: Stopped is open, want it closed", what)
			}
		}
	}
	closed("before Start", true)
	if err := in.Stop(t.Context()); err != nil {
		t.Fatalf("Stop before Start: %v", err)
	}
	if err := in.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	closed("running", false)
	if err := in.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	closed("after Stop", true)

	ctx, cancel := context.WithCancel(t.Context())
	if err := in.Start(ctx); err != nil {
		t.Fatalf("Start after Stop: %v", err)
	}
	cancel()
	closed("after Start's ctx ended", true)

	if err := in.Start(t.Context()); err != nil {
		t.Fatalf("Start after its ctx ended: %v", err)
	}
	b.Close()
	closed("after the broker's Close", true)
	if err := in.Stop(t.Context()); err != nil {
		t.Fatalf("Stop after the broker's Close: %v", err)
	}
}
