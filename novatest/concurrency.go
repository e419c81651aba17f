package novatest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nova-go/nova"
)

// raceWriters is how many goroutines race on one stream; raceAppends is how
// many events each appends at scale 1, the suite's full size.
//
// With exact expected versions every successful append needs its own
// commit: the next writer cannot know the new version before the commit
// that made it returns, so no group commit helps. On a durable store that
// is one disk flush per event, about 1 ms on an ordinary disk, which puts
// the full 64 x 500 at half a minute or more. So when no scale is set,
// RaceExact runs a tenth of it (exactDefault); NOVA_TEST_SCALE=1 runs the
// full figure.
const (
	raceWriters = 64
	raceAppends = 500
)

// testRaceExact has 64 goroutines append one event at a time to one stream
// (500 each at scale 1, 50 when no scale is set), each with the exact version it believes current,
// retrying with the actual version a conflict reports. Exactly every event must land, at
// versions 1..N with no gap and no repeat.
func (s *suite) testRaceExact(t *testing.T) {
	t.Parallel()
	s.race(t, true)
}

// testRaceAny is testRaceExact with nova.Any and 500 events per goroutine at
// scale 1: no conflicts, and still no event lost, none twice, versions
// 1..N.
func (s *suite) testRaceAny(t *testing.T) {
	t.Parallel()
	s.race(t, false)
}

