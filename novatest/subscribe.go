package novatest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nova-go/nova"
)

// subscription runs a store's Subscribe loop in a goroutine it owns and
// hands the events to the test through a channel, so the test can append
// while it reads.
type subscription struct {
	events  chan nova.Event
	cancel  context.CancelFunc
	done    chan struct{}
	final   error // what the loop ended with; errEnded if it ended silently
	timeout time.Duration
}

var errEnded = errors.New("novatest: subscription ended without an error")

// subscribe starts a subscription that the test's cleanup stops and waits
// for.
func (s *suite) subscribe(t *testing.T, st nova.Store, opts nova.SubscribeOptions) *subscription {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	sub := &subscription{events: make(chan nova.Event, 1024), cancel: cancel, done: make(chan struct{}), timeout: s.timeout}
	go func() {
		defer close(sub.done)
		sub.final = errEnded
		for e, err := range st.Subscribe(ctx, opts) {
			if err != nil {
				sub.final = err
				return
			}
			select {
			case sub.events <- e:
			case <-ctx.Done():
				// Stopped: drop the event and let the loop see ctx.
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-sub.done:
		case <-time.After(s.timeout):
			t.Errorf("subscription did not end within %v of its context being cancelled", s.timeout)
		}
	})
	return sub
}

// next returns the next event, failing t if the subscription ends or none
// arrives within the suite's timeout.
func (sub *subscription) next(t *testing.T) nova.Event {
	t.Helper()
	timer := time.NewTimer(sub.timeout)
	defer timer.Stop()
	select {
	case e := <-sub.events:
		return e
	case <-sub.done:
		select {
		case e := <-sub.events:
			return e
		default:
		}
		t.Fatalf("subscription ended: %v", sub.final)
	case <-timer.C:
		t.Fatalf("no event from the subscription within %v", sub.timeout)
	}
	panic("unreachable")
}

// stop cancels the subscription and returns the error its loop ended with,
// failing t if it does not end within the suite's timeout.
func (sub *subscription) stop(t *testing.T) error {
	t.Helper()
	sub.cancel()
	return sub.wait(t)
}

// wait returns the error the loop ended with, failing t if it does not end
// within the suite's timeout.
func (sub *subscription) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-sub.done:
		return sub.final
	case <-time.After(sub.timeout):
		t.Fatalf("subscription did not end within %v", sub.timeout)
		return nil
	}
}

// testSubscribeResume subscribes from the start, from the middle and from
// the end of a log: each subscription must deliver exactly the events after
// its position, then the events appended while it runs, and nothing else.
func (s *suite) testSubscribeResume(t *testing.T) {
	t.Parallel()
	for _, from := range []int{0, 1, 5, 9, 10} {
		t.Run(fmt.Sprintf("after %d", from), func(t *testing.T) {
			t.Parallel()
			st := s.store(t)
			for i := range 10 {
				MustAppend(t, st, fmt.Sprintf("s-%d", i%3), nova.Any, Events("past", 1)...)
			}
			log := MustReadAll(t, st)
			opts := nova.SubscribeOptions{}
			if from > 0 {
				opts.From = log[from-1].Position
			}
			sub := s.subscribe(t, st, opts)
			for _, want := range log[from:] {
				if got := sub.next(t); got.ID != want.ID || got.Position != want.Position {
					t.Fatalf("catch-up delivered %s, want %s", describe(got), describe(want))
				}
			}
			var prev nova.Position
			if from > 0 {
				prev = log[from-1].Position
			}
			for i := range 3 {
				d := NewEventData("live", "{}")
				res := MustAppend(t, st, "live", nova.Any, d)
				got := sub.next(t)
				if got.ID != d.ID || got.Position != res.Position || !prev.Less(got.Position) {
					t.Fatalf("live event %d: delivered %s, want %s at %s after %s", i, describe(got), d.ID, res.Position, prev)
				}
				prev = got.Position
			}
			// Nothing else is pending: the next event is the next appended.
			marker := NewEventData("marker", "{}")
			MustAppend(t, st, "marker", nova.Any, marker)
			if got := sub.next(t); got.ID != marker.ID {
				t.Fatalf("after the live events the subscription delivered %s, want the marker %s", describe(got), marker.ID)
			}
			if err := sub.stop(t); !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled subscription ended with %v, want an error matching context.Canceled", err)
			}
		})
	}
}

