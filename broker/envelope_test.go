package broker_test

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
)

func TestNewEnvelope(t *testing.T) {
	t.Parallel()
	before := time.Now().Add(-time.Millisecond)
	e, err := broker.NewEnvelope("s-a-started", "saga.s.a.started", "saga.event", map[string]any{"saga_id": "s", "step": "a"})
	if err != nil {
		t.Fatal(err)
	}
	if e.ID != "s-a-started" || e.Topic != "saga.s.a.started" || e.EventType != "saga.event" || e.Attempts != 0 || e.Key != "" {
		t.Fatalf("NewEnvelope = %+v", e)
	}
	if string(e.Payload) != `{"saga_id":"s","step":"a"}` {
		t.Fatalf("payload = %s", e.Payload)
	}
	if e.Timestamp.Before(before) || e.Timestamp.After(time.Now()) || e.Timestamp.Nanosecond()%int(time.Millisecond) != 0 {
		t.Fatalf("timestamp = %v, want now to the millisecond", e.Timestamp)
	}
	raw, err := broker.NewEnvelope("r", "t", "", json.RawMessage(`[1, 2]`))
	if err != nil || string(raw.Payload) != `[1,2]` {
		t.Fatalf("NewEnvelope with raw JSON = %s, %v", raw.Payload, err)
	}

	bad := []struct {
		name                 string
		id, topic, eventType string
		payload              any
	}{
		{"empty ID", "", "t", "e", 1},
		{"empty topic", "i", "", "e", 1},
		{"wildcard topic", "i", "t.*", "e", 1},
		{"unencodable payload", "i", "t", "e", math.NaN()},
		{"channel payload", "i", "t", "e", make(chan int)},
		{"raw payload not JSON", "i", "t", "e", json.RawMessage(`{`)},
		{"event type not UTF-8", "i", "t", "\xff", 1},
	}
	for _, tt := range bad {
		if _, err := broker.NewEnvelope(tt.id, tt.topic, tt.eventType, tt.payload); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("NewEnvelope with %s: %v, want an error matching nova.ErrInvalid", tt.name, err)
		}
	}
}

// TestEnvelopeJSON checks the envelope's JSON form both ways.
func TestEnvelopeJSON(t *testing.T) {
	t.Parallel()
	ts := time.UnixMilli(1_700_000_000_123)
	tests := []struct {
		name string
		env  broker.Envelope
		want string
	}{
		{
			"every field",
			broker.Envelope{ID: "i", Topic: "a.b", EventType: "e", Payload: json.RawMessage(`{"x":1}`), Key: "k", Headers: map[string]string{"h": "v"}, Attempts: 2, Timestamp: ts},
			`{"id":"i","topic":"a.b","event_type":"e","payload":{"x":1},"key":"k","headers":{"h":"v"},"attempts":2,"timestamp_ms":1700000000123}`,
		},
		{
			"no key, no headers",
			broker.Envelope{ID: "i", Topic: "a", EventType: "e", Payload: json.RawMessage(`null`), Timestamp: ts},
			`{"id":"i","topic":"a","event_type":"e","payload":null,"headers":{},"attempts":0,"timestamp_ms":1700000000123}`,
		},
		{
			"zero time",
			broker.Envelope{ID: "i", Topic: "a", Payload: json.RawMessage(`1`)},
			`{"id":"i","topic":"a","event_type":"","payload":1,"headers":{},"attempts":0,"timestamp_ms":0}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := json.Marshal(tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("Marshal =\n%s\nwant\n%s", got, tt.want)
			}
			var back broker.Envelope
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatal(err)
			}
			if back.ID != tt.env.ID || back.Topic != tt.env.Topic || back.EventType != tt.env.EventType || back.Key != tt.env.Key ||
				back.Attempts != tt.env.Attempts || !back.Timestamp.Equal(tt.env.Timestamp) || string(back.Payload) != string(tt.env.Payload) ||
				len(back.Headers) != len(tt.env.Headers) {
				t.Fatalf("round trip = %+v, want %+v", back, tt.env)
			}
		})
	}
	// A message as nova-boot-data-patterns writes it, with a null key.
	var e broker.Envelope
	msg := `{"id":"s-a-started","topic":"saga.s.a.started","event_type":"saga.event","payload":{"saga_id":"s"},"key":null,"headers":{},"attempts":0,"timestamp_ms":1700000000000}`
	if err := json.Unmarshal([]byte(msg), &e); err != nil || e.Key != "" || e.Timestamp.UnixMilli() != 1_700_000_000_000 || e.Validate() != nil {
		t.Fatalf("Unmarshal of a message with a null key = %+v, %v", e, err)
	}
	if err := json.Unmarshal([]byte(`{"id":1}`), &e); err == nil {
		t.Fatalf("Unmarshal of a number ID succeeded")
	}
}

func TestEnvelopeValidate(t *testing.T) {
	t.Parallel()
	valid := func() broker.Envelope {
		return broker.Envelope{ID: "i", Topic: "a.b", EventType: "e", Payload: json.RawMessage(`{}`), Key: "k", Headers: map[string]string{"h": "v"}}
	}
	tests := []struct {
		name    string
		mutate  func(*broker.Envelope)
		wantErr error
	}{
		{"valid", func(*broker.Envelope) {}, nil},
		{"empty event type and key", func(e *broker.Envelope) { e.EventType, e.Key, e.Headers = "", "", nil }, nil},
		{"largest payload", func(e *broker.Envelope) {
			e.Payload = json.RawMessage(`"` + strings.Repeat("x", broker.MaxPayloadLen-2) + `"`)
		}, nil},
		{"payload too large", func(e *broker.Envelope) {
			e.Payload = json.RawMessage(`"` + strings.Repeat("x", broker.MaxPayloadLen-1) + `"`)
		}, nova.ErrInvalid},
		{"empty ID", func(e *broker.Envelope) { e.ID = "" }, nova.ErrInvalid},
		{"NUL in ID", func(e *broker.Envelope) { e.ID = "a\x00" }, nova.ErrInvalid},
		{"bad topic", func(e *broker.Envelope) { e.Topic = "a..b" }, nova.ErrInvalid},
		{"payload not JSON", func(e *broker.Envelope) { e.Payload = json.RawMessage(`nope`) }, nova.ErrInvalid},
		{"nil payload", func(e *broker.Envelope) { e.Payload = nil }, nova.ErrInvalid},
		{"key too long", func(e *broker.Envelope) { e.Key = strings.Repeat("k", 4097) }, nova.ErrInvalid},
		{"empty header key", func(e *broker.Envelope) { e.Headers = map[string]string{"": "v"} }, nova.ErrInvalid},
		{"NUL in header value", func(e *broker.Envelope) { e.Headers = map[string]string{"h": "\x00"} }, nova.ErrInvalid},
		{"negative attempts", func(e *broker.Envelope) { e.Attempts = -1 }, nova.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := valid()
			tt.mutate(&e)
			err := e.Validate()
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Validate: %v, want %v", err, tt.wantErr)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "broker: ") {
				t.Fatalf("error %q does not start with the package name", err)
			}
		})
	}
}

func TestEnvelopeClone(t *testing.T) {
	t.Parallel()
	e := broker.Envelope{ID: "i", Topic: "t", Payload: json.RawMessage(`[1]`), Headers: map[string]string{"h": "v"}}
	c := e.Clone()
	c.Payload[1] = '2'
	c.Headers["h"] = "w"
	if string(e.Payload) != `[1]` || e.Headers["h"] != "v" {
		t.Fatalf("changing a clone changed the original: %s %v", e.Payload, e.Headers)
	}
}
