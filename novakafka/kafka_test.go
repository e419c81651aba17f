package novakafka_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/broker/brokertest"
	"github.com/nova-go/nova/novakafka"
)

// delivery is one handler call seen by a test.
type delivery struct {
	member string
	env    broker.Envelope
}

// collector records handler calls from several members.
type collector struct {
	mu   sync.Mutex
	got  []delivery
	wake chan struct{}
}

func newCollector() *collector { return &collector{wake: make(chan struct{}, 1)} }

func (c *collector) add(member string, e broker.Envelope) {
	c.mu.Lock()
	c.got = append(c.got, delivery{member, e})
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *collector) snapshot() []delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]delivery(nil), c.got...)
}

// waitFor waits until cond holds on the deliveries so far.
func (c *collector) waitFor(t *testing.T, d time.Duration, what string, cond func([]delivery) bool) []delivery {
	t.Helper()
	deadline := time.After(d)
	for {
		got := c.snapshot()
		if cond(got) {
			return got
		}
		select {
		case <-c.wake:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("after %v: %s; %d deliveries", d, what, len(got))
		}
	}
}

func keyed(id, topic, key string) broker.Envelope {
	e := brokertest.Envelope(id, topic)
	e.Key = key
	return e
}

// TestGroupSharesPartitions runs two members of one group on four
// partitions: both receive work, every envelope is delivered, and each
// key's envelopes reach their handler in publish order.
func TestGroupSharesPartitions(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ns := namespace()
	cfg := testConfig(seeds(), ns)
	cfg.Partitions = 4
	pub := openConfig(t, cfg)
	col := newCollector()
	for _, m := range []string{"a", "b"} {
		b := openConfig(t, cfg)
		sub, err := b.SubscribeGroup(ctx, "workers", "jobs.>", func(ctx context.Context, e broker.Envelope) error {
			col.add(m, e)
			return nil
		})
		if err != nil {
			t.Fatalf("SubscribeGroup: %v", err)
		}
		t.Cleanup(func() { sub.Unsubscribe() })
	}
	const keys, each = 16, 25
	published := 0
	// Publish until both members have had work: the second member's join
	// moves partitions while envelopes flow.
	for round := 0; ; round++ {
		var batch []broker.Envelope
		for k := range keys {
			batch = append(batch, keyed(fmt.Sprintf("r%02d-k%02d", round, k), "jobs.run", fmt.Sprintf("k%02d", k)))
		}
		if err := broker.PublishAll(ctx, pub, batch...); err != nil {
			t.Fatalf("PublishAll: %v", err)
		}
		published += len(batch)
		members := map[string]bool{}
		for _, d := range col.snapshot() {
			members[d.member] = true
		}
		if round >= each && len(members) == 2 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("members that received envelopes: %v, want a and b", members)
		}
		time.Sleep(20 * time.Millisecond)
	}
	got := col.waitFor(t, 30*time.Second, "every envelope delivered", func(ds []delivery) bool {
		seen := map[string]bool{}
		for _, d := range ds {
			seen[d.env.ID] = true
		}
		return len(seen) == published
	})
	last := map[string]string{}
	perMember := map[string]int{}
	dups := 0
	seen := map[string]bool{}
	for _, d := range got {
		perMember[d.member]++
		if seen[d.env.ID] {
			dups++ // redelivered after a partition moved
			continue
		}
		seen[d.env.ID] = true
		if prev, ok := last[d.env.Key]; ok && d.env.ID < prev {
			t.Fatalf("key %s: %s delivered after %s", d.env.Key, d.env.ID, prev)
		}
		last[d.env.Key] = d.env.ID
	}
	t.Logf("%d envelopes, deliveries per member %v, %d redeliveries", published, perMember, dups)
}

