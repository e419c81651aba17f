package novatest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/validate"
)

// testLimits appends at every documented limit (the longest stream ID and
// type, the largest event with the largest metadata, the largest batch) and with stream IDs and
// types that trip up careless SQL or subject mapping (quotes, LIKE and
// NATS wildcards, dots, slashes, spaces, non-ASCII): each is accepted,
// read back exactly, and listed by Streams.
func (s *suite) testLimits(t *testing.T) {
	t.Parallel()
	st := s.store(t)
	ctx := s.ctx(t)

	longStream := strings.Repeat("s", nova.MaxStreamLen)
	// A stream ID of MaxStreamLen bytes made of 2-byte runes.
	wideStream := strings.Repeat("é", nova.MaxStreamLen/2)
	longType := strings.Repeat("t", nova.MaxTypeLen)
	// The largest event: type, data and metadata of exactly MaxEventLen
	// bytes, its metadata of exactly MaxMetadataLen.
	bigMeta := fullMetadata()
	big := nova.EventData{ID: nova.NewEventID(), Type: "big", Metadata: bigMeta}
	big.Data = bytes.Repeat([]byte{'x'}, nova.MaxEventLen-big.Size())
	names := []string{
		longStream, wideStream,
		"o'brien", `say "hi"`, "100%", "a_b", "a%", "back\\slash", "semi;colon -- comment",
		"orders.>", "orders.*", "a.b.c", "path/to/stream", "with space", " lead", "trail ",
		"日本語", "emoji-🚀", "$all", "-", "0",
	}
	for _, name := range names {
		d := nova.EventData{ID: nova.NewEventID(), Type: "named", Data: []byte(`{"name":` + quote(name) + `}`)}
		MustAppend(t, st, name, nova.NoStream, d)
		got := MustReadStream(t, st, name, nova.ReadStreamOptions{})
		if len(got) != 1 || got[0].ID != d.ID || got[0].Stream != name {
			t.Errorf("stream %q: read back %d events %v, want its one event %s", name, len(got), ids(got), d.ID)
		}
	}
	// Names that differ only in case, or by a wildcard's match, are
	// different streams.
	for _, pair := range [][2]string{{"Case", "case"}, {"a_c", "abc"}, {"x%", "xyz"}, {"p.*", "p.q"}} {
		MustAppend(t, st, pair[0], nova.NoStream, Events("first", 1)...)
		MustAppend(t, st, pair[1], nova.NoStream, Events("second", 2)...)
		if n := len(MustReadStream(t, st, pair[0], nova.ReadStreamOptions{})); n != 1 {
			t.Errorf("stream %q has %d events, want 1 (%q is another stream)", pair[0], n, pair[1])
		}
	}

	res, err := st.Append(ctx, "limits", nova.NoStream,
		nova.EventData{ID: nova.NewEventID(), Type: longType, Data: []byte(`{}`)},
		big,
	)
	if err != nil {
		t.Fatalf("append of a %d-byte type and a %d-byte event (%d bytes of metadata): %v", nova.MaxTypeLen, big.Size(), bigMeta.Size(), err)
	}
	got := MustReadStream(t, st, "limits", nova.ReadStreamOptions{})
	if len(got) != 2 || got[0].Type != longType || res.LastVersion != 2 {
		t.Fatalf("the event with a type at the limit did not read back exactly")
	}
	if !validate.SameContent(got[1], big) || !maps.Equal(got[1].Metadata.Extra, bigMeta.Extra) {
		t.Fatalf("the event at MaxEventLen did not read back exactly")
	}

	batch := Events("batched", nova.MaxBatch)
	res, err = st.Append(ctx, "batch", nova.NoStream, batch...)
	if err != nil {
		t.Fatalf("append of MaxBatch (%d) events: %v", nova.MaxBatch, err)
	}
	if res.FirstVersion != 1 || res.LastVersion != nova.MaxBatch {
		t.Fatalf("append of MaxBatch events returned %+v", res)
	}
	if got := MustReadStream(t, st, "batch", nova.ReadStreamOptions{Direction: nova.Backwards, Limit: 2}); !slices.Equal(ids(got), []string{batch[nova.MaxBatch-1].ID, batch[nova.MaxBatch-2].ID}) {
		t.Fatalf("last events of the MaxBatch append are %v", ids(got))
	}

	listed := map[string]bool{}
	for _, in := range MustStreams(t, st, nova.StreamsOptions{}) {
		listed[in.Stream] = true
	}
	for _, name := range names {
		if !listed[name] {
			t.Errorf("Streams does not list %q", name)
		}
	}
}

// fullMetadata returns metadata of exactly nova.MaxMetadataLen bytes as
// JSON, mostly of what encodings expand (JSON escapes '<', '"', '\\' and
// control characters; header quoting escapes non-ASCII), each string
// within its own limit of 4096 bytes.
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

// quote returns s as a JSON string literal for the ASCII and UTF-8 names
// used here.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}
