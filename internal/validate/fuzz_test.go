package validate_test

import (
	"errors"
	"reflect"
	"regexp"
	"testing"
	"unicode"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/validate"
)

var (
	uuidCanonical = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	uuidV7        = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
)

// FuzzAppend checks that Append never panics on any
// strings, fails only with ErrInvalid, and that what it accepts has
// canonical IDs and validates again unchanged.
func FuzzAppend(f *testing.F) {
	f.Add("order-42", "order.placed", []byte(`{"id":1}`), "corr", "cause", "tenant", "acme", 0, "")
	f.Add("order-42", "order.placed", []byte(nil), "", "", "", "", 2, "0190a0b0-0000-7000-8000-000000000001")
	f.Add("s", "t", []byte{}, "", "", "k", "", -1, "0190A0B0-0000-7000-8000-00000000000F")
	f.Add("", "", []byte("x"), "a\x00", "\xff", "\x00", "v", 1, "not-a-uuid")
	f.Add("s\n", "t\x7f", []byte("x"), "é", "日本", "k\xff", "v\x00", 3, "{0190a0b0-0000-7000-8000-00000000001}")
	f.Add("s\u0085", "t\u009b", []byte("x"), "\u0080", "", "k\u009f", "v\u0085", 1, "")
	f.Add("order\u00a0nbsp", "type\u00a0nbsp", []byte("x"), "", "", "", "", 1, "")
	f.Fuzz(func(t *testing.T, stream, typ string, data []byte, corr, cause, key, value string, schema int, id string) {
		in := []nova.EventData{
			{ID: id, Type: typ, Data: data, Metadata: nova.Metadata{
				CorrelationID: corr, CausationID: cause, Schema: schema,
				Extra: map[string]string{key: value},
			}},
			{Type: typ, Data: data},
		}
		before := clone(in)
		out, err := validate.Append(stream, in)
		if !reflect.DeepEqual(in, before) {
			t.Fatal("Append modified the caller's slice")
		}
		if err != nil {
			if !errors.Is(err, nova.ErrInvalid) {
				t.Fatalf("error %v does not match ErrInvalid", err)
			}
			if out != nil {
				t.Fatal("events returned with an error")
			}
			return
		}
		if len(out) != len(in) {
			t.Fatalf("got %d events, want %d", len(out), len(in))
		}
		for _, r := range stream + typ {
			if unicode.IsControl(r) {
				t.Fatalf("stream %q or type %q with control character %U accepted", stream, typ, r)
			}
		}
		for i, e := range out {
			if e.Size() > nova.MaxEventLen || e.Metadata.Size() > nova.MaxMetadataLen {
				t.Fatalf("event %d of %d bytes, metadata %d, accepted", i, e.Size(), e.Metadata.Size())
			}
			if !uuidCanonical.MatchString(e.ID) {
				t.Fatalf("event %d: ID %q is not a canonical UUID", i, e.ID)
			}
			if in[i].ID == "" && !uuidV7.MatchString(e.ID) {
				t.Fatalf("event %d: filled ID %q is not a v7 UUID", i, e.ID)
			}
			want := in[i]
			want.ID = e.ID
			if !reflect.DeepEqual(e, want) {
				t.Fatalf("event %d: content changed", i)
			}
		}
		if out[0].ID == out[1].ID {
			t.Fatalf("both events got ID %q", out[0].ID)
		}
		again, err := validate.Append(stream, out)
		if err != nil {
			t.Fatalf("accepted output does not validate again: %v", err)
		}
		if !reflect.DeepEqual(again, out) {
			t.Fatal("validating the output again changed it")
		}
	})
}