// TestKeyOrderWithFailures rejects some envelopes once: a group and a
// plain subscription still hand each key's envelopes over in publish
// order, the rejected ones again with Attempts 1 before the next.
func TestKeyOrderWithFailures(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := testConfig(seeds(), namespace())
	cfg.Partitions = 4
	b := openConfig(t, cfg)
	col := newCollector()
	var mu sync.Mutex
	failed := map[string]bool{}
	handler := func(member string) broker.Handler {
		return func(ctx context.Context, e broker.Envelope) error {
			col.add(member, e)
			mu.Lock()
			defer mu.Unlock()
			k := member + "/" + e.ID
			if strings.HasSuffix(e.ID, "0") && !failed[k] {
				failed[k] = true
				return errors.New("first try fails")
			}
			return nil
		}
	}
	sub, err := b.Subscribe(ctx, "order.>", handler("sub"))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	gsub, err := b.SubscribeGroup(ctx, "ordered", "order.>", handler("group"))
	if err != nil {
		t.Fatal(err)
	}
	defer gsub.Unsubscribe()

	const keys, each = 4, 20
	var envs []broker.Envelope
	for i := range each {
		for k := range keys {
			envs = append(envs, keyed(fmt.Sprintf("k%d-%02d", k, i), "order.x", fmt.Sprintf("k%d", k)))
		}
	}
	if err := broker.PublishAll(ctx, b, envs...); err != nil {
		t.Fatal(err)
	}
	want := len(envs) + keys*(each/10)
	got := col.waitFor(t, 30*time.Second, "all deliveries", func(ds []delivery) bool { return len(ds) >= 2*want })
	for _, member := range []string{"sub", "group"} {
		var seq []broker.Envelope
		for _, d := range got {
			if d.member == member {
				seq = append(seq, d.env)
			}
		}
		last := map[string]broker.Envelope{}
		for _, e := range seq {
			prev, ok := last[e.Key]
			switch {
			case ok && e.ID == prev.ID && (prev.Attempts != 0 || e.Attempts != 1):
				t.Fatalf("%s: %s redelivered with attempts %d after %d, want 1 after 0", member, e.ID, e.Attempts, prev.Attempts)
			case ok && e.ID != prev.ID && e.ID < prev.ID:
				t.Fatalf("%s: key %s: %s delivered after %s", member, e.Key, e.ID, prev.ID)
			case ok && e.ID != prev.ID && strings.HasSuffix(prev.ID, "0") && prev.Attempts == 0:
				t.Fatalf("%s: key %s: %s delivered before the redelivery of %s", member, e.Key, e.ID, prev.ID)
			}
			last[e.Key] = e
		}
		if len(seq) != want {
			t.Fatalf("%s: %d deliveries, want %d", member, len(seq), want)
		}
	}
}

