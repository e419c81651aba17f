package novatest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/nova-go/nova"
)

// Sizes of the StreamOrder case at scale 1: orderWriters goroutines
// append orderAppends events each to orderStreams streams.
const (
	orderWriters = 16
	orderStreams = 4
	orderAppends = 150
)

// testStreamOrder has many writers append to a few streams at once, with
// every kind of expected version (StreamExists, Any, and exact versions
// retried on conflict, batches of one to three events), while a
// subscriber follows the log. In the global order, each stream's events
// must come in version order, 1, 2, 3, ..., with none missing: both in
// what the subscriber delivered and in ReadAll afterwards. A backend that
// fixes an append's place in the log before it fixes its version (a
// transaction ID taken before the stream's lock) delivers a stream's
// versions out of order here, and a projection that skips versions it
// has passed loses events.
func (s *suite) testStreamOrder(t *testing.T) {
	t.Parallel()
	st := s.store(t)
	ctx := t.Context()
	streams := make([]string, orderStreams)
	for i := range streams {
		streams[i] = fmt.Sprintf("ordered-%d", i)
		MustAppend(t, st, streams[i], nova.NoStream, Events("first", 1)...)
	}
	sub := s.subscribe(t, st, nova.SubscribeOptions{})

	per := s.n(orderAppends)
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := orderStreams // the first events
	for w := range orderWriters {
		wg.Go(func() {
			for i := range per {
				stream := streams[(w+i)%orderStreams]
				evs := Events(fmt.Sprintf("w%d", w), 1+(w+i)%3)
				if err := appendKind(ctx, st, stream, w%3, evs); err != nil {
					t.Errorf("writer %d, append %d to %s: %v", w, i, stream, err)
					return
				}
				mu.Lock()
				total += len(evs)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	checkOrder := func(what string, log []nova.Event) {
		t.Helper()
		next := make(map[string]uint64)
		for _, e := range log {
			if want := next[e.Stream] + 1; e.Version != want {
				t.Fatalf("%s: %s comes after version %d of its stream: want version %d next", what, describe(e), next[e.Stream], want)
			}
			next[e.Stream] = e.Version
		}
	}
	log := MustReadAll(t, st)
	if len(log) != total {
		t.Fatalf("ReadAll returned %d events, want the %d appended", len(log), total)
	}
	increasing(t, log, "ReadAll")
	checkOrder("ReadAll", log)
	got := make([]nova.Event, 0, total)
	for len(got) < total {
		got = append(got, sub.next(t))
	}
	increasing(t, got, "the subscriber")
	checkOrder("the subscriber", got)
	if d := diffLog(got, log); d != "" {
		t.Fatalf("the subscriber delivered another log than ReadAll: %s", d)
	}
}

// appendKind appends evs to stream with the expected version of kind 0
// (StreamExists), 1 (Any) or 2 (the exact version read first, retried
// with the actual one on a conflict).
func appendKind(ctx context.Context, st nova.Store, stream string, kind int, evs []nova.EventData) error {
	switch kind {
	case 0:
		_, err := st.Append(ctx, stream, nova.StreamExists, evs...)
		return err
	case 1:
		_, err := st.Append(ctx, stream, nova.Any, evs...)
		return err
	}
	var known uint64
	for e, err := range st.ReadStream(ctx, stream, nova.ReadStreamOptions{Direction: nova.Backwards, Limit: 1}) {
		if err != nil {
			return err
		}
		known = e.Version
	}
	for {
		_, err := st.Append(ctx, stream, nova.Exact(known), evs...)
		var ce *nova.ConcurrencyError
		if !errors.As(err, &ce) {
			return err
		}
		known = ce.Actual
	}
}
