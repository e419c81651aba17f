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

// testPublishPoll publishes to two topics, interleaved, and polls each:
// envelopes come back oldest first, with their fields, at most max at a
// time, and each only once. A zero timestamp is stamped.
func (s *suite) testPublishPoll(t *testing.T) {
	t.Parallel()
	ctx := s.ctx(t)
	b := s.newBroker(t)

	var as, bs []broker.Envelope
	for i := range 5 {
		a := Envelope(fmt.Sprintf("a-%d", i), "orders.a")
		mustPublish(t, ctx, b, a)
		as = append(as, a)
		if i < 3 {
			x := Envelope(fmt.Sprintf("b-%d", i), "orders.b")
			mustPublish(t, ctx, b, x)
			bs = append(bs, x)
		}
	}
	zero := Envelope("zero-time", "orders.c")
	zero.Timestamp = time.Time{}
	mustPublish(t, ctx, b, zero)

	first := poll(t, ctx, b, "orders.a", 2)
	if len(first) != 2 {
		t.Fatalf("Poll orders.a max 2 = %v, want 2 envelopes", ids(first))
	}
	rest := poll(t, ctx, b, "orders.a", 10)
	got := append(first, rest...)
	if len(got) != len(as) {
		t.Fatalf("Poll orders.a = %v, want %v", ids(got), ids(as))
	}
	for i := range as {
		sameEnvelope(t, got[i], as[i])
	}
	if again := poll(t, ctx, b, "orders.a", 10); len(again) != 0 {
		t.Fatalf("Poll orders.a after draining = %v, want none", ids(again))
	}
	gotB := poll(t, ctx, b, "orders.b", 10)
	if len(gotB) != len(bs) {
		t.Fatalf("Poll orders.b = %v, want %v", ids(gotB), ids(bs))
	}
	for i := range bs {
		sameEnvelope(t, gotB[i], bs[i])
	}
	gotC := poll(t, ctx, b, "orders.c", 10)
	if len(gotC) != 1 || gotC[0].Timestamp.IsZero() {
		t.Fatalf("Poll orders.c = %v, want zero-time with a timestamp set by Publish", gotC)
	}
	if none := poll(t, ctx, b, "orders.never", 10); len(none) != 0 {
		t.Fatalf("Poll of a topic never published to = %v, want none", ids(none))
	}
}

// testPollCompete polls one topic from several goroutines at once: every
// envelope is returned to exactly one of them.
func (s *suite) testPollCompete(t *testing.T) {
	t.Parallel()
	ctx := s.ctx(t)
	b := s.newBroker(t)
	want := numbered("compete", 60)
	publishIDs(t, ctx, b, "compete.t", want)
	const pollers = 4
	got := make(chan []broker.Envelope, pollers)
	errs := make(chan error, pollers)
	var wg sync.WaitGroup
	for range pollers {
		wg.Go(func() {
			var mine []broker.Envelope
			defer func() { got <- mine }()
			for {
				envs, err := b.Poll(ctx, "compete.t", 3)
				if err != nil {
					errs <- err
					return
				}
				if len(envs) == 0 {
					return
				}
				mine = append(mine, envs...)
			}
		})
	}
	wg.Wait()
	close(got)
	close(errs)
	for err := range errs {
		t.Fatalf("Poll: %v", err)
	}
	count := map[string]int{}
	for mine := range got {
		for i, e := range mine {
			count[e.ID]++
			if i > 0 && e.ID < mine[i-1].ID {
				t.Fatalf("one poller received %s after %s: out of publish order", e.ID, mine[i-1].ID)
			}
		}
	}
	for _, id := range want {
		if count[id] != 1 {
			t.Fatalf("%s returned %d times by the pollers together, want once", id, count[id])
		}
	}
	if len(count) != len(want) {
		t.Fatalf("pollers returned %d distinct envelopes, want %d", len(count), len(want))
	}
}

