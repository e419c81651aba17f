package nova

import (
	"crypto/rand"
	"encoding/binary"
	"maps"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/nova-go/nova/internal/uuidx"
)

// EventData is an event as the caller appends it.
type EventData struct {
	// ID identifies the event across the whole store. It must be a UUID in
	// canonical 8-4-4-4-12 form; upper-case hex digits are stored in lower
	// case. When empty, Append assigns a fresh one; such an append
	// cannot be retried safely, so callers that retry should set it (see
	// [NewEventID]).
	ID string
	// Type names the event, for example "order.placed". Required.
	Type string
	// Data is the payload, JSON by default. It may be empty.
	Data []byte
	// Metadata travels with the event: correlation, causation and free keys.
	Metadata Metadata
}

// Size returns the bytes d counts against [MaxEventLen]: its type, its
// data and its metadata as stores write it ([Metadata.Size]). Its ID,
// which has a fixed size, is not counted.
func (d EventData) Size() int {
	return len(d.Type) + len(d.Data) + d.Metadata.Size()
}

// Event is an event as the store recorded it.
type Event struct {
	// ID is the event's unique ID (a UUID).
	ID string
	// Stream is the stream the event belongs to.
	Stream string
	// Type names the event.
	Type string
	// Version is the event's 1-based place in its stream.
	Version uint64
	// Position is the event's place in the global log.
	Position Position
	// Data is the payload as appended.
	Data []byte
	// Metadata is the metadata as appended.
	Metadata Metadata
	// RecordedAt is when the store recorded the event (UTC).
	RecordedAt time.Time
}

// Metadata is what travels beside an event's data.
type Metadata struct {
	// CorrelationID ties together every message caused, directly or not, by
	// one original request.
	CorrelationID string `json:"correlation_id,omitempty"`
	// CausationID is the ID of the message (command or event) that directly
	// caused this event.
	CausationID string `json:"causation_id,omitempty"`
	// Schema is the version of the data's shape, used by upcasters. Zero
	// means 1.
	Schema int `json:"schema,omitempty"`
	// Extra holds free keys.
	Extra map[string]string `json:"extra,omitempty"`
}

// Size returns the bytes m takes as stores write it, which is what counts
// against [MaxMetadataLen]: the length of its JSON encoding (as
// encoding/json writes a Metadata, so a quote, a backslash, a control
// character, '<', '>', '&', U+2028 or U+2029 counts as its escape), 0 when
// nothing is set.
func (m Metadata) Size() int {
	n, fields := 0, 0
	if m.CorrelationID != "" {
		n += len(`"correlation_id":`) + jsonStringLen(m.CorrelationID)
		fields++
	}
	if m.CausationID != "" {
		n += len(`"causation_id":`) + jsonStringLen(m.CausationID)
		fields++
	}
	if m.Schema != 0 {
		n += len(`"schema":`) + len(strconv.Itoa(m.Schema))
		fields++
	}
	if len(m.Extra) > 0 {
		n += len(`"extra":{}`) + len(m.Extra) - 1 // braces, commas
		for k, v := range m.Extra {
			n += jsonStringLen(k) + 1 + jsonStringLen(v)
		}
		fields++
	}
	if fields == 0 {
		return 0
	}
	return n + 2 + fields - 1 // braces, commas
}

// jsonStringLen returns the length of s as encoding/json writes it, with
// its quotes and HTML-safe escapes.
func jsonStringLen(s string) int {
	n := 2
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			switch {
			case b == '"' || b == '\\' || b == '\b' || b == '\f' || b == '\n' || b == '\r' || b == '\t':
				n += 2
			case b < 0x20 || b == '<' || b == '>' || b == '&':
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1, r == '\u2028', r == '\u2029':
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n
}

// SchemaVersion returns the shape version of the data, 1 when unset.
func (m Metadata) SchemaVersion() int {
	if m.Schema <= 0 {
		return 1
	}
	return m.Schema
}

// Equal reports whether two metadata values are the same, treating a nil
// and an empty Extra map alike and an unset Schema as 1.
func (m Metadata) Equal(o Metadata) bool {
	return m.CorrelationID == o.CorrelationID &&
		m.CausationID == o.CausationID &&
		m.SchemaVersion() == o.SchemaVersion() &&
		maps.Equal(m.Extra, o.Extra)
}

// NewEventID returns a fresh, time-ordered UUID (version 7) in canonical
// form. Time order keeps the stores' ID indexes compact.
func NewEventID() string {
	var u [16]byte
	ms := uint64(time.Now().UnixMilli())
	binary.BigEndian.PutUint64(u[:8], ms<<16)
	_, _ = rand.Read(u[6:]) // never fails on supported platforms
	u[6] = (u[6] & 0x0f) | 0x70
	u[8] = (u[8] & 0x3f) | 0x80
	return uuidx.Format(u)
}
