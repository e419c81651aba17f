package validate_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/validate"
)

const (
	id1 = "0190a0b0-0000-7000-8000-000000000001"
	id2 = "0190a0b0-0000-7000-8000-000000000002"
)

func validEvent() nova.EventData {
	return nova.EventData{
		Type: "order.placed",
		Data: []byte(`{"id":42}`),
		Metadata: nova.Metadata{
			CorrelationID: "corr", CausationID: "cause", Schema: 2,
			Extra: map[string]string{"tenant": "acme"},
		},
	}
}

// appendArgs are the arguments of one Append call.
type appendArgs struct {
	stream string
	events []nova.EventData
}

func TestAppendRejects(t *testing.T) {
	t.Parallel()
	long := func(n int) string { return strings.Repeat("x", n) }
	// The arguments start valid: stream "order-42" and two events, the
	// first with ID id1. Cases that break one event break event 1, so the
	// message must name "event 1".
	ev1 := func(f func(*nova.EventData)) func(*appendArgs) {
		return func(a *appendArgs) { f(&a.events[1]) }
	}
	tests := []struct {
		name  string
		edit  func(*appendArgs)
		inMsg string
	}{
		{"empty stream", func(a *appendArgs) { a.stream = "" }, "stream"},
		{"oversize stream", func(a *appendArgs) { a.stream = long(nova.MaxStreamLen + 1) }, "stream"},
		{"invalid utf-8 stream", func(a *appendArgs) { a.stream = "s\xc3\x28" }, "UTF-8"},
		{"control char stream", func(a *appendArgs) { a.stream = "s\x1b[0m" }, "control"},
		{"no events", func(a *appendArgs) { a.events = []nova.EventData{} }, "no events"},
		{"nil events", func(a *appendArgs) { a.events = nil }, "no events"},
		{"more than MaxBatch", func(a *appendArgs) { a.events = make([]nova.EventData, nova.MaxBatch+1) }, "limit"},
		{"empty type", ev1(func(e *nova.EventData) { e.Type = "" }), "type"},
		{"oversize type", ev1(func(e *nova.EventData) { e.Type = long(nova.MaxTypeLen + 1) }), "type"},
		{"bad utf-8 type", ev1(func(e *nova.EventData) { e.Type = "order.\xfe" }), "UTF-8"},
		{"control char type", ev1(func(e *nova.EventData) { e.Type = "order\nplaced" }), "control"},
		{"C1 control char stream", func(a *appendArgs) { a.stream = "s\u009b0m" }, "control"},
		{"C1 control char type", ev1(func(e *nova.EventData) { e.Type = "order\u0085placed" }), "control"},
		{"event over MaxEventLen", ev1(func(e *nova.EventData) {
			e.Metadata = nova.Metadata{}
			e.Data = make([]byte, nova.MaxEventLen-len(e.Type)+1)
		}), "event of"},
		{"data at MaxDataLen with a type", ev1(func(e *nova.EventData) { e.Data = make([]byte, nova.MaxDataLen) }), "event of"},
		{"metadata over MaxMetadataLen", ev1(func(e *nova.EventData) {
			e.Metadata = fullMetadata()
			e.Metadata.Extra["zz"] += "x"
		}), "metadata of"},
		{"metadata over MaxMetadataLen by its escapes", ev1(func(e *nova.EventData) {
			e.Metadata = fullMetadata()
			e.Metadata.Extra["zz"] = e.Metadata.Extra["zz"][1:] + "<"
		}), "metadata of"},
		{"oversize data", ev1(func(e *nova.EventData) { e.Data = make([]byte, nova.MaxDataLen+1) }), "data"},
		{"short ID", ev1(func(e *nova.EventData) { e.ID = "1234" }), "UUID"},
		{"ID without dashes", ev1(func(e *nova.EventData) { e.ID = strings.ReplaceAll(id2, "-", "") + "0000" }), "UUID"},
		{"ID with non-hex", ev1(func(e *nova.EventData) { e.ID = "0190a0b0-0000-7000-8000-00000000000g" }), "UUID"},
		{"ID in braces", ev1(func(e *nova.EventData) { e.ID = "{" + id2[1:35] + "}" }), "UUID"},
		{"ID dash misplaced", ev1(func(e *nova.EventData) { e.ID = "0190a0b00-000-7000-8000-000000000002" }), "UUID"},
		{"duplicate ID in batch", ev1(func(e *nova.EventData) { e.ID = id1 }), "twice"},
		{"correlation invalid utf-8", ev1(func(e *nova.EventData) { e.Metadata.CorrelationID = "\xff" }), "correlation"},
		{"correlation NUL", ev1(func(e *nova.EventData) { e.Metadata.CorrelationID = "a\x00b" }), "NUL"},
		{"correlation oversize", ev1(func(e *nova.EventData) { e.Metadata.CorrelationID = long(validate.MaxMetaLen + 1) }), "correlation"},
		{"causation invalid utf-8", ev1(func(e *nova.EventData) { e.Metadata.CausationID = "\xff" }), "causation"},
		{"causation NUL", ev1(func(e *nova.EventData) { e.Metadata.CausationID = "\x00" }), "NUL"},
		{"causation oversize", ev1(func(e *nova.EventData) { e.Metadata.CausationID = long(validate.MaxMetaLen + 1) }), "causation"},
		{"empty extra key", ev1(func(e *nova.EventData) { e.Metadata.Extra = map[string]string{"": "v"} }), "key"},
		{"extra key NUL", ev1(func(e *nova.EventData) { e.Metadata.Extra = map[string]string{"k\x00": "v"} }), "NUL"},
		{"extra key invalid utf-8", ev1(func(e *nova.EventData) { e.Metadata.Extra = map[string]string{"k\xff": "v"} }), "UTF-8"},
		{"extra key oversize", ev1(func(e *nova.EventData) { e.Metadata.Extra = map[string]string{long(validate.MaxMetaLen + 1): "v"} }), "key"},
		{"extra value NUL", ev1(func(e *nova.EventData) { e.Metadata.Extra = map[string]string{"k": "\x00"} }), "NUL"},
		{"extra value invalid utf-8", ev1(func(e *nova.EventData) { e.Metadata.Extra = map[string]string{"k": "\xc0\xaf"} }), "UTF-8"},
		{"extra value oversize", ev1(func(e *nova.EventData) { e.Metadata.Extra = map[string]string{"k": long(validate.MaxMetaLen + 1)} }), "value"},
		{"negative schema", ev1(func(e *nova.EventData) { e.Metadata.Schema = -1 }), "schema"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := appendArgs{stream: "order-42", events: []nova.EventData{validEvent(), validEvent()}}
			a.events[0].ID = id1
			tt.edit(&a)
			perEvent := len(a.events) == 2
			before := clone(a.events)
			out, err := validate.Append(a.stream, a.events)
			if !errors.Is(err, nova.ErrInvalid) {
				t.Fatalf("Append = %v, want an error matching ErrInvalid", err)
			}
			if out != nil {
				t.Errorf("Append returned %d events with its error", len(out))
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "nova: ") {
				t.Errorf("message %q lacks the nova: prefix", msg)
			}
			if !strings.Contains(msg, tt.inMsg) {
				t.Errorf("message %q does not mention %q", msg, tt.inMsg)
			}
			if perEvent && a.stream == "order-42" && !strings.Contains(msg, "event 1:") {
				t.Errorf("message %q does not name event 1", msg)
			}
			if !reflect.DeepEqual(a.events, before) {
				t.Error("Append modified the caller's slice")
			}
		})
	}
}

