package novarabbitmq

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
)

// Envelopes of 1 MB (and the largest Nova allows) travel whole: the
// payload is the message body, split into frames by the client.
func TestLargePayloads(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	b := newBroker(t)
	rec := newRecorder()
	subscribed(t)(b.Subscribe(ctx, "big.>", rec.handle))
	payload := func(n int) json.RawMessage {
		return json.RawMessage(`"` + strings.Repeat("x", n-2) + `"`)
	}
	var envs []broker.Envelope
	for i, n := range []int{1 << 20, 1 << 20, broker.MaxPayloadLen} {
		e := envelope(fmt.Sprintf("big-%d", i), "big.a")
		e.Payload = payload(n)
		envs = append(envs, e)
	}
	mustPublish(t, ctx, b, envs[0])
	if err := broker.PublishAll(ctx, b, envs[1:]...); err != nil {
		t.Fatalf("PublishAll of two large envelopes: %v", err)
	}
	check := func(how string, got []broker.Envelope) {
		t.Helper()
		if len(got) != len(envs) {
			t.Fatalf("%s: %d envelopes, want %d", how, len(got), len(envs))
		}
		for i := range envs {
			if got[i].ID != envs[i].ID || !bytes.Equal(got[i].Payload, envs[i].Payload) {
				t.Fatalf("%s: envelope %d is %s with %d bytes, want %s with %d", how, i, got[i].ID, len(got[i].Payload), envs[i].ID, len(envs[i].Payload))
			}
		}
	}
	check("Subscribe", rec.receive(t, len(envs)))
	polled, err := b.Poll(ctx, "big.a", 10)
	if err != nil {
		t.Fatal(err)
	}
	check("Poll", polled)
}

// Every field survives the trip, including those longer than AMQP's short
// strings allow (an ID of 256 bytes, a long event type, a long header
// name), which travel in headers instead.
func TestEnvelopeFields(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	b := newBroker(t)
	e := envelope(strings.Repeat("i", broker.MaxIDLen), "fields.a")
	e.EventType = strings.Repeat("t", 1000)
	e.Key = "key-é"
	e.Attempts = 2
	e.Headers = map[string]string{"short": "v", strings.Repeat("n", 300): "long name", "nova-topic": "not ours", "empty": ""}
	short := envelope("short", "fields.a")
	short.Headers = nil
	mustPublish(t, ctx, b, e, short)
	got, err := b.Poll(ctx, "fields.a", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("Poll = %v, want 2 envelopes", envIDs(got))
	}
	g := got[0]
	if g.ID != e.ID || g.Topic != e.Topic || g.EventType != e.EventType || g.Key != e.Key || g.Attempts != 2 ||
		!g.Timestamp.Equal(e.Timestamp) || string(g.Payload) != string(e.Payload) {
		t.Fatalf("envelope = %+v, want %+v", g, e)
	}
	if len(g.Headers) != len(e.Headers) {
		t.Fatalf("headers = %v, want %v", g.Headers, e.Headers)
	}
	for k, v := range e.Headers {
		if g.Headers[k] != v {
			t.Fatalf("header %q = %q, want %q", k, g.Headers[k], v)
		}
	}
	if len(got[1].Headers) != 0 {
		t.Fatalf("headers of an envelope without any = %v", got[1].Headers)
	}
}

// A topic of 256 bytes is a valid Nova topic, one byte longer than a
// routing key may be: it is refused as bad input.
func TestRoutingKeyLimit(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	b := newBroker(t)
	topic := strings.Repeat("t", broker.MaxTopicLen)
	if err := broker.ValidateTopic(topic); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, envelope("long", topic)); !errors.Is(err, nova.ErrInvalid) {
		t.Fatalf("Publish to a topic of 256 bytes: %v, want nova.ErrInvalid", err)
	}
	pattern := strings.Repeat("p", 253) + ".>" // 255 bytes, 257 as a binding key
	if _, err := b.Subscribe(ctx, pattern, newRecorder().handle); !errors.Is(err, nova.ErrInvalid) {
		t.Fatalf("Subscribe to a pattern longer than a binding key: %v, want nova.ErrInvalid", err)
	}
	ok := strings.Repeat("t", 255)
	mustPublish(t, ctx, b, envelope("ok", ok))
	if got, err := b.Poll(ctx, ok, 1); err != nil || len(got) != 1 {
		t.Fatalf("Poll of a topic of 255 bytes = %v, %v", got, err)
	}
}

