package nova

import (
	"context"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nova-go/nova/internal/uuidx"
)

// Limits every store enforces, before any I/O, so data written through one
// backend can be moved to any other.
const (
	// MaxStreamLen is the longest stream ID, in bytes.
	MaxStreamLen = 256
	// MaxTypeLen is the longest event type name, in bytes.
	MaxTypeLen = 256
	// MaxEventLen is the largest event, in bytes: its type, its data and
	// its metadata as stores write it, together ([EventData.Size]). Every
	// backend holds an event of this size on its server's default
	// settings, except NATS JetStream, whose default max_payload (1 MiB)
	// is smaller: novanats refuses a larger event before sending it,
	// naming the setting to raise.
	MaxEventLen = 8 << 20
	// MaxDataLen is the largest payload, in bytes: of an event, where its
	// type and metadata count too (see [MaxEventLen]), and of the other
	// payloads Nova stores (snapshots, broker envelopes, projections).
	MaxDataLen = 8 << 20
	// MaxMetadataLen is the largest metadata of an event, in bytes, as
	// stores write it: its JSON encoding ([Metadata.Size]). Each of its
	// strings (correlation and causation IDs, free keys and values) is
	// also at most 4096 bytes. The bound keeps metadata within what every
	// backend holds beside the data (JetStream stores at most 64 KiB of
	// headers in a message).
	MaxMetadataLen = 32 << 10
	// MaxBatch is the most events one Append may carry.
	MaxBatch = 10_000
	// maxMetaLen bounds each metadata string, in bytes.
	maxMetaLen = 4096
)

// ValidateStream checks a stream ID: non-empty, at most [MaxStreamLen]
// bytes, valid UTF-8 and free of control characters (C0, DEL and C1).
func ValidateStream(stream string) error {
	switch {
	case stream == "":
		return invalidf("empty stream ID")
	case len(stream) > MaxStreamLen:
		return invalidf("stream ID of %d bytes is longer than the limit of %d", len(stream), MaxStreamLen)
	case !utf8.ValidString(stream):
		return invalidf("stream ID %q is not valid UTF-8", stream)
	case hasControl(stream):
		return invalidf("stream ID %q contains a control character", stream)
	}
	return nil
}

// ValidateContext reports a nil context as an error matching [ErrInvalid].
func ValidateContext(ctx context.Context) error {
	if ctx == nil {
		return invalidf("nil context")
	}
	return nil
}

// ValidateAppend checks everything Append receives and returns the events
// to write: a copy in which every empty ID is replaced by a fresh one
// ([NewEventID]) and every given ID is in canonical lower case. The
// caller's slice is not modified. Errors match
// [ErrInvalid] and name the offending event by its index.
func ValidateAppend(ctx context.Context, stream string, events []EventData) ([]EventData, error) {
	if err := ValidateContext(ctx); err != nil {
		return nil, err
	}
	if err := ValidateStream(stream); err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return nil, invalidf("append to stream %q has no events", stream)
	}
	if len(events) > MaxBatch {
		return nil, invalidf("append of %d events is larger than the limit of %d", len(events), MaxBatch)
	}
	out := make([]EventData, len(events))
	seen := make(map[string]struct{}, len(events))
	for i, e := range events {
		if e.ID == "" {
			e.ID = NewEventID()
		} else if !uuidx.Valid(e.ID) {
			return nil, invalidf("event %d: ID %q is not a UUID", i, e.ID)
		} else {
			// One UUID has one spelling: backends that store IDs as text
			// and those with a UUID column must agree on what is a
			// duplicate.
			e.ID = strings.ToLower(e.ID)
		}
		if _, dup := seen[e.ID]; dup {
			return nil, invalidf("event %d: ID %s appears twice in one append", i, e.ID)
		}
		seen[e.ID] = struct{}{}
		if err := validateEvent(i, e); err != nil {
			return nil, err
		}
		out[i] = e
	}
	return out, nil
}

// validateType checks an event type name: non-empty, at most
// [MaxTypeLen] bytes, valid UTF-8 and free of control characters (C0, DEL
// and C1).
func validateType(typ string) error {
	switch {
	case typ == "":
		return invalidf("empty event type")
	case len(typ) > MaxTypeLen:
		return invalidf("type of %d bytes is longer than the limit of %d", len(typ), MaxTypeLen)
	case !utf8.ValidString(typ):
		return invalidf("type %q is not valid UTF-8", typ)
	case hasControl(typ):
		return invalidf("type %q contains a control character", typ)
	}
	return nil
}

func validateEvent(i int, e EventData) error {
	if err := validateType(e.Type); err != nil {
		return invalidf("event %d: %v", i, err)
	}
	switch {
	case len(e.Data) > MaxDataLen:
		return invalidf("event %d: data of %d bytes is larger than the limit of %d", i, len(e.Data), MaxDataLen)
	case e.Metadata.Schema < 0:
		return invalidf("event %d: negative schema version %d", i, e.Metadata.Schema)
	}
	if err := validateMetaString("correlation ID", e.Metadata.CorrelationID); err != nil {
		return invalidf("event %d: %v", i, err)
	}
	if err := validateMetaString("causation ID", e.Metadata.CausationID); err != nil {
		return invalidf("event %d: %v", i, err)
	}
	for k, v := range e.Metadata.Extra {
		if k == "" {
			return invalidf("event %d: empty metadata key", i)
		}
		if err := validateMetaString("metadata key", k); err != nil {
			return invalidf("event %d: %v", i, err)
		}
		if err := validateMetaString("metadata value of "+k, v); err != nil {
			return invalidf("event %d: %v", i, err)
		}
	}
	if n := e.Metadata.Size(); n > MaxMetadataLen {
		return invalidf("event %d: metadata of %d bytes (as JSON) is larger than the limit of %d", i, n, MaxMetadataLen)
	}
	if n := e.Size(); n > MaxEventLen {
		return invalidf("event %d: event of %d bytes (type, data and metadata as JSON) is larger than the limit of %d", i, n, MaxEventLen)
	}
	return nil
}

func validateMetaString(what, s string) error {
	switch {
	case len(s) > maxMetaLen:
		return invalidf("%s of %d bytes is longer than the limit of %d", what, len(s), maxMetaLen)
	case !utf8.ValidString(s):
		return invalidf("%s %q is not valid UTF-8", what, s)
	case hasNUL(s):
		return invalidf("%s %q contains a NUL byte", what, s)
	}
	return nil
}

// hasControl reports whether s holds a control character: C0 (U+0000 to
// U+001F), DEL or C1 (U+0080 to U+009F).
func hasControl(s string) bool {
	return strings.IndexFunc(s, unicode.IsControl) >= 0
}

func hasNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}