func (s *suite) race(t *testing.T, exact bool) {
	st := s.store(t)
	ctx := t.Context()
	const stream = "contended"
	per := s.n(raceAppends)
	if exact {
		per = scaled(raceAppends, s.exact)
	}
	total := raceWriters * per

	var (
		wg        sync.WaitGroup
		conflicts atomic.Int64
		mu        sync.Mutex
		appended  = make(map[string]bool, total)
		results   = make(map[uint64]string, total) // version -> ID, from append results
	)
	for w := range raceWriters {
		wg.Go(func() {
			var known uint64 // the writer's belief about the stream's version
			for i := range per {
				d := NewEventData("raced", fmt.Sprintf(`{"w":%d,"i":%d}`, w, i))
				for {
					exp := nova.Any
					if exact {
						exp = nova.Exact(known)
					}
					res, err := st.Append(ctx, stream, exp, d)
					if err == nil {
						if res.FirstVersion != res.LastVersion || res.Duplicate || (exact && res.LastVersion != known+1) {
							t.Errorf("writer %d: Append(expected %s) of one event returned %+v", w, exp, res)
							return
						}
						known = res.LastVersion
						mu.Lock()
						appended[d.ID] = true
						if old, ok := results[res.LastVersion]; ok {
							t.Errorf("version %d returned for two appends: %s and %s", res.LastVersion, old, d.ID)
						}
						results[res.LastVersion] = d.ID
						mu.Unlock()
						break
					}
					var ce *nova.ConcurrencyError
					if !exact || !errors.As(err, &ce) {
						t.Errorf("writer %d: Append(expected %s): %v", w, exp, err)
						return
					}
					if ce.Stream != stream || ce.Expected != exp || ce.Actual == known {
						t.Errorf("writer %d: conflict %+v for expected %s does not say what the stream holds", w, *ce, exp)
						return
					}
					conflicts.Add(1)
					known = ce.Actual
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("%d writers x %d appends, exact=%v: %d conflicts retried", raceWriters, per, exact, conflicts.Load())

	got := MustReadStream(t, st, stream, nova.ReadStreamOptions{})
	if len(got) != total {
		t.Fatalf("stream has %d events, want %d", len(got), total)
	}
	if want := seq(1, uint64(total)); !slices.Equal(versions(got), want) {
		t.Fatalf("stream versions = %s, want %s", span(versions(got)), span(want))
	}
	seen := make(map[string]bool, total)
	for _, e := range got {
		if seen[e.ID] {
			t.Fatalf("event %s stored twice", e.ID)
		}
		seen[e.ID] = true
		if !appended[e.ID] {
			t.Fatalf("event %s at version %d was never appended", e.ID, e.Version)
		}
		if results[e.Version] != e.ID {
			t.Fatalf("version %d holds %s, but its append returned it for %s", e.Version, e.ID, results[e.Version])
		}
	}
	log := MustReadAll(t, st)
	if len(log) != total {
		t.Fatalf("log has %d events, want %d", len(log), total)
	}
	increasing(t, log, "ReadAll")
	if infos := MustStreams(t, st, nova.StreamsOptions{}); len(infos) != 1 || infos[0] != (nova.StreamInfo{Stream: stream, Version: uint64(total)}) {
		t.Fatalf("Streams = %v, want [%s@%d]", infos, stream, total)
	}
}

// testRaceCreate has 16 goroutines create the same stream at once with
// nova.NoStream, in several rounds: exactly one wins each round, and every
// other gets a *nova.ConcurrencyError (not, say, a unique-key violation
// from a database) and writes nothing.
func (s *suite) testRaceCreate(t *testing.T) {
	t.Parallel()
	st := s.store(t)
	ctx := t.Context()
	const racers, rounds = 16, 20
	for r := range rounds {
		stream := fmt.Sprintf("created-%d", r)
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			winners []string
		)
		for range racers {
			wg.Go(func() {
				batch := Events("created", 2)
				_, err := st.Append(ctx, stream, nova.NoStream, batch...)
				var ce *nova.ConcurrencyError
				switch {
				case err == nil:
					mu.Lock()
					winners = append(winners, ids(batch)...)
					mu.Unlock()
				case errors.As(err, &ce):
					if ce.Stream != stream || ce.Expected != nova.NoStream || ce.Actual != 2 {
						t.Errorf("losing NoStream append: %+v, want stream %q, expected no-stream, actual 2", *ce, stream)
					}
				default:
					t.Errorf("losing NoStream append: %v, want a *nova.ConcurrencyError", err)
				}
			})
		}
		wg.Wait()
		if len(winners) != 2 {
			t.Fatalf("round %d: %d of %d NoStream appends succeeded, want exactly 1", r, len(winners)/2, racers)
		}
		if got := MustReadStream(t, st, stream, nova.ReadStreamOptions{}); !slices.Equal(ids(got), winners) {
			t.Fatalf("round %d: stream holds %v, want the winner's %v", r, ids(got), winners)
		}
	}
}

// testRaceRetry has 8 goroutines append the same batch at once, as a
// client whose first attempt timed out might while it is still in flight:
// each must succeed, exactly one with Duplicate false, all with the same
// versions and position, and the batch must be stored once. A backend that
// lets two of them pass the ID check must turn the loser's unique-key
// violation into the idempotent answer, not an error.
func (s *suite) testRaceRetry(t *testing.T) {
	t.Parallel()
	st := s.store(t)
	ctx := t.Context()
	const racers, rounds = 8, 20
	for r := range rounds {
		stream := fmt.Sprintf("retried-%d", r)
		exps := []nova.ExpectedVersion{nova.NoStream, nova.Any, nova.Exact(0)}
		exp := exps[r%len(exps)]
		batch := Events("retried", 3)
		results := make([]nova.AppendResult, racers)
		var wg sync.WaitGroup
		for i := range racers {
			wg.Go(func() {
				res, err := st.Append(ctx, stream, exp, batch...)
				if err != nil {
					t.Errorf("round %d: concurrent retry %d (expected %s): %v, want success", r, i, exp, err)
				}
				results[i] = res
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		fresh := 0
		for i, res := range results {
			if !res.Duplicate {
				fresh++
			}
			res.Duplicate = false
			if want := (nova.AppendResult{FirstVersion: 1, LastVersion: 3, Position: results[0].Position}); res != want {
				t.Fatalf("round %d: retry %d returned %+v, want %+v", r, i, res, want)
			}
		}
		if fresh != 1 {
			t.Fatalf("round %d: %d of %d identical appends reported a fresh write, want exactly 1", r, fresh, racers)
		}
		if got := MustReadStream(t, st, stream, nova.ReadStreamOptions{}); !slices.Equal(ids(got), ids(batch)) {
			t.Fatalf("round %d: stream holds %v, want the batch once: %v", r, ids(got), ids(batch))
		}
	}
}