// testFanout checks the two ways to consume side by side: two
// subscriptions of overlapping patterns each receive their own copy of
// every matching envelope, one at a time, none published before they
// started, and polling takes nothing from them nor they from the poll
// queue.
func (s *suite) testFanout(t *testing.T) {
	t.Parallel()
	ctx := s.ctx(t)
	b := s.newBroker(t)
	mustPublish(t, ctx, b, Envelope("fan-early", "fan.a"))

	var mu sync.Mutex
	running := map[string]int{}
	var overlaps []string
	oneAtATime := func(name string, rec *recorder) broker.Handler {
		return func(ctx context.Context, e broker.Envelope) error {
			mu.Lock()
			running[name]++
			if running[name] > 1 {
				overlaps = append(overlaps, name+":"+e.ID)
			}
			mu.Unlock()
			time.Sleep(100 * time.Microsecond)
			mu.Lock()
			running[name]--
			mu.Unlock()
			return rec.handle(ctx, e)
		}
	}
	all, onlyA := newRecorder(), newRecorder()
	s.subscribe(t, ctx, b, "fan.>", oneAtATime("all", all))
	s.subscribe(t, ctx, b, "fan.a", oneAtATime("onlyA", onlyA))
	var want, wantA []string
	for i := range 20 {
		topic := []string{"fan.a", "fan.b"}[i%2]
		id := fmt.Sprintf("fan-%02d", i)
		mustPublish(t, ctx, b, Envelope(id, topic))
		want = append(want, id)
		if topic == "fan.a" {
			wantA = append(wantA, id)
		}
	}
	if got := ids(s.receive(t, all.ch, len(want))); !slices.Equal(got, want) {
		t.Fatalf("subscription to fan.> received %v, want %v", got, want)
	}
	if got := ids(s.receive(t, onlyA.ch, len(wantA))); !slices.Equal(got, wantA) {
		t.Fatalf("subscription to fan.a received %v, want %v", got, wantA)
	}
	if got := ids(poll(t, ctx, b, "fan.a", 100)); !slices.Equal(got, append([]string{"fan-early"}, wantA...)) {
		t.Fatalf("Poll fan.a = %v, want fan-early then %v", got, wantA)
	}
	s.quiet(t, all.ch)
	s.quiet(t, onlyA.ch)
	mu.Lock()
	defer mu.Unlock()
	if len(overlaps) > 0 {
		t.Fatalf("a subscription's handler ran twice at once: %v", overlaps)
	}
}

// testWildcards subscribes patterns with "*" and ">" and checks each
// receives exactly the topics it matches, in publish order.
func (s *suite) testWildcards(t *testing.T) {
	t.Parallel()
	ctx := s.ctx(t)
	b := s.newBroker(t)
	topics := []string{"w", "w.a", "w.a.c", "w.b.c", "w.a.c.d", "x.a.b", "saga.s1.charge.failed"}
	tests := []struct {
		pattern string
		want    []string
	}{
		{"w", []string{"w"}},
		{"w.*", []string{"w.a"}},
		{"w.>", []string{"w.a", "w.a.c", "w.b.c", "w.a.c.d"}},
		{"w.*.c", []string{"w.a.c", "w.b.c"}},
		{"w.a.c", []string{"w.a.c"}},
		{"*.a.*", []string{"w.a.c", "x.a.b"}},
		{"*", []string{"w"}},
		{">", topics},
		{"saga.>", []string{"saga.s1.charge.failed"}},
		{"saga.*.*.failed", []string{"saga.s1.charge.failed"}},
		{"nothing.>", nil},
	}
	recs := make([]*recorder, len(tests))
	for i, tt := range tests {
		recs[i] = newRecorder()
		s.subscribe(t, ctx, b, tt.pattern, recs[i].handle)
	}
	for _, topic := range topics {
		mustPublish(t, ctx, b, Envelope(topic, topic))
	}
	for i, tt := range tests {
		got := ids(s.receive(t, recs[i].ch, len(tt.want)))
		if !slices.Equal(got, tt.want) {
			t.Errorf("pattern %q received %v, want %v", tt.pattern, got, tt.want)
		}
	}
	for i, tt := range tests {
		select {
		case e := <-recs[i].ch:
			t.Errorf("pattern %q also received %s", tt.pattern, e.Topic)
		case <-time.After(s.settle / time.Duration(len(tests))):
		}
	}
}

