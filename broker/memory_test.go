package broker_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/broker/brokertest"
)

// newMemory returns a broker with short backoffs, closed with the test.
func newMemory(t *testing.T, cfg broker.MemoryConfig) *broker.Memory {
	t.Helper()
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = time.Millisecond
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 5 * time.Millisecond
	}
	b, err := broker.NewMemory(cfg)
	if err != nil {
		t.Fatalf("NewMemory: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestMemoryConformance(t *testing.T) {
	brokertest.Run(t, func(t *testing.T) broker.Broker { return newMemory(t, broker.MemoryConfig{MaxAttempts: 3}) })
}

func TestMemoryConformanceDefaults(t *testing.T) {
	// The default attempt limit, with short backoffs.
	brokertest.Run(t, func(t *testing.T) broker.Broker { return newMemory(t, broker.MemoryConfig{}) })
}

func TestMemoryConformanceOneAttempt(t *testing.T) {
	brokertest.Run(t, func(t *testing.T) broker.Broker { return newMemory(t, broker.MemoryConfig{MaxAttempts: 1}) })
}

func TestNewMemoryConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		cfg       broker.MemoryConfig
		wantField string // "" for no error
	}{
		{"zero", broker.MemoryConfig{}, ""},
		{"all set", broker.MemoryConfig{MaxAttempts: 2, MinBackoff: time.Second, MaxBackoff: time.Minute, DedupWindow: time.Hour, MaxQueue: 3}, ""},
		{"min above the default max", broker.MemoryConfig{MinBackoff: time.Minute}, ""},
		{"negative attempts", broker.MemoryConfig{MaxAttempts: -1}, "MemoryConfig.MaxAttempts"},
		{"negative min backoff", broker.MemoryConfig{MinBackoff: -1}, "MemoryConfig.MinBackoff"},
		{"negative max backoff", broker.MemoryConfig{MaxBackoff: -1}, "MemoryConfig.MaxBackoff"},
		{"max below min", broker.MemoryConfig{MinBackoff: time.Second, MaxBackoff: time.Millisecond}, "MemoryConfig.MaxBackoff"},
		{"max below default min", broker.MemoryConfig{MaxBackoff: time.Millisecond}, "MemoryConfig.MaxBackoff"},
		{"negative window", broker.MemoryConfig{DedupWindow: -time.Second}, "MemoryConfig.DedupWindow"},
		{"negative queue", broker.MemoryConfig{MaxQueue: -1}, "MemoryConfig.MaxQueue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := broker.NewMemory(tt.cfg)
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("NewMemory: %v", err)
				}
			} else {
				var ie *nova.InvalidError
				if !errors.Is(err, nova.ErrInvalid) || !errors.As(err, &ie) || ie.Field != tt.wantField {
					t.Fatalf("NewMemory: %v, want an invalid error naming %s", err, tt.wantField)
				}
			}
			if b != nil {
				b.Close()
			}
		})
	}
}

// TestMemoryMaxQueue fills a poll queue and a dead-letter queue past
// MaxQueue: the oldest entries go and are counted.
func TestMemoryMaxQueue(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := newMemory(t, broker.MemoryConfig{MaxQueue: 3})
	for i := range 5 {
		if err := b.Publish(ctx, brokertest.Envelope(fmt.Sprintf("q%d", i), "q.t")); err != nil {
			t.Fatal(err)
		}
		if err := b.PublishDLQ(ctx, "q.dlq", brokertest.Envelope(fmt.Sprintf("q%d", i), "q.t"), "why"); err != nil {
			t.Fatal(err)
		}
	}
	got, err := b.Poll(ctx, "q.t", 10)
	if err != nil || len(got) != 3 || got[0].ID != "q2" || got[2].ID != "q4" {
		t.Fatalf("Poll = %v, %v; want q2 q3 q4", got, err)
	}
	dl, err := b.PollDLQ(ctx, "q.dlq", 10)
	if err != nil || len(dl) != 3 || dl[0].Envelope.ID != "q2" {
		t.Fatalf("PollDLQ = %v, %v; want q2 q3 q4", dl, err)
	}
	if n := b.Dropped(); n != 4 {
		t.Fatalf("Dropped = %d, want 4", n)
	}
}

// TestMemoryDedupWindow publishes an ID again after the window has passed
// on the broker's clock: it is published again.
func TestMemoryDedupWindow(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	b := newMemory(t, broker.MemoryConfig{DedupWindow: time.Minute, NowFunc: clock})
	publish := func() {
		t.Helper()
		if err := b.Publish(ctx, brokertest.Envelope("w1", "win.t")); err != nil {
			t.Fatal(err)
		}
	}
	count := func() int {
		t.Helper()
		got, err := b.Poll(ctx, "win.t", 10)
		if err != nil {
			t.Fatal(err)
		}
		return len(got)
	}
	tests := []struct {
		advance time.Duration
		want    int
	}{
		{0, 1},                // first publish
		{30 * time.Second, 0}, // within the window
		{29 * time.Second, 0}, // 59s after the first publish: still within
		{2 * time.Second, 1},  // 61s after the first publish: published again
		{time.Second, 0},      // and remembered from then
	}
	for i, tt := range tests {
		now = now.Add(tt.advance)
		publish()
		if got := count(); got != tt.want {
			t.Fatalf("step %d (+%v): %d envelopes published, want %d", i, tt.advance, got, tt.want)
		}
	}
}