// RabbitMQ reads "#" in a binding key as a wildcard, Nova as a literal
// token; a ">" is one or more tokens where RabbitMQ's "#" is zero or more.
func TestPatternMapping(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	b := newBroker(t)
	tests := []struct {
		pattern string
		want    []string
	}{
		{"lit.#", []string{"lit.#"}},
		{"lit.>", []string{"lit.#", "lit.a", "lit.a.b"}},
		{"lit.*.b", []string{"lit.a.b"}},
		{"lit", []string{"lit"}},
	}
	recs := make([]recorder, len(tests))
	for i, tt := range tests {
		recs[i] = newRecorder()
		subscribed(t)(b.Subscribe(ctx, tt.pattern, recs[i].handle))
	}
	for _, topic := range []string{"lit", "lit.#", "lit.a", "lit.a.b"} {
		mustPublish(t, ctx, b, envelope(topic, topic))
	}
	for i, tt := range tests {
		if got := envIDs(recs[i].receive(t, len(tt.want))); !slices.Equal(got, tt.want) {
			t.Errorf("pattern %q received %v, want %v", tt.pattern, got, tt.want)
		}
	}
	for i, tt := range tests {
		select {
		case e := <-recs[i]:
			t.Errorf("pattern %q also received %s", tt.pattern, e.Topic)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestBindingKey(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ pattern, want string }{
		{"a", "a"},
		{"a.*", "a.*"},
		{">", "*.#"},
		{"a.>", "a.*.#"},
		{"*.b.>", "*.b.*.#"},
		{"a.#.b", "a.*.b"},
	} {
		if got, err := bindingKey(tt.pattern); err != nil || got != tt.want {
			t.Errorf("bindingKey(%q) = %q, %v; want %q", tt.pattern, got, err, tt.want)
		}
	}
}

// Messages on the exchange that are not Nova envelopes (published by
// another client) are dead-lettered with the decoding error as the
// reason, by subscriptions, groups and Poll alike, and never handed to a
// handler or returned by Poll.
func TestNotAnEnvelope(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	b := newBroker(t)
	sub, group := newRecorder(), newRecorder()
	subscribed(t)(b.Subscribe(ctx, "raw.>", sub.handle))
	subscribed(t)(b.SubscribeGroup(ctx, "raw", "raw.>", group.handle))
	if got, err := b.Poll(ctx, "raw.a", 1); err != nil || len(got) != 0 { // declares the poll queue
		t.Fatalf("Poll = %v, %v", got, err)
	}
	ch, err := rawConn(t).Channel()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []amqp.Publishing{
		{Body: []byte("not json"), MessageId: "m1"},
		{Body: []byte(`{"a":1}`)}, // no ID
		{Body: []byte{0xff, 0xfe}, MessageId: "m3", Headers: amqp.Table{hdrAttempts: "many"}},
	} {
		if err := ch.PublishWithContext(ctx, b.names.topics(), "raw.a", false, false, m); err != nil {
			t.Fatal(err)
		}
	}
	mustPublish(t, ctx, b, envelope("fine", "raw.a"))
	if got := sub.receive(t, 1); got[0].ID != "fine" {
		t.Fatalf("the subscription received %v, want fine", envIDs(got))
	}
	if got := group.receive(t, 1); got[0].ID != "fine" {
		t.Fatalf("the group received %v, want fine", envIDs(got))
	}
	polled, err := b.Poll(ctx, "raw.a", 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := envIDs(polled); !slices.Equal(got, []string{"fine"}) {
		t.Fatalf("Poll = %v, want [fine]", got)
	}
	dl := pollDLQ(t, ctx, b, "raw.a", 9) // three each from the subscription, the group and Poll
	for _, d := range dl {
		if !strings.Contains(d.Reason, "not a Nova envelope") || d.Topic != "raw.a" || !json.Valid(d.Envelope.Payload) {
			t.Fatalf("dead letter = %+v, want a reason saying it is not an envelope and a JSON payload", d)
		}
	}
	sub.quiet(t, 200*time.Millisecond)
}

// A publish that no queue takes — the topic's poll queue was deleted
// behind the broker's back — is returned by the server (mandatory) and
// reported as an error; the next Publish declares the queue again.
func TestPublishReturned(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	b := newBroker(t)
	mustPublish(t, ctx, b, envelope("r-0", "ret.a"))
	ch, err := rawConn(t).Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDelete(b.names.pollQueue("ret.a"), false, false, false); err != nil {
		t.Fatal(err)
	}
	err = b.Publish(ctx, envelope("r-1", "ret.a"))
	if err == nil || !nova.IsTransient(err) || !strings.Contains(err.Error(), "basic.return") {
		t.Fatalf("Publish with no queue to take it: %v, want a transient error naming the return", err)
	}
	mustPublish(t, ctx, b, envelope("r-2", "ret.a"))
	if got, err := b.Poll(ctx, "ret.a", 10); err != nil || !slices.Equal(envIDs(got), []string{"r-2"}) {
		t.Fatalf("Poll = %v, %v; want [r-2]", envIDs(got), err)
	}
}

// A Subscribe subscription counts failures in the process: a handler
// that fails twice sees attempts 0, 1, 2, and later envelopes wait.
func TestSubscribeRetriesInOrder(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	b := newBroker(t)
	rec := newRecorder()
	fails := 0
	subscribed(t)(b.Subscribe(ctx, "ord.>", func(ctx2 context.Context, e broker.Envelope) error {
		if e.ID == "first" && fails < 2 {
			fails++
			rec <- e
			return errors.New("not yet")
		}
		return rec.handle(ctx2, e)
	}))
	mustPublish(t, ctx, b, envelope("first", "ord.a"), envelope("second", "ord.a"))
	got := rec.receive(t, 4)
	var seen []string
	for _, e := range got {
		seen = append(seen, fmt.Sprintf("%s/%d", e.ID, e.Attempts))
	}
	if want := []string{"first/0", "first/1", "first/2", "second/0"}; !slices.Equal(seen, want) {
		t.Fatalf("deliveries %v, want %v", seen, want)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		cfg   Config
		field string
	}{
		{Config{URL: "http://x"}, "Config.URL"},
		{Config{URL: "amqp://user:secret@host:bad/"}, "Config.URL"},
		{Config{Namespace: "amq.x"}, "Config.Namespace"},
		{Config{Namespace: "a b"}, "Config.Namespace"},
		{Config{Namespace: "a..b"}, "Config.Namespace"},
		{Config{Namespace: "é"}, "Config.Namespace"},
		{Config{Namespace: strings.Repeat("n", MaxNamespaceLen+1)}, "Config.Namespace"},
		{Config{MaxAttempts: -1}, "Config.MaxAttempts"},
		{Config{MinBackoff: -1}, "Config.MinBackoff"},
		{Config{MaxBackoff: -1}, "Config.MaxBackoff"},
		{Config{MinBackoff: time.Minute, MaxBackoff: time.Second}, "Config.MaxBackoff"},
		{Config{Prefetch: -1}, "Config.Prefetch"},
		{Config{Prefetch: 70000}, "Config.Prefetch"},
		{Config{SubscriptionExpiry: time.Millisecond}, "Config.SubscriptionExpiry"},
		{Config{PollRetention: -1}, "Config.PollRetention"},
		{Config{PollRetention: time.Microsecond}, "Config.PollRetention"},
		{Config{DialTimeout: -1}, "Config.DialTimeout"},
		{Config{ReconnectMinBackoff: -1}, "Config.ReconnectMinBackoff"},
		{Config{ReconnectMaxBackoff: -1}, "Config.ReconnectMaxBackoff"},
		{Config{ReconnectMinBackoff: time.Minute, ReconnectMaxBackoff: time.Second}, "Config.ReconnectMaxBackoff"},
	} {
		orig := tt.cfg
		_, err := New(t.Context(), tt.cfg)
		var ie *nova.InvalidError
		if !errors.As(err, &ie) || ie.Field != tt.field {
			t.Errorf("New(%+v) = %v, want an invalid %s", tt.cfg, err, tt.field)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("error %q shows the password", err)
		}
		if fmt.Sprint(orig) != fmt.Sprint(tt.cfg) {
			t.Errorf("validation changed the config")
		}
	}
	d := Config{}.withDefaults()
	if d.URL != DefaultURL || d.Namespace != DefaultNamespace || d.MaxAttempts != broker.DefaultMaxAttempts ||
		d.Prefetch != DefaultPrefetch || d.SubscriptionExpiry != DefaultSubscriptionExpiry || d.Logger == nil {
		t.Errorf("defaults = %+v", d)
	}
}

// A server that cannot be reached is a transient error from New.
func TestNewUnreachable(t *testing.T) {
	t.Parallel()
	_, err := New(t.Context(), Config{URL: "amqp://guest:secret@127.0.0.1:1/", DialTimeout: time.Second})
	if !nova.IsTransient(err) || strings.Contains(err.Error(), "secret") {
		t.Fatalf("New of an unreachable server: %v, want a transient error without the password", err)
	}
}

func TestGuarantees(t *testing.T) {
	t.Parallel()
	b := newBroker(t)
	if g := broker.GuaranteesOf(b); g != (broker.Guarantees{Durable: true}) {
		t.Fatalf("Guarantees = %+v, want Durable only", g)
	}
}