// subscribeWriters and subscribeEvents are the writer count and the events
// each writes at scale 1.
const (
	subscribeWriters = 16
	subscribeEvents  = 10_000
)

// testSubscribeWriters has 16 writers append to their own streams, in
// batches of 1 to 4 events, while a subscriber follows the log from the
// start and a second one joins in the middle from the position the first
// had reached, and a poller reads the log with ReadAll pages from the last
// position it saw. All three must receive every event exactly once,
// positions strictly increasing, each stream's versions in order: the
// global log is gap-free while it grows.
func (s *suite) testSubscribeWriters(t *testing.T) {
	t.Parallel()
	st := s.store(t)
	ctx := t.Context()
	per := s.n(subscribeEvents)
	total := subscribeWriters * per
	first := s.subscribe(t, st, nova.SubscribeOptions{})

	written := make([][]string, subscribeWriters) // IDs each writer appended, in order
	var wg sync.WaitGroup
	wctx, stopWriters := context.WithCancel(ctx)
	defer func() {
		stopWriters()
		wg.Wait()
	}()
	pollCheck := newOrderCheck(total)
	polled := make(chan error, 1)
	pctx, stopPolling := context.WithCancel(ctx)
	defer func() {
		stopPolling()
		<-polled
	}()
	go func() { polled <- poll(pctx, st, total, pollCheck) }()

	start := time.Now()
	for w := range subscribeWriters {
		wg.Go(func() {
			stream := fmt.Sprintf("writer-%02d", w)
			for v := 0; v < per; {
				batch := Events("written", min(1+v%4, per-v))
				res, err := st.Append(wctx, stream, nova.Exact(uint64(v)), batch...)
				if err != nil {
					if wctx.Err() == nil {
						t.Errorf("writer %d: append at version %d: %v", w, v, err)
						first.cancel() // the reader stops waiting for events that will not come
					}
					return
				}
				if res.LastVersion != uint64(v+len(batch)) {
					t.Errorf("writer %d: append at version %d returned %+v", w, v, res)
					return
				}
				written[w] = append(written[w], ids(batch)...)
				v += len(batch)
			}
		})
	}

	type seen struct {
		id  string
		pos nova.Position
	}
	received := make([]seen, 0, total)
	check := newOrderCheck(total)
	var second *subscription
	joinAt := total / 4
	for range total {
		e := first.next(t)
		if err := check.add(e); err != nil {
			t.Fatalf("first subscriber, event %d: %v", len(received), err)
		}
		received = append(received, seen{e.ID, e.Position})
		if len(received) == joinAt {
			second = s.subscribe(t, st, nova.SubscribeOptions{From: e.Position})
		}
	}
	wg.Wait()
	t.Logf("%d writers x %d events: first subscriber had all %d after %v", subscribeWriters, per, total, time.Since(start).Round(time.Millisecond))
	if t.Failed() {
		return
	}
	select {
	case err := <-polled:
		polled <- nil // for the deferred wait
		if err != nil {
			t.Fatalf("ReadAll poller: %v", err)
		}
	case <-time.After(s.timeout):
		t.Fatalf("ReadAll poller had %d of %d events %v after the writers finished", pollCheck.count(), total, s.timeout)
	}
	for w, want := range written {
		stream := fmt.Sprintf("writer-%02d", w)
		if got := check.ids[stream]; !slices.Equal(got, want) {
			t.Fatalf("first subscriber received %d events of writer %d, want its %d in append order", len(got), w, len(want))
		}
		if got := pollCheck.ids[stream]; !slices.Equal(got, want) {
			t.Fatalf("ReadAll poller received %d events of writer %d, want its %d in append order", len(got), w, len(want))
		}
	}
	for i, want := range received[joinAt:] {
		if got := second.next(t); got.ID != want.id || got.Position != want.pos {
			t.Fatalf("second subscriber, event %d after joining: got %s, want %s at %s", i, describe(got), want.id, want.pos)
		}
	}
	// Nothing more is pending for either.
	marker := NewEventData("marker", "{}")
	MustAppend(t, st, "marker", nova.NoStream, marker)
	for i, sub := range []*subscription{first, second} {
		if got := sub.next(t); got.ID != marker.ID {
			t.Fatalf("subscriber %d: after every written event came %s, want the marker %s", i+1, describe(got), marker.ID)
		}
		if err := sub.stop(t); !errors.Is(err, context.Canceled) {
			t.Fatalf("subscriber %d: cancelled subscription ended with %v, want an error matching context.Canceled", i+1, err)
		}
	}
}

