package brokertest

import (
	"encoding/json"
	"errors"
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

	const topic = "bad.topic"
	mutate := func(f func(*broker.Envelope)) broker.Envelope {
		e := Envelope("bad-1", topic)
		f(&e)
		return e
	}
	envelopes := []struct {
		name string
		env  broker.Envelope
	}{
		{"empty ID", mutate(func(e *broker.Envelope) { e.ID = "" })},
		{"ID not UTF-8", mutate(func(e *broker.Envelope) { e.ID = "\xff" })},
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
		{"event type not UTF-8", mutate(func(e *broker.Envelope) { e.EventType = "\xc3" })},
		{"key not UTF-8", mutate(func(e *broker.Envelope) { e.Key = "\xc3" })},
		{"empty header key", mutate(func(e *broker.Envelope) { e.Headers = map[string]string{"": "v"} })},
		{"header value not UTF-8", mutate(func(e *broker.Envelope) { e.Headers = map[string]string{"h": "\xff"} })},
		{"negative attempts", mutate(func(e *broker.Envelope) { e.Attempts = -1 })},
	}
	for _, tt := range envelopes {
		if err := b.Publish(ctx, tt.env); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("Publish with %s: %v, want an error matching nova.ErrInvalid", tt.name, err)
		}
		if err := broker.PublishAll(ctx, b, Envelope("bad-ok", topic), tt.env); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("PublishAll with %s: %v, want an error matching nova.ErrInvalid", tt.name, err)
		}
		if err := b.PublishDLQ(ctx, "bad.dlq", tt.env, "reason"); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("PublishDLQ with %s: %v, want an error matching nova.ErrInvalid", tt.name, err)
		}
	}

	good := Envelope("bad-good", topic)
	calls := []struct {
		name string
		call func() error
	}{
		{"PublishDLQ to an empty topic", func() error { return b.PublishDLQ(ctx, "", good, "why") }},
		{"PublishDLQ to a pattern", func() error { return b.PublishDLQ(ctx, "bad.>", good, "why") }},
		{"PublishDLQ with an empty reason", func() error { return b.PublishDLQ(ctx, "bad.dlq", good, "") }},
		{"PublishDLQ with a reason not UTF-8", func() error { return b.PublishDLQ(ctx, "bad.dlq", good, "\xff") }},
		{"Poll of an empty topic", func() error { _, err := b.Poll(ctx, "", 1); return err }},
		{"Poll of a pattern", func() error { _, err := b.Poll(ctx, "bad.*", 1); return err }},
		{"Poll of max 0", func() error { _, err := b.Poll(ctx, topic, 0); return err }},
		{"Poll of max -1", func() error { _, err := b.Poll(ctx, topic, -1); return err }},
		{"PollDLQ of a bad topic", func() error { _, err := b.PollDLQ(ctx, "bad..dlq", 1); return err }},
		{"PollDLQ of max 0", func() error { _, err := b.PollDLQ(ctx, "bad.dlq", 0); return err }},
	}
	for _, pattern := range []string{"", "a..b", ".a", "a.", "a.>.b", ">.a", "a*", "a.b*", "a.>x", "a b", "a.\xff"} {
		calls = append(calls, struct {
			name string
			call func() error
		}{"Subscribe to " + pattern, func() error {
			sub, err := b.Subscribe(ctx, pattern, rec.handle)
			if err == nil {
				sub.Unsubscribe()
			}
			return err
		}})
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("%s: %v, want an error matching nova.ErrInvalid", c.name, err)
		}
	}

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
