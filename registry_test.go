package nova_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/validate"
)

// OrderPlaced is the current (shape 3) form of "order.placed":
// shape 1 was {"item":…}, shape 2 renamed it {"sku":…}, shape 3 added
// "qty" defaulting to 1.
type OrderPlaced struct {
	SKU string `json:"sku"`
	Qty int    `json:"qty"`
}

type OrderShipped struct {
	Carrier string `json:"carrier"`
}

type Unregistered struct{ X int }

// rename returns an upcaster that renames one JSON field.
func rename(from, to string) nova.Upcaster {
	return func(data []byte) ([]byte, error) {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, err
		}
		if m == nil {
			return nil, errors.New("not an object")
		}
		if v, ok := m[from]; ok {
			m[to] = v
			delete(m, from)
		}
		return json.Marshal(m)
	}
}

// addDefault returns an upcaster that sets a JSON field when absent.
func addDefault(key, value string) nova.Upcaster {
	return func(data []byte) ([]byte, error) {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, err
		}
		if m == nil {
			return nil, errors.New("not an object")
		}
		if _, ok := m[key]; !ok {
			m[key] = json.RawMessage(value)
		}
		return json.Marshal(m)
	}
}

// setup returns a registry with order.placed (two upcasters, current
// shape 3) and order.shipped (no upcasters).
func setup(t testing.TB, opts nova.RegistryOptions) *nova.Registry {
	t.Helper()
	r := nova.NewRegistry(opts)
	must(t, nova.Register[OrderPlaced](r, "order.placed"))
	must(t, nova.Register[OrderShipped](r, "order.shipped"))
	must(t, r.Upcast("order.placed", 1, rename("item", "sku")))
	must(t, r.Upcast("order.placed", 2, addDefault("qty", "1")))
	return r
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestRegister(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		do      func(r *nova.Registry) error
		wantErr error
	}{
		{"struct", func(r *nova.Registry) error { return nova.Register[Unregistered](r, "x") }, nil},
		{"non-struct", func(r *nova.Registry) error { return nova.Register[string](r, "x") }, nil},
		{"pointer", func(r *nova.Registry) error { return nova.Register[*Unregistered](r, "x") }, nova.ErrInvalid},
		{"interface any", func(r *nova.Registry) error { return nova.Register[any](r, "x") }, nova.ErrInvalid},
		{"interface Stringer", func(r *nova.Registry) error { return nova.Register[fmt.Stringer](r, "x") }, nova.ErrInvalid},
		{"name twice", func(r *nova.Registry) error { return nova.Register[Unregistered](r, "order.placed") }, nova.ErrInvalid},
		{"type twice", func(r *nova.Registry) error { return nova.Register[OrderPlaced](r, "order.placed.v2") }, nova.ErrInvalid},
		{"empty name", func(r *nova.Registry) error { return nova.Register[Unregistered](r, "") }, nova.ErrInvalid},
		{"oversize name", func(r *nova.Registry) error {
			return nova.Register[Unregistered](r, strings.Repeat("n", nova.MaxTypeLen+1))
		}, nova.ErrInvalid},
		{"invalid utf-8 name", func(r *nova.Registry) error { return nova.Register[Unregistered](r, "x\xff") }, nova.ErrInvalid},
		{"control char name", func(r *nova.Registry) error { return nova.Register[Unregistered](r, "x\ty") }, nova.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := setup(t, nova.RegistryOptions{})
			err := tt.do(r)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("got %v, want %v", err, tt.wantErr)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "nova: ") {
				t.Errorf("message %q lacks the nova: prefix", err)
			}
			// A failed registration leaves the existing ones intact.
			if name, err := r.TypeName(OrderPlaced{}); err != nil || name != "order.placed" {
				t.Errorf("after the call TypeName(OrderPlaced) = %q, %v", name, err)
			}
			if _, err := r.TypeName(Unregistered{}); tt.wantErr != nil && !errors.Is(err, nova.ErrUnknownType) {
				t.Errorf("failed registration left Unregistered registered: %v", err)
			}
		})
	}
}

