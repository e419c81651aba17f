package broker

import (
	"bytes"
	"encoding/json"
	"maps"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nova-go/nova"
)

// Limits every broker enforces on an [Envelope], so an envelope accepted
// by one backend is accepted by all.
const (
	// MaxIDLen is the longest envelope ID, in bytes.
	MaxIDLen = 256
	// MaxPayloadLen is the largest payload, in bytes.
	MaxPayloadLen = nova.MaxDataLen
	// maxStringLen bounds the event type, the key, each header key and
	// each header value and a dead-letter reason, in bytes.
	maxStringLen = 4096
)

// Envelope is one message. Its JSON form is the one
// nova-boot-data-patterns' saga events travel in: the fields id, topic,
// event_type, payload, key, headers and attempts, with the timestamp as
// milliseconds since the Unix epoch in "timestamp_ms".
type Envelope struct {
	// ID identifies the message and is the deduplication key: publishing
	// an ID again within the broker's window is a no-op. Required.
	ID string `json:"id"`
	// Topic is where the message is published, such as
	// "saga.order-42.charge.started". Required; see [ValidateTopic].
	Topic string `json:"topic"`
	// EventType names the payload's shape, such as "saga.event".
	EventType string `json:"event_type"`
	// Payload is the message body, a JSON value. Required.
	Payload json.RawMessage `json:"payload"`
	// Key is an optional partition or ordering key; empty means none.
	Key string `json:"key,omitempty"`
	// Headers are free string pairs carried with the message.
	Headers map[string]string `json:"headers"`
	// Attempts counts the failed deliveries of this message before the
	// current one: 0 on the first delivery to a subscription, one more on
	// each redelivery, and the number of failed deliveries on a dead
	// letter.
	Attempts int `json:"attempts"`
	// Timestamp is when the message was created, to the millisecond. A
	// broker stamps a zero Timestamp with the time of Publish.
	Timestamp time.Time `json:"-"`
}

// NewEnvelope returns a valid envelope with payload encoded as JSON (pass
// a json.RawMessage to use bytes that already are JSON), no key, no
// headers, zero attempts and the current time. It returns an error
// matching [nova.ErrInvalid] when the envelope is not valid or payload
// cannot be encoded.
func NewEnvelope(id, topic, eventType string, payload any) (Envelope, error) {
	data, err := json.Marshal(payload)
	if err != nil {
		return Envelope{}, invalidf("envelope %q: payload: %v", id, err)
	}
	e := Envelope{
		ID:        id,
		Topic:     topic,
		EventType: eventType,
		Payload:   data,
		Timestamp: time.UnixMilli(time.Now().UnixMilli()),
	}
	if err := e.Validate(); err != nil {
		return Envelope{}, err
	}
	return e, nil
}

// Validate checks the envelope: a non-empty ID, a valid topic
// ([ValidateTopic]), a payload that is one JSON value of at most
// [MaxPayloadLen] bytes, valid UTF-8 without NUL bytes in every string,
// non-empty header keys and a non-negative attempt count. Errors match
// [nova.ErrInvalid] and name the field.
func (e Envelope) Validate() error {
	if e.ID == "" {
		return invalidf("envelope has an empty ID")
	}
	if err := checkString("envelope ID", e.ID, MaxIDLen); err != nil {
		return err
	}
	if err := ValidateTopic(e.Topic); err != nil {
		return invalidf("envelope %q: %v", e.ID, err)
	}
	if err := checkString("envelope "+e.ID+" event type", e.EventType, maxStringLen); err != nil {
		return err
	}
	if err := checkString("envelope "+e.ID+" key", e.Key, maxStringLen); err != nil {
		return err
	}
	for k, v := range e.Headers {
		if k == "" {
			return invalidf("envelope %q has an empty header key", e.ID)
		}
		if err := checkString("envelope "+e.ID+" header key", k, maxStringLen); err != nil {
			return err
		}
		if err := checkString("envelope "+e.ID+" header "+k, v, maxStringLen); err != nil {
			return err
		}
	}
	switch {
	case len(e.Payload) > MaxPayloadLen:
		return invalidf("envelope %q: payload of %d bytes is larger than the limit of %d", e.ID, len(e.Payload), MaxPayloadLen)
	case !json.Valid(e.Payload):
		return invalidf("envelope %q: payload is not valid JSON", e.ID)
	case e.Attempts < 0:
		return invalidf("envelope %q: negative attempts %d", e.ID, e.Attempts)
	}
	return nil
}

func checkString(what, s string, limit int) error {
	switch {
	case len(s) > limit:
		return invalidf("%s of %d bytes is longer than the limit of %d", what, len(s), limit)
	case !utf8.ValidString(s):
		return invalidf("%s %q is not valid UTF-8", what, s)
	case strings.IndexByte(s, 0) >= 0:
		return invalidf("%s %q contains a NUL byte", what, s)
	}
	return nil
}

// Clone returns a deep copy of e: its payload and headers share no memory
// with e's.
func (e Envelope) Clone() Envelope {
	e.Payload = bytes.Clone(e.Payload)
	e.Headers = maps.Clone(e.Headers)
	return e
}

// wireEnvelope is Envelope's JSON form.
type wireEnvelope struct {
	ID          string            `json:"id"`
	Topic       string            `json:"topic"`
	EventType   string            `json:"event_type"`
	Payload     json.RawMessage   `json:"payload"`
	Key         *string           `json:"key,omitempty"`
	Headers     map[string]string `json:"headers"`
	Attempts    int               `json:"attempts"`
	TimestampMS int64             `json:"timestamp_ms"`
}

// MarshalJSON encodes e with the field names above: the timestamp as
// "timestamp_ms" (milliseconds since the Unix epoch, 0 for a zero time),
// "key" only when set and "headers" always, as an object.
func (e Envelope) MarshalJSON() ([]byte, error) {
	w := wireEnvelope{
		ID:        e.ID,
		Topic:     e.Topic,
		EventType: e.EventType,
		Payload:   e.Payload,
		Headers:   e.Headers,
		Attempts:  e.Attempts,
	}
	if e.Key != "" {
		w.Key = &e.Key
	}
	if w.Headers == nil {
		w.Headers = map[string]string{}
	}
	if w.Payload == nil {
		w.Payload = json.RawMessage("null")
	}
	if !e.Timestamp.IsZero() {
		w.TimestampMS = e.Timestamp.UnixMilli()
	}
	return json.Marshal(w)
}

// UnmarshalJSON decodes the form MarshalJSON writes; a null or missing
// key is empty, and a timestamp_ms of 0 is the zero time.
func (e *Envelope) UnmarshalJSON(data []byte) error {
	var w wireEnvelope
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*e = Envelope{
		ID:        w.ID,
		Topic:     w.Topic,
		EventType: w.EventType,
		Payload:   w.Payload,
		Headers:   w.Headers,
		Attempts:  w.Attempts,
	}
	if w.Key != nil {
		e.Key = *w.Key
	}
	if w.TimestampMS != 0 {
		e.Timestamp = time.UnixMilli(w.TimestampMS)
	}
	return nil
}
