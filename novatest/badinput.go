package novatest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/nova-go/nova"
)

// testBadInput feeds every entry point bad input: each call must fail with
// an error matching nova.ErrInvalid, never panic, and write nothing.
func (s *suite) testBadInput(t *testing.T) {
	t.Parallel()
	st := s.store(t)
	MustAppend(t, st, "existing", nova.NoStream, Events("e", 2)...)
	before := stateOf(t, st)
	ctx := s.ctx(t)

	ev := func(f func(*nova.EventData)) []nova.EventData {
		d := NewEventData("ok", `{}`)
		f(&d)
		return []nova.EventData{NewEventData("ok", `{}`), d}
	}
	meta := func(m nova.Metadata) []nova.EventData {
		return ev(func(d *nova.EventData) { d.Metadata = m })
	}
	dupID := NewEventData("ok", `{}`)
	tooMany := Events("many", nova.MaxBatch+1)

	appends := []struct {
		name   string
		ctx    context.Context
		stream string
		events []nova.EventData
	}{
		{"empty stream ID", ctx, "", Events("e", 1)},
		{"oversize stream ID", ctx, strings.Repeat("s", nova.MaxStreamLen+1), Events("e", 1)},
		{"invalid UTF-8 stream ID", ctx, "bad-\xff\xfe", Events("e", 1)},
		{"control character in stream ID", ctx, "line\nbreak", Events("e", 1)},
		{"NUL in stream ID", ctx, "nul\x00", Events("e", 1)},
		{"C1 control character in stream ID", ctx, "csi\u009b0m", Events("e", 1)},
		{"no events", ctx, "existing", nil},
		{"no events, new stream", ctx, "fresh", []nova.EventData{}},
		{"more than MaxBatch events", ctx, "fresh", tooMany},
		{"empty type", ctx, "fresh", ev(func(d *nova.EventData) { d.Type = "" })},
		{"oversize type", ctx, "fresh", ev(func(d *nova.EventData) { d.Type = strings.Repeat("t", nova.MaxTypeLen+1) })},
		{"invalid UTF-8 type", ctx, "fresh", ev(func(d *nova.EventData) { d.Type = "type-\xc3\x28" })},
		{"control character in type", ctx, "fresh", ev(func(d *nova.EventData) { d.Type = "ty\tpe" })},
		{"C1 control character in type", ctx, "fresh", ev(func(d *nova.EventData) { d.Type = "next\u0085line" })},
		{"malformed ID", ctx, "fresh", ev(func(d *nova.EventData) { d.ID = "not-a-uuid" })},
		{"ID with a bad digit", ctx, "fresh", ev(func(d *nova.EventData) { d.ID = "0190f0c2-7a3b-7c4d-8e5f-60718293a4bg" })},
		{"ID without dashes", ctx, "fresh", ev(func(d *nova.EventData) { d.ID = "0190f0c27a3b7c4d8e5f60718293a4b5" })},
		{"ID with braces", ctx, "fresh", ev(func(d *nova.EventData) { d.ID = "{0190f0c2-7a3b-7c4d-8e5f-60718293a4b5}" })},
		{"same ID twice in a batch", ctx, "fresh", []nova.EventData{dupID, NewEventData("ok", `{}`), dupID}},
		{"oversize data", ctx, "fresh", ev(func(d *nova.EventData) { d.Data = make([]byte, nova.MaxDataLen+1) })},
		{"event over MaxEventLen by its metadata", ctx, "fresh", ev(func(d *nova.EventData) {
			d.Metadata, d.Data = fullMetadata(), nil
			d.Data = make([]byte, nova.MaxEventLen-d.Size()+1)
		})},
		{"event over MaxEventLen by its type", ctx, "fresh", ev(func(d *nova.EventData) {
			d.Type = "t2"
			d.Data = make([]byte, nova.MaxEventLen-1)
		})},
		{"metadata over MaxMetadataLen", ctx, "fresh", meta(func() nova.Metadata {
			m := fullMetadata()
			m.Extra["one-more"] = "x"
			return m
		}())},
		{"negative schema", ctx, "fresh", meta(nova.Metadata{Schema: -1})},
		{"invalid UTF-8 correlation ID", ctx, "fresh", meta(nova.Metadata{CorrelationID: "c-\xff"})},
		{"invalid UTF-8 causation ID", ctx, "fresh", meta(nova.Metadata{CausationID: "c-\xff"})},
		{"NUL in correlation ID", ctx, "fresh", meta(nova.Metadata{CorrelationID: "c\x00"})},
		{"oversize causation ID", ctx, "fresh", meta(nova.Metadata{CausationID: strings.Repeat("c", 64<<10)})},
		{"invalid UTF-8 metadata key", ctx, "fresh", meta(nova.Metadata{Extra: map[string]string{"k\xff": "v"}})},
		{"invalid UTF-8 metadata value", ctx, "fresh", meta(nova.Metadata{Extra: map[string]string{"k": "v\xff"}})},
		{"empty metadata key", ctx, "fresh", meta(nova.Metadata{Extra: map[string]string{"": "v"}})},
		{"NUL in metadata value", ctx, "fresh", meta(nova.Metadata{Extra: map[string]string{"k": "v\x00"}})},
	}
	for _, tc := range appends {
		for _, exp := range []nova.ExpectedVersion{nova.Any, nova.NoStream, nova.StreamExists, nova.Exact(2)} {
			err := s.within(t, "Append with "+tc.name, func() error {
				_, err := st.Append(tc.ctx, tc.stream, exp, tc.events...)
				return err
			})
			if !errors.Is(err, nova.ErrInvalid) {
				t.Errorf("Append(expected %s) with %s: got %v, want an error matching nova.ErrInvalid", exp, tc.name, err)
			}
		}
	}

	reads := []struct {
		name string
		run  func() error
	}{
		{"ReadStream of an empty stream ID", func() error { return firstErr(st.ReadStream(ctx, "", nova.ReadStreamOptions{})) }},
		{"ReadStream of an oversize stream ID", func() error {
			return firstErr(st.ReadStream(ctx, strings.Repeat("s", nova.MaxStreamLen+1), nova.ReadStreamOptions{}))
		}},
		{"ReadStream of an invalid UTF-8 stream ID", func() error { return firstErr(st.ReadStream(ctx, "\xff", nova.ReadStreamOptions{})) }},
		{"ReadStream of a stream ID with a C1 control character", func() error {
			return firstErr(st.ReadStream(ctx, "csi\u009b0m", nova.ReadStreamOptions{}))
		}},
		{"ReadStream with a negative limit", func() error {
			return firstErr(st.ReadStream(ctx, "existing", nova.ReadStreamOptions{Limit: -1}))
		}},
		{"ReadStream with an unknown direction", func() error {
			return firstErr(st.ReadStream(ctx, "existing", nova.ReadStreamOptions{Direction: 7}))
		}},
		{"ReadAll with a negative limit", func() error { return firstErr(st.ReadAll(ctx, nova.ReadAllOptions{Limit: -5})) }},
		{"Streams with a negative limit", func() error { return firstErr(st.Streams(ctx, nova.StreamsOptions{Limit: -1})) }},
	}
	for _, r := range reads {
		if err := s.within(t, r.name, r.run); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("%s: got %v, want an error matching nova.ErrInvalid", r.name, err)
		}
	}

	// Events encoded through a registry: an unregistered Go type never
	// becomes EventData, so nothing reaches the store.
	type registered struct{ N int }
	type unregistered struct{ N int }
	reg := nova.NewRegistry(nova.RegistryOptions{})
	if err := nova.Register[registered](reg, "registered"); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Encode(unregistered{1}, nova.Metadata{}); !errors.Is(err, nova.ErrUnknownType) {
		t.Errorf("Encode of an unregistered type: got %v, want an error matching nova.ErrUnknownType", err)
	}
	batch, err := reg.EncodeAll(nova.Metadata{}, registered{1}, &unregistered{2})
	if !errors.Is(err, nova.ErrUnknownType) || batch != nil {
		t.Errorf("EncodeAll with an unregistered type: got %d events and %v, want none and an error matching nova.ErrUnknownType", len(batch), err)
	}
	if err == nil {
		MustAppend(t, st, "registry", nova.NoStream, batch...)
	}

	unchanged(t, st, before, "calls with bad input")
}