// poll reads the log with ReadAll from the last position it saw until it
// has seen want events, feeding check.
func poll(ctx context.Context, st nova.Store, want int, check *orderCheck) error {
	var from nova.Position
	for check.count() < want {
		n := 0
		for e, err := range st.ReadAll(ctx, nova.ReadAllOptions{From: from, Limit: 1000}) {
			if err != nil {
				return err
			}
			if err := check.add(e); err != nil {
				return fmt.Errorf("event %d: %w", check.count(), err)
			}
			from = e.Position
			n++
		}
		if n == 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Millisecond):
			}
		}
	}
	return nil
}

// orderCheck checks a delivery: positions strictly increasing, each ID
// once, each stream's versions consecutive from 1.
type orderCheck struct {
	mu       sync.Mutex
	last     nova.Position
	n        int
	seen     map[string]bool
	versions map[string]uint64
	ids      map[string][]string
}

func newOrderCheck(size int) *orderCheck {
	return &orderCheck{seen: make(map[string]bool, size), versions: map[string]uint64{}, ids: map[string][]string{}}
}

func (c *orderCheck) add(e nova.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n > 0 && !c.last.Less(e.Position) {
		return fmt.Errorf("%s delivered after position %s", describe(e), c.last)
	}
	if c.seen[e.ID] {
		return fmt.Errorf("%s delivered twice", describe(e))
	}
	if want := c.versions[e.Stream] + 1; e.Version != want {
		return fmt.Errorf("%s delivered when version %d of its stream was next", describe(e), want)
	}
	c.n++
	c.last = e.Position
	c.seen[e.ID] = true
	c.versions[e.Stream] = e.Version
	c.ids[e.Stream] = append(c.ids[e.Stream], e.ID)
	return nil
}

func (c *orderCheck) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// pingPongRounds is how many appends testSubscribeWakeUp makes at scale 1.
const pingPongRounds = 1000

// testSubscribeWakeUp appends one event at a time and waits until each of
// four live subscribers has it before appending the next, so every append
// lands while the subscribers wait: an append that fails to wake them, even
// once, leaves them waiting (until a polling fallback, if the backend has
// one, finds it).
func (s *suite) testSubscribeWakeUp(t *testing.T) {
	t.Parallel()
	st := s.store(t)
	subs := make([]*subscription, 4)
	for i := range subs {
		subs[i] = s.subscribe(t, st, nova.SubscribeOptions{})
	}
	start := time.Now()
	rounds := s.n(pingPongRounds)
	for i := range rounds {
		d := NewEventData("ping", "{}")
		res := MustAppend(t, st, "ping", nova.Exact(uint64(i)), d)
		for j, sub := range subs {
			if got := sub.next(t); got.ID != d.ID || got.Position != res.Position {
				t.Fatalf("round %d: subscriber %d received %s, want %s at %s", i, j, describe(got), d.ID, res.Position)
			}
		}
	}
	t.Logf("%d appends, each delivered live to 4 subscribers, in %v", rounds, time.Since(start).Round(time.Millisecond))
}
