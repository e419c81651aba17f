package brokertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
)

// testBadInput calls every method with bad input: each returns an error
// matching nova.ErrInvalid, and nothing is published, dead-lettered or
// subscribed.
func (s *suite) testBadInput(t *testing.T) {
	t.Parallel()
	ctx := s.ctx(t)
	b := s.newBroker(t)
	rec := newRecorder()
	s.subscribe(t, ctx, b, ">", rec.handle)
	for _, c := range badCalls(b) {
		if err := c.call(ctx); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("%s: %v, want an error matching nova.ErrInvalid", c.name, err)
		}
	}
	s.checkNothingPublished(t, ctx, b, rec)
}

// badTopic is the topic of the bad envelopes of badCalls.
const badTopic = "bad.topic"

// badCall is a call with bad input.
type badCall struct {
	name string
	call func(ctx context.Context) error
}

// badCalls returns a call of every method of b with every kind of bad
// input.
func badCalls(b broker.Broker) []badCall {
	mutate := func(f func(*broker.Envelope)) broker.Envelope {
		e := Envelope("bad-1", badTopic)
		f(&e)
		return e
	}
	envelopes := []struct {
		name string
		env  broker.Envelope
	}{
		{"empty ID", mutate(func(e *broker.Envelope) { e.ID = "" })},
		{"ID not UTF-8", mutate(func(e *broker.Envelope) { e.ID = "\xff" })},
		{"ID with NUL", mutate(func(e *broker.Envelope) { e.ID = "a\x00b" })},
		{"ID too long", mutate(func(e *broker.Envelope) { e.ID = strings.Repeat("i", broker.MaxIDLen+1) })},
		{"empty topic", mutate(func(e *broker.Envelope) { e.Topic = "" })},
		{"empty token", mutate(func(e *broker.Envelope) { e.Topic = "bad..topic" })},
		{"leading dot", mutate(func(e *broker.Envelope) { e.Topic = ".bad" })},
		{"trailing dot", mutate(func(e *broker.Envelope) { e.Topic = "bad." })},
		{"space in topic", mutate(func(e *broker.Envelope) { e.Topic = "bad topic" })},
		{"tab in topic", mutate(func(e *broker.Envelope) { e.Topic = "bad\ttopic" })},
		{"star token", mutate(func(e *broker.Envelope) { e.Topic = "bad.*" })},
		{"gt token", mutate(func(e *broker.Envelope) { e.Topic = "bad.>" })},
		{"star in token", mutate(func(e *broker.Envelope) { e.Topic = "bad.to*pic" })},
		{"topic not UTF-8", mutate(func(e *broker.Envelope) { e.Topic = "bad.\xfe" })},
		{"topic too long", mutate(func(e *broker.Envelope) { e.Topic = strings.Repeat("t", broker.MaxTopicLen+1) })},
		{"payload not JSON", mutate(func(e *broker.Envelope) { e.Payload = json.RawMessage(`{"id":`) })},
		{"empty payload", mutate(func(e *broker.Envelope) { e.Payload = nil })},
		{"two JSON values", mutate(func(e *broker.Envelope) { e.Payload = json.RawMessage(`1 2`) })},
		{"payload too large", mutate(func(e *broker.Envelope) { e.Payload = bigPayload(broker.MaxPayloadLen + 1) })},
		{"event type not UTF-8", mutate(func(e *broker.Envelope) { e.EventType = "\xc3" })},
		{"key not UTF-8", mutate(func(e *broker.Envelope) { e.Key = "\xc3" })},
		{"empty header key", mutate(func(e *broker.Envelope) { e.Headers = map[string]string{"": "v"} })},
		{"header value not UTF-8", mutate(func(e *broker.Envelope) { e.Headers = map[string]string{"h": "\xff"} })},
		{"negative attempts", mutate(func(e *broker.Envelope) { e.Attempts = -1 })},
	}
	var calls []badCall
	add := func(name string, call func(ctx context.Context) error) {
		calls = append(calls, badCall{name, call})
	}
	for _, tt := range envelopes {
		add("Publish with "+tt.name, func(ctx context.Context) error { return b.Publish(ctx, tt.env) })
		add("PublishAll with "+tt.name, func(ctx context.Context) error {
			return broker.PublishAll(ctx, b, Envelope("bad-ok", badTopic), tt.env)
		})
		add("PublishDLQ with "+tt.name, func(ctx context.Context) error { return b.PublishDLQ(ctx, "bad.dlq", tt.env, "reason") })
	}
	good := Envelope("bad-good", badTopic)
	h := func(context.Context, broker.Envelope) error { return nil }
	subscribe := func(sub broker.Subscription, err error) error {
		if err == nil {
			sub.Unsubscribe()
		}
		return err
	}
	add("PublishDLQ to an empty topic", func(ctx context.Context) error { return b.PublishDLQ(ctx, "", good, "why") })
	add("PublishDLQ to a pattern", func(ctx context.Context) error { return b.PublishDLQ(ctx, "bad.>", good, "why") })
	add("PublishDLQ with an empty reason", func(ctx context.Context) error { return b.PublishDLQ(ctx, "bad.dlq", good, "") })
	add("PublishDLQ with a reason not UTF-8", func(ctx context.Context) error { return b.PublishDLQ(ctx, "bad.dlq", good, "\xff") })
	add("Poll of an empty topic", func(ctx context.Context) error { _, err := b.Poll(ctx, "", 1); return err })
	add("Poll of a pattern", func(ctx context.Context) error { _, err := b.Poll(ctx, "bad.*", 1); return err })
	add("Poll of max 0", func(ctx context.Context) error { _, err := b.Poll(ctx, badTopic, 0); return err })
	add("Poll of max -1", func(ctx context.Context) error { _, err := b.Poll(ctx, badTopic, -1); return err })
	add("PollDLQ of a bad topic", func(ctx context.Context) error { _, err := b.PollDLQ(ctx, "bad..dlq", 1); return err })
	add("PollDLQ of a pattern", func(ctx context.Context) error { _, err := b.PollDLQ(ctx, "bad.>", 1); return err })
	add("PollDLQ of max 0", func(ctx context.Context) error { _, err := b.PollDLQ(ctx, "bad.dlq", 0); return err })
	g, groups := b.(broker.GroupSubscriber)
	for _, pattern := range []string{"", "a..b", ".a", "a.", "a.>.b", ">.a", "a*", "a.b*", "a.>x", "a b", "a.\xff"} {
		add("Subscribe to "+pattern, func(ctx context.Context) error { return subscribe(b.Subscribe(ctx, pattern, h)) })
		if groups {
			add("SubscribeGroup to "+pattern, func(ctx context.Context) error { return subscribe(g.SubscribeGroup(ctx, "bad", pattern, h)) })
		}
	}
	if groups {
		for _, group := range []string{"", "a.b", "a b", "a*", "a>", "a/b", "é", "a\x00", strings.Repeat("g", broker.MaxGroupLen+1)} {
			add(fmt.Sprintf("SubscribeGroup of group %q", group), func(ctx context.Context) error {
				return subscribe(g.SubscribeGroup(ctx, group, "bad.>", h))
			})
		}
	}
	return calls
}

