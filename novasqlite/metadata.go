package novasqlite

import (
	"encoding/json"
	"maps"
	"slices"

	"github.com/nova-go/nova"
)

// Metadata is stored as JSON text with the field names of nova.Metadata's
// JSON tags, and as NULL when it carries nothing, which is the common case
// and costs no encoding at all.

func metadataEmpty(m nova.Metadata) bool {
	return m.CorrelationID == "" && m.CausationID == "" && m.Schema == 0 && len(m.Extra) == 0
}

// appendMetadata appends m as a JSON object to b.
func appendMetadata(b []byte, m nova.Metadata) []byte {
	b = append(b, '{')
	sep := false
	field := func(name string) {
		if sep {
			b = append(b, ',')
		}
		sep = true
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"', ':')
	}
	if m.CorrelationID != "" {
		field("correlation_id")
		b = appendJSONString(b, m.CorrelationID)
	}
	if m.CausationID != "" {
		field("causation_id")
		b = appendJSONString(b, m.CausationID)
	}
	if m.Schema != 0 {
		field("schema")
		b = appendInt(b, int64(m.Schema))
	}
	if len(m.Extra) > 0 {
		field("extra")
		b = append(b, '{')
		for i, k := range slices.Sorted(maps.Keys(m.Extra)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, m.Extra[k])
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

func appendInt(b []byte, v int64) []byte {
	if v < 0 {
		b = append(b, '-')
		v = -v
	}
	var d [20]byte
	i := len(d)
	for {
		i--
		d[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(b, d[i:]...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s, valid UTF-8, as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// decodeMetadata reads metadata stored by appendMetadata (or by any tool
// writing the same JSON shape).
func decodeMetadata(raw []byte) (nova.Metadata, error) {
	var m nova.Metadata
	if len(raw) == 0 {
		return m, nil
	}
	err := json.Unmarshal(raw, &m)
	return m, err
}