// testAck checks that an envelope whose handler returns nil is delivered
// once, with Attempts 0, in publish order, and never dead-lettered.
func (s *suite) testAck(t *testing.T) {
	t.Parallel()
	ctx := s.ctx(t)
	b := s.newBroker(t)
	rec := newRecorder()
	s.subscribe(t, ctx, b, "ack.*", rec.handle)
	var want []broker.Envelope
	for i := range 3 {
		e := Envelope(fmt.Sprintf("ack-%d", i), "ack.x")
		want = append(want, e)
	}
	mustPublish(t, ctx, b, want...)
	got := s.receive(t, rec.ch, len(want))
	for i := range want {
		sameEnvelope(t, got[i], want[i])
	}
	s.quiet(t, rec.ch)
	if dl, err := b.PollDLQ(ctx, "ack.x", 10); err != nil || len(dl) != 0 {
		t.Fatalf("PollDLQ after acks = %v, %v; want none", dl, err)
	}
}

// testNack rejects an envelope every time: it must be redelivered with
// Attempts 0, 1, 2, … up to the backend's limit and then dead-lettered
// with the handler's error as the reason, and delivered no more. An
// envelope rejected once is then delivered with Attempts 1 and, once
// acknowledged, never dead-lettered. Other envelopes keep flowing.
func (s *suite) testNack(t *testing.T) {
	t.Parallel()
	ctx := s.ctx(t)
	b := s.newBroker(t)

	var mu sync.Mutex
	attempts := map[string][]int{}
	seen := make(chan broker.Envelope, 4096)
	s.subscribe(t, ctx, b, "nack.>", func(ctx context.Context, e broker.Envelope) error {
		mu.Lock()
		attempts[e.ID] = append(attempts[e.ID], e.Attempts)
		n := len(attempts[e.ID])
		seen <- e // with the attempt, so that the drain below finds every one counted
		mu.Unlock()
		switch {
		case e.ID == "always":
			return fmt.Errorf("boom %d", e.Attempts)
		case e.ID == "once" && n == 1:
			return errors.New("not yet")
		}
		return nil
	})

	mustPublish(t, ctx, b, Envelope("always", "nack.a"))
	dl := s.pollDLQ(t, ctx, b, "nack.a", 1)
	mu.Lock()
	got := slices.Clone(attempts["always"])
	mu.Unlock()
	limit := len(got)
	for i, a := range got {
		if a != i {
			t.Fatalf("attempts seen by the handler = %v, want 0, 1, 2, …", got)
		}
	}
	d := dl[0]
	if len(dl) != 1 || d.Envelope.ID != "always" || d.Topic != "nack.a" || d.Envelope.Topic != "nack.a" {
		t.Fatalf("dead letters = %+v, want envelope always under nack.a", dl)
	}
	if s.options.maxAttempts > 0 && limit != s.options.maxAttempts {
		t.Fatalf("envelope dead-lettered after %d deliveries, want WithMaxAttempts(%d)", limit, s.options.maxAttempts)
	}
	if d.Envelope.Attempts != limit {
		t.Fatalf("dead letter attempts = %d, want %d (one per failed delivery)", d.Envelope.Attempts, limit)
	}
	if want := fmt.Sprintf("boom %d", limit-1); !strings.Contains(d.Reason, want) {
		t.Fatalf("dead letter reason = %q, want it to contain the last error %q", d.Reason, want)
	}
	if d.At.IsZero() {
		t.Fatalf("dead letter has no time")
	}
	sameEnvelope(t, withAttempts(d.Envelope, 0), Envelope("always", "nack.a"))

	if limit >= 2 {
		mustPublish(t, ctx, b, Envelope("once", "nack.b"), Envelope("fine", "nack.c"))
		deadline := time.After(s.timeout)
		for {
			mu.Lock()
			once, fine := slices.Clone(attempts["once"]), len(attempts["fine"])
			mu.Unlock()
			if len(once) == 2 && fine == 1 {
				if once[0] != 0 || once[1] != 1 {
					t.Fatalf("attempts of a rejected-once envelope = %v, want [0 1]", once)
				}
				break
			}
			select {
			case <-deadline:
				t.Fatalf("after %v: attempts of once %v, deliveries of fine %d; want [0 1] and 1", s.timeout, once, fine)
			case <-seen:
			}
		}
	} else {
		t.Logf("the backend dead-letters on the first rejection; redelivery not checked")
	}
	for len(seen) > 0 {
		<-seen
	}
	s.quiet(t, seen)
	for _, topic := range []string{"nack.a", "nack.b", "nack.c"} {
		if more, err := b.PollDLQ(ctx, topic, 10); err != nil || len(more) != 0 {
			t.Fatalf("PollDLQ %s at the end = %+v, %v; want none", topic, more, err)
		}
	}
}

