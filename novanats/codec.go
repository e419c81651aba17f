package novanats

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/nova-go/nova"
)

// Headers of an event message. The body is the event's data as appended.
const (
	hdrMsgID   = "Nats-Msg-Id"                         // the event ID; the server drops repeats inside its window
	hdrExpSubj = "Nats-Expected-Last-Subject-Sequence" // the version check
	hdrType    = "Nova-Type"                           // the event type
	hdrVersion = "Nova-Version"                        // the event's version in its stream
	hdrMeta    = "Nova-Meta"                           // metadata as JSON, absent when empty
	// hdrBatchLast is on every message of a batch but its last: the
	// batch's last version. A read that ends on such a message has cut a
	// batch and reads on to its end.
	hdrBatchLast = "Nova-Batch-Last"

	hdrBatchID     = "Nats-Batch-Id"
	hdrBatchSeq    = "Nats-Batch-Sequence"
	hdrBatchCommit = "Nats-Batch-Commit"
)

// headerValue returns s as a header value that reads back unchanged: the
// wire format trims surrounding white space and ends a value at a line
// break, so a value that is not plain printable ASCII, or that starts or
// ends with a space or starts with a quote, is stored as a quoted Go
// string literal.
func headerValue(s string) string {
	plain := s != "" && s[0] != ' ' && s[0] != '"' && s[len(s)-1] != ' '
	for i := 0; plain && i < len(s); i++ {
		plain = s[i] >= 0x20 && s[i] < 0x7f
	}
	if plain {
		return s
	}
	return strconv.QuoteToASCII(s)
}

// fromHeaderValue reverses headerValue.
func fromHeaderValue(v string) (string, error) {
	if len(v) > 0 && v[0] == '"' {
		return strconv.Unquote(v)
	}
	return v, nil
}

// encodeMsg builds the message of event d at version v on subj.
func encodeMsg(subj string, d nova.EventData, v uint64) (*nats.Msg, error) {
	h := make(nats.Header, 6)
	h[hdrMsgID] = []string{d.ID}
	h[hdrType] = []string{headerValue(d.Type)}
	h[hdrVersion] = []string{strconv.FormatUint(v, 10)}
	if !d.Metadata.Equal(nova.Metadata{}) || d.Metadata.Schema != 0 {
		b, err := json.Marshal(d.Metadata)
		if err != nil {
			return nil, fmt.Errorf("novanats: encode metadata: %w", err)
		}
		h[hdrMeta] = []string{string(b)}
	}
	return &nats.Msg{Subject: subj, Header: h, Data: d.Data}, nil
}

// decodeEvent turns a stored message back into the event it records.
func decodeEvent(prefix, subj string, seq uint64, h nats.Header, data []byte, at time.Time) (nova.Event, error) {
	stream, ok := streamOf(prefix, subj)
	if !ok {
		return nova.Event{}, fmt.Errorf("novanats: message %d: subject %q does not encode a stream ID", seq, subj)
	}
	v, err := strconv.ParseUint(h.Get(hdrVersion), 10, 64)
	if err != nil || v == 0 {
		return nova.Event{}, fmt.Errorf("novanats: message %d: bad %s header %q", seq, hdrVersion, h.Get(hdrVersion))
	}
	typ, err := fromHeaderValue(h.Get(hdrType))
	if err != nil || typ == "" {
		return nova.Event{}, fmt.Errorf("novanats: message %d: bad %s header %q", seq, hdrType, h.Get(hdrType))
	}
	e := nova.Event{
		ID:         h.Get(hdrMsgID),
		Stream:     stream,
		Type:       typ,
		Version:    v,
		Position:   nova.Position{Commit: seq},
		Data:       data,
		RecordedAt: at.UTC(),
	}
	if m := h.Get(hdrMeta); m != "" {
		if err := json.Unmarshal([]byte(m), &e.Metadata); err != nil {
			return nova.Event{}, fmt.Errorf("novanats: message %d: bad %s header: %w", seq, hdrMeta, err)
		}
	}
	return e, nil
}

// versionOf reads the version header of a stored message.
func versionOf(seq uint64, h nats.Header) (uint64, error) {
	v, err := strconv.ParseUint(h.Get(hdrVersion), 10, 64)
	if err != nil || v == 0 {
		return 0, fmt.Errorf("novanats: message %d: bad %s header %q", seq, hdrVersion, h.Get(hdrVersion))
	}
	return v, nil
}

// midBatch reports whether a message is part of a batch whose later
// messages follow it.
func midBatch(h nats.Header) bool { return h.Get(hdrBatchLast) != "" }
