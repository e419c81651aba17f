package brokertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nova-go/nova/broker"
)

// testKeyOrder runs only on a backend that promises order per key
// ([broker.Guarantees].KeyOrder). Envelopes of several keys are
// published interleaved, and the handler rejects some deliveries once:
// per key, a subscription and a group of two members must hand the
// envelopes over one at a time, in publish order, redeliveries included,
// so each key's acknowledged sequence is its publish order (less what an
// attempt limit of 1 dead-letters).
func (s *suite) testKeyOrder(t *testing.T) {
	t.Parallel()
	b := s.newBroker(t)
	if !broker.GuaranteesOf(b).KeyOrder {
		t.Skipf("brokertest: %T does not promise order per key (broker.Guarantees.KeyOrder)", b)
	}
	t.Run("Subscribe", func(t *testing.T) {
		t.Parallel()
		s.keyOrder(t, b, "kos", func(ctx context.Context, h broker.Handler) {
			s.subscribe(t, ctx, b, "kos.>", h)
		})
	})
	t.Run("Group", func(t *testing.T) {
		t.Parallel()
		g := groups(t, b)
		s.keyOrder(t, b, "kog", func(ctx context.Context, h broker.Handler) {
			s.join(t, ctx, g, "ordered", "kog.>", h)
			s.join(t, ctx, g, "ordered", "kog.>", h)
		})
	})
}

// keyOrder publishes keyed envelopes under prefix.… to the consumers
// start starts with the handler it is given, and checks the order per
// key.
func (s *suite) keyOrder(t *testing.T, b broker.Broker, prefix string, start func(context.Context, broker.Handler)) {
	ctx := s.ctxFor(t, 3)
	limit := s.maxAttempts(t)
	const keys, each = 4, 8
	// Each key's envelopes alternate between two topics: the order is
	// per key, whatever the topic.
	type env struct{ id, key, topic string }
	var published []env
	for i := range each {
		for k := range keys {
			published = append(published, env{fmt.Sprintf("%s-k%d-%02d", prefix, k, i), fmt.Sprintf("k%d", k), fmt.Sprintf("%s.t%d", prefix, i%2)})
		}
	}
	failOnce := func(id string) bool { return id[len(id)-1]%3 == 1 }

	var mu sync.Mutex
	delivered := map[string][]string{} // per key, every delivery in the order it began
	acked := map[string][]string{}     // per key, in the order of acknowledgement
	busy := map[string]string{}        // key → envelope being handled
	tries := map[string]int{}
	var problems []string
	done := make(chan struct{}, len(published)*4)
	start(ctx, func(ctx context.Context, e broker.Envelope) error {
		mu.Lock()
		defer mu.Unlock()
		defer func() { done <- struct{}{} }()
		if other, ok := busy[e.Key]; ok {
			problems = append(problems, fmt.Sprintf("%s delivered while %s of the same key was being handled", e.ID, other))
		}
		delivered[e.Key] = append(delivered[e.Key], e.ID)
		tries[e.ID]++
		if failOnce(e.ID) && tries[e.ID] == 1 {
			return errors.New("rejected once")
		}
		busy[e.Key] = e.ID
		mu.Unlock()
		time.Sleep(time.Millisecond) // a window for another delivery of the key to show
		mu.Lock()
		delete(busy, e.Key)
		acked[e.Key] = append(acked[e.Key], e.ID)
		return nil
	})
	for _, p := range published {
		e := Envelope(p.id, p.topic)
		e.Key = p.key
		mustPublish(t, ctx, b, e)
	}

	want := map[string][]string{}    // acknowledged, per key
	wantDel := map[string][]string{} // delivered, consecutive repeats removed
	var dead []string
	for _, p := range published {
		wantDel[p.key] = append(wantDel[p.key], p.id)
		if limit == 1 && failOnce(p.id) {
			dead = append(dead, p.id)
			continue
		}
		want[p.key] = append(want[p.key], p.id)
	}
	deadline := time.NewTimer(s.timeout)
	defer deadline.Stop()
	for {
		mu.Lock()
		n := 0
		for _, a := range acked {
			n += len(a)
		}
		mu.Unlock()
		if n >= len(published)-len(dead) {
			break
		}
		select {
		case <-done:
		case <-deadline.C:
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("after %v, %d of %d envelopes acknowledged: %v", s.timeout, n, len(published)-len(dead), acked)
		}
	}
	time.Sleep(s.settle)
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Fatalf("order per key broken: %v", problems)
	}
	for k := range keys {
		key := fmt.Sprintf("k%d", k)
		if !slices.Equal(acked[key], want[key]) {
			t.Errorf("key %s acknowledged in the order %v, want the publish order %v", key, acked[key], want[key])
		}
		if got := slices.Compact(slices.Clone(delivered[key])); !slices.Equal(got, wantDel[key]) {
			t.Errorf("key %s delivered in the order %v, want each envelope (and its redeliveries) in publish order %v", key, delivered[key], wantDel[key])
		}
	}
	if len(dead) > 0 {
		var got []string
		for len(got) < len(dead) {
			for topic := range 2 {
				dl, err := b.PollDLQ(ctx, fmt.Sprintf("%s.t%d", prefix, topic), 100)
				if err != nil {
					t.Fatalf("PollDLQ: %v", err)
				}
				for _, d := range dl {
					got = append(got, d.Envelope.ID)
				}
			}
			select {
			case <-deadline.C:
				t.Fatalf("dead letters after %v: %v, want %v", s.timeout, got, dead)
			case <-time.After(5 * time.Millisecond):
			}
		}
		slices.Sort(got)
		slices.Sort(dead)
		if !slices.Equal(got, dead) {
			t.Errorf("dead letters %v, want %v", got, dead)
		}
	}
}
