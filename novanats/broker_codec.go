package novanats

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
)

// subjects maps a namespace's topics to subjects and back: envelopes of
// topic T are stored on "<ns>.t.T", dead letters kept under T on
// "<ns>.d.T". Topics are NATS subjects already (dot-separated tokens
// without white space; '*' and '>' only in patterns), so a pattern is a
// filter subject as it is.
type subjects struct{ ns string }

func (s subjects) envelopes() string   { return s.ns + ".t.>" }
func (s subjects) deadLetters() string { return s.ns + ".d.>" }

// topic returns the subject of topic or pattern p.
func (s subjects) topic(p string) string { return s.ns + ".t." + p }

// deadLetter returns the subject of topic's dead letters.
func (s subjects) deadLetter(topic string) string { return s.ns + ".d." + topic }

// topicOf returns the topic of an envelope's subject.
func (s subjects) topicOf(subj string) (string, bool) {
	return strings.CutPrefix(subj, s.ns+".t.")
}

// consumerName returns the name of a consumer of the kind prefix ("poll",
// "dlq", "group") for key (a topic or a group's name). It is injective:
// letters a–z, digits and '-' stay, every other byte becomes '_' and two
// lower-case hex digits, and a key whose escaped form would be longer
// than 200 bytes is named by "H" and the SHA-256 of the key (the escaping
// never yields upper case, so the two forms cannot meet). The result
// holds none of the characters JetStream refuses in a name ('.', '*',
// '>', '/', '\', white space) and fits the server's limit of 255 bytes.
func consumerName(prefix, key string) string {
	var sb strings.Builder
	sb.WriteString(prefix)
	sb.WriteByte('_')
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' {
			sb.WriteByte(c)
			continue
		}
		fmt.Fprintf(&sb, "_%02x", c)
	}
	if sb.Len()-len(prefix)-1 <= 200 {
		return sb.String()
	}
	sum := sha256.Sum256([]byte(key))
	return prefix + "_H" + hex.EncodeToString(sum[:])
}

// Headers of a broker message. The body is the envelope's payload.
const (
	hdrEnvType     = "Nova-Event-Type" // the event type, always present
	hdrEnvKey      = "Nova-Key"        // the key, when set
	hdrEnvHeaders  = "Nova-Headers"    // the envelope's headers as a JSON object, when any
	hdrEnvAttempts = "Nova-Attempts"   // the envelope's Attempts when published, when not 0
	hdrEnvTime     = "Nova-Time"       // the timestamp, milliseconds since the Unix epoch
	// Dead letters carry the envelope's ID in Nova-Id (not Nats-Msg-Id:
	// they are not deduplicated), its topic in Nova-Topic, the reason in
	// Nova-Reason and Nova-Attempts the failed deliveries.
	hdrDLID     = "Nova-Id"
	hdrDLTopic  = "Nova-Topic"
	hdrDLReason = "Nova-Reason"
)

// maxReasonLen bounds a dead letter's reason, in bytes, as
// broker.Memory does.
const maxReasonLen = 4096

// envelopeHeader returns the headers that carry e's fields other than
// its payload and topic. idKey is Nats-Msg-Id for a published envelope
// and Nova-Id for a dead letter.
func envelopeHeader(e broker.Envelope, idKey string, now time.Time) nats.Header {
	h := make(nats.Header, 6)
	h[idKey] = []string{headerValue(e.ID)}
	h[hdrEnvType] = []string{headerValue(e.EventType)}
	if e.Key != "" {
		h[hdrEnvKey] = []string{headerValue(e.Key)}
	}
	if len(e.Headers) > 0 {
		b, _ := json.Marshal(e.Headers) // a map of strings always encodes
		h[hdrEnvHeaders] = []string{headerValue(string(b))}
	}
	if e.Attempts != 0 {
		h[hdrEnvAttempts] = []string{strconv.Itoa(e.Attempts)}
	}
	ts := e.Timestamp
	if ts.IsZero() {
		ts = now
	}
	h[hdrEnvTime] = []string{strconv.FormatInt(ts.UnixMilli(), 10)}
	return h
}

// headerLen returns the size of h on the wire: "NATS/1.0\r\n", a
// "key: value\r\n" line per value and a blank line.
func headerLen(h nats.Header) int {
	n := len("NATS/1.0\r\n") + 2
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + 2 + len(v) + 2
		}
	}
	return n
}

// checkSize refuses a message the server would refuse: its headers and
// body larger than the connection's max_payload, or its headers larger
// than JetStream stores.
func checkSize(what string, h nats.Header, body []byte, maxPayload int64) error {
	hl := headerLen(h)
	switch {
	case hl > maxHeaderLen:
		return invalidf("%s: headers of %d bytes are more than the %d JetStream stores with a message", what, hl, maxHeaderLen)
	case int64(hl+len(body)) > maxPayload:
		return invalidf("%s: %d bytes of payload and %d of headers are more than the server's max_payload of %d bytes (raise max_payload in the server's configuration, up to 64 MB)",
			what, len(body), hl, maxPayload)
	}
	return nil
}

// invalidf returns this package's error for bad input.
func invalidf(format string, args ...any) error {
	return nova.Invalidf("novanats", format, args...)
}

