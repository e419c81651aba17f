package brokertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nova-go/nova/broker"
)

// testGroupShare runs two members of one group: every envelope is
// handled once, by one member at a time; once the first member leaves,
// the second handles everything published after.
func (s *suite) testGroupShare(t *testing.T) {
	t.Parallel()
	ctx := s.ctxFor(t, 3)
	b := s.newBroker(t)
	g := groups(t, b)
	tr := newTracker()
	first := s.join(t, ctx, g, "workers", "share.>", tr.handler("first"))
	s.join(t, ctx, g, "workers", "share.>", tr.handler("second"))

	ids := numbered("share", 40)
	publishIDs(t, ctx, b, "share.t", ids)
	got := s.handledAll(t, tr, ids)
	s.quietHandled(t, tr)
	checkOnce(t, got, ids)
	counts := map[string]int{}
	for _, h := range got {
		counts[h.member]++
	}
	t.Logf("first member handled %d, second %d", counts["first"], counts["second"])

	if err := first.Unsubscribe(); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	s.waitDone(t, first, "after Unsubscribe")
	rest := numbered("rest", 20)
	publishIDs(t, ctx, b, "share.t", rest)
	got = s.handledAll(t, tr, rest)
	s.quietHandled(t, tr)
	checkOnce(t, got, rest)
	for _, h := range got {
		if h.member != "second" {
			t.Fatalf("%s went to %s after it left", h.env.ID, h.member)
		}
	}
	tr.checkOverlaps(t)
}

// testGroupDurable creates a group, leaves it with no member, publishes,
// and joins again: the new member receives what was published meanwhile.
func (s *suite) testGroupDurable(t *testing.T) {
	t.Parallel()
	ctx := s.ctxFor(t, 3)
	b := s.newBroker(t)
	g := groups(t, b)
	tr := newTracker()
	sub := s.join(t, ctx, g, "durable", "dur.>", tr.handler("first"))
	if err := sub.Unsubscribe(); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	s.waitDone(t, sub, "after Unsubscribe")

	ids := numbered("dur", 6)
	for i, id := range ids {
		mustPublish(t, ctx, b, Envelope(id, []string{"dur.a", "dur.b"}[i%2]))
	}
	s.join(t, ctx, g, "durable", "dur.>", tr.handler("later"))
	got := s.handledAll(t, tr, ids)
	s.quietHandled(t, tr)
	checkOnce(t, got, ids)
	for _, h := range got {
		if h.member != "later" {
			t.Fatalf("%s went to %s after it left", h.env.ID, h.member)
		}
		want := Envelope(h.env.ID, h.env.Topic)
		// A member that has just left may still have a request for
		// work open on the server (a JetStream pull request lives until
		// it expires): an envelope handed to it comes back after the ack
		// wait, counted as one attempt. It must still come back.
		if h.env.Attempts == 1 {
			want.Attempts = 1
		}
		sameEnvelope(t, h.env, want)
	}
}

// testGroupCopies runs two groups on one pattern: each receives its own
// copy of every envelope, and neither receives an envelope published
// before it was created.
func (s *suite) testGroupCopies(t *testing.T) {
	t.Parallel()
	ctx := s.ctxFor(t, 3)
	b := s.newBroker(t)
	g := groups(t, b)
	mustPublish(t, ctx, b, Envelope("early", "copy.t"))
	a, c := newTracker(), newTracker()
	s.join(t, ctx, g, "copies-a", "copy.>", a.handler("a1"))
	s.join(t, ctx, g, "copies-a", "copy.>", a.handler("a2"))
	s.join(t, ctx, g, "copies-b", "copy.>", c.handler("b1"))

	ids := numbered("copy", 10)
	publishIDs(t, ctx, b, "copy.t", ids)
	for name, tr := range map[string]*tracker{"copies-a": a, "copies-b": c} {
		got := s.handledAll(t, tr, ids)
		s.quietHandled(t, tr)
		for _, h := range got {
			if h.env.ID == "early" {
				t.Fatalf("group %s received envelope early, published before the group was created: a group receives only what is published from its creation on", name)
			}
		}
		checkOnce(t, got, ids)
		tr.checkOverlaps(t)
	}
}

