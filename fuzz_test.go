package nova_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/nova-go/nova"
)

// FuzzParsePosition checks that ParsePosition never panics, fails only
// with ErrInvalid, and that what it accepts survives String and a second
// parse unchanged.
func FuzzParsePosition(f *testing.F) {
	for _, s := range []string{
		"", "0", "1", "42/7", "0/7", "007", "3/0", "18446744073709551615/18446744073709551615",
		"18446744073709551616", "1/", "/1", "-1", "+1", "1/2/3", "x", " 1", "1_0", "0x1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := nova.ParsePosition(s)
		if err != nil {
			if !errors.Is(err, nova.ErrInvalid) {
				t.Fatalf("ParsePosition(%q) error %v does not match ErrInvalid", s, err)
			}
			if p != (nova.Position{}) {
				t.Fatalf("ParsePosition(%q) = %#v with an error", s, p)
			}
			return
		}
		str := p.String()
		again, err := nova.ParsePosition(str)
		if err != nil {
			t.Fatalf("ParsePosition(%q) = %#v, whose String %q does not parse: %v", s, p, str, err)
		}
		if again != p {
			t.Fatalf("ParsePosition(%q) = %#v, but its String %q parses as %#v", s, p, str, again)
		}
		if again.String() != str {
			t.Fatalf("String is not stable: %q then %q", str, again.String())
		}
	})
}

// FuzzRegistryDecode feeds arbitrary type names, shapes and data to a
// registry with two types and an upcaster chain: Decode never panics,
// never changes its input, and reports unknown types as ErrUnknownType.
func FuzzRegistryDecode(f *testing.F) {
	f.Add("order.placed", 1, []byte(`{"item":"a"}`), false)
	f.Add("order.placed", 2, []byte(`{"sku":"a"}`), false)
	f.Add("order.placed", 3, []byte(`{"sku":"a","qty":2}`), false)
	f.Add("order.placed", 0, []byte(`null`), false)
	f.Add("order.placed", 1, []byte(`[1]`), false)
	f.Add("order.placed", -5, []byte(`{"item":{"deep":[1,2,{}]}}`), false)
	f.Add("order.shipped", 1, []byte(`{"carrier":5}`), false)
	f.Add("order.shipped", 9, []byte(``), false)
	f.Add("order.lost", 1, []byte(`{}`), false)
	f.Add("order.lost", 1, []byte(`{}`), true)
	f.Add("", 1<<62, []byte("\xff\x00"), true)
	f.Add("order.placed", 4, []byte(`{"sku":"a","qty":2,"gift":true}`), false)
	f.Add("order.shipped", 2, []byte(`{"carrier":"ups"}`), true)
	strict, lenient := setup(f, nova.RegistryOptions{}), setup(f, nova.RegistryOptions{AllowUnknown: true})
	f.Fuzz(func(t *testing.T, typ string, schema int, data []byte, allowUnknown bool) {
		r := strict
		if allowUnknown {
			r = lenient
		}
		e := nova.Event{ID: id1, Stream: "s", Type: typ, Version: 1, Data: data, Metadata: nova.Metadata{Schema: schema}}
		orig := bytes.Clone(data)
		v, err := r.Decode(e)
		if !bytes.Equal(e.Data, orig) {
			t.Fatal("Decode changed the event's data")
		}
		known := typ == "order.placed" || typ == "order.shipped"
		newest := map[string]int{"order.placed": 3, "order.shipped": 1}[typ]
		if tooNew := known && max(schema, 1) > newest; tooNew != errors.Is(err, nova.ErrEventTooNew) {
			t.Fatalf("type %q of shape %d (newest %d): error %v", typ, schema, newest, err)
		}
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			if v != nil {
				t.Fatalf("Decode returned %#v with its error", v)
			}
			if !known && !errors.Is(err, nova.ErrUnknownType) {
				t.Fatalf("unknown type %q: error %v does not match ErrUnknownType", typ, err)
			}
			if known && errors.Is(err, nova.ErrUnknownType) {
				t.Fatalf("registered type %q: error %v matches ErrUnknownType", typ, err)
			}
			return
		}
		switch got := v.(type) {
		case OrderPlaced:
			if typ != "order.placed" {
				t.Fatalf("type %q decoded to %T", typ, v)
			}
		case OrderShipped:
			if typ != "order.shipped" {
				t.Fatalf("type %q decoded to %T", typ, v)
			}
		case nova.Event:
			if known || !allowUnknown {
				t.Fatalf("type %q decoded to an Event", typ)
			}
			if got.ID != e.ID || got.Type != e.Type {
				t.Fatalf("unknown event came back as %+v", got)
			}
		default:
			t.Fatalf("Decode returned %T", v)
		}
	})
}

// FuzzMetadataSize checks that Metadata.Size is the length of the JSON
// encoding stores write, 0 for metadata with nothing set, whatever the
// strings hold.
func FuzzMetadataSize(f *testing.F) {
	f.Add("corr", "cause", 0, "k", "v", "")
	f.Add("", "", 0, "", "", "")
	f.Add("<a&b>", "\"q\"\\", -3, "\x01\x1f\x7f", "\u2028\u2029", "é日🚀")
	f.Add("\xff\xfe", "\u0085\u009b", 1<<40, "\b\f\n\r\t", "\x00", "k2")
	f.Fuzz(func(t *testing.T, corr, cause string, schema int, k1, v1, k2 string) {
		m := nova.Metadata{CorrelationID: corr, CausationID: cause, Schema: schema, Extra: map[string]string{}}
		if k1 != "" || v1 != "" {
			m.Extra[k1] = v1
		}
		if k2 != "" {
			m.Extra[k2] = v1 + k2
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		want := len(b)
		if string(b) == "{}" {
			want = 0
		}
		if got := m.Size(); got != want {
			t.Fatalf("Size = %d, want %d for %s", got, want, b)
		}
	})
}