func withAttempts(e broker.Envelope, n int) broker.Envelope {
	e.Attempts = n
	return e
}

// testPanic checks that a handler's panic rejects the envelope like an
// error and that the subscription goes on.
func (s *suite) testPanic(t *testing.T) {
	t.Parallel()
	ctx := s.ctx(t)
	b := s.newBroker(t)
	rec := newRecorder()
	s.subscribe(t, ctx, b, "panic.>", func(ctx context.Context, e broker.Envelope) error {
		if e.ID == "bad" {
			panic("handler bug")
		}
		return rec.handle(ctx, e)
	})
	mustPublish(t, ctx, b, Envelope("bad", "panic.a"), Envelope("good", "panic.b"))
	if got := s.receive(t, rec.ch, 1); got[0].ID != "good" {
		t.Fatalf("received %v, want good", ids(got))
	}
	dl := s.pollDLQ(t, ctx, b, "panic.a", 1)
	if dl[0].Envelope.ID != "bad" || !strings.Contains(dl[0].Reason, "handler bug") {
		t.Fatalf("dead letter = %+v, want bad with the panic value in its reason", dl[0])
	}
}

// testPublishDLQ dead-letters by hand and reads it back in order.
func (s *suite) testPublishDLQ(t *testing.T) {
	t.Parallel()
	ctx := s.ctx(t)
	b := s.newBroker(t)
	for i := range 3 {
		e := Envelope(fmt.Sprintf("dl-%d", i), "orders.created")
		if err := b.PublishDLQ(ctx, "dlq.orders", e, fmt.Sprintf("reason %d", i)); err != nil {
			t.Fatalf("PublishDLQ: %v", err)
		}
	}
	// Dead letters are not deduplicated.
	if err := b.PublishDLQ(ctx, "dlq.orders", Envelope("dl-0", "orders.created"), "again"); err != nil {
		t.Fatalf("PublishDLQ of a repeated ID: %v", err)
	}
	first, err := b.PollDLQ(ctx, "dlq.orders", 1)
	if err != nil || len(first) != 1 {
		t.Fatalf("PollDLQ max 1 = %+v, %v; want one", first, err)
	}
	rest, err := b.PollDLQ(ctx, "dlq.orders", 10)
	if err != nil {
		t.Fatalf("PollDLQ: %v", err)
	}
	got := append(first, rest...)
	want := []string{"reason 0", "reason 1", "reason 2", "again"}
	if len(got) != len(want) {
		t.Fatalf("PollDLQ = %+v, want %d dead letters", got, len(want))
	}
	for i, d := range got {
		if d.Reason != want[i] || d.Topic != "dlq.orders" || d.Envelope.Topic != "orders.created" {
			t.Fatalf("dead letter %d = %+v, want reason %q under dlq.orders", i, d, want[i])
		}
	}
	if none := poll(t, ctx, b, "orders.created", 10); len(none) != 0 {
		t.Fatalf("Poll of the envelopes' own topic = %v, want none: a dead letter is not published", ids(none))
	}
}

