package novarabbitmq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/internal/testenv"
)

// Two members of a group, in two brokers of one namespace, share its
// envelopes: each goes to one of them, and both get some.
func TestGroupSharesWork(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := newNamespace(t)
	b1, b2 := openBroker(t, ns), openBroker(t, ns)
	var mu sync.Mutex
	by := map[string][]string{}
	all := newRecorder()
	member := func(name string) broker.Handler {
		return func(ctx context.Context, e broker.Envelope) error {
			time.Sleep(2 * time.Millisecond)
			mu.Lock()
			by[name] = append(by[name], e.ID)
			mu.Unlock()
			return all.handle(ctx, e)
		}
	}
	subscribed(t)(b1.SubscribeGroup(ctx, "share", "share.>", member("one")))
	subscribed(t)(b2.SubscribeGroup(ctx, "share", "share.>", member("two")))
	const n = 40
	var want []string
	for i := range n {
		e := envelope(fmt.Sprintf("s-%02d", i), fmt.Sprintf("share.t%d", i%3))
		want = append(want, e.ID)
		mustPublish(t, ctx, b1, e)
	}
	got := envIDs(all.receive(t, n))
	all.quiet(t, 300*time.Millisecond)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("the group received %v, want each of %v once", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(by["one"]) == 0 || len(by["two"]) == 0 {
		t.Fatalf("one member took everything: %d and %d envelopes", len(by["one"]), len(by["two"]))
	}
}

// A group keeps what is published while no member runs, and a new
// member reads it.
func TestGroupKeepsWhileNoMember(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := newNamespace(t)
	b := openBroker(t, ns)
	first := newRecorder()
	sub := subscribed(t)(b.SubscribeGroup(ctx, "keep", "keep.*", first.handle))
	mustPublish(t, ctx, b, envelope("k-0", "keep.a"))
	first.receive(t, 1)
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	mustPublish(t, ctx, b, envelope("k-1", "keep.a"), envelope("k-2", "keep.b"), envelope("other", "keep.a.b"))

	// Another process (another broker) joins later and finds them.
	later := newRecorder()
	subscribed(t)(openBroker(t, ns).SubscribeGroup(ctx, "keep", "keep.*", later.handle))
	if got := envIDs(later.receive(t, 2)); !slices.Equal(got, []string{"k-1", "k-2"}) {
		t.Fatalf("a later member received %v, want [k-1 k-2]", got)
	}
	later.quiet(t, 300*time.Millisecond)
}

// A group's handler that always fails sees Attempts 0, 1, … from the
// server's delivery count, and the envelope is dead-lettered after
// MaxAttempts with the handler's last error as the reason.
func TestGroupDeadLetterAttemptsReason(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := newNamespace(t)
	b := openBroker(t, ns, func(c *Config) { c.MaxAttempts = 3 })
	var mu sync.Mutex
	var seen []int
	subscribed(t)(b.SubscribeGroup(ctx, "dl", "dl.>", func(ctx context.Context, e broker.Envelope) error {
		mu.Lock()
		seen = append(seen, e.Attempts)
		mu.Unlock()
		return fmt.Errorf("boom %d", e.Attempts)
	}))
	e := envelope("poison", "dl.a")
	e.Key = "k"
	mustPublish(t, ctx, b, e)
	dl := pollDLQ(t, ctx, b, "dl.a", 1)
	d := dl[0]
	if d.Envelope.ID != "poison" || d.Topic != "dl.a" || d.Envelope.Topic != "dl.a" || d.Envelope.Key != "k" {
		t.Fatalf("dead letter = %+v, want poison under dl.a", d)
	}
	if d.Envelope.Attempts != 3 || d.Reason != "boom 2" || d.At.IsZero() {
		t.Fatalf("dead letter attempts %d, reason %q, at %v; want 3, \"boom 2\" and a time", d.Envelope.Attempts, d.Reason, d.At)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(seen, []int{0, 1, 2}) {
		t.Fatalf("the handler saw attempts %v, want [0 1 2]", seen)
	}
}

// When members die holding an envelope until the delivery limit is
// passed, the server dead-letters it itself: PollDLQ reads its x-death
// headers, with the attempts and a reason naming the limit.
func TestGroupServerDeadLetters(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := newNamespace(t)
	b := openBroker(t, ns, func(c *Config) { c.MaxAttempts = 2 })
	sub := subscribed(t)(b.SubscribeGroup(ctx, "die", "die.>", newRecorder().handle))
	sub.Unsubscribe()
	// The dead-letter queue exists once a member has seen the topic, or
	// once anyone polled it.
	if _, err := b.PollDLQ(ctx, "die.a", 1); err != nil {
		t.Fatal(err)
	}
	mustPublish(t, ctx, b, envelope("held", "die.a"))

	conn := rawConn(t)
	for i := range 2 {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		d, ok, err := ch.Get(b.names.group("die"), false)
		if err != nil || !ok {
			t.Fatalf("raw get %d: %v, %v", i, ok, err)
		}
		if got := deliveryCount(d.Headers); got != i {
			t.Fatalf("x-delivery-count of delivery %d = %d", i, got)
		}
		ch.Close() // as a member's process dying would
	}
	d := pollDLQ(t, ctx, b, "die.a", 1)[0]
	if d.Envelope.ID != "held" || d.Envelope.Attempts != 2 || !strings.Contains(d.Reason, "after 2 deliveries") || d.At.IsZero() {
		t.Fatalf("dead letter = %+v, want held with 2 attempts, a reason naming the delivery limit and a time", d)
	}
}

// Members of one group must agree on MaxAttempts: the queue was declared
// with it.
func TestGroupRefusesOtherMaxAttempts(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := newNamespace(t)
	b := openBroker(t, ns)
	subscribed(t)(b.SubscribeGroup(ctx, "g", "g.>", newRecorder().handle))
	other := openBroker(t, ns, func(c *Config) { c.MaxAttempts = 9 })
	_, err := other.SubscribeGroup(ctx, "g", "g.>", newRecorder().handle)
	if err == nil || nova.IsTransient(err) {
		t.Fatalf("SubscribeGroup with another MaxAttempts: %v, want a permanent error", err)
	}
	if !strings.Contains(err.Error(), "MaxAttempts") {
		t.Fatalf("error %q does not say why", err)
	}
	// The broker is still usable.
	subscribed(t)(other.SubscribeGroup(ctx, "g2", "g.>", newRecorder().handle))
}

func TestGroupBadInput(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	b := newBroker(t)
	h := newRecorder().handle
	for _, tt := range []struct {
		name        string
		ctx         context.Context
		group, patt string
		h           broker.Handler
	}{
		{"empty group", ctx, "", "a.>", h},
		{"group with space", ctx, "a b", "a.>", h},
		{"group with wildcard", ctx, "a*", "a.>", h},
		{"group not UTF-8", ctx, "\xff", "a.>", h},
		{"group too long", ctx, strings.Repeat("g", MaxGroupLen+1), "a.>", h},
		{"bad pattern", ctx, "g", "a..b", h},
	} {
		if _, err := b.SubscribeGroup(tt.ctx, tt.group, tt.patt, tt.h); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("SubscribeGroup with %s: %v, want an error matching nova.ErrInvalid", tt.name, err)
		}
	}
	b.Close()
	if _, err := b.SubscribeGroup(ctx, "g", "a.>", h); !errors.Is(err, nova.ErrClosed) {
		t.Errorf("SubscribeGroup after Close: %v, want nova.ErrClosed", err)
	}
}

// A member killed with SIGKILL while it holds envelopes loses none: the
// server returns them to the group when the connection drops, with their
// delivery counted, and another member gets them.
func TestGroupKilledMember(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	u := serverURL(t)
	ns := newNamespace(t)
	b := openBroker(t, ns)
	child := testenv.StartChild(t, []string{childEnv + "=member", childURLEnv + "=" + u, childNSEnv + "=" + ns}, "ready")
	t.Cleanup(child.Stop)

	const n = 10
	for i := range n {
		mustPublish(t, ctx, b, envelope(fmt.Sprintf("kill-%d", i), "kill.a"))
	}
	select {
	case line := <-child.Lines():
		if line != "got kill-0 0" {
			t.Fatalf("the child said %q, want got kill-0 0", line)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the child received nothing; stderr: %s", child.Stderr())
	}
	child.Kill(t, "the group member")
	killed := time.Now()

	rec := newRecorder()
	subscribed(t)(b.SubscribeGroup(ctx, childGroup, childPattern, rec.handle))
	got := rec.receive(t, n)
	t.Logf("all %d envelopes back %v after the kill", n, time.Since(killed).Round(time.Millisecond))
	rec.quiet(t, 300*time.Millisecond)
	attempts := map[string]int{}
	for _, e := range got {
		if _, dup := attempts[e.ID]; dup {
			t.Fatalf("received %s twice", e.ID)
		}
		attempts[e.ID] = e.Attempts
	}
	if len(attempts) != n {
		t.Fatalf("received %v, want kill-0 … kill-%d", envIDs(got), n-1)
	}
	if attempts["kill-0"] != 1 {
		t.Fatalf("kill-0, which the killed member held, came with attempts %d, want 1", attempts["kill-0"])
	}
}
