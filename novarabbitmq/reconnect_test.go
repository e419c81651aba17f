package novarabbitmq

import (
	"crypto/rand"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nova-go/nova"
)

// The connection is cut under a subscription, a group member and a
// publisher: Publish fails while it is down, nothing another process
// publishes meanwhile is lost, and everything resumes on its own once
// the server can be reached again.
func TestReconnect(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := "novatest-re-" + strings.ToLower(rand.Text()[:8])
	nb, proxy := outageHook(t, ns)
	b := nb.(*Broker)
	other := openHook(t, ns)
	sub, group := newRecorder(), newRecorder()
	subscribed(t)(b.Subscribe(ctx, "re.>", sub.handle))
	subscribed(t)(b.SubscribeGroup(ctx, "re", "re.>", group.handle))

	mustPublish(t, ctx, b, envelope("before", "re.a"))
	sub.receive(t, 1)
	group.receive(t, 1)

	proxy.Cut()
	if _, err := b.Subscribe(ctx, "re.>", sub.handle); !nova.IsTransient(err) {
		t.Fatalf("Subscribe while the connection is cut: %v, want an error matching nova.ErrTransient", err)
	}
	err := b.Publish(ctx, envelope("lost", "re.a"))
	if err == nil || !nova.IsTransient(err) {
		t.Fatalf("Publish while the connection is cut: %v, want an error matching nova.ErrTransient", err)
	}
	if _, err := b.Poll(ctx, "re.a", 1); !nova.IsTransient(err) {
		t.Fatalf("Poll while the connection is cut: %v, want an error matching nova.ErrTransient", err)
	}
	mustPublish(t, ctx, other, envelope("during", "re.a"))
	time.Sleep(300 * time.Millisecond) // a few failed redials
	proxy.Restore()

	deadline := time.Now().Add(20 * time.Second)
	for {
		err := b.Publish(ctx, envelope("after", "re.a"))
		if err == nil {
			break
		}
		if !nova.IsTransient(err) || time.Now().After(deadline) {
			t.Fatalf("Publish after the connection came back: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The handler's acknowledgement of "before" may have been cut off
	// with the connection: then it comes again (at least once).
	want := []string{"during", "after"}
	for _, r := range []struct {
		name string
		rec  recorder
	}{{"subscription", sub}, {"group", group}} {
		var got []string
		for len(got) < len(want) {
			if e := r.rec.receive(t, 1)[0]; e.ID != "before" || len(got) > 0 {
				got = append(got, e.ID)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("the %s received %v after the outage, want %v", r.name, got, want)
		}
		r.rec.quiet(t, 300*time.Millisecond)
	}
	// The poll queue kept all but the envelope whose Publish failed.
	polled, err := b.Poll(ctx, "re.a", 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := envIDs(polled); !slices.Equal(got, []string{"before", "during", "after"}) {
		t.Fatalf("Poll after the outage = %v, want [before during after]", got)
	}
}

// Close while the connection is down returns, and ends the supervisor
// and the subscriptions waiting for it.
func TestCloseWhileDisconnected(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := newNamespace(t)
	// The subscription's queue cannot be deleted without a connection:
	// the server drops it a second after.
	b, proxy := openThroughProxy(t, ns, func(c *Config) { c.SubscriptionExpiry = time.Second })
	sub := subscribed(t)(b.Subscribe(ctx, "x.>", newRecorder().handle))
	proxy.Cut()
	time.Sleep(100 * time.Millisecond)
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-sub.Done():
	default:
		t.Fatal("subscription still running after Close")
	}
	if err := b.Publish(ctx, envelope("x", "x.a")); !errors.Is(err, nova.ErrClosed) {
		t.Fatalf("Publish after Close: %v, want nova.ErrClosed", err)
	}
}

// Two brokers opened on one namespace see one server-side state: what
// one publishes, the other polls, and a group one creates, the other
// joins.
func TestTwoOpensShareState(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := "novatest-two-" + strings.ToLower(rand.Text()[:8])
	b1, b2 := openHook(t, ns), openHook(t, ns)
	rec := newRecorder()
	subscribed(t)(b1.(*Broker).SubscribeGroup(ctx, "g", "two.>", rec.handle))
	mustPublish(t, ctx, b2, envelope("one", "two.a"))
	if got, err := b1.Poll(ctx, "two.a", 10); err != nil || !slices.Equal(envIDs(got), []string{"one"}) {
		t.Fatalf("Poll through the other broker = %v, %v; want [one]", envIDs(got), err)
	}
	rec.receive(t, 1)
	if err := b2.PublishDLQ(ctx, "two.a", envelope("dead", "two.a"), "why"); err != nil {
		t.Fatal(err)
	}
	if d := pollDLQ(t, ctx, b1, "two.a", 1); d[0].Reason != "why" {
		t.Fatalf("dead letter through the other broker = %+v", d[0])
	}
}
