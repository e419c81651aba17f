package novatest

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/nova-go/nova"
)

// testRoundTrip appends events with every kind of content and reads them
// back through every read path: ID, type, data bytes (empty, binary, JSON
// as written), metadata (correlation, causation, schema, extra keys), the
// stream, version and position, and a RecordedAt in UTC around the time of
// the append. Empty IDs are assigned, and neither the caller's slices nor
// the slices a read returns are shared with the store.
func (s *suite) testRoundTrip(t *testing.T) {
	t.Parallel()
	st := s.store(t)
	ctx := s.ctx(t)
	upper := strings.ToUpper(nova.NewEventID())
	events := []nova.EventData{
		{ID: nova.NewEventID(), Type: "order.placed", Data: []byte(`{ "id" : 42,  "lines":[1,2]}`), Metadata: nova.Metadata{
			CorrelationID: "corr-1", CausationID: "cmd-9", Schema: 3,
			Extra: map[string]string{"tenant": "acme", "user": "zoë", "empty": "", "k with spaces": "v\twith tab"},
		}},
		{ID: nova.NewEventID(), Type: "empty.nil"},
		{ID: nova.NewEventID(), Type: "empty.slice", Data: []byte{}},
		{ID: nova.NewEventID(), Type: "binary", Data: []byte{0, 1, 2, 0xff, 0xfe, '\n', 0}},
		{Type: "no.id", Data: []byte(`"assigned"`), Metadata: nova.Metadata{CorrelationID: "corr-1"}},
		{Type: "no.id", Data: []byte(`"assigned too"`)},
		{ID: upper, Type: "upper.id", Data: []byte(`{}`)},
		{ID: nova.NewEventID(), Type: "unicode.type.ünïcødé", Data: []byte(`{"s":"日本語"}`), Metadata: nova.Metadata{Schema: 1}},
		{ID: nova.NewEventID(), Type: "large", Data: bytes.Repeat([]byte("0123456789abcdef"), 64<<10)},
	}
	// The caller's slice and data are the caller's: keep a copy to compare
	// with, then scribble on the originals after the append.
	want := make([]nova.EventData, len(events))
	for i, d := range events {
		want[i] = d
		want[i].Data = bytes.Clone(d.Data)
		if d.Metadata.Extra != nil {
			want[i].Metadata.Extra = map[string]string{}
			for k, v := range d.Metadata.Extra {
				want[i].Metadata.Extra[k] = v
			}
		}
	}
	MustAppend(t, st, "first", nova.NoStream, Events("before", 2)...)
	start := time.Now()
	res := MustAppend(t, st, "order-42", nova.NoStream, events...)
	end := time.Now()
	for i := range events {
		if events[i].ID == "" && i != 4 && i != 5 {
			t.Fatalf("Append changed the caller's event %d", i)
		}
		if len(events[i].Data) > 0 {
			events[i].Data[0] ^= 0xff
		}
		if events[i].Metadata.Extra != nil {
			events[i].Metadata.Extra["tenant"] = "changed"
		}
	}
	if events[4].ID != "" || events[5].ID != "" {
		t.Fatalf("Append filled in the IDs of the caller's events")
	}

	check := func(t *testing.T, path string, got []nova.Event) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s returned %d events, want %d", path, len(got), len(want))
		}
		assigned := map[string]bool{}
		for i, e := range got {
			w := want[i]
			switch {
			case w.ID == "":
				if !lowerUUID(e.ID) {
					t.Errorf("%s: event %d has assigned ID %q, want a lower-case UUID", path, i, e.ID)
				}
				if assigned[e.ID] {
					t.Errorf("%s: assigned ID %s twice", path, e.ID)
				}
				assigned[e.ID] = true
			case w.ID == upper:
				if e.ID != strings.ToLower(upper) {
					t.Errorf("%s: event %d has ID %q, want %q in lower case", path, i, e.ID, upper)
				}
			case e.ID != w.ID:
				t.Errorf("%s: event %d has ID %q, want %q", path, i, e.ID, w.ID)
			}
			if e.Stream != "order-42" || e.Type != w.Type || e.Version != uint64(i)+1 {
				t.Errorf("%s: event %d is %q %q version %d, want %q %q version %d", path, i, e.Stream, e.Type, e.Version, "order-42", w.Type, i+1)
			}
			if !bytes.Equal(e.Data, w.Data) {
				t.Errorf("%s: event %d (%s) data is %d bytes %.40q, want %d bytes %.40q", path, i, w.Type, len(e.Data), e.Data, len(w.Data), w.Data)
			}
			if !e.Metadata.Equal(w.Metadata) {
				t.Errorf("%s: event %d metadata is %+v, want %+v", path, i, e.Metadata, w.Metadata)
			}
			if e.RecordedAt.Location() != time.UTC {
				t.Errorf("%s: event %d RecordedAt %v is not in UTC", path, i, e.RecordedAt)
			}
			// A server's clock may differ a little from the test's.
			if e.RecordedAt.Before(start.Add(-time.Minute)) || e.RecordedAt.After(end.Add(time.Minute)) {
				t.Errorf("%s: event %d RecordedAt %v, want about the time of the append (%v)", path, i, e.RecordedAt, start.UTC())
			}
			if i == len(got)-1 && e.Position != res.Position {
				t.Errorf("%s: last event at %s, the append returned %s", path, e.Position, res.Position)
			}
		}
		increasing(t, got, path)
		// Scribble on what was read: the next read must not see it.
		for _, e := range got {
			if len(e.Data) > 0 {
				e.Data[0] ^= 0xff
			}
			if e.Metadata.Extra != nil {
				e.Metadata.Extra["tenant"] = "scribbled"
			}
		}
	}
	for range 2 {
		check(t, "ReadStream", MustReadStream(t, st, "order-42", nova.ReadStreamOptions{}))
		back := MustReadStream(t, st, "order-42", nova.ReadStreamOptions{Direction: nova.Backwards})
		for i, j := 0, len(back)-1; i < j; i, j = i+1, j-1 {
			back[i], back[j] = back[j], back[i]
		}
		check(t, "ReadStream backwards", back)
		all := MustReadAll(t, st)
		if len(all) != 2+len(want) {
			t.Fatalf("ReadAll: %d events, want %d", len(all), 2+len(want))
		}
		check(t, "ReadAll", all[2:])
		sub, err := Collect(st.Subscribe(ctx, nova.SubscribeOptions{From: all[1].Position}), len(want))
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		check(t, "Subscribe", sub)
	}

	// The event appended with an upper-case ID is the same event as its
	// lower-case form: retrying with either is idempotent.
	for _, id := range []string{upper, strings.ToLower(upper)} {
		again, err := st.Append(ctx, "order-42", nova.Exact(6), nova.EventData{ID: id, Type: "upper.id", Data: []byte(`{}`)})
		if err != nil || !again.Duplicate || again.FirstVersion != 7 {
			t.Errorf("retry of the upper-case ID event as %s: result %+v, error %v; want a duplicate at version 7", id, again, err)
		}
	}
}

// lowerUUID reports whether s is a UUID in canonical lower-case form.
func lowerUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range []byte(s) {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
		} else if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
