package novatest

import (
	"context"
	"fmt"
	"iter"
	"testing"

	"github.com/nova-go/nova"
)

// NewEventData returns an event of type typ with a fresh ID and data as its
// payload.
func NewEventData(typ, data string) nova.EventData {
	return nova.EventData{ID: nova.NewEventID(), Type: typ, Data: []byte(data)}
}

// Events returns n events of type typ with fresh IDs and the JSON payloads
// {"n":1} to {"n":n}.
func Events(typ string, n int) []nova.EventData {
	out := make([]nova.EventData, n)
	for i := range out {
		out[i] = NewEventData(typ, fmt.Sprintf(`{"n":%d}`, i+1))
	}
	return out
}

// Collect ranges over seq and returns what it yielded, stopping after limit
// items (0 means no limit) or at the first error, which it returns with the
// items before it. Stopping after limit items breaks out of the loop, so
// Collect also serves to take the first items of an endless subscription.
func Collect[T any](seq iter.Seq2[T, error], limit int) ([]T, error) {
	var out []T
	if limit == 0 {
		limit = -1
	}
	for v, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, v)
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

// MustAppend appends events to stream and fails the test at once on error.
func MustAppend(t testing.TB, s nova.Store, stream string, expected nova.ExpectedVersion, events ...nova.EventData) nova.AppendResult {
	t.Helper()
	res, err := s.Append(context.Background(), stream, expected, events...)
	if err != nil {
		t.Fatalf("append %d events to %q (expected %s): %v", len(events), stream, expected, err)
	}
	return res
}

// MustReadAll returns the whole global log and fails the test at once on
// error.
func MustReadAll(t testing.TB, s nova.Store) []nova.Event {
	t.Helper()
	evs, err := Collect(s.ReadAll(context.Background(), nova.ReadAllOptions{}), 0)
	if err != nil {
		t.Fatalf("read all: %v", err)
	}
	return evs
}

// MustReadStream returns a stream's events as opts selects and fails the
// test at once on error.
func MustReadStream(t testing.TB, s nova.Store, stream string, opts nova.ReadStreamOptions) []nova.Event {
	t.Helper()
	evs, err := Collect(s.ReadStream(context.Background(), stream, opts), 0)
	if err != nil {
		t.Fatalf("read stream %q: %v", stream, err)
	}
	return evs
}

// MustStreams returns the stream listing opts selects and fails the test at
// once on error.
func MustStreams(t testing.TB, s nova.Store, opts nova.StreamsOptions) []nova.StreamInfo {
	t.Helper()
	infos, err := Collect(s.Streams(context.Background(), opts), 0)
	if err != nil {
		t.Fatalf("streams: %v", err)
	}
	return infos
}