// testGroupHandOver has a member hold an envelope without answering and
// leave: the envelope goes to the member still running (once the first
// has left, not before), with Attempts 1 where the server counts
// deliveries; with an attempt limit of 1 it may be dead-lettered instead.
func (s *suite) testGroupHandOver(t *testing.T) {
	t.Parallel()
	ctx := s.ctxFor(t, 3)
	b := s.newBroker(t)
	g := groups(t, b)
	limit := s.maxAttempts(t)
	server := broker.GuaranteesOf(b).ServerAttempts

	held := make(chan broker.Envelope, 1)
	holder := s.join(t, ctx, g, "handover", "hand.>", func(hctx context.Context, e broker.Envelope) error {
		held <- e
		<-hctx.Done()
		return hctx.Err()
	})
	mustPublish(t, ctx, b, Envelope("h1", "hand.x"))
	select {
	case e := <-held:
		if e.ID != "h1" || e.Attempts != 0 {
			t.Fatalf("holder received %s with attempts %d, want h1 with 0", e.ID, e.Attempts)
		}
	case <-time.After(s.timeout):
		t.Fatalf("holder not called within %v", s.timeout)
	}
	tr := newTracker()
	s.join(t, ctx, g, "handover", "hand.>", tr.handler("next"))
	s.quietHandled(t, tr) // h1 is the holder's while it runs

	if err := holder.Unsubscribe(); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	s.waitDone(t, holder, "after Unsubscribe while holding an envelope")
	deadline := time.NewTimer(s.timeout)
	defer deadline.Stop()
	for {
		select {
		case h := <-tr.ch:
			if limit == 1 && server {
				t.Fatalf("h1 delivered again (attempts %d) although the attempt limit is 1 and the server counts deliveries: want it dead-lettered", h.env.Attempts)
			}
			if server && h.env.Attempts < 1 {
				t.Fatalf("h1 handed over with attempts %d, want at least 1: the server counts deliveries (Guarantees.ServerAttempts)", h.env.Attempts)
			}
			sameEnvelope(t, withAttempts(h.env, 0), Envelope("h1", "hand.x"))
			s.quietHandled(t, tr)
			return
		case <-deadline.C:
			t.Fatalf("h1 neither delivered to the next member nor dead-lettered within %v after its holder left", s.timeout)
		case <-time.After(10 * time.Millisecond):
			if limit > 1 {
				continue
			}
			dl, err := b.PollDLQ(ctx, "hand.x", 10)
			if err != nil {
				t.Fatalf("PollDLQ: %v", err)
			}
			if len(dl) > 0 {
				if len(dl) != 1 || dl[0].Envelope.ID != "h1" || dl[0].Envelope.Attempts < 1 || dl[0].Reason == "" {
					t.Fatalf("dead letters = %+v, want h1 with attempts 1 and a reason", dl)
				}
				return
			}
		}
	}
}

