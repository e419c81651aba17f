package broker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/broker/brokertest"
)

// memOutbox is an outbox in memory, as a backend's would be after its
// transactions commit.
type memOutbox struct {
	mu      sync.Mutex
	seq     int64
	msgs    []broker.OutboxMessage
	wake    chan struct{}
	pending atomic.Int32 // Pending calls
	failFor atomic.Int32 // Pending calls still to fail
}

func newOutbox() *memOutbox { return &memOutbox{wake: make(chan struct{})} }

func (o *memOutbox) add(envs ...broker.Envelope) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, e := range envs {
		o.seq++
		o.msgs = append(o.msgs, broker.OutboxMessage{Seq: o.seq, Envelope: e})
	}
	close(o.wake)
	o.wake = make(chan struct{})
}

func (o *memOutbox) Pending(_ context.Context, limit int) ([]broker.OutboxMessage, error) {
	o.pending.Add(1)
	if o.failFor.Add(-1) >= 0 {
		return nil, errors.New("outbox database down")
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.msgs[:min(limit, len(o.msgs))]), nil
}

func (o *memOutbox) MarkSent(_ context.Context, seqs []int64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.msgs = slices.DeleteFunc(o.msgs, func(m broker.OutboxMessage) bool { return slices.Contains(seqs, m.Seq) })
	return nil
}

func (o *memOutbox) Wake() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.wake
}

func (o *memOutbox) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.msgs)
}

// flaky is a broker whose publishes fail while down is set.
type flaky struct {
	broker.Broker
	down     atomic.Bool
	failures atomic.Int32
}

var errOutage = errors.New("broker outage")