// TestDeadLetterAttempts rejects an envelope every time in a group: it
// is dead-lettered after MaxAttempts deliveries with the count and the
// last error, and the group goes on to the next envelope.
func TestDeadLetterAttempts(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := testConfig(seeds(), namespace())
	cfg.MaxAttempts = 3
	b := openConfig(t, cfg)
	col := newCollector()
	sub, err := b.SubscribeGroup(ctx, "dl", "dl.>", func(ctx context.Context, e broker.Envelope) error {
		col.add("g", e)
		if e.ID == "poison" {
			return fmt.Errorf("bad attempt %d", e.Attempts)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	before := time.Now().Add(-time.Second)
	if err := broker.PublishAll(ctx, b, keyed("poison", "dl.a", "same"), keyed("next", "dl.a", "same")); err != nil {
		t.Fatal(err)
	}
	col.waitFor(t, 20*time.Second, "next delivered", func(ds []delivery) bool {
		return len(ds) > 0 && ds[len(ds)-1].env.ID == "next"
	})
	var dl []broker.DeadLetter
	for len(dl) == 0 && ctx.Err() == nil {
		dl, err = b.PollDLQ(ctx, "dl.a", 10)
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(dl) != 1 {
		t.Fatalf("dead letters = %+v, want poison", dl)
	}
	d := dl[0]
	switch {
	case d.Envelope.ID != "poison" || d.Topic != "dl.a" || d.Envelope.Topic != "dl.a":
		t.Fatalf("dead letter %s under %s, want poison under dl.a", d.Envelope.ID, d.Topic)
	case d.Envelope.Attempts != 3:
		t.Fatalf("dead letter attempts = %d, want 3", d.Envelope.Attempts)
	case d.Reason != "bad attempt 2":
		t.Fatalf("dead letter reason = %q, want the last error", d.Reason)
	case d.At.Before(before) || d.At.After(time.Now().Add(time.Second)):
		t.Fatalf("dead letter at %v, want about now", d.At)
	case d.Envelope.Key != "same" || d.Envelope.Headers["h"] != "poison":
		t.Fatalf("dead letter envelope = %+v, want its key and headers", d.Envelope)
	}
	var attempts []int
	for _, x := range col.snapshot() {
		if x.env.ID == "poison" {
			attempts = append(attempts, x.env.Attempts)
		}
	}
	if fmt.Sprint(attempts) != "[0 1 2]" {
		t.Fatalf("attempts seen by the handler = %v, want [0 1 2]", attempts)
	}
}

// TestLargePayload publishes a payload of 1,000,000 bytes, which Poll and
// a subscription receive whole, and refuses one larger than
// MaxMessageBytes before any I/O.
func TestLargePayload(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := open(t, namespace())
	got := make(chan broker.Envelope, 4)
	sub, err := b.Subscribe(ctx, "big.>", func(ctx context.Context, e broker.Envelope) error {
		got <- e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	payload := func(n int) json.RawMessage {
		return json.RawMessage(`"` + strings.Repeat("x", n-2) + `"`)
	}
	big := brokertest.Envelope("big", "big.one")
	big.Payload = payload(1_000_000)
	if err := b.Publish(ctx, big); err != nil {
		t.Fatalf("Publish of 1,000,000 bytes: %v", err)
	}
	select {
	case e := <-got:
		if string(e.Payload) != string(big.Payload) {
			t.Fatalf("subscription received %d bytes, want the 1,000,000 published", len(e.Payload))
		}
	case <-ctx.Done():
		t.Fatal("subscription did not receive the large envelope")
	}
	polled, err := b.Poll(ctx, "big.one", 10)
	if err != nil || len(polled) != 1 || string(polled[0].Payload) != string(big.Payload) {
		t.Fatalf("Poll = %d envelopes, %v; want the large one", len(polled), err)
	}

	tooBig := brokertest.Envelope("too-big", "big.one")
	tooBig.Payload = payload(novakafka.DefaultMaxMessageBytes)
	if err := b.Publish(ctx, tooBig); !errors.Is(err, nova.ErrInvalid) {
		t.Fatalf("Publish of %d bytes: %v, want an error matching nova.ErrInvalid", len(tooBig.Payload), err)
	}
	if err := b.PublishDLQ(ctx, "big.one", tooBig, "why"); !errors.Is(err, nova.ErrInvalid) {
		t.Fatalf("PublishDLQ of %d bytes: %v, want an error matching nova.ErrInvalid", len(tooBig.Payload), err)
	}
	if polled, err := b.Poll(ctx, "big.one", 10); err != nil || len(polled) != 0 {
		t.Fatalf("Poll after the refused publish = %d envelopes, %v; want none", len(polled), err)
	}
	select {
	case e := <-got:
		t.Fatalf("subscription received %s after the refused publish", e.ID)
	case <-time.After(300 * time.Millisecond):
	}
}

// TestForeignRecord writes records that are not envelopes to the
// namespace's topic: a group dead-letters them with a reason, and the
// group goes on.
func TestForeignRecord(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ns := namespace()
	b := openConfig(t, testConfig(seeds(), ns))
	col := newCollector()
	sub, err := b.SubscribeGroup(ctx, "g", ">", func(ctx context.Context, e broker.Envelope) error {
		col.add("g", e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	foreign := []*kgo.Record{
		{Topic: ns + ".events", Value: []byte("not an envelope")},
		{Topic: ns + ".events", Value: []byte("{bad json"), Headers: []kgo.RecordHeader{{Key: "nova-id", Value: []byte("x1")}, {Key: "nova-topic", Value: []byte("foreign.a")}}},
	}
	if err := cl.ProduceSync(ctx, foreign...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, brokertest.Envelope("fine", "foreign.a")); err != nil {
		t.Fatal(err)
	}
	col.waitFor(t, 20*time.Second, "fine delivered", func(ds []delivery) bool { return len(ds) == 1 && ds[0].env.ID == "fine" })
	for _, c := range []struct{ topic, reason string }{
		{novakafka.InvalidTopic, "no valid nova-topic header"},
		{"foreign.a", "not a valid envelope"},
	} {
		var dl []broker.DeadLetter
		for len(dl) == 0 && ctx.Err() == nil {
			if dl, err = b.PollDLQ(ctx, c.topic, 10); err != nil {
				t.Fatal(err)
			}
		}
		if len(dl) != 1 || !strings.Contains(dl[0].Reason, c.reason) {
			t.Fatalf("dead letters under %s = %+v, want one saying %q", c.topic, dl, c.reason)
		}
	}
}
