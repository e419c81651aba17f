package novatest

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/nova-go/nova"
)

// testExpectedVersion appends with every kind of expected version to an
// empty stream and to a stream of three events. A mismatch must fail with a
// *nova.ConcurrencyError that matches nova.ErrConcurrency and names the
// stream, the expected and the actual version, and write nothing.
func (s *suite) testExpectedVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		prior    int // events already in the stream
		expected nova.ExpectedVersion
		wantErr  bool
	}{
		{"empty/Any", 0, nova.Any, false},
		{"empty/NoStream", 0, nova.NoStream, false},
		{"empty/StreamExists", 0, nova.StreamExists, true},
		{"empty/Exact(0)", 0, nova.Exact(0), false},
		{"empty/Exact(1)", 0, nova.Exact(1), true},
		{"empty/Exact(7)", 0, nova.Exact(7), true},
		{"nonempty/Any", 3, nova.Any, false},
		{"nonempty/NoStream", 3, nova.NoStream, true},
		{"nonempty/StreamExists", 3, nova.StreamExists, false},
		{"nonempty/Exact(0)", 3, nova.Exact(0), true},
		{"nonempty/Exact(2)", 3, nova.Exact(2), true},
		{"nonempty/Exact(3)", 3, nova.Exact(3), false},
		{"nonempty/Exact(4)", 3, nova.Exact(4), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := s.store(t)
			ctx := s.ctx(t)
			const stream = "order-1"
			// Another stream around it, so a backend that checks the wrong
			// stream, or the whole log, is caught.
			MustAppend(t, st, "order-0", nova.Any, Events("other", 2)...)
			if tc.prior > 0 {
				MustAppend(t, st, stream, nova.NoStream, Events("prior", tc.prior)...)
			}
			MustAppend(t, st, "order-2", nova.Any, Events("other", 1)...)
			before := stateOf(t, st)

			batch := Events("test", 2)
			res, err := st.Append(ctx, stream, tc.expected, batch...)
			if tc.wantErr {
				if !errors.Is(err, nova.ErrConcurrency) {
					t.Fatalf("Append(expected %s) to a stream at version %d: got %v, want an error matching nova.ErrConcurrency", tc.expected, tc.prior, err)
				}
				var ce *nova.ConcurrencyError
				if !errors.As(err, &ce) {
					t.Fatalf("Append(expected %s): error %v (%T) is not a *nova.ConcurrencyError", tc.expected, err, err)
				}
				want := nova.ConcurrencyError{Stream: stream, Expected: tc.expected, Actual: uint64(tc.prior)}
				if *ce != want {
					t.Errorf("ConcurrencyError = {Stream %q, Expected %s, Actual %d}, want {Stream %q, Expected %s, Actual %d}",
						ce.Stream, ce.Expected, ce.Actual, want.Stream, want.Expected, want.Actual)
				}
				if res != (nova.AppendResult{}) {
					t.Errorf("failed Append returned result %+v, want the zero result", res)
				}
				unchanged(t, st, before, fmt.Sprintf("a failed Append(expected %s)", tc.expected))
				return
			}
			if err != nil {
				t.Fatalf("Append(expected %s) to a stream at version %d: %v", tc.expected, tc.prior, err)
			}
			first := uint64(tc.prior) + 1
			if res.FirstVersion != first || res.LastVersion != first+1 || res.Duplicate {
				t.Errorf("result = %+v, want versions %d..%d, not duplicate", res, first, first+1)
			}
			got := MustReadStream(t, st, stream, nova.ReadStreamOptions{})
			if want := seq(1, first+1); !slices.Equal(versions(got), want) {
				t.Fatalf("stream versions after append = %v, want %v", versions(got), want)
			}
			if !slices.Equal(ids(got[tc.prior:]), ids(batch)) {
				t.Errorf("stream ends with IDs %v, want the appended %v", ids(got[tc.prior:]), ids(batch))
			}
			if got[len(got)-1].Position != res.Position {
				t.Errorf("result position %s, want the last event's position %s", res.Position, got[len(got)-1].Position)
			}
		})
	}
}

// testAppendResult checks what a sequence of appends returns: versions
// counted per stream, positions growing across streams, and the result's
// position being the last appended event's.
func (s *suite) testAppendResult(t *testing.T) {
	t.Parallel()
	st := s.store(t)
	type step struct {
		stream      string
		n           int
		first, last uint64
	}
	steps := []step{
		{"a", 1, 1, 1},
		{"b", 3, 1, 3},
		{"a", 2, 2, 3},
		{"c", 1, 1, 1},
		{"b", 1, 4, 4},
	}
	var prev nova.Position
	for i, sp := range steps {
		res := MustAppend(t, st, sp.stream, nova.Exact(sp.first-1), Events("step", sp.n)...)
		if res.FirstVersion != sp.first || res.LastVersion != sp.last || res.Duplicate {
			t.Errorf("step %d: append %d to %q: result %+v, want versions %d..%d, not duplicate", i, sp.n, sp.stream, res, sp.first, sp.last)
		}
		if !prev.Less(res.Position) {
			t.Errorf("step %d: result position %s is not after the previous %s", i, res.Position, prev)
		}
		prev = res.Position
	}
	log := MustReadAll(t, st)
	if len(log) != 8 {
		t.Fatalf("log has %d events, want 8", len(log))
	}
	increasing(t, log, "ReadAll")
	if log[len(log)-1].Position != prev {
		t.Errorf("last event at %s, last append result at %s", log[len(log)-1].Position, prev)
	}
}
