package brokertest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
)

const skipOutage = "brokertest: pass WithOutage(func(t testing.TB, namespace string) (broker.Broker, brokertest.Outage)), a broker whose connection goes through a proxy the suite can cut (internal/testenv.Proxy), to check "

// testBadInputOffline cuts the broker's connection (WithOutage) and makes
// every call of BadInput: each still returns an error matching
// nova.ErrInvalid, at once, which proves that input is validated before
// any I/O. Once the connection is restored, nothing was published.
func (s *suite) testBadInputOffline(t *testing.T) {
	t.Parallel()
	if s.outage == nil {
		t.Skip(skipOutage + "that bad input is refused before any I/O")
	}
	ctx := s.ctxFor(t, 4)
	b, out := s.outage(t, s.namespace())
	mustPublish(t, ctx, b, Envelope("offline-first", "bad.first")) // connected
	out.Cut()
	restored := false
	defer func() {
		if !restored {
			out.Restore()
		}
	}()
	// A call that went to the network first would fail with a
	// connection error, or wait until its ctx ends.
	for _, c := range badCalls(b) {
		cctx, cancel := context.WithTimeout(ctx, s.timeout/4)
		err := c.call(cctx)
		cancel()
		if !errors.Is(err, nova.ErrInvalid) {
			t.Fatalf("%s with the connection cut: %v, want an error matching nova.ErrInvalid before any I/O", c.name, err)
		}
	}
	out.Restore()
	restored = true

	s.publishEventually(t, ctx, b, Envelope("offline-marker", "bad.marker"))
	for _, q := range []string{badTopic, "bad.dlq"} {
		if got := poll(t, ctx, b, q, 10); len(got) != 0 {
			t.Errorf("Poll %s after bad input = %v, want none", q, ids(got))
		}
		if got, err := b.PollDLQ(ctx, q, 10); err != nil || len(got) != 0 {
			t.Errorf("PollDLQ %s after bad input = %+v, %v; want none", q, got, err)
		}
	}
}

// publishEventually publishes e again and again until a Publish
// succeeds, as after an outage.
func (s *suite) publishEventually(t *testing.T, ctx context.Context, b broker.Broker, e broker.Envelope) {
	t.Helper()
	deadline := time.Now().Add(s.timeout)
	for {
		pctx, cancel := context.WithTimeout(ctx, s.timeout/4)
		err := b.Publish(pctx, e)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Publish %s after the connection was restored: still failing after %v: %v", e.ID, s.timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testReconnect cuts the connection (WithOutage) under a running
// subscription and a running group member. While it is cut, Publish
// fails or waits until its ctx ends, and never reports success for an
// envelope then lost. Once it is restored, publishing works again by
// itself within the timeout; the same subscription and member, not
// re-created, receive the new envelopes; the member and the poll queue
// get every envelope whose Publish succeeded.
func (s *suite) testReconnect(t *testing.T) {
	t.Parallel()
	if s.outage == nil {
		t.Skip(skipOutage + "that publishers and consumers resume by themselves after an outage")
	}
	ctx := s.ctxFor(t, 4)
	b, out := s.outage(t, s.namespace())
	const topic = "rc.t"
	sub := newRecorder()
	subscription := s.subscribe(t, ctx, b, "rc.>", sub.handle)
	var tr *tracker
	var member broker.Subscription
	if g, ok := b.(broker.GroupSubscriber); ok {
		tr = newTracker()
		member = s.join(t, ctx, g, "reconnect", "rc.>", tr.handler("member"))
	}
	published := map[string]bool{} // IDs whose Publish succeeded
	before := numbered("before", 3)
	publishIDs(t, ctx, b, topic, before)
	for _, id := range before {
		published[id] = true
	}
	s.receive(t, sub.ch, len(before))
	handledBefore := map[string]bool{}
	if tr != nil {
		for _, h := range s.handledAll(t, tr, before) {
			handledBefore[h.env.ID] = true
		}
	}

	out.Cut()
	for _, id := range numbered("during", 3) {
		pctx, cancel := context.WithTimeout(ctx, s.timeout/10)
		err := b.Publish(pctx, Envelope(id, topic))
		cancel()
		if err == nil {
			published[id] = true
			t.Logf("Publish %s during the outage succeeded: it must arrive", id)
		}
	}
	out.Restore()

	// Publishing resumes by itself; the subscription, which misses what
	// was published while it was cut off, receives again.
	deadline := time.Now().Add(s.timeout)
	okAfter := 0
	for i := 0; ; i++ {
		id := fmt.Sprintf("after-%02d", i)
		pctx, cancel := context.WithTimeout(ctx, s.timeout/10)
		if err := b.Publish(pctx, Envelope(id, topic)); err == nil {
			published[id] = true
			okAfter++
		}
		cancel()
		if received(sub.ch, func(e broker.Envelope) bool { return strings.HasPrefix(e.ID, "after-") }) {
			break
		}
		select {
		case <-subscription.Done():
			t.Fatalf("the subscription ended by itself during the outage")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("within %v after the connection was restored, the subscription received none of the %d envelopes published since (%d of those Publish calls succeeded)", s.timeout, i+1, okAfter)
		}
		time.Sleep(50 * time.Millisecond)
	}
	final := numbered("final", 5)
	publishIDs(t, ctx, b, topic, final)
	for _, id := range final {
		published[id] = true
	}
	want := map[string]bool{}
	for _, id := range final {
		want[id] = true
	}
	for len(want) > 0 {
		select {
		case e := <-sub.ch:
			delete(want, e.ID)
		case <-ctx.Done():
			t.Fatalf("the subscription did not receive %v after the outage", slices.Sorted(maps.Keys(want)))
		}
	}

	all := slices.Sorted(maps.Keys(published))
	if tr != nil {
		var rest []string // what the member has yet to handle
		for _, id := range all {
			if !handledBefore[id] {
				rest = append(rest, id)
			}
		}
		s.handledAll(t, tr, rest)
		tr.checkOverlaps(t)
		select {
		case <-member.Done():
			t.Fatalf("the group member ended by itself during the outage")
		default:
		}
	}
	// The poll queue holds every envelope whose Publish succeeded.
	missing := map[string]bool{}
	for _, id := range all {
		missing[id] = true
	}
	for len(missing) > 0 {
		got := poll(t, ctx, b, topic, 100)
		for _, e := range got {
			delete(missing, e.ID)
		}
		if len(got) == 0 {
			break
		}
	}
	if len(missing) > 0 {
		t.Fatalf("Poll after the outage lacks %v, whose Publish succeeded", slices.Sorted(maps.Keys(missing)))
	}
}

// received drains ch and reports whether any envelope it held satisfies
// f.
func received(ch <-chan broker.Envelope, f func(broker.Envelope) bool) bool {
	found := false
	for {
		select {
		case e := <-ch:
			if f(e) {
				found = true
			}
		default:
			return found
		}
	}
}
