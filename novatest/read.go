package novatest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/nova-go/nova"
)

// testReadStream reads a short and a long stream forwards and backwards,
// from the start, the middle and past the end, with and without limits. The
// long stream is longer than any sensible page, so paging is exercised.
func (s *suite) testReadStream(t *testing.T) {
	t.Parallel()
	st := s.store(t)
	// "s" has 10 events interleaved with another stream's.
	var short []nova.EventData
	for i := range 10 {
		e := NewEventData("s", fmt.Sprintf(`{"i":%d}`, i))
		short = append(short, e)
		MustAppend(t, st, "s", nova.Exact(uint64(i)), e)
		MustAppend(t, st, "t", nova.Any, Events("t", 1)...)
	}
	const longN = 2500
	long := Events("l", longN)
	MustAppend(t, st, "long", nova.NoStream, long[:1000]...)
	MustAppend(t, st, "s2", nova.NoStream, Events("x", 1)...)
	MustAppend(t, st, "long", nova.Exact(1000), long[1000:]...)

	fw := func(from uint64, limit int) nova.ReadStreamOptions {
		return nova.ReadStreamOptions{From: from, Limit: limit}
	}
	bw := func(from uint64, limit int) nova.ReadStreamOptions {
		return nova.ReadStreamOptions{Direction: nova.Backwards, From: from, Limit: limit}
	}
	tests := []struct {
		name   string
		stream string
		opts   nova.ReadStreamOptions
		want   []uint64
	}{
		{"forwards/all", "s", fw(0, 0), seq(1, 10)},
		{"forwards/from 1", "s", fw(1, 0), seq(1, 10)},
		{"forwards/from middle", "s", fw(4, 0), seq(4, 10)},
		{"forwards/from middle with limit", "s", fw(4, 3), seq(4, 6)},
		{"forwards/from last", "s", fw(10, 0), seq(10, 10)},
		{"forwards/past the end", "s", fw(11, 0), nil},
		{"forwards/far past the end", "s", fw(1000, 5), nil},
		{"forwards/limit 1", "s", fw(0, 1), seq(1, 1)},
		{"forwards/limit exact", "s", fw(0, 10), seq(1, 10)},
		{"forwards/limit beyond", "s", fw(0, 11), seq(1, 10)},
		{"forwards/limit beyond from middle", "s", fw(8, 50), seq(8, 10)},
		{"backwards/all", "s", bw(0, 0), seq(10, 1)},
		{"backwards/from last", "s", bw(10, 0), seq(10, 1)},
		{"backwards/from middle", "s", bw(5, 0), seq(5, 1)},
		{"backwards/from middle with limit", "s", bw(5, 2), seq(5, 4)},
		{"backwards/from first", "s", bw(1, 0), seq(1, 1)},
		{"backwards/past the end", "s", bw(11, 0), seq(10, 1)},
		{"backwards/far past the end with limit", "s", bw(1000, 3), seq(10, 8)},
		{"backwards/limit 1", "s", bw(0, 1), seq(10, 10)},
		{"backwards/limit beyond", "s", bw(3, 9), seq(3, 1)},
		{"missing stream/forwards", "nope", fw(0, 0), nil},
		{"missing stream/backwards", "nope", bw(0, 0), nil},
		{"missing stream/from", "nope", fw(3, 2), nil},
		{"long/forwards", "long", fw(0, 0), seq(1, longN)},
		{"long/backwards", "long", bw(0, 0), seq(longN, 1)},
		{"long/forwards from middle with limit", "long", fw(1000, 1200), seq(1000, 2199)},
		{"long/backwards from middle with limit", "long", bw(2000, 1500), seq(2000, 501)},
		{"long/backwards from middle", "long", bw(1300, 0), seq(1300, 1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Collect(st.ReadStream(s.ctx(t), tc.stream, tc.opts), 0)
			if err != nil {
				t.Fatalf("ReadStream(%q, %+v): %v", tc.stream, tc.opts, err)
			}
			if !slices.Equal(versions(got), tc.want) {
				t.Fatalf("ReadStream(%q, %+v) versions = %s, want %s", tc.stream, tc.opts, span(versions(got)), span(tc.want))
			}
			src := map[string][]nova.EventData{"s": short, "long": long}[tc.stream]
			for _, e := range got {
				if e.Stream != tc.stream {
					t.Fatalf("event %s has stream %q, want %q", e.ID, e.Stream, tc.stream)
				}
				if d := src[e.Version-1]; e.ID != d.ID || string(e.Data) != string(d.Data) {
					t.Fatalf("version %d is event %s %s, want %s %s", e.Version, e.ID, e.Data, d.ID, d.Data)
				}
			}
		})
	}
}

