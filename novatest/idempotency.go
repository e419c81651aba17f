package novatest

import (
	"errors"
	"testing"

	"github.com/nova-go/nova"
)

// testIdempotency covers retries: appending events whose IDs are stored at
// the same place succeeds, writes nothing and returns the original result
// with Duplicate set; reusing an ID anywhere else, or for other content, or
// in a batch that only partly overlaps a stored one, fails with
// nova.ErrDuplicateEvent and writes nothing.
func (s *suite) testIdempotency(t *testing.T) {
	t.Parallel()

	t.Run("retry", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name  string
			prior int // events in the stream before the batch
			// expected for the first append and for its retry
			expected func(prior int) nova.ExpectedVersion
			// after is how many events other appends add after the batch
			// before it is retried
			after int
		}{
			{"NoStream", 0, func(int) nova.ExpectedVersion { return nova.NoStream }, 0},
			{"NoStream/stream moved on", 0, func(int) nova.ExpectedVersion { return nova.NoStream }, 2},
			{"Exact", 3, func(n int) nova.ExpectedVersion { return nova.Exact(uint64(n)) }, 0},
			{"Exact/stream moved on", 3, func(n int) nova.ExpectedVersion { return nova.Exact(uint64(n)) }, 2},
			{"Exact(0)", 0, func(int) nova.ExpectedVersion { return nova.Exact(0) }, 1},
			{"Any", 3, func(int) nova.ExpectedVersion { return nova.Any }, 0},
			{"Any/stream moved on", 3, func(int) nova.ExpectedVersion { return nova.Any }, 2},
			{"StreamExists", 1, func(int) nova.ExpectedVersion { return nova.StreamExists }, 2},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				st := s.store(t)
				ctx := s.ctx(t)
				const stream = "account-7"
				if tc.prior > 0 {
					MustAppend(t, st, stream, nova.NoStream, Events("prior", tc.prior)...)
				}
				MustAppend(t, st, "other", nova.Any, Events("other", 1)...)
				batch := Events("deposited", 3)
				batch[1].Metadata = nova.Metadata{CorrelationID: "c-1", Extra: map[string]string{"k": "v"}}
				exp := tc.expected(tc.prior)
				res, err := st.Append(ctx, stream, exp, batch...)
				if err != nil {
					t.Fatalf("first Append(expected %s): %v", exp, err)
				}
				if tc.after > 0 {
					MustAppend(t, st, stream, nova.Any, Events("later", tc.after)...)
				}
				before := stateOf(t, st)
				for i := range 2 {
					again, err := st.Append(ctx, stream, exp, batch...)
					if err != nil {
						t.Fatalf("retry %d of Append(expected %s): %v, want success", i+1, exp, err)
					}
					want := res
					want.Duplicate = true
					if again != want {
						t.Errorf("retry %d: result %+v, want %+v", i+1, again, want)
					}
					unchanged(t, st, before, "an idempotent retry")
				}
			})
		}
	})

	t.Run("reused ID", func(t *testing.T) {
		t.Parallel()
		type fixture struct {
			st    nova.Store
			batch []nova.EventData // stored as versions 1..3 of "cart-1"
		}
		tests := []struct {
			name   string
			append func(f fixture) (string, nova.ExpectedVersion, []nova.EventData)
			// reused is the index in batch of the ID the error must name
			reused int
		}{
			{"other type", func(f fixture) (string, nova.ExpectedVersion, []nova.EventData) {
				b := clone(f.batch)
				b[1].Type = "other"
				return "cart-1", nova.NoStream, b
			}, 1},
			{"other data", func(f fixture) (string, nova.ExpectedVersion, []nova.EventData) {
				b := clone(f.batch)
				b[2].Data = []byte(`{"n":99}`)
				return "cart-1", nova.Any, b
			}, 2},
			{"other metadata", func(f fixture) (string, nova.ExpectedVersion, []nova.EventData) {
				b := clone(f.batch)
				b[0].Metadata.CausationID = "someone-else"
				return "cart-1", nova.NoStream, b
			}, 0},
			{"other extra metadata", func(f fixture) (string, nova.ExpectedVersion, []nova.EventData) {
				b := clone(f.batch)
				b[0].Metadata.Extra = map[string]string{"k": "v"}
				return "cart-1", nova.NoStream, b
			}, 0},
			{"other stream", func(f fixture) (string, nova.ExpectedVersion, []nova.EventData) {
				return "cart-2", nova.NoStream, clone(f.batch)
			}, 0},
			{"other stream/Any", func(f fixture) (string, nova.ExpectedVersion, []nova.EventData) {
				return "cart-2", nova.Any, clone(f.batch)
			}, 0},
			{"one ID in another stream", func(f fixture) (string, nova.ExpectedVersion, []nova.EventData) {
				return "cart-2", nova.Any, []nova.EventData{NewEventData("x", "{}"), f.batch[2]}
			}, 2},
			{"other place/Exact", func(f fixture) (string, nova.ExpectedVersion, []nova.EventData) {
				return "cart-1", nova.Exact(1), clone(f.batch)
			}, 0},
			{"other place/shifted", func(f fixture) (string, nova.ExpectedVersion, []nova.EventData) {
				return "cart-1", nova.Exact(2), clone(f.batch[1:])
			}, 1},
			{"other place/NoStream", func(f fixture) (string, nova.ExpectedVersion, []nova.EventData) {
				return "cart-1", nova.NoStream, clone(f.batch[1:])
			}, 1},
			{"reordered", func(f fixture) (string, nova.ExpectedVersion, []nova.EventData) {
				b := clone(f.batch)
				b[0], b[1] = b[1], b[0]
				return "cart-1", nova.NoStream, b
			}, 1},
			{"partial overlap/new event after", func(f fixture) (string, nova.ExpectedVersion, []nova.EventData) {
				return "cart-1", nova.NoStream, append(clone(f.batch), NewEventData("new", "{}"))
			}, 0},
			{"partial overlap/new event before", func(f fixture) (string, nova.ExpectedVersion, []nova.EventData) {
				return "cart-1", nova.Any, append([]nova.EventData{NewEventData("new", "{}")}, clone(f.batch)...)
			}, 0},
			{"partial overlap/tail and new", func(f fixture) (string, nova.ExpectedVersion, []nova.EventData) {
				return "cart-1", nova.Exact(2), []nova.EventData{f.batch[2], NewEventData("new", "{}")}
			}, 2},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				st := s.store(t)
				ctx := s.ctx(t)
				f := fixture{st: st, batch: Events("added", 3)}
				MustAppend(t, st, "cart-1", nova.NoStream, f.batch...)
				MustAppend(t, st, "cart-0", nova.NoStream, Events("other", 1)...)
				before := stateOf(t, st)
				stream, exp, batch := tc.append(f)
				_, err := st.Append(ctx, stream, exp, batch...)
				if !errors.Is(err, nova.ErrDuplicateEvent) {
					t.Fatalf("Append(%q, expected %s) reusing stored IDs: got %v, want an error matching nova.ErrDuplicateEvent", stream, exp, err)
				}
				var de *nova.DuplicateEventError
				if !errors.As(err, &de) {
					t.Fatalf("error %v (%T) is not a *nova.DuplicateEventError", err, err)
				}
				want := nova.DuplicateEventError{ID: f.batch[tc.reused].ID, Stream: stream, StoredStream: "cart-1", StoredVersion: uint64(tc.reused) + 1}
				if *de != want {
					t.Errorf("DuplicateEventError = %+v, want %+v", *de, want)
				}
				unchanged(t, st, before, "an append reusing stored IDs")
			})
		}
	})
}

// clone copies a batch so a case can change it without touching the
// fixture.
func clone(batch []nova.EventData) []nova.EventData {
	return append([]nova.EventData(nil), batch...)
}
