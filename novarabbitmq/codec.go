package novarabbitmq

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/nova-go/nova/broker"
)

// The headers an envelope travels with; its ID and event type travel in
// the message-id and type properties, its payload is the body.
const (
	hdrTopic     = "nova-topic"        // the envelope's topic
	hdrKey       = "nova-key"          // the key, when set
	hdrAttempts  = "nova-attempts"     // Envelope.Attempts as published
	hdrTimeMS    = "nova-timestamp-ms" // the timestamp, in milliseconds (the property has seconds)
	hdrID        = "nova-id"           // the ID, when longer than the message-id property allows
	hdrEventType = "nova-event-type"   // the event type, when longer than the type property allows
	hdrPrefix    = "nova-h-"           // nova-h-<name>: a user header
	hdrLong      = "nova-headers"      // [name, value, …]: user headers whose name is too long for a table key
	hdrReason    = "nova-dlq-reason"   // a dead letter's reason
	hdrDeadAtMS  = "nova-dlq-at-ms"    // when it was dead-lettered, in milliseconds

	// RabbitMQ's own headers.
	hdrDeliveryCount = "x-delivery-count" // quorum queues: earlier deliveries of this message
	hdrFirstReason   = "x-first-death-reason"
	hdrFirstQueue    = "x-first-death-queue"
	hdrDeath         = "x-death"

	contentType = "application/json"
)

// maxTableKey is the longest user header name stored under hdrPrefix.
const maxTableKey = maxShortString - len(hdrPrefix)

// encode returns e as a persistent AMQP message. e is valid.
func encode(e broker.Envelope) amqp.Publishing {
	h := amqp.Table{
		hdrTopic:    e.Topic,
		hdrAttempts: int64(e.Attempts),
		hdrTimeMS:   e.Timestamp.UnixMilli(),
	}
	m := amqp.Publishing{
		ContentType:  contentType,
		DeliveryMode: amqp.Persistent,
		Timestamp:    e.Timestamp,
		Body:         e.Payload,
		Headers:      h,
	}
	if len(e.ID) <= maxShortString {
		m.MessageId = e.ID
	} else {
		h[hdrID] = e.ID
	}
	if len(e.EventType) <= maxShortString {
		m.Type = e.EventType
	} else {
		h[hdrEventType] = e.EventType
	}
	if e.Key != "" {
		h[hdrKey] = e.Key
	}
	var long []any
	for _, k := range slices.Sorted(maps.Keys(e.Headers)) {
		if len(k) <= maxTableKey {
			h[hdrPrefix+k] = e.Headers[k]
		} else {
			long = append(long, k, e.Headers[k])
		}
	}
	if long != nil {
		h[hdrLong] = long
	}
	return m
}

// message is what decode reads: a delivery's or a Get's fields.
type message struct {
	routingKey string
	headers    amqp.Table
	messageID  string
	typ        string
	timestamp  time.Time
	body       []byte
}

func fromDelivery(d *amqp.Delivery) message {
	return message{d.RoutingKey, d.Headers, d.MessageId, d.Type, d.Timestamp, d.Body}
}

// errNotEnvelope is wrapped by decode's errors.
var errNotEnvelope = errors.New(pkg + ": not a Nova envelope")

// decode reads an envelope from m, with Attempts as published. An error
// wraps errNotEnvelope and says what is wrong; the envelope returned with
// it holds what could be read, for a dead letter.
func decode(m message) (broker.Envelope, error) {
	e := broker.Envelope{
		ID:        m.messageID,
		Topic:     m.routingKey,
		EventType: m.typ,
		Payload:   m.body,
	}
	var problems []string
	str := func(name string, dst *string) {
		v, ok := m.headers[name]
		if !ok {
			return
		}
		if s, ok := v.(string); ok {
			*dst = s
			return
		}
		problems = append(problems, fmt.Sprintf("header %s is a %T, not a string", name, v))
	}
	str(hdrID, &e.ID)
	str(hdrTopic, &e.Topic)
	str(hdrEventType, &e.EventType)
	str(hdrKey, &e.Key)
	if v, ok := m.headers[hdrAttempts]; ok {
		if n, ok := toInt(v); ok && n >= 0 {
			e.Attempts = int(n)
		} else {
			problems = append(problems, fmt.Sprintf("header %s is %v, not a count", hdrAttempts, v))
		}
	}
	if v, ok := m.headers[hdrTimeMS]; ok {
		if n, ok := toInt(v); ok {
			e.Timestamp = time.UnixMilli(n)
		} else {
			problems = append(problems, fmt.Sprintf("header %s is %v, not milliseconds", hdrTimeMS, v))
		}
	} else if !m.timestamp.IsZero() {
		e.Timestamp = m.timestamp
	}
	for k, v := range m.headers {
		if len(k) <= len(hdrPrefix) || k[:len(hdrPrefix)] != hdrPrefix {
			continue
		}
		s, ok := v.(string)
		if !ok {
			problems = append(problems, fmt.Sprintf("header %s is a %T, not a string", k, v))
			continue
		}
		if e.Headers == nil {
			e.Headers = make(map[string]string)
		}
		e.Headers[k[len(hdrPrefix):]] = s
	}
	if v, ok := m.headers[hdrLong]; ok {
		pairs, ok := v.([]any)
		if !ok || len(pairs)%2 != 0 {
			problems = append(problems, fmt.Sprintf("header %s is not a list of name and value pairs", hdrLong))
		} else {
			for i := 0; i < len(pairs); i += 2 {
				k, kok := pairs[i].(string)
				s, vok := pairs[i+1].(string)
				if !kok || !vok {
					problems = append(problems, fmt.Sprintf("header %s holds a %T and a %T, not strings", hdrLong, pairs[i], pairs[i+1]))
					break
				}
				if e.Headers == nil {
					e.Headers = make(map[string]string)
				}
				e.Headers[k] = s
			}
		}
	}
	if len(problems) == 0 {
		if err := e.Validate(); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		return lenient(e), fmt.Errorf("%w: %s", errNotEnvelope, problems[0])
	}
	return e, nil
}

