package novanats

import (
	"encoding/base64"
	"strings"
	"unicode/utf8"
)

// Subject mapping. A stream ID becomes one subject token by base64url
// without padding (RFC 4648 §5): its alphabet, A–Z a–z 0–9 '-' '_', holds
// no '.', '*', '>', space or control character, so every valid stream ID,
// whatever it contains, maps to exactly one token and back. Streams whose
// IDs differ only in case stay distinct, and a wildcard inside an ID is
// just bytes.

// encodeStream returns the subject token of a stream ID.
func encodeStream(stream string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(stream))
}

// decodeStream returns the stream ID a subject token encodes, and false
// for a token no stream ID maps to.
func decodeStream(token string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) == 0 || !utf8.Valid(b) {
		return "", false
	}
	return string(b), true
}

// subject returns the subject of stream under prefix.
func subject(prefix, stream string) string {
	return prefix + "." + encodeStream(stream)
}

// streamOf returns the stream ID of a subject under prefix.
func streamOf(prefix, subj string) (string, bool) {
	tok, ok := strings.CutPrefix(subj, prefix+".")
	if !ok || strings.IndexByte(tok, '.') >= 0 {
		return "", false
	}
	return decodeStream(tok)
}
