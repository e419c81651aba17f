package novakafka

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/nova-go/nova/broker"
)

// TestCodecRoundTrip encodes envelopes and decodes them back: every field
// survives, a user header named like one of Nova's keeps its name, and
// the record key is the envelope key or, without one, the topic.
func TestCodecRoundTrip(t *testing.T) {
	t.Parallel()
	full := broker.Envelope{
		ID: "id-1", Topic: "a.b", EventType: "t", Payload: json.RawMessage(`{"x":1}`), Key: "k",
		Headers:   map[string]string{"plain": "1", "nova-id": "shadow", "nova-h-x": "y"},
		Attempts:  3,
		Timestamp: time.UnixMilli(1_700_000_000_123),
	}
	bare := broker.Envelope{ID: "id-2", Topic: "a.c", Payload: json.RawMessage(`null`)}
	for _, e := range []broker.Envelope{full, bare} {
		r := encode("ns.events", e)
		wantKey := e.Key
		if wantKey == "" {
			wantKey = e.Topic
		}
		if string(r.Key) != wantKey {
			t.Errorf("%s: record key %q, want %q", e.ID, r.Key, wantKey)
		}
		got, err := decode(r)
		if err != nil {
			t.Fatalf("%s: decode: %v", e.ID, err)
		}
		if got.ID != e.ID || got.Topic != e.Topic || got.EventType != e.EventType || got.Key != e.Key ||
			string(got.Payload) != string(e.Payload) || got.Attempts != e.Attempts || !got.Timestamp.Equal(e.Timestamp) ||
			!maps.Equal(got.Headers, e.Headers) && len(got.Headers)+len(e.Headers) > 0 {
			t.Errorf("decode(encode(%+v)) = %+v", e, got)
		}
	}
	d := decodeDead(encodeDead("ns.dlq", "kept.here", full, "why", time.UnixMilli(5)))
	if d.Topic != "kept.here" || d.Reason != "why" || !d.At.Equal(time.UnixMilli(5)) || d.Envelope.ID != "id-1" {
		t.Errorf("decodeDead = %+v", d)
	}
}

// TestDecodeRejects reads records that are not valid envelopes.
func TestDecodeRejects(t *testing.T) {
	t.Parallel()
	h := func(kv ...string) []kgo.RecordHeader {
		var hs []kgo.RecordHeader
		for i := 0; i < len(kv); i += 2 {
			hs = append(hs, kgo.RecordHeader{Key: kv[i], Value: []byte(kv[i+1])})
		}
		return hs
	}
	for _, tt := range []struct {
		name string
		r    *kgo.Record
		want string
	}{
		{"no ID", &kgo.Record{Value: []byte(`1`), Headers: h(hdrTopic, "a")}, "no nova-id"},
		{"bad JSON", &kgo.Record{Value: []byte(`{`), Headers: h(hdrID, "x", hdrTopic, "a")}, "JSON"},
		{"bad topic", &kgo.Record{Value: []byte(`1`), Headers: h(hdrID, "x", hdrTopic, "a..b")}, "empty token"},
		{"bad attempts", &kgo.Record{Value: []byte(`1`), Headers: h(hdrID, "x", hdrTopic, "a", hdrAttempts, "-1")}, "not a count"},
		{"bad time", &kgo.Record{Value: []byte(`1`), Headers: h(hdrID, "x", hdrTopic, "a", hdrTime, "soon")}, "milliseconds"},
	} {
		if _, err := decode(tt.r); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: decode = %v, want an error saying %q", tt.name, err, tt.want)
		}
	}
}
