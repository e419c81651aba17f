// Package validate holds the checks that every backend runs on its input
// before any I/O: the arguments of Append, a retried event, a bad Config
// field. They live here, not in package nova, because
// applications never call them: nova's exported API lists what an
// application calls, and the backends of this module share these helpers
// as database/sql drivers share database/sql/driver. Every error they
// return is an [*nova.InvalidError] matching [nova.ErrInvalid].
package validate

import (
	"bytes"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/uuidx"
)

// maxMetaLen bounds each metadata string, in bytes.
const maxMetaLen = 4096

// InvalidFieldf is [nova.Invalidf] for a bad field or option, which the
// message names after the package: InvalidFieldf("novapg",
// "Config.PageSize", "negative size %d", -1) says
// "novapg: Config.PageSize: negative size -1".
func InvalidFieldf(pkg, field, format string, args ...any) error {
	e := nova.Invalidf(pkg, format, args...).(*nova.InvalidError)
	e.Field = field
	return e
}

// invalidf returns package nova's error for bad input: the checks here
// are nova's rules, whichever backend runs them.
func invalidf(format string, args ...any) error { return nova.Invalidf("nova", format, args...) }

// SameContent reports whether a recorded event carries the content of d:
// the same ID, type, data and metadata. Stores use it to tell an idempotent
// retry from a reused ID.
//
// The W3C trace-context keys of the metadata's Extra ("traceparent" and
// "tracestate", which package telemetry adds on append) are not content:
// a retry made under another trace, as a retry after a crash is, is still
// the same append.
func SameContent(e nova.Event, d nova.EventData) bool {
	return e.ID == d.ID && e.Type == d.Type && bytes.Equal(e.Data, d.Data) &&
		e.Metadata.CorrelationID == d.Metadata.CorrelationID &&
		e.Metadata.CausationID == d.Metadata.CausationID &&
		e.Metadata.SchemaVersion() == d.Metadata.SchemaVersion() &&
		sameExtra(e.Metadata.Extra, d.Metadata.Extra)
}

// sameExtra reports whether a and b hold the same keys, the trace-context
// keys aside.
func sameExtra(a, b map[string]string) bool {
	n := 0
	for k, v := range a {
		if isTraceKey(k) {
			continue
		}
		if w, ok := b[k]; !ok || w != v {
			return false
		}
		n++
	}
	for k := range b {
		if !isTraceKey(k) {
			n--
		}
	}
	return n == 0
}

// isTraceKey reports whether key is a W3C trace-context key.
func isTraceKey(key string) bool { return key == "traceparent" || key == "tracestate" }

// Append checks everything Append receives and returns the events
// to write: a copy in which every empty ID is replaced by a fresh one
// ([nova.NewEventID]) and every given ID is in canonical lower case. The
// caller's slice is not modified. Errors match
// [nova.ErrInvalid] and name the offending event by its index.
func Append(stream string, events []nova.EventData) ([]nova.EventData, error) {
	if err := nova.ValidateStream(stream); err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return nil, invalidf("append to stream %q has no events", stream)
	}
	if len(events) > nova.MaxBatch {
		return nil, invalidf("append of %d events is larger than the limit of %d", len(events), nova.MaxBatch)
	}
	out := make([]nova.EventData, len(events))
	seen := make(map[string]struct{}, len(events))
	for i, e := range events {
		if e.ID == "" {
			e.ID = nova.NewEventID()
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
// [nova.MaxTypeLen] bytes, valid UTF-8 and free of control characters
// (C0, DEL and C1). It is the rule nova.Register applies to type names;
// a test holds the two together.
func validateType(typ string) error {
	switch {
	case typ == "":
		return invalidf("empty event type")
	case len(typ) > nova.MaxTypeLen:
		return invalidf("type of %d bytes is longer than the limit of %d", len(typ), nova.MaxTypeLen)
	case !utf8.ValidString(typ):
		return invalidf("type %q is not valid UTF-8", typ)
	case hasControl(typ):
		return invalidf("type %q contains a control character", typ)
	}
	return nil
}

func validateEvent(i int, e nova.EventData) error {
	if err := validateType(e.Type); err != nil {
		return invalidf("event %d: %v", i, err)
	}
	switch {
	case len(e.Data) > nova.MaxDataLen:
		return invalidf("event %d: data of %d bytes is larger than the limit of %d", i, len(e.Data), nova.MaxDataLen)
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
	if n := e.Metadata.Size(); n > nova.MaxMetadataLen {
		return invalidf("event %d: metadata of %d bytes (as JSON) is larger than the limit of %d", i, n, nova.MaxMetadataLen)
	}
	if n := e.Size(); n > nova.MaxEventLen {
		return invalidf("event %d: event of %d bytes (type, data and metadata as JSON) is larger than the limit of %d", i, n, nova.MaxEventLen)
	}
	return nil
}

func validateMetaString(what, s string) error {
	switch {
	case len(s) > maxMetaLen:
		return invalidf("%s of %d bytes is longer than the limit of %d", what, len(s), maxMetaLen)
	case !utf8.ValidString(s):
		return invalidf("%s %q is not valid UTF-8", what, s)
	case strings.IndexByte(s, 0) >= 0:
		return invalidf("%s %q contains a NUL byte", what, s)
	}
	return nil
}

// hasControl reports whether s holds a control character: C0 (U+0000 to
// U+001F), DEL or C1 (U+0080 to U+009F).
func hasControl(s string) bool {
	return strings.IndexFunc(s, unicode.IsControl) >= 0
}
