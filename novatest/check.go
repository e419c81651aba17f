package novatest

// This file holds what the cases use to check a store: its visible state,
// comparisons of logs, and calls bounded by the suite's timeout.

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nova-go/nova"
)

// state is everything a store shows: its log and its stream listing.
type state struct {
	log     []nova.Event
	streams []nova.StreamInfo
}

func stateOf(t *testing.T, st nova.Store) state {
	t.Helper()
	return state{log: MustReadAll(t, st), streams: MustStreams(t, st, nova.StreamsOptions{})}
}

// unchanged fails t unless st still shows before.
func unchanged(t *testing.T, st nova.Store, before state, what string) {
	t.Helper()
	after := stateOf(t, st)
	if d := diffLog(before.log, after.log); d != "" {
		t.Errorf("%s wrote to the log: %s", what, d)
	}
	if !slices.Equal(before.streams, after.streams) {
		t.Errorf("%s changed the stream listing: before %v, after %v", what, before.streams, after.streams)
	}
}

// diffLog describes the first difference between two logs by ID, stream,
// version and position, or returns "".
func diffLog(a, b []nova.Event) string {
	for i := range min(len(a), len(b)) {
		x, y := a[i], b[i]
		if x.ID != y.ID || x.Stream != y.Stream || x.Version != y.Version || x.Position != y.Position {
			return fmt.Sprintf("event %d was %s, is %s", i, describe(x), describe(y))
		}
	}
	if len(a) != len(b) {
		return fmt.Sprintf("%d events before, %d after", len(a), len(b))
	}
	return ""
}

func describe(e nova.Event) string {
	return fmt.Sprintf("%s@%s/%d(pos %s)", e.ID, e.Stream, e.Version, e.Position)
}

// ids returns the IDs of events.
func ids[E interface{ nova.Event | nova.EventData }](events []E) []string {
	out := make([]string, len(events))
	for i, e := range events {
		switch e := any(e).(type) {
		case nova.Event:
			out[i] = e.ID
		case nova.EventData:
			out[i] = e.ID
		}
	}
	return out
}

// versions returns the versions of events.
func versions(events []nova.Event) []uint64 {
	out := make([]uint64, len(events))
	for i, e := range events {
		out[i] = e.Version
	}
	return out
}

// seq returns from, from+1, ..., to (or downwards when to < from).
func seq(from, to uint64) []uint64 {
	var out []uint64
	if from <= to {
		for v := from; v <= to; v++ {
			out = append(out, v)
		}
		return out
	}
	for v := from; v >= to; v-- {
		out = append(out, v)
	}
	return out
}

// increasing fails t unless positions of events strictly increase.
func increasing(t *testing.T, events []nova.Event, what string) {
	t.Helper()
	for i := 1; i < len(events); i++ {
		if !events[i-1].Position.Less(events[i].Position) {
			t.Fatalf("%s: position %s of event %d is not after position %s of event %d", what, events[i].Position, i, events[i-1].Position, i-1)
		}
	}
}

// firstErr ranges over seq and returns its first error, or errEnded if it
// ends without one.
func firstErr[T any](seq func(func(T, error) bool)) error {
	for _, err := range seq {
		if err != nil {
			return err
		}
	}
	return errEnded
}

// within runs f in a goroutine and returns its result, failing t if f does
// not return within the suite's timeout or panics.
func (s *suite) within(t *testing.T, what string, f func() error) error {
	t.Helper()
	type result struct {
		err   error
		panic any
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- result{panic: p}
			}
		}()
		done <- result{err: f()}
	}()
	select {
	case r := <-done:
		if r.panic != nil {
			t.Fatalf("%s panicked: %v", what, r.panic)
		}
		return r.err
	case <-time.After(s.timeout):
		t.Fatalf("%s did not end within %v", what, s.timeout)
		return nil
	}
}

// span shows a list of versions briefly.
func span(vs []uint64) string {
	if len(vs) <= 12 {
		return fmt.Sprint(vs)
	}
	return fmt.Sprintf("%v ... %v (%d)", vs[:5], vs[len(vs)-5:], len(vs))
}

// listing shows a stream listing briefly.
func listing(infos []nova.StreamInfo) string {
	var b strings.Builder
	for i, in := range infos {
		if i == 8 && len(infos) > 12 {
			fmt.Fprintf(&b, "... (%d in all)", len(infos))
			break
		}
		fmt.Fprintf(&b, "%s@%d ", in.Stream, in.Version)
	}
	return "[" + strings.TrimSpace(b.String()) + "]"
}
