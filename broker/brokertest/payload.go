package brokertest

import (
	"bytes"
	"encoding/json"
	"maps"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/nova-go/nova/broker"
)

// bigPayloadLen is the size of the large payload of the Payloads case,
// in bytes.
const bigPayloadLen = 1_000_000

// testPayloads sends an envelope with many headers — unicode, case
// variants, separators, line breaks, empty values — and one with a
// payload of 1,000,000 bytes, and reads them back through Poll, a
// subscription, a consumer group (when the backend has them) and the
// dead letters: every field comes back as it was sent, the payload byte
// for byte.
func (s *suite) testPayloads(t *testing.T) {
	t.Parallel()
	ctx := s.ctxFor(t, 3)
	b := s.newBroker(t)

	small := Envelope("pay-headers", "pay.small")
	small.EventType = "тест.event ✓"
	small.Key = "ключ/42 ✓"
	small.Payload = json.RawMessage(" {\"name\" : \"Zoë \\u00e9\",\n\t\"n\": [1, 2.50, 1e3] } ")
	small.Headers = map[string]string{
		"ascii":       "value",
		"ключ":        "значение",
		"emoji 🚀":     "✓ ok",
		"H":           "upper",
		"h":           "lower",
		"colon":       "a: b",
		"line breaks": "one\r\nX-Injected: 1\nthree",
		"spaces":      "  padded  ",
		"empty":       "",
		"json":        `{"a":[1,"x"]}`,
		"日本語":         "値",
	}
	small.Timestamp = time.UnixMilli(1_700_000_123_456)
	big := Envelope("pay-big", "pay.big")
	big.Payload = bigPayload(bigPayloadLen)
	big.Headers = map[string]string{"size": "1000000"}
	want := []broker.Envelope{small, big}

	sub := newRecorder()
	s.subscribe(t, ctx, b, "pay.>", sub.handle)
	var member *recorder
	if g, ok := b.(broker.GroupSubscriber); ok {
		member = newRecorder()
		s.join(t, ctx, g, "payloads", "pay.>", member.handle)
	}
	mustPublish(t, ctx, b, want...)

	for i, topic := range []string{"pay.small", "pay.big"} {
		got := poll(t, ctx, b, topic, 10)
		if len(got) != 1 {
			t.Fatalf("Poll %s = %v, want %s", topic, ids(got), want[i].ID)
		}
		exactEnvelope(t, "Poll", got[0], want[i])
	}
	check := func(how string, got []broker.Envelope) {
		t.Helper()
		for _, e := range got {
			switch e.ID {
			case small.ID:
				exactEnvelope(t, how, e, small)
			case big.ID:
				exactEnvelope(t, how, e, big)
			default:
				t.Fatalf("%s received %s", how, e.ID)
			}
		}
		if got[0].ID == got[1].ID {
			t.Fatalf("%s received %s twice", how, got[0].ID)
		}
	}
	check("a subscription", s.receive(t, sub.ch, 2))
	if member != nil {
		check("a group member", s.receive(t, member.ch, 2))
	}

	for _, e := range want {
		if err := b.PublishDLQ(ctx, "pay.dlq", e, "причина ✗: \"quoted\"\nsecond line"); err != nil {
			t.Fatalf("PublishDLQ %s: %v", e.ID, err)
		}
	}
	dl := s.pollDLQ(t, ctx, b, "pay.dlq", 2)
	for i, d := range dl {
		if d.Reason != "причина ✗: \"quoted\"\nsecond line" || d.Topic != "pay.dlq" {
			t.Fatalf("dead letter %s: topic %q reason %q, want pay.dlq and the reason given", d.Envelope.ID, d.Topic, d.Reason)
		}
		exactEnvelope(t, "PollDLQ", d.Envelope, want[i])
	}
}

// bigPayload returns a JSON object of exactly n bytes, varied enough that
// a byte out of place shows.
func bigPayload(n int) json.RawMessage {
	const head, tail = `{"data":"`, `"}`
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_.,;:!?"
	// A random block of a prime length, repeated: cheap to build, and a
	// byte changed, lost or moved shows.
	r := rand.New(rand.NewPCG(1, 2))
	block := make([]byte, 4099)
	for i := range block {
		block[i] = alphabet[r.IntN(len(alphabet))]
	}
	var sb strings.Builder
	sb.Grow(n)
	sb.WriteString(head)
	for sb.Len() < n-len(tail) {
		sb.Write(block[:min(len(block), n-len(tail)-sb.Len())])
	}
	sb.WriteString(tail)
	return json.RawMessage(sb.String())
}

// exactEnvelope fails t unless got is want as it was sent: the payload
// byte for byte, every header, the timestamp to the millisecond, and
// attempts 0.
func exactEnvelope(t *testing.T, how string, got, want broker.Envelope) {
	t.Helper()
	switch {
	case got.ID != want.ID, got.Topic != want.Topic, got.EventType != want.EventType, got.Key != want.Key:
		t.Fatalf("%s: envelope = %q %q %q key %q, want %q %q %q key %q", how, got.ID, got.Topic, got.EventType, got.Key, want.ID, want.Topic, want.EventType, want.Key)
	case !bytes.Equal(got.Payload, want.Payload):
		t.Fatalf("%s: envelope %s: payload of %d bytes differs from the %d bytes sent (first bytes %q, want %q)", how, got.ID, len(got.Payload), len(want.Payload), head(got.Payload), head(want.Payload))
	case !maps.Equal(got.Headers, want.Headers):
		t.Fatalf("%s: envelope %s: headers %q, want %q", how, got.ID, got.Headers, want.Headers)
	case got.Attempts != 0:
		t.Fatalf("%s: envelope %s: attempts %d, want 0", how, got.ID, got.Attempts)
	case got.Timestamp.UnixMilli() != want.Timestamp.UnixMilli():
		t.Fatalf("%s: envelope %s: timestamp %v, want %v", how, got.ID, got.Timestamp, want.Timestamp)
	}
}

func head(b []byte) []byte { return b[:min(len(b), 64)] }