// lenient returns e with a payload that is JSON, so that a message that
// is not an envelope can still be kept and read as a dead letter: a body
// that is not one JSON value becomes a JSON string (of its text when it
// is UTF-8, of its base64 otherwise).
func lenient(e broker.Envelope) broker.Envelope {
	if len(e.Payload) > 0 && json.Valid(e.Payload) {
		return e
	}
	var v any = []byte(e.Payload)
	if utf8.Valid(e.Payload) {
		v = string(e.Payload)
	}
	data, _ := json.Marshal(v)
	e.Payload = data
	return e
}

// toInt reads an integer header value of any of the widths AMQP tables
// carry.
func toInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int32:
		return int64(n), true
	case int16:
		return int64(n), true
	case int8:
		return int64(n), true
	case int:
		return int64(n), true
	case uint8:
		return int64(n), true
	case uint16:
		return int64(n), true
	case uint32:
		return int64(n), true
	case uint64:
		if n <= 1<<62 {
			return int64(n), true
		}
	}
	return 0, false
}

// deliveryCount returns a quorum queue's count of earlier deliveries of
// a message: 0 when the header is absent.
func deliveryCount(h amqp.Table) int {
	if n, ok := toInt(h[hdrDeliveryCount]); ok && n > 0 {
		return int(n)
	}
	return 0
}

// deadLetterMessage returns e dead-lettered with reason at the time at:
// the envelope's message with the dead-letter headers added.
func deadLetterMessage(e broker.Envelope, reason string, at time.Time) amqp.Publishing {
	m := encode(e)
	m.Headers[hdrReason] = reason
	m.Headers[hdrDeadAtMS] = at.UnixMilli()
	return m
}

// readDeadLetter decodes a message from a dead-letter queue of topic.
// Messages this package dead-lettered carry their reason and time in
// headers. Messages the server dead-lettered (a consumer group's
// delivery limit, reached when members died holding the message) carry
// RabbitMQ's x-death headers instead: the reason then names the server's
// reason and queue, and Attempts counts maxAttempts deliveries, the limit
// the group's queue was declared with. A message that is not an envelope
// is returned as well as it can be read, with the decoding error in its
// reason.
func readDeadLetter(m message, topic string, maxAttempts int) broker.DeadLetter {
	e, err := decode(m)
	d := broker.DeadLetter{Envelope: e, Topic: topic}
	if r, ok := m.headers[hdrReason].(string); ok {
		d.Reason = r
	}
	if n, ok := toInt(m.headers[hdrDeadAtMS]); ok {
		d.At = time.UnixMilli(n)
	}
	if d.Reason == "" {
		reason, _ := m.headers[hdrFirstReason].(string)
		queue, _ := m.headers[hdrFirstQueue].(string)
		switch {
		case reason == "delivery_limit":
			d.Reason = fmt.Sprintf("%s: dead-lettered by RabbitMQ after %d deliveries from queue %s, none acknowledged (a consumer stopped or lost its connection while holding it)", pkg, maxAttempts, queue)
			d.Envelope.Attempts += maxAttempts
		case reason != "":
			d.Reason = fmt.Sprintf("%s: dead-lettered by RabbitMQ (%s) from queue %s", pkg, reason, queue)
		default:
			d.Reason = pkg + ": dead letter without a reason"
		}
		if d.At.IsZero() {
			d.At = deathTime(m.headers)
		}
	}
	if err != nil && !strings.Contains(d.Reason, err.Error()) {
		d.Reason += "; " + err.Error()
	}
	if d.At.IsZero() {
		d.At = m.timestamp
	}
	return d
}

// deathTime returns the time of the first x-death entry, or the zero
// time.
func deathTime(h amqp.Table) time.Time {
	deaths, _ := h[hdrDeath].([]any)
	for _, d := range deaths {
		if t, ok := d.(amqp.Table); ok {
			if at, ok := t["time"].(time.Time); ok {
				return at
			}
		}
	}
	return time.Time{}
}
