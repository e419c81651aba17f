package brokertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nova-go/nova/broker"
)

// Envelope returns a valid envelope with the given ID and topic, event
// type "test.event", payload {"id": id}, a key, one header and a
// timestamp to the millisecond.
func Envelope(id, topic string) broker.Envelope {
	return broker.Envelope{
		ID:        id,
		Topic:     topic,
		EventType: "test.event",
		Payload:   json.RawMessage(fmt.Sprintf(`{"id":%q}`, id)),
		Key:       "k-" + id,
		Headers:   map[string]string{"h": id},
		Timestamp: time.UnixMilli(1_700_000_000_000),
	}
}

// mustPublish publishes each envelope and fails t on an error.
func mustPublish(t *testing.T, ctx context.Context, b broker.Broker, envs ...broker.Envelope) {
	t.Helper()
	for _, e := range envs {
		if err := b.Publish(ctx, e); err != nil {
			t.Fatalf("Publish %s to %s: %v", e.ID, e.Topic, err)
		}
	}
}

// recorder is a handler that sends every delivery to a channel.
type recorder struct{ ch chan broker.Envelope }

func newRecorder() *recorder { return &recorder{ch: make(chan broker.Envelope, 4096)} }

func (r *recorder) handle(ctx context.Context, e broker.Envelope) error {
	select {
	case r.ch <- e:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// subscribe subscribes h to pattern and fails t on an error; the
// subscription ends with the test.
func (s *suite) subscribe(t *testing.T, ctx context.Context, b broker.Broker, pattern string, h broker.Handler) broker.Subscription {
	t.Helper()
	sub, err := b.Subscribe(ctx, pattern, h)
	if err != nil {
		t.Fatalf("Subscribe %q: %v", pattern, err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	return sub
}

// receive waits for n deliveries on ch.
func (s *suite) receive(t *testing.T, ch <-chan broker.Envelope, n int) []broker.Envelope {
	t.Helper()
	timer := time.NewTimer(s.timeout)
	defer timer.Stop()
	var got []broker.Envelope
	for len(got) < n {
		select {
		case e := <-ch:
			got = append(got, e)
		case <-timer.C:
			t.Fatalf("received %d deliveries in %v, want %d: %v", len(got), s.timeout, n, ids(got))
		}
	}
	return got
}

// quiet fails t if anything arrives on ch within the settle time.
func (s *suite) quiet(t *testing.T, ch <-chan broker.Envelope) {
	t.Helper()
	select {
	case e := <-ch:
		t.Fatalf("unexpected delivery of %s on %s (attempts %d)", e.ID, e.Topic, e.Attempts)
	case <-time.After(s.settle):
	}
}

// waitDone waits for a subscription to end.
func (s *suite) waitDone(t *testing.T, sub broker.Subscription, what string) {
	t.Helper()
	select {
	case <-sub.Done():
	case <-time.After(s.timeout):
		t.Fatalf("%s: subscription still running after %v", what, s.timeout)
	}
}

// pollDLQ polls topic's dead letters until n have arrived.
func (s *suite) pollDLQ(t *testing.T, ctx context.Context, b broker.Broker, topic string, n int) []broker.DeadLetter {
	t.Helper()
	deadline := time.Now().Add(s.timeout)
	var got []broker.DeadLetter
	for {
		dl, err := b.PollDLQ(ctx, topic, 100)
		if err != nil {
			t.Fatalf("PollDLQ %q: %v", topic, err)
		}
		got = append(got, dl...)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("PollDLQ %q: %d dead letters after %v, want %d", topic, len(got), s.timeout, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// poll polls topic once and fails t on an error.
func poll(t *testing.T, ctx context.Context, b broker.Broker, topic string, max int) []broker.Envelope {
	t.Helper()
	got, err := b.Poll(ctx, topic, max)
	if err != nil {
		t.Fatalf("Poll %q: %v", topic, err)
	}
	return got
}

func ids(envs []broker.Envelope) []string {
	out := make([]string, len(envs))
	for i, e := range envs {
		out[i] = e.ID
	}
	return out
}

// sameEnvelope fails t unless got carries want's fields; the payload is
// compared as JSON, the timestamp to the millisecond.
func sameEnvelope(t *testing.T, got, want broker.Envelope) {
	t.Helper()
	var gb, wb bytes.Buffer
	if err := json.Compact(&gb, got.Payload); err != nil {
		t.Fatalf("envelope %s: payload %q: %v", got.ID, got.Payload, err)
	}
	json.Compact(&wb, want.Payload)
	switch {
	case got.ID != want.ID, got.Topic != want.Topic, got.EventType != want.EventType, got.Key != want.Key:
		t.Fatalf("envelope = %s %s %s key %q, want %s %s %s key %q", got.ID, got.Topic, got.EventType, got.Key, want.ID, want.Topic, want.EventType, want.Key)
	case gb.String() != wb.String():
		t.Fatalf("envelope %s: payload %s, want %s", got.ID, gb.String(), wb.String())
	case len(got.Headers) != len(want.Headers):
		t.Fatalf("envelope %s: headers %v, want %v", got.ID, got.Headers, want.Headers)
	case got.Attempts != want.Attempts:
		t.Fatalf("envelope %s: attempts %d, want %d", got.ID, got.Attempts, want.Attempts)
	case !want.Timestamp.IsZero() && got.Timestamp.UnixMilli() != want.Timestamp.UnixMilli():
		t.Fatalf("envelope %s: timestamp %v, want %v", got.ID, got.Timestamp, want.Timestamp)
	}
	for k, v := range want.Headers {
		if got.Headers[k] != v {
			t.Fatalf("envelope %s: headers %v, want %v", got.ID, got.Headers, want.Headers)
		}
	}
}

// join joins group with h and fails t on an error; the member leaves
// with the test.
func (s *suite) join(t *testing.T, ctx context.Context, g broker.GroupSubscriber, group, pattern string, h broker.Handler) broker.Subscription {
	t.Helper()
	sub, err := g.SubscribeGroup(ctx, group, pattern, h)
	if err != nil {
		t.Fatalf("SubscribeGroup %q %q: %v", group, pattern, err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	return sub
}

// handled is one acknowledged delivery to a tracker's handler.
type handled struct {
	member string
	env    broker.Envelope
}

// tracker records the deliveries its handlers acknowledge, and every
// delivery of an envelope that another handler still held.
type tracker struct {
	ch chan handled

	mu       sync.Mutex
	inflight map[string]string // envelope ID → member handling it
	overlaps []string
}

func newTracker() *tracker {
	return &tracker{ch: make(chan handled, 4096), inflight: make(map[string]string)}
}

// handler returns a handler, named member, that acknowledges everything.
func (tr *tracker) handler(member string) broker.Handler {
	return func(ctx context.Context, e broker.Envelope) error {
		tr.mu.Lock()
		if other, ok := tr.inflight[e.ID]; ok {
			tr.overlaps = append(tr.overlaps, fmt.Sprintf("%s delivered to %s while %s held it", e.ID, member, other))
		} else {
			tr.inflight[e.ID] = member
			defer func() {
				tr.mu.Lock()
				delete(tr.inflight, e.ID)
				tr.mu.Unlock()
			}()
		}
		tr.mu.Unlock()
		select {
		case tr.ch <- handled{member, e}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// checkOverlaps fails t if an envelope was handed to two handlers at once.
func (tr *tracker) checkOverlaps(t *testing.T) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.overlaps) > 0 {
		t.Fatalf("an envelope went to two members at once: %v", tr.overlaps)
	}
}

// handledAll receives from tr until every one of ids was handled, and
// returns all it received.
func (s *suite) handledAll(t *testing.T, tr *tracker, ids []string) []handled {
	t.Helper()
	missing := make(map[string]bool, len(ids))
	for _, id := range ids {
		missing[id] = true
	}
	timer := time.NewTimer(s.timeout)
	defer timer.Stop()
	var got []handled
	for len(missing) > 0 {
		select {
		case h := <-tr.ch:
			got = append(got, h)
			delete(missing, h.env.ID)
		case <-timer.C:
			t.Fatalf("after %v, %d envelopes not received: %v (received %v)", s.timeout, len(missing), slices.Sorted(maps.Keys(missing)), handledIDs(got))
		}
	}
	return got
}

// quietHandled fails t if tr's handlers acknowledge anything within the
// settle time.
func (s *suite) quietHandled(t *testing.T, tr *tracker) {
	t.Helper()
	select {
	case h := <-tr.ch:
		t.Fatalf("unexpected delivery of %s to %s (attempts %d)", h.env.ID, h.member, h.env.Attempts)
	case <-time.After(s.settle):
	}
}

// checkOnce fails t unless got holds each of ids exactly once and
// nothing else.
func checkOnce(t *testing.T, got []handled, ids []string) {
	t.Helper()
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	seen := make(map[string]int)
	for _, h := range got {
		if !want[h.env.ID] {
			t.Fatalf("received %s, which was not for it (received %v)", h.env.ID, handledIDs(got))
		}
		seen[h.env.ID]++
		if seen[h.env.ID] > 1 {
			t.Fatalf("received %s twice although every delivery was acknowledged (received %v)", h.env.ID, handledIDs(got))
		}
	}
}

func handledIDs(hs []handled) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.member + ":" + h.env.ID
	}
	return out
}

// numbered returns n envelope IDs prefix-00, prefix-01, …
func numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%02d", prefix, i)
	}
	return out
}

// publishIDs publishes an envelope with each ID to topic.
func publishIDs(t *testing.T, ctx context.Context, b broker.Broker, topic string, ids []string) {
	t.Helper()
	for _, id := range ids {
		mustPublish(t, ctx, b, Envelope(id, topic))
	}
}
