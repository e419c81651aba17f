package brokertest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nova-go/nova/broker"
)

// testNamespace opens two brokers on one namespace and one on another
// (WithOpen): what one publishes, the other polls, receives in a
// subscription and shares in a consumer group, and reads back from the
// dead letters; the broker of the other namespace sees none of it, not
// even in a group of the same name.
func (s *suite) testNamespace(t *testing.T) {
	t.Parallel()
	if s.open == nil {
		t.Skip("brokertest: pass WithOpen(func(t testing.TB, namespace string) broker.Broker) to check that brokers of one namespace share their server's state and others do not")
	}
	ctx := s.ctxFor(t, 4)
	ns := s.namespace()
	one, two := s.open(t, ns), s.open(t, ns)
	other := s.open(t, s.namespace())

	seen, stranger := newRecorder(), newRecorder()
	s.subscribe(t, ctx, two, "ns.>", seen.handle)
	s.subscribe(t, ctx, other, "ns.>", stranger.handle)
	var shared, apart *tracker
	if g, ok := one.(broker.GroupSubscriber); ok {
		shared, apart = newTracker(), newTracker()
		s.join(t, ctx, g, "shared", "ns.>", shared.handler("one"))
		s.join(t, ctx, two.(broker.GroupSubscriber), "shared", "ns.>", shared.handler("two"))
		s.join(t, ctx, other.(broker.GroupSubscriber), "shared", "ns.>", apart.handler("other"))
	}
	want := numbered("ns", 10)
	publishIDs(t, ctx, one, "ns.t", want)
	if err := one.PublishDLQ(ctx, "ns.dlq", Envelope("ns-dead", "ns.t"), "shared"); err != nil {
		t.Fatalf("PublishDLQ: %v", err)
	}

	if got := ids(s.receive(t, seen.ch, len(want))); !slices.Equal(got, want) {
		t.Fatalf("subscription of the other broker of the namespace received %v, want %v", got, want)
	}
	var polled []broker.Envelope
	deadline := time.Now().Add(s.timeout)
	for len(polled) < len(want) && time.Now().Before(deadline) {
		polled = append(polled, poll(t, ctx, two, "ns.t", 100)...)
		time.Sleep(5 * time.Millisecond)
	}
	if got := ids(polled); !slices.Equal(got, want) {
		t.Fatalf("Poll on the other broker of the namespace = %v, want %v", got, want)
	}
	if dl := s.pollDLQ(t, ctx, two, "ns.dlq", 1); dl[0].Envelope.ID != "ns-dead" || dl[0].Reason != "shared" {
		t.Fatalf("PollDLQ on the other broker of the namespace = %+v, want ns-dead", dl)
	}
	if shared != nil {
		got := s.handledAll(t, shared, want)
		s.quietHandled(t, shared)
		checkOnce(t, got, want)
		shared.checkOverlaps(t)
		s.quietHandled(t, apart)
	}
	s.quiet(t, stranger.ch)
	if got := poll(t, ctx, other, "ns.t", 100); len(got) != 0 {
		t.Fatalf("Poll in another namespace = %v, want none", ids(got))
	}
	if dl, err := other.PollDLQ(ctx, "ns.dlq", 10); err != nil || len(dl) != 0 {
		t.Fatalf("PollDLQ in another namespace = %+v, %v; want none", dl, err)
	}
}

