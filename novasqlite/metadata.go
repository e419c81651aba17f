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

// decodeMetadata reads metadata stored by appendMetadata, or by any tool
// writing the same JSON shape: a fast path reads what appendMetadata
// writes, anything else goes through encoding/json. strs, when not nil,
// returns a string for bytes, so that equal IDs repeated from one event to
// the next can share one string.
func decodeMetadata(raw []byte, strs func([]byte) string) (nova.Metadata, error) {
	var m nova.Metadata
	if len(raw) == 0 {
		return m, nil
	}
	if strs == nil {
		strs = func(b []byte) string { return string(b) }
	}
	if fastMetadata(raw, &m, strs) {
		return m, nil
	}
	m = nova.Metadata{}
	err := json.Unmarshal(raw, &m)
	return m, err
}

// fastMetadata parses the compact JSON appendMetadata writes, reporting
// false for anything else (whitespace, escapes, unknown keys, duplicate
// keys), which the caller then hands to encoding/json.
func fastMetadata(b []byte, m *nova.Metadata, strs func([]byte) string) bool {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return false
	}
	b = b[1 : len(b)-1]
	var seen uint8
	for len(b) > 0 {
		key, rest, ok := plainString(b)
		if !ok || len(rest) == 0 || rest[0] != ':' {
			return false
		}
		b = rest[1:]
		var bit uint8
		switch string(key) {
		case "correlation_id", "causation_id":
			v, rest, ok := plainString(b)
			if !ok {
				return false
			}
			if key[1] == 'o' {
				bit, m.CorrelationID = 1, strs(v)
			} else {
				bit, m.CausationID = 2, strs(v)
			}
			b = rest
		case "schema":
			n, i := 0, 0
			for i < len(b) && b[i] >= '0' && b[i] <= '9' && i < 9 {
				n = n*10 + int(b[i]-'0')
				i++
			}
			if i == 0 || (i < len(b) && b[i] >= '0' && b[i] <= '9') {
				return false
			}
			bit, m.Schema, b = 4, n, b[i:]
		case "extra":
			if len(b) == 0 || b[0] != '{' {
				return false
			}
			b = b[1:]
			m.Extra = make(map[string]string)
			for len(b) > 0 && b[0] != '}' {
				k, rest, ok := plainString(b)
				if !ok || len(rest) == 0 || rest[0] != ':' {
					return false
				}
				v, rest, ok := plainString(rest[1:])
				if !ok {
					return false
				}
				m.Extra[string(k)] = string(v)
				b = rest
				if len(b) > 0 && b[0] == ',' {
					b = b[1:]
					if len(b) > 0 && b[0] == '}' {
						return false
					}
				}
			}
			if len(b) == 0 {
				return false
			}
			bit, b = 8, b[1:]
		default:
			return false
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		if len(b) > 0 {
			if b[0] != ',' || len(b) == 1 {
				return false
			}
			b = b[1:]
		}
	}
	return true
}

// plainString reads a JSON string without escapes or control characters
// at the start of b, returning its contents and the rest of b.
func plainString(b []byte) (s, rest []byte, ok bool) {
	if len(b) == 0 || b[0] != '"' {
		return nil, nil, false
	}
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return b[1:i], b[i+1:], true
		case c == '\\' || c < 0x20:
			return nil, nil, false
		}
	}
	return nil, nil, false
}
