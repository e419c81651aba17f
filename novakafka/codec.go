package novakafka

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/nova-go/nova/broker"
)

// The record headers that carry an envelope's fields. A user header whose
// key starts with "nova-" travels as userPrefix+key, so it never collides
// with these.
const (
	hdrID        = "nova-id"
	hdrTopic     = "nova-topic"
	hdrType      = "nova-type"
	hdrKey       = "nova-key"
	hdrAttempts  = "nova-attempts"
	hdrTime      = "nova-time"
	hdrDLQTopic  = "nova-dlq-topic"
	hdrDLQReason = "nova-dlq-reason"
	hdrDLQAt     = "nova-dlq-at"
	reserved     = "nova-"
	userPrefix   = "nova-h-"
)

// InvalidTopic is the topic that group subscriptions dead-letter a record
// under when it carries no valid Nova topic: a record some other producer
// wrote to the namespace's Kafka topic. Read them with
// PollDLQ(ctx, InvalidTopic, n).
const InvalidTopic = "novakafka.invalid"

// batchOverhead bounds what a record batch holding one record adds to the
// record's key, value and header bytes: the batch header (61 bytes) and
// the record's own length, attributes, timestamp and offset deltas and
// counts as varints.
const batchOverhead = 61 + 5 + 1 + 10 + 5 + 5 + 5 + 5

// recordSize returns an upper bound of the record batch that carries r
// alone, as the producer measures it against ProducerBatchMaxBytes.
func recordSize(r *kgo.Record) int {
	n := batchOverhead + len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += 10 + len(h.Key) + len(h.Value)
	}
	return n
}

// encode returns the record for e on Kafka topic kt: the payload as value,
// the key (or the topic when the key is empty) as record key, the other
// fields as headers. e is valid and its timestamp set.
func encode(kt string, e broker.Envelope) *kgo.Record {
	key := e.Key
	if key == "" {
		key = e.Topic
	}
	hs := make([]kgo.RecordHeader, 0, 6+len(e.Headers))
	hs = append(hs,
		kgo.RecordHeader{Key: hdrID, Value: []byte(e.ID)},
		kgo.RecordHeader{Key: hdrTopic, Value: []byte(e.Topic)},
		kgo.RecordHeader{Key: hdrType, Value: []byte(e.EventType)},
	)
	if !e.Timestamp.IsZero() {
		hs = append(hs, kgo.RecordHeader{Key: hdrTime, Value: strconv.AppendInt(nil, e.Timestamp.UnixMilli(), 10)})
	}
	if e.Key != "" {
		hs = append(hs, kgo.RecordHeader{Key: hdrKey, Value: []byte(e.Key)})
	}
	if e.Attempts != 0 {
		hs = append(hs, kgo.RecordHeader{Key: hdrAttempts, Value: strconv.AppendInt(nil, int64(e.Attempts), 10)})
	}
	for k, v := range e.Headers {
		if strings.HasPrefix(k, reserved) {
			k = userPrefix + k
		}
		hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	return &kgo.Record{
		Topic:     kt,
		Key:       []byte(key),
		Value:     e.Payload,
		Headers:   hs,
		Timestamp: e.Timestamp,
	}
}

// encodeDead returns the dead-letter record of e kept under topic on
// Kafka topic kt; its record key is the topic, so PollDLQ reads a topic's
// dead letters in order.
func encodeDead(kt, topic string, e broker.Envelope, reason string, at time.Time) *kgo.Record {
	r := encode(kt, e)
	r.Key = []byte(topic)
	r.Headers = append(r.Headers,
		kgo.RecordHeader{Key: hdrDLQTopic, Value: []byte(topic)},
		kgo.RecordHeader{Key: hdrDLQReason, Value: []byte(reason)},
		kgo.RecordHeader{Key: hdrDLQAt, Value: strconv.AppendInt(nil, at.UnixMilli(), 10)},
	)
	return r
}

// header returns the value of the first header named key.
func header(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// recordTopic returns the Nova topic of r: under header name, and valid.
func recordTopic(r *kgo.Record, name string) (string, bool) {
	t, ok := header(r, name)
	return t, ok && broker.ValidateTopic(t) == nil
}

// decode returns the envelope r carries, or an error saying why r is not
// a valid envelope. Its payload is r's value: r is not used after.
func decode(r *kgo.Record) (broker.Envelope, error) {
	e := broker.Envelope{Payload: json.RawMessage(r.Value)}
	for _, h := range r.Headers {
		v := string(h.Value)
		switch h.Key {
		case hdrID:
			e.ID = v
		case hdrTopic:
			e.Topic = v
		case hdrType:
			e.EventType = v
		case hdrKey:
			e.Key = v
		case hdrAttempts:
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return e, fmt.Errorf("header %s %q is not a count", hdrAttempts, v)
			}
			e.Attempts = n
		case hdrTime:
			ms, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return e, fmt.Errorf("header %s %q is not milliseconds", hdrTime, v)
			}
			e.Timestamp = time.UnixMilli(ms)
		case hdrDLQTopic, hdrDLQReason, hdrDLQAt:
			// Read by decodeDead.
		default:
			k := h.Key
			if strings.HasPrefix(k, userPrefix) {
				k = strings.TrimPrefix(k, userPrefix)
			} else if strings.HasPrefix(k, reserved) {
				continue // a field of a later version
			}
			if e.Headers == nil {
				e.Headers = make(map[string]string)
			}
			e.Headers[k] = v
		}
	}
	if e.Timestamp.IsZero() && !r.Timestamp.IsZero() {
		e.Timestamp = time.UnixMilli(r.Timestamp.UnixMilli())
	}
	if e.ID == "" {
		return e, fmt.Errorf("no %s header", hdrID)
	}
	if err := e.Validate(); err != nil {
		return e, err
	}
	return e, nil
}

// decodeDead returns the dead letter r carries. A record that is not a
// valid envelope still comes back, with what could be read and the
// reason saying what was wrong.
func decodeDead(r *kgo.Record) broker.DeadLetter {
	e, err := decode(r)
	d := broker.DeadLetter{Envelope: e}
	d.Topic, _ = header(r, hdrDLQTopic)
	d.Reason, _ = header(r, hdrDLQReason)
	if at, ok := header(r, hdrDLQAt); ok {
		if ms, perr := strconv.ParseInt(at, 10, 64); perr == nil {
			d.At = time.UnixMilli(ms)
		}
	}
	if d.At.IsZero() {
		d.At = r.Timestamp
	}
	if err != nil {
		d.Reason = strings.TrimSpace(d.Reason + " (novakafka: the dead letter is not a valid envelope: " + err.Error() + ")")
	}
	return d
}