// testDedup runs only on a backend that deduplicates
// ([broker.Guarantees].Dedup). It publishes IDs again to the same topic,
// with the same and with other content: each is a success that publishes
// nothing. (Whether an ID is also dropped on another topic is up to the
// backend.)
func (s *suite) testDedup(t *testing.T) {
	t.Parallel()
	ctx := s.ctx(t)
	b := s.newBroker(t)
	if !broker.GuaranteesOf(b).Dedup {
		t.Skipf("brokertest: %T does not deduplicate (broker.Guarantees.Dedup)", b)
	}
	rec := newRecorder()
	s.subscribe(t, ctx, b, "dedup.>", rec.handle)

	orig := Envelope("d1", "dedup.a")
	mustPublish(t, ctx, b, orig)
	changed := Envelope("d1", "dedup.a")
	changed.Payload = []byte(`{"other":true}`)
	for _, e := range []broker.Envelope{orig, changed} {
		if err := b.Publish(ctx, e); err != nil {
			t.Fatalf("Publish of a repeated ID to %s: %v, want success", e.Topic, err)
		}
	}
	if err := broker.PublishAll(ctx, b, orig, Envelope("d2", "dedup.a"), Envelope("d2", "dedup.a")); err != nil {
		t.Fatalf("PublishAll with repeated IDs: %v", err)
	}
	got := s.receive(t, rec.ch, 2)
	if got[0].ID != "d1" || got[1].ID != "d2" {
		t.Fatalf("received %v, want [d1 d2]", ids(got))
	}
	sameEnvelope(t, got[0], orig)
	s.quiet(t, rec.ch)
	polled := poll(t, ctx, b, "dedup.a", 10)
	if len(polled) != 2 || polled[0].ID != "d1" || polled[1].ID != "d2" {
		t.Fatalf("Poll dedup.a = %v, want [d1 d2]", ids(polled))
	}
	sameEnvelope(t, polled[0], orig)
}

// testConcurrent publishes from several goroutines to a topic each; a
// subscriber of all of them and Poll see every envelope once, in each
// publisher's order.
func (s *suite) testConcurrent(t *testing.T) {
	t.Parallel()
	ctx := s.ctx(t)
	b := s.newBroker(t)
	const publishers, each = 4, 50
	rec := newRecorder()
	s.subscribe(t, ctx, b, "conc.>", rec.handle)
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for p := range publishers {
		wg.Go(func() {
			for i := range each {
				e := Envelope(fmt.Sprintf("p%d-%03d", p, i), fmt.Sprintf("conc.p%d", p))
				if err := b.Publish(ctx, e); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Publish: %v", err)
	}
	got := s.receive(t, rec.ch, publishers*each)
	last := map[string]string{}
	for _, e := range got {
		if prev, ok := last[e.Topic]; ok && e.ID <= prev {
			t.Fatalf("subscriber received %s after %s on %s", e.ID, prev, e.Topic)
		}
		last[e.Topic] = e.ID
	}
	s.quiet(t, rec.ch)
	for p := range publishers {
		polled := poll(t, ctx, b, fmt.Sprintf("conc.p%d", p), publishers*each)
		if len(polled) != each || !slices.IsSortedFunc(polled, func(x, y broker.Envelope) int { return strings.Compare(x.ID, y.ID) }) {
			t.Fatalf("Poll conc.p%d = %v, want %d envelopes in order", p, ids(polled), each)
		}
	}
}