// decodeEnvelope reads the envelope a message on topic carries, checking
// it as Publish checked it.
func decodeEnvelope(topic string, h nats.Header, body []byte, idKey string) (broker.Envelope, error) {
	var e broker.Envelope
	var err error
	if e.ID, err = headerField(h, idKey, true); err != nil {
		return e, err
	}
	if e.EventType, err = headerField(h, hdrEnvType, false); err != nil {
		return e, err
	}
	if e.Key, err = headerField(h, hdrEnvKey, false); err != nil {
		return e, err
	}
	e.Topic = topic
	e.Payload = body
	if raw, err := headerField(h, hdrEnvHeaders, false); err != nil {
		return e, err
	} else if raw != "" {
		if err := json.Unmarshal([]byte(raw), &e.Headers); err != nil {
			return e, fmt.Errorf("header %s: %v", hdrEnvHeaders, err)
		}
	}
	if v := h.Get(hdrEnvAttempts); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return e, fmt.Errorf("header %s %q is not a count", hdrEnvAttempts, v)
		}
		e.Attempts = n
	}
	v := h.Get(hdrEnvTime)
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return e, fmt.Errorf("header %s %q is not a time", hdrEnvTime, v)
	}
	e.Timestamp = time.UnixMilli(ms)
	if err := e.Validate(); err != nil {
		return e, err
	}
	return e, nil
}

// headerField reads and unquotes header k.
func headerField(h nats.Header, k string, required bool) (string, error) {
	v := h.Get(k)
	if v == "" {
		if required {
			return "", fmt.Errorf("no header %s", k)
		}
		return "", nil
	}
	s, err := fromHeaderValue(v)
	if err != nil {
		return "", fmt.Errorf("header %s %q: %v", k, v, err)
	}
	return s, nil
}

// deadLetterMsg builds the message keeping e under topic with reason and
// attempts (the failed deliveries; e.Attempts when published by hand).
func (s subjects) deadLetterMsg(topic string, e broker.Envelope, reason string, now time.Time) *nats.Msg {
	h := envelopeHeader(e, hdrDLID, now)
	h[hdrDLTopic] = []string{e.Topic}
	h[hdrDLReason] = []string{headerValue(reason)}
	return &nats.Msg{Subject: s.deadLetter(topic), Header: h, Data: e.Payload}
}

// rawDeadLetterMsg builds the dead letter of a message on an envelope
// subject that carries no valid envelope: its body as it was, the
// headers that could be read, and why. It is kept under the message's
// topic, or under "invalid" when the subject is not a valid topic.
func (s subjects) rawDeadLetterMsg(m *nats.Msg, reason string) *nats.Msg {
	topic, ok := s.topicOf(m.Subject)
	if !ok || broker.ValidateTopic(topic) != nil {
		topic = "invalid"
	}
	h := make(nats.Header, len(m.Header)+3)
	for k, vs := range m.Header {
		switch {
		case k == hdrMsgID:
			h[hdrDLID] = vs
		case strings.HasPrefix(k, "Nats-"), k == hdrDLTopic, k == hdrDLReason:
		default:
			h[k] = vs
		}
	}
	h[hdrDLTopic] = []string{topic}
	h[hdrDLReason] = []string{headerValue(reason)}
	return &nats.Msg{Subject: s.deadLetter(topic), Header: h, Data: m.Data}
}

// decodeDeadLetter reads a dead letter. It never fails: a field it
// cannot read stays empty, and a body that is not JSON becomes a JSON
// string, so every dead letter can be read back and looked at.
func decodeDeadLetter(topic string, h nats.Header, body []byte, at time.Time) broker.DeadLetter {
	d := broker.DeadLetter{Topic: topic, At: at}
	e := &d.Envelope
	e.ID, _ = headerField(h, hdrDLID, false)
	e.EventType, _ = headerField(h, hdrEnvType, false)
	e.Key, _ = headerField(h, hdrEnvKey, false)
	e.Topic = h.Get(hdrDLTopic)
	if raw, _ := headerField(h, hdrEnvHeaders, false); raw != "" {
		_ = json.Unmarshal([]byte(raw), &e.Headers)
	}
	e.Attempts, _ = strconv.Atoi(h.Get(hdrEnvAttempts))
	if ms, err := strconv.ParseInt(h.Get(hdrEnvTime), 10, 64); err == nil {
		e.Timestamp = time.UnixMilli(ms)
	}
	d.Reason, _ = headerField(h, hdrDLReason, false)
	if json.Valid(body) {
		e.Payload = body
	} else {
		e.Payload, _ = json.Marshal(string(body))
	}
	return d
}

// validReason checks a dead letter's reason as broker.Memory does.
func validReason(id, reason string) error {
	switch {
	case reason == "":
		return invalidf("dead letter %q: empty reason", id)
	case len(reason) > maxReasonLen:
		return invalidf("dead letter %q: reason of %d bytes is longer than the limit of %d", id, len(reason), maxReasonLen)
	case !utf8.ValidString(reason):
		return invalidf("dead letter %q: reason %q is not valid UTF-8", id, reason)
	case strings.IndexByte(reason, 0) >= 0:
		return invalidf("dead letter %q: reason %q contains a NUL byte", id, reason)
	}
	return nil
}

// truncateReason shortens a handler's error to at most n bytes, on a
// UTF-8 boundary.
func truncateReason(s string, n int) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// fitReason sets the reason of dead letter m: reason, shortened to
// [maxReasonLen] bytes and further when the message would otherwise be
// larger than the server takes (an envelope near max_payload, which is
// still kept, with what of the reason fits).
func fitReason(m *nats.Msg, reason string, maxPayload int64) {
	m.Header[hdrDLReason] = []string{""}
	room := int(maxPayload) - headerLen(m.Header) - len(m.Data)
	room = min(room, maxHeaderLen-headerLen(m.Header))
	// headerValue may quote and escape: up to 10 bytes per byte.
	r := truncateReason(reason, maxReasonLen)
	for len(r) > 0 && len(headerValue(r)) > room {
		r = truncateReason(r, min(len(r)-1, max(room/10, len(r)/2)))
	}
	m.Header[hdrDLReason] = []string{headerValue(r)}
}
