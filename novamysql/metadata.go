package novamysql

import (
	"encoding/json"

	"github.com/nova-go/nova"
)

// Metadata is stored in three columns: correlation_id and causation_id,
// NULL when empty, so that they can be queried and indexed; and metadata,
// JSON holding the rest ({"schema":2,"extra":{"k":"v"}}), NULL when there
// is no rest, which is the common case and costs no encoding at all.

// restMetadata is the JSON shape of the metadata column.
type restMetadata struct {
	Schema int               `json:"schema,omitempty"`
	Extra  map[string]string `json:"extra,omitempty"`
}

// encodeMetadata returns the three column values of m; nil means NULL.
func encodeMetadata(m nova.Metadata) (rest, corr, caus any) {
	if m.CorrelationID != "" {
		corr = m.CorrelationID
	}
	if m.CausationID != "" {
		caus = m.CausationID
	}
	if m.Schema != 0 || len(m.Extra) > 0 {
		// Marshalling a struct of an int and a map of strings, valid
		// UTF-8 as validated, cannot fail.
		b, _ := json.Marshal(restMetadata{Schema: m.Schema, Extra: m.Extra})
		rest = string(b)
	}
	return rest, corr, caus
}

// decodeMetadata fills the rest of m from the metadata column.
func decodeMetadata(raw []byte, m *nova.Metadata) error {
	if len(raw) == 0 {
		return nil
	}
	var r restMetadata
	if err := json.Unmarshal(raw, &r); err != nil {
		return err
	}
	m.Schema, m.Extra = r.Schema, r.Extra
	return nil
}