func TestMustRegisterPanics(t *testing.T) {
	t.Parallel()
	r := nova.NewRegistry(nova.RegistryOptions{})
	nova.MustRegister[OrderShipped](r, "order.shipped")
	defer func() {
		if recover() == nil {
			t.Fatal("MustRegister of a name twice did not panic")
		}
	}()
	nova.MustRegister[OrderPlaced](r, "order.shipped")
}

func TestTypeName(t *testing.T) {
	t.Parallel()
	r := setup(t, nova.RegistryOptions{})
	var nilPtr *OrderPlaced
	v := OrderPlaced{}
	pp := &v
	tests := []struct {
		name    string
		v       any
		want    string
		wantErr error
	}{
		{"value", OrderPlaced{SKU: "a"}, "order.placed", nil},
		{"pointer", &OrderShipped{}, "order.shipped", nil},
		{"nil pointer", nilPtr, "", nova.ErrInvalid},
		{"nil", nil, "", nova.ErrInvalid},
		{"unregistered", Unregistered{}, "", nova.ErrUnknownType},
		{"unregistered pointer", &Unregistered{}, "", nova.ErrUnknownType},
		{"pointer to pointer", &pp, "", nova.ErrUnknownType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := r.TypeName(tt.v)
			if got != tt.want || !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("TypeName = %q, %v, want %q, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
	if _, err := r.TypeName(Unregistered{}); !strings.Contains(fmt.Sprint(err), "Unregistered") {
		t.Errorf("unregistered error %q does not name the Go type", err)
	}
}

func TestSchemaVersion(t *testing.T) {
	t.Parallel()
	r := setup(t, nova.RegistryOptions{})
	for name, want := range map[string]int{"order.placed": 3, "order.shipped": 1, "never.heard.of": 1} {
		if got := r.SchemaVersion(name); got != want {
			t.Errorf("SchemaVersion(%q) = %d, want %d", name, got, want)
		}
	}
}

func TestEncode(t *testing.T) {
	t.Parallel()
	r := setup(t, nova.RegistryOptions{})
	md := nova.Metadata{CorrelationID: "c", Schema: 9, Extra: map[string]string{"k": "v"}}
	tests := []struct {
		name     string
		v        any
		wantType string
		wantData string
		schema   int
	}{
		{"value with upcasters", OrderPlaced{SKU: "a", Qty: 2}, "order.placed", `{"sku":"a","qty":2}`, 3},
		{"pointer", &OrderPlaced{SKU: "b", Qty: 1}, "order.placed", `{"sku":"b","qty":1}`, 3},
		{"no upcasters", OrderShipped{Carrier: "ups"}, "order.shipped", `{"carrier":"ups"}`, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := r.Encode(tt.v, md)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if !uuidV7.MatchString(d.ID) {
				t.Errorf("ID %q is not a v7 UUID", d.ID)
			}
			if d.Type != tt.wantType || string(d.Data) != tt.wantData {
				t.Errorf("Encode = %q %s, want %q %s", d.Type, d.Data, tt.wantType, tt.wantData)
			}
			want := md
			want.Schema = tt.schema
			if !reflect.DeepEqual(d.Metadata, want) {
				t.Errorf("metadata = %+v, want %+v", d.Metadata, want)
			}
			d2, _ := r.Encode(tt.v, md)
			if d2.ID == d.ID {
				t.Errorf("two encodes share ID %q", d.ID)
			}
		})
	}
	if md.Schema != 9 {
		t.Errorf("Encode changed the caller's metadata schema to %d", md.Schema)
	}
}

func TestEncodeErrors(t *testing.T) {
	t.Parallel()
	type withFunc struct{ F func() }
	r := setup(t, nova.RegistryOptions{})
	must(t, nova.Register[withFunc](r, "with.func"))
	tests := []struct {
		name    string
		v       any
		wantErr error
		inMsg   string
	}{
		{"unregistered", Unregistered{}, nova.ErrUnknownType, "Unregistered"},
		{"nil", nil, nova.ErrInvalid, "nil"},
		{"unencodable", withFunc{F: func() {}}, nil, `"with.func"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := r.Encode(tt.v, nova.Metadata{})
			if err == nil {
				t.Fatalf("Encode = %+v, want an error", d)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Encode error %v, want %v", err, tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "nova: ") || !strings.Contains(err.Error(), tt.inMsg) {
				t.Errorf("message %q: want the nova: prefix and %q", err, tt.inMsg)
			}
		})
	}
}

func TestEncodeAll(t *testing.T) {
	t.Parallel()
	r := setup(t, nova.RegistryOptions{})
	md := nova.Metadata{CausationID: "cmd-1"}
	got, err := r.EncodeAll(md, OrderPlaced{SKU: "a", Qty: 1}, &OrderShipped{Carrier: "dhl"}, OrderPlaced{SKU: "b", Qty: 3})
	if err != nil {
		t.Fatalf("EncodeAll: %v", err)
	}
	wantTypes := []string{"order.placed", "order.shipped", "order.placed"}
	wantSchemas := []int{3, 1, 3}
	ids := map[string]bool{}
	for i, d := range got {
		if d.Type != wantTypes[i] || d.Metadata.Schema != wantSchemas[i] || d.Metadata.CausationID != "cmd-1" {
			t.Errorf("event %d = %q schema %d md %+v", i, d.Type, d.Metadata.Schema, d.Metadata)
		}
		if ids[d.ID] || !uuidV7.MatchString(d.ID) {
			t.Errorf("event %d: ID %q repeated or not a v7 UUID", i, d.ID)
		}
		ids[d.ID] = true
	}
	if len(got) != 3 {
		t.Fatalf("got %d events, want 3", len(got))
	}
	// What a registry encodes is valid to append as is.
	if _, err := validate.Append("order-1", got); err != nil {
		t.Fatalf("validate.Append of encoded events: %v", err)
	}

	none, err := r.EncodeAll(md, OrderPlaced{}, Unregistered{}, OrderShipped{})
	if !errors.Is(err, nova.ErrUnknownType) || none != nil {
		t.Fatalf("EncodeAll with an unregistered value = %d events, %v, want nil, ErrUnknownType", len(none), err)
	}
	if !strings.HasPrefix(err.Error(), "nova: ") || !strings.Contains(err.Error(), "event 1") {
		t.Errorf("message %q: want the nova: prefix and event 1 named", err)
	}
	if empty, err := r.EncodeAll(md); err != nil || len(empty) != 0 {
		t.Errorf("EncodeAll() = %v, %v, want no events", empty, err)
	}
}

// recorded turns encoded data into an event as a store would return it.
func recorded(d nova.EventData, version uint64) nova.Event {
	return nova.Event{
		ID: d.ID, Stream: "order-1", Type: d.Type, Version: version,
		Position: nova.Position{Commit: version}, Data: d.Data, Metadata: d.Metadata,
	}
}

// oldEvent is an event of type typ recorded at shape schema.
func oldEvent(typ string, schema int, data string) nova.Event {
	return nova.Event{
		ID: id1, Stream: "order-1", Type: typ, Version: 7,
		Data: []byte(data), Metadata: nova.Metadata{Schema: schema},
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	r := setup(t, nova.RegistryOptions{})
	tests := []struct {
		name    string
		e       nova.Event
		want    any
		wantErr error
		inMsg   []string
	}{
		{"current shape", oldEvent("order.placed", 3, `{"sku":"a","qty":2}`), OrderPlaced{SKU: "a", Qty: 2}, nil, nil},
		{"shape 1", oldEvent("order.placed", 1, `{"item":"a"}`), OrderPlaced{SKU: "a", Qty: 1}, nil, nil},
		{"shape unset means 1", oldEvent("order.placed", 0, `{"item":"a"}`), OrderPlaced{SKU: "a", Qty: 1}, nil, nil},
		{"shape 2", oldEvent("order.placed", 2, `{"sku":"a"}`), OrderPlaced{SKU: "a", Qty: 1}, nil, nil},
		{"shape 2 with qty", oldEvent("order.placed", 2, `{"sku":"a","qty":5}`), OrderPlaced{SKU: "a", Qty: 5}, nil, nil},
		{"no upcasters", oldEvent("order.shipped", 0, `{"carrier":"ups"}`), OrderShipped{Carrier: "ups"}, nil, nil},
		{"unknown type", oldEvent("order.lost", 1, `{}`), nil, nova.ErrUnknownType, []string{`"order.lost"`, id1, `"order-1"`}},
		{"bad data", oldEvent("order.shipped", 1, `{"carrier":`), nil, nil, []string{"nova: ", `"order.shipped"`, id1}},
		{"wrong json type", oldEvent("order.shipped", 1, `{"carrier":5}`), nil, nil, []string{`"order.shipped"`}},
		{"upcaster fails", oldEvent("order.placed", 1, `[1,2]`), nil, nil, []string{`"order.placed"`, id1, "shape 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := r.Decode(tt.e)
			if tt.want != nil {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("Decode = %#v, want %#v", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Decode = %#v, want an error", got)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Decode error %v, want %v", err, tt.wantErr)
			}
			for _, s := range tt.inMsg {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("message %q does not contain %q", err, s)
				}
			}
		})
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	t.Parallel()
	r := setup(t, nova.RegistryOptions{})
	for i, v := range []any{OrderPlaced{SKU: "x", Qty: 4}, &OrderShipped{Carrier: "post"}} {
		d, err := r.Encode(v, nova.Metadata{})
		must(t, err)
		got, err := r.Decode(recorded(d, uint64(i+1)))
		must(t, err)
		want := reflect.Indirect(reflect.ValueOf(v)).Interface()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("round trip of %#v = %#v", v, got)
		}
	}
}

func TestDecodeAllowUnknown(t *testing.T) {
	t.Parallel()
	r := setup(t, nova.RegistryOptions{AllowUnknown: true})
	// An unregistered type with upcasters is still upcast.
	must(t, r.Upcast("legacy.thing", 1, rename("a", "b")))
	in := oldEvent("legacy.thing", 1, `{"a":1}`)
	got, err := r.Decode(in)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	e, ok := got.(nova.Event)
	if !ok {
		t.Fatalf("Decode = %T, want nova.Event", got)
	}
	if string(e.Data) != `{"b":1}` || e.Metadata.Schema != 2 || e.ID != in.ID || e.Version != in.Version {
		t.Errorf("Decode = %+v, want the upcast event", e)
	}
	// Registered types still decode to their Go type.
	got, err = r.Decode(oldEvent("order.shipped", 1, `{"carrier":"x"}`))
	if err != nil || got != (OrderShipped{Carrier: "x"}) {
		t.Errorf("Decode of a registered type = %#v, %v", got, err)
	}
}

func TestDecodeAs(t *testing.T) {
	t.Parallel()
	r := setup(t, nova.RegistryOptions{})
	placed := oldEvent("order.placed", 2, `{"sku":"a"}`)

	got, err := nova.DecodeAs[OrderPlaced](r, placed)
	if err != nil || got != (OrderPlaced{SKU: "a", Qty: 1}) {
		t.Fatalf("DecodeAs[OrderPlaced] = %#v, %v", got, err)
	}

	tests := []struct {
		name    string
		decode  func() (any, error)
		wantErr error
		inMsg   string
	}{
		{"other type", func() (any, error) { return nova.DecodeAs[OrderShipped](r, placed) }, nil, "OrderShipped"},
		{"pointer type", func() (any, error) { return nova.DecodeAs[*OrderPlaced](r, placed) }, nil, "*nova_test.OrderPlaced"},
		{"unknown type", func() (any, error) {
			return nova.DecodeAs[OrderPlaced](r, oldEvent("order.lost", 1, `{}`))
		}, nova.ErrUnknownType, "order.lost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := tt.decode()
			if err == nil {
				t.Fatalf("DecodeAs = %#v, want an error", v)
			}
			if !reflect.ValueOf(v).IsZero() {
				t.Errorf("DecodeAs returned %#v with its error, want the zero value", v)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "nova: ") || !strings.Contains(err.Error(), tt.inMsg) {
				t.Errorf("message %q: want the nova: prefix and %q", err, tt.inMsg)
			}
		})
	}
}

func TestUpcastRegistration(t *testing.T) {
	t.Parallel()
	noop := func(b []byte) ([]byte, error) { return b, nil }
	tests := []struct {
		name string
		do   func(r *nova.Registry) error
	}{
		{"skips shape 1", func(r *nova.Registry) error { return r.Upcast("t", 2, noop) }},
		{"from 0", func(r *nova.Registry) error { return r.Upcast("t", 0, noop) }},
		{"negative", func(r *nova.Registry) error { return r.Upcast("t", -1, noop) }},
		{"same shape twice", func(r *nova.Registry) error {
			must(t, r.Upcast("t", 1, noop))
			return r.Upcast("t", 1, noop)
		}},
		{"gap", func(r *nova.Registry) error {
			must(t, r.Upcast("t", 1, noop))
			return r.Upcast("t", 3, noop)
		}},
		{"empty type", func(r *nova.Registry) error { return r.Upcast("", 1, noop) }},
		{"oversize type", func(r *nova.Registry) error { return r.Upcast(strings.Repeat("t", nova.MaxTypeLen+1), 1, noop) }},
		{"invalid utf-8 type", func(r *nova.Registry) error { return r.Upcast("t\xff", 1, noop) }},
		{"control char type", func(r *nova.Registry) error { return r.Upcast("t\x00", 1, noop) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := nova.NewRegistry(nova.RegistryOptions{})
			if err := tt.do(r); !errors.Is(err, nova.ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
		})
	}
	// A rejected upcaster does not change the current shape.
	r := nova.NewRegistry(nova.RegistryOptions{})
	_ = r.Upcast("t", 2, noop)
	if got := r.SchemaVersion("t"); got != 1 {
		t.Errorf("SchemaVersion after a rejected upcaster = %d, want 1", got)
	}
}

func TestUpcastedChain(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		calls []string
	)
	step := func(name string, fn nova.Upcaster) nova.Upcaster {
		return func(b []byte) ([]byte, error) {
			mu.Lock()
			calls = append(calls, name)
			mu.Unlock()
			return fn(b)
		}
	}
	r := nova.NewRegistry(nova.RegistryOptions{})
	must(t, nova.Register[OrderPlaced](r, "order.placed"))
	must(t, r.Upcast("order.placed", 1, step("1→2", rename("item", "sku"))))
	must(t, r.Upcast("order.placed", 2, step("2→3", addDefault("qty", "1"))))

	tests := []struct {
		schema    int
		data      string
		wantCalls []string
		wantData  string
	}{
		{0, `{"item":"a"}`, []string{"1→2", "2→3"}, `{"qty":1,"sku":"a"}`},
		{1, `{"item":"a"}`, []string{"1→2", "2→3"}, `{"qty":1,"sku":"a"}`},
		{2, `{"item":"a"}`, []string{"2→3"}, `{"item":"a","qty":1}`},
		{3, `{"item":"a"}`, nil, `{"item":"a"}`},
		// Shape 4 is newer than any known: see TestEventTooNew.
	}
	for _, tt := range tests {
		mu.Lock()
		calls = nil
		mu.Unlock()
		in := oldEvent("order.placed", tt.schema, tt.data)
		got, err := r.Upcasted(in)
		if err != nil {
			t.Fatalf("schema %d: Upcasted: %v", tt.schema, err)
		}
		if !reflect.DeepEqual(calls, tt.wantCalls) {
			t.Errorf("schema %d: upcasters ran %v, want %v", tt.schema, calls, tt.wantCalls)
		}
		if string(got.Data) != tt.wantData {
			t.Errorf("schema %d: data %s, want %s", tt.schema, got.Data, tt.wantData)
		}
		wantSchema := max(tt.schema, 3)
		if tt.wantCalls == nil {
			wantSchema = tt.schema
			// Already current: returned as is, same bytes.
			if &got.Data[0] != &in.Data[0] {
				t.Errorf("schema %d: a current event's data was copied", tt.schema)
			}
		}
		if got.Metadata.Schema != wantSchema {
			t.Errorf("schema %d: upcast to schema %d, want %d", tt.schema, got.Metadata.Schema, wantSchema)
		}
		got.Data, got.Metadata = in.Data, in.Metadata
		if !reflect.DeepEqual(got, in) {
			t.Errorf("schema %d: Upcasted changed more than data and schema: %+v", tt.schema, got)
		}
	}
}

var errShape = errors.New("unexpected shape")

func TestUpcasterErrorWrapped(t *testing.T) {
	t.Parallel()
	r := nova.NewRegistry(nova.RegistryOptions{})
	must(t, nova.Register[OrderPlaced](r, "order.placed"))
	must(t, r.Upcast("order.placed", 1, func(b []byte) ([]byte, error) { return b, nil }))
	must(t, r.Upcast("order.placed", 2, func([]byte) ([]byte, error) { return nil, errShape }))
	for _, call := range []func(nova.Event) error{
		func(e nova.Event) error { _, err := r.Upcasted(e); return err },
		func(e nova.Event) error { _, err := r.Decode(e); return err },
		func(e nova.Event) error { _, err := nova.DecodeAs[OrderPlaced](r, e); return err },
	} {
		err := call(oldEvent("order.placed", 1, `{}`))
		if !errors.Is(err, errShape) {
			t.Fatalf("error %v does not wrap the upcaster's error", err)
		}
		for _, s := range []string{"nova: ", `"order.placed"`, id1, "shape 2"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("message %q does not contain %q", err, s)
			}
		}
	}
}

func TestUpcastLeavesInputAlone(t *testing.T) {
	t.Parallel()
	r := setup(t, nova.RegistryOptions{})
	in := oldEvent("order.placed", 1, `{"item":"a"}`)
	orig := bytes.Clone(in.Data)
	if _, err := r.Decode(in); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Upcasted(in); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(in.Data, orig) || in.Metadata.Schema != 1 {
		t.Fatalf("input changed to %s schema %d", in.Data, in.Metadata.Schema)
	}
}

// prefixCodec is a custom codec: JSON with a "v1:" prefix.
type prefixCodec struct{}

func (prefixCodec) Marshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	return append([]byte("v1:"), b...), err
}

func (prefixCodec) Unmarshal(data []byte, v any) error {
	rest, ok := bytes.CutPrefix(data, []byte("v1:"))
	if !ok {
		return errors.New("missing v1: prefix")
	}
	return json.Unmarshal(rest, v)
}

func TestCustomCodec(t *testing.T) {
	t.Parallel()
	r := nova.NewRegistry(nova.RegistryOptions{Codec: prefixCodec{}})
	must(t, nova.Register[OrderShipped](r, "order.shipped"))
	d, err := r.Encode(OrderShipped{Carrier: "ups"}, nova.Metadata{})
	must(t, err)
	if string(d.Data) != `v1:{"carrier":"ups"}` {
		t.Fatalf("Encode data = %s, want the codec's output", d.Data)
	}
	got, err := r.Decode(recorded(d, 1))
	if err != nil || got != (OrderShipped{Carrier: "ups"}) {
		t.Fatalf("Decode = %#v, %v", got, err)
	}
	if _, err := r.Decode(oldEvent("order.shipped", 1, `{"carrier":"ups"}`)); err == nil || !strings.Contains(err.Error(), "v1: prefix") {
		t.Fatalf("Decode of data the codec rejects = %v, want the codec's error", err)
	}
}

func TestRegistryConcurrentUse(t *testing.T) {
	t.Parallel()
	r := setup(t, nova.RegistryOptions{})
	events := []nova.Event{
		oldEvent("order.placed", 1, `{"item":"a"}`),
		oldEvent("order.placed", 2, `{"sku":"a"}`),
		oldEvent("order.placed", 3, `{"sku":"a","qty":1}`),
	}
	type late struct{ N int }
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				e := events[(g+i)%len(events)]
				v, err := r.Decode(e)
				if err != nil || v != (OrderPlaced{SKU: "a", Qty: 1}) {
					errs <- fmt.Errorf("Decode = %#v, %v", v, err)
					return
				}
				if _, err := r.TypeName(OrderShipped{}); err != nil {
					errs <- err
					return
				}
				if _, err := r.Encode(OrderPlaced{SKU: "b"}, nova.Metadata{}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	// Registrations while decoding are safe too.
	wg.Go(func() {
		if err := nova.Register[late](r, "late"); err != nil {
			errs <- err
		}
		for i := 1; i <= 20; i++ {
			if err := r.Upcast("late", i, func(b []byte) ([]byte, error) { return b, nil }); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := r.SchemaVersion("late"); got != 21 {
		t.Errorf("SchemaVersion(late) = %d, want 21", got)
	}
}

// TestUpcasterCannotWriteBeyondInput proves that an upcaster that appends
// to its input, a common way to add a field, cannot write into the
// caller's backing array. Stores may slice several events' data out of one
// buffer, so the bytes past an event's data are the next event's.
func TestUpcasterCannotWriteBeyondInput(t *testing.T) {
	t.Parallel()
	r := nova.NewRegistry(nova.RegistryOptions{})
	must(t, nova.Register[OrderPlaced](r, "order.placed"))
	must(t, r.Upcast("order.placed", 1, func(b []byte) ([]byte, error) {
		// {"sku":"a"} → {"sku":"a","qty":1}
		return append(b[:len(b)-1], `,"qty":1}`...), nil
	}))

	page := []byte(`{"sku":"a"}{"sku":"b","qty":9}`) // two events' data in one buffer
	first, next := page[:11], page[11:]
	in := oldEvent("order.placed", 1, "")
	in.Data = first

	for _, call := range []func() error{
		func() error { _, err := r.Upcasted(in); return err },
		func() error {
			v, err := r.Decode(in)
			if err == nil && v != (OrderPlaced{SKU: "a", Qty: 1}) {
				return fmt.Errorf("Decode = %#v", v)
			}
			return err
		},
	} {
		if err := call(); err != nil {
			t.Fatal(err)
		}
		if string(first) != `{"sku":"a"}` || string(next) != `{"sku":"b","qty":9}` {
			t.Fatalf("upcasting one event rewrote the buffer: %q", page)
		}
	}
}

// TestUpcasterRunsWithoutRegistryLock proves that a running upcaster holds
// no lock of the registry: a registration does not wait for it, and the
// upcaster may itself read the registry while a registration is pending.
// Holding a read lock across the upcaster deadlocks the latter case, as
// sync.RWMutex forbids recursive read locking.
func TestUpcasterRunsWithoutRegistryLock(t *testing.T) {
	t.Parallel()
	r := nova.NewRegistry(nova.RegistryOptions{})
	must(t, nova.Register[OrderPlaced](r, "order.placed"))
	entered, proceed := make(chan struct{}), make(chan struct{})
	must(t, r.Upcast("order.placed", 1, func(b []byte) ([]byte, error) {
		close(entered)
		<-proceed
		if v := r.SchemaVersion("order.placed"); v != 2 {
			return nil, fmt.Errorf("SchemaVersion inside the upcaster = %d", v)
		}
		return b, nil
	}))

	upcastErr := make(chan error, 1)
	go func() {
		_, err := r.Upcasted(oldEvent("order.placed", 1, `{}`))
		upcastErr <- err
	}()
	<-entered

	registered := make(chan error, 1)
	go func() { registered <- nova.Register[OrderShipped](r, "order.shipped") }()
	select {
	case err := <-registered:
		must(t, err)
	case <-time.After(5 * time.Second):
		// Both goroutines are stuck for good; goleak reports them too.
		t.Fatal("Register waited for a running upcaster")
	}
	close(proceed)
	must(t, <-upcastErr)
}

func TestTypeNameErrorsSayWhatIsWrong(t *testing.T) {
	t.Parallel()
	r := nova.NewRegistry(nova.RegistryOptions{})
	err := nova.Register[OrderPlaced](r, "")
	if !errors.Is(err, nova.ErrInvalid) {
		t.Fatalf("Register with an empty name = %v, want ErrInvalid", err)
	}
	// A registration has no events, so the message must not speak of one.
	if strings.Contains(err.Error(), "event 0") {
		t.Errorf("message %q speaks of an event 0", err)
	}
}

// An event stamped with a shape newer than any the registry knows (written
// by a newer deployment) is refused with an *EventTooNewError matching
// ErrEventTooNew, by Decode, DecodeAs and Upcasted alike: decoding it into
// the older Go type would drop or misread what the new shape added.
func TestEventTooNew(t *testing.T) {
	t.Parallel()
	r := setup(t, nova.RegistryOptions{})
	tests := []struct {
		name   string
		e      nova.Event
		newest int
	}{
		{"upcast type, one past its newest", oldEvent("order.placed", 4, `{"sku":"a","qty":2,"gift":true}`), 3},
		{"upcast type, far past", oldEvent("order.placed", 99, `{}`), 3},
		{"type without upcasters", oldEvent("order.shipped", 2, `{"carrier":"ups","tracking":"1Z"}`), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			check := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, nova.ErrEventTooNew) {
					t.Fatalf("%s: %v, want an error matching nova.ErrEventTooNew", what, err)
				}
				var tn *nova.EventTooNewError
				if !errors.As(err, &tn) {
					t.Fatalf("%s: %v is not an *EventTooNewError", what, err)
				}
				want := nova.EventTooNewError{ID: tt.e.ID, Stream: tt.e.Stream, Version: tt.e.Version, Type: tt.e.Type, Schema: tt.e.Metadata.Schema, Newest: tt.newest}
				if *tn != want {
					t.Fatalf("%s: %+v, want %+v", what, *tn, want)
				}
				for _, s := range []string{"nova: ", strconv.Quote(tt.e.Type), tt.e.ID, "AllowNewer"} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("%s: message %q does not contain %q", what, err, s)
					}
				}
			}
			v, err := r.Decode(tt.e)
			if v != nil {
				t.Errorf("Decode returned %#v with its error", v)
			}
			check("Decode", err)
			_, err = r.Upcasted(tt.e)
			check("Upcasted", err)
			if tt.e.Type == "order.shipped" {
				_, err = nova.DecodeAs[OrderShipped](r, tt.e)
				check("DecodeAs", err)
			}
		})
	}
	// The newest shape itself, and older ones, still decode.
	if got, err := r.Decode(oldEvent("order.placed", 3, `{"sku":"a","qty":2}`)); err != nil || got != (OrderPlaced{SKU: "a", Qty: 2}) {
		t.Errorf("Decode of the newest shape = %#v, %v", got, err)
	}
	if got, err := r.Decode(oldEvent("order.shipped", 1, `{"carrier":"ups"}`)); err != nil || got != (OrderShipped{Carrier: "ups"}) {
		t.Errorf("Decode of shape 1 of a type without upcasters = %#v, %v", got, err)
	}
	// A type the registry knows nothing of has no newest shape to compare
	// with: AllowUnknown hands it over as is, its shape unchanged.
	lenient := setup(t, nova.RegistryOptions{AllowUnknown: true})
	got, err := lenient.Decode(oldEvent("order.lost", 7, `{}`))
	if e, ok := got.(nova.Event); err != nil || !ok || e.Metadata.Schema != 7 {
		t.Errorf("Decode of an unknown type of shape 7 with AllowUnknown = %#v, %v; want the event as is", got, err)
	}
	if _, err := r.Decode(oldEvent("order.lost", 7, `{}`)); !errors.Is(err, nova.ErrUnknownType) || errors.Is(err, nova.ErrEventTooNew) {
		t.Errorf("Decode of an unknown type of shape 7 = %v, want ErrUnknownType only", err)
	}
}

// RegistryOptions.AllowNewer reads an event of a newer shape as the
// newest shape the registry knows: no upcaster runs, the fields the Go
// type lacks are dropped, and the event keeps its stamped shape.
func TestEventTooNewAllowed(t *testing.T) {
	t.Parallel()
	r := setup(t, nova.RegistryOptions{AllowNewer: true})
	in := oldEvent("order.placed", 4, `{"sku":"a","qty":2,"gift":true}`)
	got, err := r.Decode(in)
	if err != nil || got != (OrderPlaced{SKU: "a", Qty: 2}) {
		t.Fatalf("Decode with AllowNewer = %#v, %v; want the fields shape 3 knows", got, err)
	}
	up, err := r.Upcasted(in)
	if err != nil || up.Metadata.Schema != 4 || !bytes.Equal(up.Data, in.Data) {
		t.Fatalf("Upcasted with AllowNewer = %+v, %v; want the event unchanged", up, err)
	}
}