// TestMemorySlowSubscriber checks that a handler that does not return
// never holds up Publish, Poll or other subscriptions.
func TestMemorySlowSubscriber(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := newMemory(t, broker.MemoryConfig{})
	release := make(chan struct{})
	if _, err := b.Subscribe(ctx, "slow.>", func(ctx context.Context, e broker.Envelope) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	fast := make(chan broker.Envelope, 1000)
	if _, err := b.Subscribe(ctx, "slow.>", func(ctx context.Context, e broker.Envelope) error {
		fast <- e
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	const n = 500
	for i := range n {
		if err := b.Publish(ctx, brokertest.Envelope(fmt.Sprintf("s%d", i), "slow.t")); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		<-fast
	}
	close(release)
}

// TestMemoryAttemptsCarried checks that Attempts set by the publisher is
// where counting starts, and that a handler's changes to an envelope do
// not reach other consumers.
func TestMemoryAttemptsCarried(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := newMemory(t, broker.MemoryConfig{MaxAttempts: 2})
	seen := make(chan int, 10)
	other := make(chan broker.Envelope, 10)
	if _, err := b.Subscribe(ctx, "carry.t", func(ctx context.Context, e broker.Envelope) error {
		seen <- e.Attempts
		e.Headers["h"] = "changed"
		e.Payload[0] = ' '
		return errors.New("no")
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Subscribe(ctx, "carry.t", func(ctx context.Context, e broker.Envelope) error {
		other <- e
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e := brokertest.Envelope("c1", "carry.t")
	e.Attempts = 3
	if err := b.Publish(ctx, e); err != nil {
		t.Fatal(err)
	}
	if a, b := <-seen, <-seen; a != 3 || b != 4 {
		t.Fatalf("attempts seen = %d, %d; want 3, 4", a, b)
	}
	if got := <-other; got.Headers["h"] != "c1" || string(got.Payload) != `{"id":"c1"}` {
		t.Fatalf("other subscriber got %v %s: a handler's changes leaked", got.Headers, got.Payload)
	}
	got, err := b.Poll(ctx, "carry.t", 1)
	if err != nil || len(got) != 1 || got[0].Headers["h"] != "c1" || string(got[0].Payload) != `{"id":"c1"}` {
		t.Fatalf("Poll = %v, %v: a handler's changes leaked", got, err)
	}
}

// plainBroker hides Memory's PublishBatch, as a backend without the
// capability.
type plainBroker struct{ broker.Broker }

func TestPublishAll(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	for _, tt := range []struct {
		name string
		b    func(t *testing.T) broker.Broker
	}{
		{"batch publisher", func(t *testing.T) broker.Broker { return newMemory(t, broker.MemoryConfig{}) }},
		{"one publish each", func(t *testing.T) broker.Broker { return plainBroker{newMemory(t, broker.MemoryConfig{})} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := tt.b(t)
			if _, ok := b.(broker.BatchPublisher); ok == (tt.name == "one publish each") {
				t.Fatalf("BatchPublisher assertion = %v", ok)
			}
			envs := []broker.Envelope{brokertest.Envelope("p1", "pa.t"), brokertest.Envelope("p2", "pa.t"), brokertest.Envelope("p3", "pa.t")}
			bad := brokertest.Envelope("p4", "pa..t")
			if err := broker.PublishAll(ctx, b, append(envs, bad)...); !errors.Is(err, nova.ErrInvalid) {
				t.Fatalf("PublishAll with a bad envelope: %v, want nova.ErrInvalid", err)
			}
			if err := broker.PublishAll(ctx, b); err != nil {
				t.Fatalf("PublishAll of nothing: %v", err)
			}
			if got, _ := b.Poll(ctx, "pa.t", 10); len(got) != 0 {
				t.Fatalf("rejected PublishAll published %v", got)
			}
			if err := broker.PublishAll(ctx, b, envs...); err != nil {
				t.Fatalf("PublishAll: %v", err)
			}
			got, err := b.Poll(ctx, "pa.t", 10)
			if err != nil || len(got) != 3 || got[0].ID != "p1" || got[2].ID != "p3" {
				t.Fatalf("Poll = %v, %v; want p1 p2 p3", got, err)
			}
		})
	}
}

// TestMemoryEndWithRedeliveryPending ends subscriptions whose only
// envelope waits for a redelivery far in the future: each ends at once.
func TestMemoryEndWithRedeliveryPending(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		end  func(b *broker.Memory, sub broker.Subscription, cancel context.CancelFunc)
	}{
		{"cancel", func(_ *broker.Memory, _ broker.Subscription, cancel context.CancelFunc) { cancel() }},
		{"unsubscribe", func(_ *broker.Memory, sub broker.Subscription, _ context.CancelFunc) { sub.Unsubscribe() }},
		{"close", func(b *broker.Memory, _ broker.Subscription, _ context.CancelFunc) { b.Close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newMemory(t, broker.MemoryConfig{MinBackoff: time.Hour, MaxBackoff: time.Hour})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			failed := make(chan struct{}, 1)
			sub, err := b.Subscribe(ctx, "pend.t", func(ctx context.Context, e broker.Envelope) error {
				failed <- struct{}{}
				return errors.New("later")
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Publish(ctx, brokertest.Envelope("p1", "pend.t")); err != nil {
				t.Fatal(err)
			}
			<-failed
			tt.end(b, sub, cancel)
			select {
			case <-sub.Done():
			case <-time.After(10 * time.Second):
				t.Fatalf("subscription still running after %s", tt.name)
			}
			if dl, err := b.PollDLQ(t.Context(), "pend.t", 1); err == nil && len(dl) != 0 {
				t.Fatalf("a pending redelivery was dead-lettered: %+v", dl)
			}
		})
	}
}

// TestMemoryCloseWhilePublishing closes the broker under publishers and
// subscribers: every call either succeeds or reports nova.ErrClosed.
func TestMemoryCloseWhilePublishing(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := newMemory(t, broker.MemoryConfig{})
	for range 2 {
		if _, err := b.Subscribe(ctx, "race.>", func(ctx context.Context, e broker.Envelope) error {
			return errors.New("again")
		}); err != nil {
			t.Fatal(err)
		}
	}
	errs := make(chan error, 4*100)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Go(func() {
			<-start
			for i := range 100 {
				err := b.Publish(ctx, brokertest.Envelope(fmt.Sprintf("r%d-%d", p, i), "race.t"))
				if err == nil {
					_, err = b.Subscribe(ctx, "race.t", func(context.Context, broker.Envelope) error { return nil })
				}
				errs <- err
			}
		})
	}
	close(start)
	b.Close()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && !errors.Is(err, nova.ErrClosed) {
			t.Fatalf("call during Close: %v, want nil or nova.ErrClosed", err)
		}
	}
}

// TestMemoryDedupAcrossTopics checks Memory's key: the ID alone.
func TestMemoryDedupAcrossTopics(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := newMemory(t, broker.MemoryConfig{})
	for _, topic := range []string{"x.a", "x.b"} {
		if err := b.Publish(ctx, brokertest.Envelope("same", topic)); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := b.Poll(ctx, "x.a", 10)
	other, _ := b.Poll(ctx, "x.b", 10)
	if len(a) != 1 || len(other) != 0 {
		t.Fatalf("Poll x.a = %d, x.b = %d envelopes; want 1 and 0", len(a), len(other))
	}
}

// TestMemoryGroupPattern joins a group with another pattern than its
// first member's: refused, and the group goes on with its own.
func TestMemoryGroupPattern(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := newMemory(t, broker.MemoryConfig{})
	got := make(chan broker.Envelope, 10)
	h := func(ctx context.Context, e broker.Envelope) error { got <- e; return nil }
	if _, err := b.SubscribeGroup(ctx, "g", "a.>", h); err != nil {
		t.Fatal(err)
	}
	if _, err := b.SubscribeGroup(ctx, "g", "b.>", h); !errors.Is(err, nova.ErrInvalid) {
		t.Fatalf("SubscribeGroup with another pattern: %v, want nova.ErrInvalid", err)
	}
	if _, err := b.SubscribeGroup(ctx, "g", "a.>", h); err != nil {
		t.Fatalf("SubscribeGroup with the group's pattern: %v", err)
	}
	for _, topic := range []string{"b.x", "a.x"} {
		if err := b.Publish(ctx, brokertest.Envelope(topic, topic)); err != nil {
			t.Fatal(err)
		}
	}
	if e := <-got; e.ID != "a.x" {
		t.Fatalf("group received %s, want a.x", e.ID)
	}
}

// TestMemoryGroupMaxQueue fills the backlog of a group with no member
// past MaxQueue: the oldest go and are counted.
func TestMemoryGroupMaxQueue(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := newMemory(t, broker.MemoryConfig{MaxQueue: 3})
	got := make(chan broker.Envelope, 10)
	h := func(ctx context.Context, e broker.Envelope) error { got <- e; return nil }
	sub, err := b.SubscribeGroup(ctx, "g", "q.>", h)
	if err != nil {
		t.Fatal(err)
	}
	sub.Unsubscribe()
	for i := range 5 {
		if err := b.Publish(ctx, brokertest.Envelope(fmt.Sprintf("q%d", i), "q.g")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.SubscribeGroup(ctx, "g", "q.>", h); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"q2", "q3", "q4"} {
		if e := <-got; e.ID != want {
			t.Fatalf("group received %s, want %s", e.ID, want)
		}
	}
	// The poll queue of q.g is full too: 2 envelopes dropped there, 2 in
	// the group.
	if n := b.Dropped(); n != 4 {
		t.Fatalf("Dropped = %d, want 4", n)
	}
}