func (f *flaky) Publish(ctx context.Context, e broker.Envelope) error {
	if f.down.Load() {
		f.failures.Add(1)
		return errOutage
	}
	return f.Broker.Publish(ctx, e)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func relaySetup(t *testing.T) (*memOutbox, *flaky, *broker.Memory) {
	t.Helper()
	m, err := broker.NewMemory(broker.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return newOutbox(), &flaky{Broker: m}, m
}

func envelopes(n int, topic string) []broker.Envelope {
	out := make([]broker.Envelope, n)
	for i := range out {
		out[i] = brokertest.Envelope(fmt.Sprintf("%s-%d", topic, i), topic)
	}
	return out
}

func TestRelayFlushPublishesInOrderAndMarksSent(t *testing.T) {
	t.Parallel()
	o, b, m := relaySetup(t)
	o.add(envelopes(250, "relay.order")...)
	r, err := broker.NewRelay(o, b, broker.RelayConfig{Batch: 100, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	n, err := r.Flush(t.Context())
	if err != nil || n != 250 || o.len() != 0 {
		t.Fatalf("flushed %d, err %v, left %d", n, err, o.len())
	}
	got, err := m.Poll(t.Context(), "relay.order", 1000)
	if err != nil || len(got) != 250 {
		t.Fatalf("polled %d, %v", len(got), err)
	}
	for i, e := range got {
		if e.ID != fmt.Sprintf("relay.order-%d", i) {
			t.Fatalf("envelope %d is %q", i, e.ID)
		}
	}
	if n, err := r.Flush(t.Context()); n != 0 || err != nil {
		t.Fatalf("empty flush: %d, %v", n, err)
	}
}

func TestRelayOutageLosesNothing(t *testing.T) {
	t.Parallel()
	o, b, m := relaySetup(t)
	b.down.Store(true)
	r, err := broker.NewRelay(o, b, broker.RelayConfig{Batch: 7, PollInterval: time.Hour,
		MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	o.add(envelopes(20, "relay.outage")...)
	// The relay keeps trying while the broker is down, and marks nothing
	// sent.
	for b.failures.Load() < 5 {
		time.Sleep(time.Millisecond)
	}
	if o.len() != 20 {
		t.Fatalf("outbox holds %d during the outage, want 20", o.len())
	}
	b.down.Store(false)
	o.add(envelopes(5, "relay.after")...)
	// Wake-ups and backoff retries drain the outbox after recovery.
	for o.len() != 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, _ := m.Poll(t.Context(), "relay.outage", 100)
	after, _ := m.Poll(t.Context(), "relay.after", 100)
	if len(got) != 20 || len(after) != 5 {
		t.Fatalf("after recovery %d and %d envelopes arrived, want 20 and 5", len(got), len(after))
	}
	for i, e := range got {
		if e.ID != fmt.Sprintf("relay.outage-%d", i) {
			t.Fatalf("envelope %d is %q: order lost", i, e.ID)
		}
	}
}

func TestRelayOutboxOutageAndWake(t *testing.T) {
	t.Parallel()
	o, b, m := relaySetup(t)
	o.failFor.Store(3)
	r, _ := broker.NewRelay(o, b, broker.RelayConfig{PollInterval: time.Hour, MinBackoff: time.Millisecond, Logger: quiet})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	o.add(envelopes(3, "relay.wake")...)
	for o.len() != 0 {
		time.Sleep(time.Millisecond)
	}
	// With an hour's poll interval, only Wake brings the next ones.
	o.add(envelopes(2, "relay.woken")...)
	for o.len() != 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got, _ := m.Poll(t.Context(), "relay.woken", 10); len(got) != 2 || o.pending.Load() < 5 {
		t.Fatalf("woken %d, Pending calls %d", len(got), o.pending.Load())
	}
}

func TestRelayRepublishIsDeduplicated(t *testing.T) {
	t.Parallel()
	o, b, m := relaySetup(t)
	envs := envelopes(3, "relay.dup")
	o.add(envs...)
	// A relay that crashed after publishing and before MarkSent publishes
	// again; subscribers see each envelope once.
	if err := broker.PublishAll(t.Context(), m, envs...); err != nil {
		t.Fatal(err)
	}
	r, _ := broker.NewRelay(o, b, broker.RelayConfig{Logger: quiet})
	if n, err := r.Flush(t.Context()); n != 3 || err != nil {
		t.Fatalf("flush %d, %v", n, err)
	}
	if got, _ := m.Poll(t.Context(), "relay.dup", 10); len(got) != 3 {
		t.Fatalf("%d envelopes, want 3", len(got))
	}
}

func TestRelayDropsInvalidEnvelope(t *testing.T) {
	t.Parallel()
	o, b, m := relaySetup(t)
	good := envelopes(2, "relay.valid")
	o.add(good[0], broker.Envelope{ID: "bad", Topic: "bad topic"}, good[1])
	r, _ := broker.NewRelay(o, b, broker.RelayConfig{Logger: quiet})
	if n, err := r.Flush(t.Context()); n != 2 || err != nil || o.len() != 0 {
		t.Fatalf("flush %d, %v, left %d", n, err, o.len())
	}
	if got, _ := m.Poll(t.Context(), "relay.valid", 10); len(got) != 2 {
		t.Fatalf("%d envelopes, want 2", len(got))
	}
}

func TestRelayBadInput(t *testing.T) {
	t.Parallel()
	o, b, _ := relaySetup(t)
	cases := map[string]func() error{
		"neg batch":   func() error { _, err := broker.NewRelay(o, b, broker.RelayConfig{Batch: -1}); return err },
		"neg poll":    func() error { _, err := broker.NewRelay(o, b, broker.RelayConfig{PollInterval: -1}); return err },
		"neg backoff": func() error { _, err := broker.NewRelay(o, b, broker.RelayConfig{MinBackoff: -1}); return err },
		"max < min": func() error {
			_, err := broker.NewRelay(o, b, broker.RelayConfig{MinBackoff: time.Second, MaxBackoff: time.Millisecond})
			return err
		},
	}
	for name, f := range cases {
		if err := f(); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

// panicky is a broker whose publishes panic while panics is above zero.
type panicky struct {
	broker.Broker
	panics atomic.Int32
}

func (p *panicky) Publish(ctx context.Context, e broker.Envelope) error {
	if p.panics.Add(-1) >= 0 {
		panic("publish boom")
	}
	return p.Broker.Publish(ctx, e)
}

// panicHandler is a slog.Handler that panics on every record.
type panicHandler struct{ calls atomic.Int32 }

func (h *panicHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *panicHandler) Handle(context.Context, slog.Record) error {
	h.calls.Add(1)
	panic("handler boom")
}
func (h *panicHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *panicHandler) WithGroup(string) slog.Handler      { return h }

// TestRelayPublishPanic: a broker whose Publish panics fails the flush
// with a *nova.PanicError and leaves the envelopes in the outbox; Run
// backs off and tries again, like after any failed publish, and delivers
// everything once the broker behaves. A logger whose handler panics
// changes nothing.
func TestRelayPublishPanic(t *testing.T) {
	t.Parallel()
	o, _, m := relaySetup(t)
	b := &panicky{Broker: m}
	b.panics.Store(1)
	o.add(envelopes(3, "relay.panic")...)
	r, err := broker.NewRelay(o, b, broker.RelayConfig{PollInterval: time.Hour, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	n, err := r.Flush(t.Context())
	var pe *nova.PanicError
	if n != 0 || !errors.As(err, &pe) || !errors.Is(err, nova.ErrPanic) || o.len() != 3 {
		t.Fatalf("flush with a panicking broker = %d, %v (left %d), want 0, a *nova.PanicError, 3 left", n, err, o.len())
	}
	if n, err := r.Flush(t.Context()); n != 3 || err != nil || o.len() != 0 {
		t.Fatalf("flush after the panic = %d, %v (left %d), want 3 published: the relay is wedged", n, err, o.len())
	}

	// Run, with a handler that panics on every log record.
	h := &panicHandler{}
	b.panics.Store(4)
	o.add(envelopes(5, "relay.panic.run")...)
	r, err = broker.NewRelay(o, b, broker.RelayConfig{PollInterval: time.Hour, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Logger: slog.New(h)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	for o.len() != 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got, _ := m.Poll(t.Context(), "relay.panic.run", 10); len(got) != 5 || h.calls.Load() < 4 {
		t.Fatalf("%d envelopes arrived, %d log records, want 5 and one record per failure", len(got), h.calls.Load())
	}
}

// TestRelayDropLogPanic: a handler that panics while the relay logs an
// envelope it drops does not stop the flush.
func TestRelayDropLogPanic(t *testing.T) {
	t.Parallel()
	o, b, m := relaySetup(t)
	good := envelopes(2, "relay.droplog")
	o.add(good[0], broker.Envelope{ID: "bad", Topic: "bad topic"}, good[1])
	r, _ := broker.NewRelay(o, b, broker.RelayConfig{Logger: slog.New(&panicHandler{})})
	if n, err := r.Flush(t.Context()); n != 2 || err != nil || o.len() != 0 {
		t.Fatalf("flush %d, %v, left %d", n, err, o.len())
	}
	if got, _ := m.Poll(t.Context(), "relay.droplog", 10); len(got) != 2 {
		t.Fatalf("%d envelopes, want 2", len(got))
	}
}