// fullMetadata returns metadata of exactly MaxMetadataLen bytes as JSON,
// mostly of characters JSON escapes, each string within its own limit.
func fullMetadata() nova.Metadata {
	const pattern = "<>&\"\\\n\x01é\u2028日🚀 "
	m := nova.Metadata{CorrelationID: strings.Repeat("c", 36), CausationID: "cause<&>", Schema: 3, Extra: map[string]string{}}
fill:
	for i := 0; ; i++ {
		k := fmt.Sprintf("k\x01%03d", i)
		m.Extra[k] = ""
		for len(m.Extra[k])+len(pattern) <= 4096 {
			m.Extra[k] += pattern
			if m.Size() > nova.MaxMetadataLen-16 {
				m.Extra[k] = m.Extra[k][:len(m.Extra[k])-len(pattern)]
				break fill
			}
		}
	}
	m.Extra["zz"] = "" // 8 bytes: ,"zz":""
	m.Extra["zz"] = strings.Repeat("x", nova.MaxMetadataLen-m.Size())
	if b, _ := json.Marshal(m); len(b) != nova.MaxMetadataLen || m.Size() != nova.MaxMetadataLen {
		panic(fmt.Sprintf("full metadata is %d bytes as JSON, Size says %d", len(b), m.Size()))
	}
	return m
}

func TestAppendNamesIndex(t *testing.T) {
	t.Parallel()
	events := make([]nova.EventData, 12)
	for i := range events {
		events[i] = validEvent()
	}
	events[11].Type = ""
	_, err := validate.Append("s", events)
	if !errors.Is(err, nova.ErrInvalid) || !strings.Contains(err.Error(), "event 11:") {
		t.Fatalf("Append = %v, want ErrInvalid naming event 11", err)
	}
}

func TestAppendAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		stream string
		events func() []nova.EventData
	}{
		{"one event, no ID", "order-42", func() []nova.EventData { return []nova.EventData{validEvent()} }},
		{"mixed IDs", "order-42", func() []nova.EventData {
			a, b, c := validEvent(), validEvent(), validEvent()
			a.ID, c.ID = id1, id2
			return []nova.EventData{a, b, c}
		}},
		{"at the limits", strings.Repeat("s", nova.MaxStreamLen), func() []nova.EventData {
			e := nova.EventData{
				Type: strings.Repeat("t", nova.MaxTypeLen),
				Metadata: nova.Metadata{
					CorrelationID: strings.Repeat("c", validate.MaxMetaLen),
					Extra:         map[string]string{strings.Repeat("k", validate.MaxMetaLen): strings.Repeat("v", validate.MaxMetaLen)},
				},
			}
			e.Data = make([]byte, nova.MaxEventLen-e.Size())
			return []nova.EventData{e}
		}},
		{"metadata at MaxMetadataLen, event at MaxEventLen", "s", func() []nova.EventData {
			e := nova.EventData{Type: "t", Metadata: fullMetadata()}
			e.Data = make([]byte, nova.MaxEventLen-e.Size())
			if e.Size() != nova.MaxEventLen || e.Metadata.Size() != nova.MaxMetadataLen {
				panic("the case is not at the limits")
			}
			return []nova.EventData{e}
		}},
		{"data filling an event with a one-byte type", "s", func() []nova.EventData {
			return []nova.EventData{{Type: "t", Data: make([]byte, nova.MaxDataLen-1)}}
		}},
		{"nil data and metadata", "s", func() []nova.EventData { return []nova.EventData{{Type: "t"}} }},
		{"control chars allowed in metadata", "s", func() []nova.EventData {
			e := validEvent()
			e.Metadata.CausationID = "line1\nline2\t"
			return []nova.EventData{e}
		}},
		{"MaxBatch events", "s", func() []nova.EventData {
			es := make([]nova.EventData, nova.MaxBatch)
			for i := range es {
				es[i].Type = "t"
			}
			return es
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := tt.events()
			before := clone(in)
			out, err := validate.Append(tt.stream, in)
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			if !reflect.DeepEqual(in, before) {
				t.Fatal("Append modified the caller's slice")
			}
			if len(out) != len(in) {
				t.Fatalf("got %d events, want %d", len(out), len(in))
			}
			if len(in) > 0 && &out[0] == &in[0] {
				t.Fatal("Append returned the caller's slice, want a copy")
			}
			seen := map[string]bool{}
			for i := range out {
				if in[i].ID != "" && out[i].ID != in[i].ID {
					t.Errorf("event %d: ID %q replaced by %q", i, in[i].ID, out[i].ID)
				}
				if in[i].ID == "" && !uuidV7.MatchString(out[i].ID) {
					t.Errorf("event %d: filled ID %q is not a v7 UUID", i, out[i].ID)
				}
				if seen[out[i].ID] {
					t.Errorf("event %d: ID %q given twice", i, out[i].ID)
				}
				seen[out[i].ID] = true
				want := in[i]
				want.ID = out[i].ID
				if !reflect.DeepEqual(out[i], want) {
					t.Errorf("event %d: content changed: got %+v, want %+v", i, out[i], want)
				}
			}
			// The output validates again, unchanged.
			again, err := validate.Append(tt.stream, out)
			if err != nil || !reflect.DeepEqual(again, out) {
				t.Fatalf("revalidating the output: %v (changed: %v)", err, !reflect.DeepEqual(again, out))
			}
		})
	}
}

// clone deep-copies events so a test can tell whether they were modified.
func clone(events []nova.EventData) []nova.EventData {
	if events == nil {
		return nil
	}
	out := make([]nova.EventData, len(events))
	for i, e := range events {
		if e.Data != nil {
			e.Data = append([]byte{}, e.Data...)
		}
		if e.Metadata.Extra != nil {
			m := make(map[string]string, len(e.Metadata.Extra))
			for k, v := range e.Metadata.Extra {
				m[k] = v
			}
			e.Metadata.Extra = m
		}
		out[i] = e
	}
	return out
}

func TestAppendLowersIDs(t *testing.T) {
	t.Parallel()
	upper := strings.ToUpper(id1)
	in := []nova.EventData{{ID: upper, Type: "t"}}
	out, err := validate.Append("s", in)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if out[0].ID != id1 {
		t.Errorf("ID %q validated as %q, want the canonical %q", upper, out[0].ID, id1)
	}
	if in[0].ID != upper {
		t.Errorf("caller's ID changed to %q", in[0].ID)
	}

	// The same UUID spelled in two cases is one ID, so twice in a batch.
	_, err = validate.Append("s", []nova.EventData{{ID: id1, Type: "t"}, {ID: upper, Type: "t"}})
	if !errors.Is(err, nova.ErrInvalid) || !strings.Contains(err.Error(), "event 1:") {
		t.Fatalf("Append of %s and %s = %v, want ErrInvalid naming event 1", id1, upper, err)
	}
}

// Append and nova.Register hold event type names to one rule.
func TestTypeRuleMatchesRegister(t *testing.T) {
	t.Parallel()
	for _, typ := range []string{"order.placed", "", "t\x00", "t\n", "t\u0085", "t\xff", "日本", strings.Repeat("t", nova.MaxTypeLen), strings.Repeat("t", nova.MaxTypeLen+1)} {
		_, appendErr := validate.Append("s", []nova.EventData{{Type: typ}})
		registerErr := nova.Register[struct{}](nova.NewRegistry(nova.RegistryOptions{}), typ)
		if (appendErr == nil) != (registerErr == nil) {
			t.Errorf("type %q: Append says %v, Register says %v", typ, appendErr, registerErr)
		}
	}
}