// testKill runs a group member in a child process (WithOpen): it
// acknowledges two envelopes and holds the third without answering, and
// is killed with SIGKILL. A member started after in the parent receives
// every envelope the child did not acknowledge, those published while no
// member ran included; where the server counts deliveries
// ([broker.Guarantees].ServerAttempts) the held envelope comes with
// Attempts 1 or more (or, with an attempt limit of 1, is dead-lettered).
// Envelopes the child acknowledged may come again: the acknowledgement may
// not have left the process before it died.
func (s *suite) testKill(t *testing.T) {
	t.Parallel()
	if s.open == nil {
		t.Skip("brokertest: pass WithOpen(func(t testing.TB, namespace string) broker.Broker) to check that a group member killed with SIGKILL loses nothing (the case runs a child process)")
	}
	ctx := s.ctxFor(t, 4)
	ns := s.namespace()
	b := s.open(t, ns)
	g := groups(t, b)
	limit := s.maxAttempts(t)
	server := broker.GuaranteesOf(b).ServerAttempts

	c := s.startChild(t, childSpec{Role: "kill", Namespace: ns, Group: "killed", Pattern: "kill.>"})
	before := numbered("kill", 6)
	publishIDs(t, ctx, b, "kill.t", before)
	acked := map[string]bool{}
	held := ""
	for held == "" {
		l := s.line(t, c)
		verb, rest, _ := strings.Cut(l, " ")
		switch verb {
		case "acked":
			acked[rest] = true
		case "holding":
			held, _, _ = strings.Cut(rest, " ")
		default:
			t.Fatalf("brokertest: the child process said %q", l)
		}
	}
	c.kill(t)
	t.Logf("the child acknowledged %v and held %s when it was killed", slices.Sorted(maps.Keys(acked)), held)
	after := numbered("after", 2)
	publishIDs(t, ctx, b, "kill.t", after)

	tr := newTracker()
	s.join(t, ctx, g, "killed", "kill.>", tr.handler("parent"))
	missing := map[string]bool{}
	for _, id := range append(before, after...) {
		if !acked[id] && id != held {
			missing[id] = true
		}
	}
	heldDone := false
	deadline := time.NewTimer(s.timeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for len(missing) > 0 || !heldDone {
		select {
		case h := <-tr.ch:
			id := h.env.ID
			switch {
			case id == held:
				t.Logf("%s, held by the killed child, delivered again with attempts %d", id, h.env.Attempts)
				if limit == 1 && server {
					t.Fatalf("held envelope %s delivered again (attempts %d) although the attempt limit is 1 and the server counts deliveries: want it dead-lettered", id, h.env.Attempts)
				}
				if server && h.env.Attempts < 1 {
					t.Fatalf("held envelope %s delivered again with attempts %d, want at least 1: the server counts deliveries (Guarantees.ServerAttempts)", id, h.env.Attempts)
				}
				heldDone = true
			case acked[id]:
				t.Logf("%s, acknowledged by the killed child, delivered again", id)
			case !missing[id]:
				t.Logf("%s delivered again", id)
			}
			delete(missing, id)
		case <-tick.C:
			if limit > 1 || heldDone {
				continue
			}
			dl, err := b.PollDLQ(ctx, "kill.t", 10)
			if err != nil {
				t.Fatalf("PollDLQ: %v", err)
			}
			if len(dl) > 0 {
				if len(dl) != 1 || dl[0].Envelope.ID != held || dl[0].Envelope.Attempts < 1 || dl[0].Reason == "" {
					t.Fatalf("dead letters = %+v, want %s with attempts 1 and a reason", dl, held)
				}
				heldDone = true
			}
		case <-deadline.C:
			t.Fatalf("after the child was killed, within %v: envelopes not received: %v; held envelope %s received or dead-lettered: %v", s.timeout, slices.Sorted(maps.Keys(missing)), held, heldDone)
		}
	}
	tr.checkOverlaps(t)
}

// childKill is the child's part of testKill: join the group, acknowledge
// two envelopes, say so, hold the third, say so, and wait to be killed.
func (s *suite) childKill(t *testing.T, spec childSpec) {
	ctx, cancel := context.WithTimeout(t.Context(), s.childLife())
	defer cancel()
	b := s.open(t, spec.Namespace)
	g, ok := b.(broker.GroupSubscriber)
	if !ok {
		t.Fatalf("brokertest: %T is not a broker.GroupSubscriber", b)
	}
	var n atomic.Int32
	sub, err := g.SubscribeGroup(ctx, spec.Group, spec.Pattern, func(hctx context.Context, e broker.Envelope) error {
		if n.Add(1) <= 2 {
			fmt.Printf("acked %s\n", e.ID)
			return nil
		}
		fmt.Printf("holding %s %d\n", e.ID, e.Attempts)
		<-hctx.Done()
		return hctx.Err()
	})
	if err != nil {
		t.Fatalf("SubscribeGroup: %v", err)
	}
	fmt.Println("ready")
	<-ctx.Done()
	sub.Unsubscribe()
	t.Fatalf("brokertest: the child process was not killed within %v", s.childLife())
}
