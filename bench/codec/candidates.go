package codec

import (
	"github.com/bytedance/sonic"
	jsonv2 "github.com/go-json-experiment/json"
	jsonv1 "github.com/go-json-experiment/json/v1"
	goccy "github.com/goccy/go-json"
	jsoniter "github.com/json-iterator/go"
	segment "github.com/segmentio/encoding/json"

	"github.com/nova-go/nova"
)

// Candidate is one JSON library as a [nova.Codec].
type Candidate struct {
	// Name is short, for benchmark and table names.
	Name string
	// Module is the Go module and the configuration used.
	Module string
	nova.Codec
}

// Candidates are encoding/json (Name "std", always first) and the
// libraries measured against it, each in its encoding/json-compatible
// configuration, plus the v2 API of go-json-experiment with its own
// defaults ("jsonv2"), which differ from encoding/json's by design; it
// sorts map keys (Deterministic) so that its output is stable.
var Candidates = []Candidate{
	{"std", "encoding/json (nova.JSON)", nova.JSON},
	{"goccy", "github.com/goccy/go-json v0.12.0", funcs{goccy.Marshal, goccy.Unmarshal}},
	{"segmentio", "github.com/segmentio/encoding/json v0.5.4", funcs{segment.Marshal, segment.Unmarshal}},
	{"sonic", "github.com/bytedance/sonic v1.15.5, ConfigStd", funcs{sonic.ConfigStd.Marshal, sonic.ConfigStd.Unmarshal}},
	{"jsoniter", "github.com/json-iterator/go v1.1.12, ConfigCompatibleWithStandardLibrary", funcs{jsoniter.ConfigCompatibleWithStandardLibrary.Marshal, jsoniter.ConfigCompatibleWithStandardLibrary.Unmarshal}},
	{"jsonv1", "github.com/go-json-experiment/json/v1 v1.27.2 (v1 semantics on the v2 engine)", funcs{jsonv1.Marshal, jsonv1.Unmarshal}},
	{"jsonv2", "github.com/go-json-experiment/json v1.27.2, v2 defaults with Deterministic(true)", funcs{v2Marshal, v2Unmarshal}},
}

func v2Marshal(v any) ([]byte, error)      { return jsonv2.Marshal(v, jsonv2.Deterministic(true)) }
func v2Unmarshal(data []byte, v any) error { return jsonv2.Unmarshal(data, v) }

// funcs makes a [nova.Codec] of a pair of functions.
type funcs struct {
	marshal   func(any) ([]byte, error)
	unmarshal func([]byte, any) error
}

func (f funcs) Marshal(v any) ([]byte, error)      { return f.marshal(v) }
func (f funcs) Unmarshal(data []byte, v any) error { return f.unmarshal(data, v) }
