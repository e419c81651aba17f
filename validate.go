package nova

import (
	"strings"
	"unicode"
	"unicode/utf8"
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

// hasControl reports whether s holds a control character: C0 (U+0000 to
// U+001F), DEL or C1 (U+0080 to U+009F).
func hasControl(s string) bool {
	return strings.IndexFunc(s, unicode.IsControl) >= 0
}
