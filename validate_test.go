package nova_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/nova-go/nova"
)

const (
	id1 = "0190a0b0-0000-7000-8000-000000000001"
	id2 = "0190a0b0-0000-7000-8000-000000000002"
)

func TestValidateStream(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		stream  string
		wantErr error
	}{
		{"plain", "order-42", nil},
		{"unicode", "commande-é-日本", nil},
		{"at limit", strings.Repeat("s", nova.MaxStreamLen), nil},
		{"empty", "", nova.ErrInvalid},
		{"oversize", strings.Repeat("s", nova.MaxStreamLen+1), nova.ErrInvalid},
		{"invalid utf-8", "order-\xff", nova.ErrInvalid},
		{"NUL", "order\x00", nova.ErrInvalid},
		{"newline", "order\n42", nova.ErrInvalid},
		{"tab", "order\t42", nova.ErrInvalid},
		{"DEL", "order\x7f", nova.ErrInvalid},
		{"C1 first (U+0080)", "order\u0080", nova.ErrInvalid},
		{"C1 next line (U+0085)", "order\u008542", nova.ErrInvalid},
		{"C1 CSI (U+009B)", "order\u009b0m", nova.ErrInvalid},
		{"C1 last (U+009F)", "order\u009f", nova.ErrInvalid},
		{"no-break space (U+00A0) is not a control", "order\u00a042", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := nova.ValidateStream(tt.stream); !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("ValidateStream = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// Size counts an event's type, data and metadata as JSON; empty metadata
// counts nothing.
func TestEventDataSize(t *testing.T) {
	t.Parallel()
	md := nova.Metadata{
		CorrelationID: "corr", CausationID: "<cause>", Schema: 7,
		Extra: map[string]string{"tenant": "acme", "é": "", "line": "a\nb\x01"},
	}
	b, err := json.Marshal(md)
	if err != nil {
		t.Fatal(err)
	}
	if md.Size() != len(b) {
		t.Errorf("Metadata.Size = %d, want %d, the length of %s", md.Size(), len(b), b)
	}
	e := nova.EventData{ID: id1, Type: "order.placed", Data: []byte(`{"id":42}`), Metadata: md}
	if got, want := e.Size(), 12+9+len(b); got != want {
		t.Errorf("Size = %d, want %d", got, want)
	}
	if (nova.EventData{}).Size() != 0 || (nova.Metadata{Extra: map[string]string{}}).Size() != 0 {
		t.Error("empty metadata or the zero event has a size")
	}
	if got := (nova.Metadata{Schema: -12}).Size(); got != len(`{"schema":-12}`) {
		t.Errorf("Size of a negative schema = %d", got)
	}
}

func TestReadOptionsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		err     error
		wantErr error
	}{
		{"stream zero", nova.ReadStreamOptions{}.Validate(), nil},
		{"stream backwards", nova.ReadStreamOptions{Direction: nova.Backwards, From: 3, Limit: 2}.Validate(), nil},
		{"stream bad direction", nova.ReadStreamOptions{Direction: 7}.Validate(), nova.ErrInvalid},
		{"stream negative limit", nova.ReadStreamOptions{Limit: -1}.Validate(), nova.ErrInvalid},
		{"all zero", nova.ReadAllOptions{}.Validate(), nil},
		{"all negative limit", nova.ReadAllOptions{Limit: -1}.Validate(), nova.ErrInvalid},
		{"streams zero", nova.StreamsOptions{}.Validate(), nil},
		{"streams negative limit", nova.StreamsOptions{Limit: -5}.Validate(), nova.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if !errors.Is(tt.err, tt.wantErr) || (tt.err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Validate() = %v, want %v", tt.err, tt.wantErr)
			}
		})
	}
}
