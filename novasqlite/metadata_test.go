package novasqlite

import (
	"encoding/json"
	"testing"

	"github.com/nova-go/nova"
)

func TestMetadataRoundTrip(t *testing.T) {
	t.Parallel()
	for _, m := range []nova.Metadata{
		{CorrelationID: "c"},
		{CausationID: "x"},
		{Schema: 3},
		{CorrelationID: "quote\" back\\slash\nnew\ttab\x01", CausationID: "é ✓"},
		{Extra: map[string]string{"b": "2", "a": "1", "esc\"": "\\"}},
		{CorrelationID: "c", CausationID: "d", Schema: 123456789, Extra: map[string]string{"k": ""}},
	} {
		raw := appendMetadata(nil, m)
		var viaJSON nova.Metadata
		if err := json.Unmarshal(raw, &viaJSON); err != nil || !viaJSON.Equal(m) {
			t.Errorf("appendMetadata(%+v) = %s, which encoding/json reads as %+v, %v", m, raw, viaJSON, err)
		}
		got, err := decodeMetadata(raw, nil)
		if err != nil || !got.Equal(m) {
			t.Errorf("decodeMetadata(%s) = %+v, %v; want %+v", raw, got, err, m)
		}
	}
}

func TestDecodeMetadataOtherShapes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		raw  string
		want nova.Metadata
		bad  bool
	}{
		{raw: `{}`},
		{raw: ` { "correlation_id" : "c" } `, want: nova.Metadata{CorrelationID: "c"}},
		{raw: `{"causation_id":"a\u0041"}`, want: nova.Metadata{CausationID: "aA"}},
		{raw: `{"schema":2,"unknown":true}`, want: nova.Metadata{Schema: 2}},
		{raw: `{"schema":1,"schema":4}`, want: nova.Metadata{Schema: 4}},
		{raw: `{"extra":{"a":"1",}}`, bad: true},
		{raw: `{"correlation_id":"c",}`, bad: true},
		{raw: `{"schema":"x"}`, bad: true},
		{raw: `not json`, bad: true},
	} {
		got, err := decodeMetadata([]byte(tc.raw), nil)
		if tc.bad {
			if err == nil {
				t.Errorf("decodeMetadata(%s) = %+v, want an error", tc.raw, got)
			}
			continue
		}
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("decodeMetadata(%s) = %+v, %v; want %+v", tc.raw, got, err, tc.want)
		}
	}
}