// testGroupDeadLetter has two members reject an envelope every time: its
// attempts go 0, 1, 2, … across the members, one delivery at a time, up
// to the limit, then it is dead-lettered with the last error; an envelope
// rejected once is delivered again with Attempts 1; others flow.
func (s *suite) testGroupDeadLetter(t *testing.T) {
	t.Parallel()
	ctx := s.ctxFor(t, 3)
	b := s.newBroker(t)
	g := groups(t, b)
	limit := s.maxAttempts(t)

	var mu sync.Mutex
	attempts := map[string][]int{}
	busy := map[string]bool{}
	var overlaps []string
	finished := 0 // deliveries whose handler returned
	seen := make(chan string, 4096)
	h := func(ctx context.Context, e broker.Envelope) error {
		mu.Lock()
		if busy[e.ID] {
			overlaps = append(overlaps, e.ID)
		}
		busy[e.ID] = true
		attempts[e.ID] = append(attempts[e.ID], e.Attempts)
		n := len(attempts[e.ID])
		mu.Unlock()
		defer func() {
			mu.Lock()
			busy[e.ID] = false
			finished++
			seen <- e.ID
			mu.Unlock()
		}()
		switch {
		case e.ID == "poison":
			time.Sleep(time.Millisecond) // a window for an overlap to show
			return fmt.Errorf("poisoned %d", e.Attempts)
		case e.ID == "once" && n == 1:
			return errors.New("not yet")
		}
		return nil
	}
	s.join(t, ctx, g, "dead", "gdl.>", h)
	s.join(t, ctx, g, "dead", "gdl.>", h)

	mustPublish(t, ctx, b, Envelope("poison", "gdl.a"), Envelope("once", "gdl.b"), Envelope("fine", "gdl.c"))
	dl := s.pollDLQ(t, ctx, b, "gdl.a", 1)
	d := dl[0]
	if len(dl) != 1 || d.Envelope.ID != "poison" || d.Topic != "gdl.a" {
		t.Fatalf("dead letters = %+v, want poison under gdl.a", dl)
	}
	if d.Envelope.Attempts != limit {
		t.Fatalf("dead letter attempts = %d, want the attempt limit %d", d.Envelope.Attempts, limit)
	}
	if want := fmt.Sprintf("poisoned %d", limit-1); !strings.Contains(d.Reason, want) {
		t.Fatalf("dead letter reason = %q, want it to contain the last error %q", d.Reason, want)
	}
	sameEnvelope(t, withAttempts(d.Envelope, 0), Envelope("poison", "gdl.a"))

	wantOnce := []int{0, 1}
	if limit == 1 {
		wantOnce = []int{0}
		s.pollDLQ(t, ctx, b, "gdl.b", 1)
	}
	deadline := time.After(s.timeout)
	for {
		mu.Lock()
		poison, once, fine := slices.Clone(attempts["poison"]), slices.Clone(attempts["once"]), len(attempts["fine"])
		mu.Unlock()
		if len(once) == len(wantOnce) && fine >= 1 {
			if !slices.Equal(once, wantOnce) {
				t.Fatalf("attempts of an envelope rejected once = %v, want %v", once, wantOnce)
			}
			for i, a := range poison {
				if a != i {
					t.Fatalf("attempts of poison, in the order its deliveries began = %v, want 0, 1, 2, …", poison)
				}
			}
			if len(poison) != limit {
				t.Fatalf("poison delivered %d times, want %d", len(poison), limit)
			}
			break
		}
		select {
		case <-deadline:
			t.Fatalf("after %v: attempts of once %v, deliveries of fine %d; want %v and 1", s.timeout, once, fine, wantOnce)
		case <-seen:
		}
	}
	// Let the deliveries counted above return before looking for more.
	for {
		mu.Lock()
		started := 0
		for _, a := range attempts {
			started += len(a)
		}
		ended := finished
		mu.Unlock()
		if ended == started {
			break
		}
		select {
		case <-deadline:
			t.Fatalf("after %v: %d deliveries began, %d returned", s.timeout, started, ended)
		case <-time.After(time.Millisecond):
		}
	}
	for len(seen) > 0 {
		<-seen
	}
	select {
	case id := <-seen:
		t.Fatalf("unexpected delivery of %s", id)
	case <-time.After(s.settle):
	}
	mu.Lock()
	defer mu.Unlock()
	if len(overlaps) > 0 {
		t.Fatalf("envelopes delivered to two members at once: %v", overlaps)
	}
	if limit > 1 {
		for _, topic := range []string{"gdl.b", "gdl.c"} {
			if more, err := b.PollDLQ(ctx, topic, 10); err != nil || len(more) != 0 {
				t.Fatalf("PollDLQ %s = %+v, %v; want none", topic, more, err)
			}
		}
	}
}