// checkNothingPublished checks that the bad calls published, dead-lettered
// and subscribed nothing: rec, subscribed to ">", sees a marker first,
// the poll and dead-letter queues are empty, and the IDs in rejected
// envelopes were not used up.
func (s *suite) checkNothingPublished(t *testing.T, ctx context.Context, b broker.Broker, rec *recorder) {
	t.Helper()
	topic := badTopic
	good := Envelope("bad-good", badTopic)
	// Nothing was published: the first delivery is the marker, and no
	// poll queue or dead-letter queue holds anything.
	mustPublish(t, ctx, b, Envelope("bad-marker", "bad.marker"))
	if got := s.receive(t, rec.ch, 1); got[0].ID != "bad-marker" {
		t.Fatalf("first delivery after bad input = %s on %s, want bad-marker", got[0].ID, got[0].Topic)
	}
	for _, q := range []string{topic, "bad.dlq"} {
		if got := poll(t, ctx, b, q, 10); len(got) != 0 {
			t.Errorf("Poll %s after bad input = %v, want none", q, ids(got))
		}
		if got, err := b.PollDLQ(ctx, q, 10); err != nil || len(got) != 0 {
			t.Errorf("PollDLQ %s after bad input = %+v, %v; want none", q, got, err)
		}
	}
	// IDs in rejected envelopes were not used up.
	mustPublish(t, ctx, b, good, Envelope("bad-1", topic), Envelope("bad-ok", topic))
	if got := poll(t, ctx, b, topic, 10); len(got) != 3 {
		t.Fatalf("Poll after publishing the rejected IDs validly = %v, want 3 envelopes", ids(got))
	}
}