// testReadAll reads the global log from the start, from the middle and past
// the end, with and without limits, across more events than a page.
func (s *suite) testReadAll(t *testing.T) {
	t.Parallel()
	st := s.store(t)
	var appended []string
	for i := range 30 {
		b := Events("e", i%3+1)
		MustAppend(t, st, fmt.Sprintf("s-%d", i%4), nova.Any, b...)
		appended = append(appended, ids(b)...)
	}
	big := Events("big", 2000)
	MustAppend(t, st, "big", nova.NoStream, big...)
	appended = append(appended, ids(big)...)
	log := MustReadAll(t, st)
	if !slices.Equal(ids(log), appended) {
		t.Fatalf("ReadAll returned %d events, want the %d appended in append order", len(log), len(appended))
	}
	increasing(t, log, "ReadAll")
	n := len(log)
	// Checkpoints store positions as text: every position survives the
	// round trip.
	for _, e := range log {
		if p, err := nova.ParsePosition(e.Position.String()); err != nil || p != e.Position {
			t.Fatalf("position %#v printed as %q parses back as %#v, %v", e.Position, e.Position.String(), p, err)
		}
	}

	tests := []struct {
		name string
		opts nova.ReadAllOptions
		want []nova.Event
	}{
		{"from start", nova.ReadAllOptions{}, log},
		{"from start with limit", nova.ReadAllOptions{Limit: 5}, log[:5]},
		{"from first", nova.ReadAllOptions{From: log[0].Position}, log[1:]},
		{"from middle", nova.ReadAllOptions{From: log[20].Position}, log[21:]},
		{"from middle with limit", nova.ReadAllOptions{From: log[20].Position, Limit: 7}, log[21:28]},
		{"from middle with a limit beyond a page", nova.ReadAllOptions{From: log[10].Position, Limit: 1500}, log[11:1511]},
		{"limit beyond the end", nova.ReadAllOptions{From: log[n-3].Position, Limit: 10}, log[n-2:]},
		{"from last", nova.ReadAllOptions{From: log[n-1].Position}, nil},
		{"from last with limit", nova.ReadAllOptions{From: log[n-1].Position, Limit: 3}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Collect(st.ReadAll(s.ctx(t), tc.opts), 0)
			if err != nil {
				t.Fatalf("ReadAll(%+v): %v", tc.opts, err)
			}
			if d := diffLog(tc.want, got); d != "" {
				t.Fatalf("ReadAll(%+v): %s", tc.opts, d)
			}
		})
	}
}

// testStreams lists streams with After and Limit, in byte order of their
// names, with their last versions, over more streams than a page.
func (s *suite) testStreams(t *testing.T) {
	t.Parallel()
	st := s.store(t)
	want := map[string]uint64{}
	add := func(name string, n int) {
		MustAppend(t, st, name, nova.Any, Events("e", n)...)
		want[name] += uint64(n)
	}
	for i, name := range []string{"d", "b", "a", "e", "c", "Z", "b-1", "é"} {
		add(name, i%3+1)
	}
	add("b", 2)
	for i := range 600 {
		add(fmt.Sprintf("m-%03d", (i*7)%600), 1)
	}
	var all []nova.StreamInfo
	for name, v := range want {
		all = append(all, nova.StreamInfo{Stream: name, Version: v})
	}
	slices.SortFunc(all, func(a, b nova.StreamInfo) int { return strings.Compare(a.Stream, b.Stream) })
	at := func(name string) int {
		i := slices.IndexFunc(all, func(x nova.StreamInfo) bool { return x.Stream == name })
		if i < 0 {
			t.Fatalf("no stream %q in the fixture", name)
		}
		return i
	}

	tests := []struct {
		name string
		opts nova.StreamsOptions
		want []nova.StreamInfo
	}{
		{"all", nova.StreamsOptions{}, all},
		{"limit", nova.StreamsOptions{Limit: 2}, all[:2]},
		{"limit beyond", nova.StreamsOptions{Limit: len(all) + 5}, all},
		{"after", nova.StreamsOptions{After: "b"}, all[at("b")+1:]},
		{"after with limit", nova.StreamsOptions{After: "b", Limit: 2}, all[at("b")+1 : at("b")+3]},
		{"after a name not stored", nova.StreamsOptions{After: "b-0"}, all[at("b-1"):]},
		{"after across pages", nova.StreamsOptions{After: "m-010", Limit: 400}, all[at("m-011") : at("m-011")+400]},
		{"after the last", nova.StreamsOptions{After: "é"}, nil},
		{"after everything", nova.StreamsOptions{After: "\U0010ffff"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Collect(st.Streams(s.ctx(t), tc.opts), 0)
			if err != nil {
				t.Fatalf("Streams(%+v): %v", tc.opts, err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Streams(%+v) = %s, want %s", tc.opts, listing(got), listing(tc.want))
			}
		})
	}
}
