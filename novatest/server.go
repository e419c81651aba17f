package novatest

// This file holds the cases for stores that talk to a server: an append
// transaction left open while others commit, connections dropped under a
// running subscription, and subscribers that start while writers run.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nova-go/nova"
)

// OpenTxFunc appends events to stream of st in a transaction that it leaves
// open, and returns the function that commits it. The events must not be
// visible to anyone until commit is called. The function must register with
// t a cleanup that rolls the transaction back if commit is never called.
// Once it has returned, the transaction must hold whatever it holds in the
// backend (rows, locks, an assigned transaction ID) exactly as a slow
// application transaction would.
type OpenTxFunc func(ctx context.Context, t *testing.T, st nova.Store, stream string, events []nova.EventData) (commit func() error, err error)

// ConnKillFunc drops the connections between st and its server, as a
// failover, a restart or an idle-connection reaper would: on PostgreSQL by
// terminating the store's sessions, on MySQL with KILL, on NATS by closing
// the server's client connections or restarting it. It returns once the
// connections are gone; the store must notice by itself.
type ConnKillFunc func(ctx context.Context, st nova.Store) error

// WithOpenTransaction enables the OpenTransaction case for backends whose
// appends can run inside a caller's transaction. f appends in such a
// transaction and leaves it open (see [OpenTxFunc]).
//
// The case: while the transaction is open, other writers append to other
// streams; the subscribers (one started before the transaction, one while
// it is open) and ReadAll must not deliver anything past the events
// committed before it. After commit, they must deliver every event (the
// transaction's and the other writers') exactly once, positions strictly
// increasing, in the order of the final log. A backend that delivered the
// later commits first would have to skip the transaction's events or
// deliver them out of order, and fails.
func WithOpenTransaction(f OpenTxFunc) StoreOption {
	return func(o *storeOptions) { o.openTx = f }
}

// WithConnectionKiller enables the ConnectionDrop case for backends that
// talk to a server. f drops the store's connections (see [ConnKillFunc]).
//
// The case: writers append while a subscriber follows the log; the
// connections are dropped several times. Appends that fail on a dropped
// connection are retried with the same events and expected version, as
// any careful client would (an append whose outcome is unknown is an
// idempotent retry). The subscription must not end: it resumes by itself
// and delivers every event exactly once, in the order of the final log.
func WithConnectionKiller(f ConnKillFunc) StoreOption {
	return func(o *storeOptions) { o.killConns = f }
}

// Sizes of the server cases at scale 1.
const (
	openTxWriters   = 4   // writers appending while the transaction is open
	openTxAppends   = 10  // single-event appends each
	dropWriters     = 4   // writers appending while connections drop
	dropEvents      = 500 // events each, in batches of 1 to 4
	dropKills       = 3   // times the connections are dropped
	duringWriters   = 8   // writers running while subscribers start
	duringEvents    = 500 // events each, in batches of 1 to 4
	heldForInterval = 250 * time.Millisecond
)

// testOpenTransaction: see WithOpenTransaction.
func (s *suite) testOpenTransaction(t *testing.T) {
	if s.openTx == nil {
		t.Skip("the backend passed no WithOpenTransaction")
	}
	// Not parallel: RunStore runs this case alone (see there).
	st := s.store(t)
	ctx := s.ctx(t)
	for i := range 5 {
		MustAppend(t, st, fmt.Sprintf("before-%d", i), nova.NoStream, Events("before", 1)...)
	}
	before := MustReadAll(t, st)
	early := s.subscribe(t, st, nova.SubscribeOptions{})
	for i, want := range before {
		if got := early.next(t); got.ID != want.ID {
			t.Fatalf("before the transaction, event %d: delivered %s, want %s", i, describe(got), describe(want))
		}
	}

	txEvents := Events("in-transaction", 3)
	commit, err := s.openTx(ctx, t, st, "open", txEvents)
	if err != nil {
		t.Fatalf("open transaction: %v", err)
	}
	committed := false
	commitOnce := func() {
		t.Helper()
		committed = true
		if err := commit(); err != nil {
			t.Fatalf("commit the open transaction: %v", err)
		}
	}

	// Other writers append while the transaction is open. On a backend
	// whose appends serialize they wait for it; on one that does not they
	// commit at once. Either way none of their events may be delivered
	// before the transaction's.
	var wg sync.WaitGroup
	wctx, stopWriters := context.WithCancel(ctx)
	defer func() {
		if !committed {
			_ = commit() // a failed case must not leave writers waiting on it
		}
		stopWriters()
		wg.Wait()
	}()
	var appended atomic.Int64
	written := make([][]string, openTxWriters)
	for w := range openTxWriters {
		wg.Go(func() {
			stream := fmt.Sprintf("after-%d", w)
			for i := range openTxAppends {
				d := NewEventData("after", fmt.Sprintf(`{"w":%d,"i":%d}`, w, i))
				if _, err := st.Append(wctx, stream, nova.Exact(uint64(i)), d); err != nil {
					if wctx.Err() == nil {
						t.Errorf("writer %d, append %d beside the open transaction: %v", w, i, err)
					}
					return
				}
				written[w] = append(written[w], d.ID)
				appended.Add(1)
			}
		})
	}
	late := s.subscribe(t, st, nova.SubscribeOptions{})
	for i, want := range before {
		if got := late.next(t); got.ID != want.ID {
			t.Fatalf("subscriber started during the transaction, event %d: delivered %s, want %s", i, describe(got), describe(want))
		}
	}
	// Let the writers commit what they can (they may be waiting for the
	// transaction) and the subscribers run; the waits only give a wrong
	// store time to deliver, they assert no speed.
	for waited := time.Duration(0); appended.Load() < openTxWriters*openTxAppends && waited < heldForInterval; waited += 5 * time.Millisecond {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(heldForInterval)
	if got := MustReadAll(t, st); !slices.Equal(ids(got), ids(before)) {
		t.Fatalf("ReadAll while a transaction was open returned %d events, want only the %d committed before it (%d later appends had returned)",
			len(got), len(before), appended.Load())
	}
	for i, sub := range []*subscription{early, late} {
		select {
		case e := <-sub.events:
			t.Fatalf("subscriber %d delivered %s while a transaction holding earlier events was open (%d later appends had returned)",
				i+1, describe(e), appended.Load())
		default:
		}
	}
	t.Logf("%d appends beside the open transaction returned before its commit", appended.Load())

	commitOnce()
	wg.Wait()
	if t.Failed() {
		return
	}
	log := MustReadAll(t, st)
	if want := len(before) + len(txEvents) + openTxWriters*openTxAppends; len(log) != want {
		t.Fatalf("after commit the log has %d events, want %d", len(log), want)
	}
	increasing(t, log, "ReadAll after commit")
	if got := MustReadStream(t, st, "open", nova.ReadStreamOptions{}); !slices.Equal(ids(got), ids(txEvents)) {
		t.Fatalf("stream of the open transaction holds %v, want %v", ids(got), ids(txEvents))
	}
	for i, sub := range []*subscription{early, late} {
		check := newOrderCheck(len(log))
		for _, e := range before {
			if err := check.add(e); err != nil {
				t.Fatal(err)
			}
		}
		for j, want := range log[len(before):] {
			got := sub.next(t)
			if err := check.add(got); err != nil {
				t.Fatalf("subscriber %d after commit, event %d: %v", i+1, j, err)
			}
			if got.ID != want.ID || got.Position != want.Position {
				t.Fatalf("subscriber %d after commit, event %d: delivered %s, want %s as the log holds it", i+1, j, describe(got), describe(want))
			}
		}
		for w, want := range written {
			if got := check.ids[fmt.Sprintf("after-%d", w)]; !slices.Equal(got, want) {
				t.Fatalf("subscriber %d received %d events of writer %d, want its %d in order", i+1, len(got), w, len(want))
			}
		}
	}
	marker := NewEventData("marker", "{}")
	MustAppend(t, st, "marker", nova.NoStream, marker)
	for i, sub := range []*subscription{early, late} {
		if got := sub.next(t); got.ID != marker.ID {
			t.Fatalf("subscriber %d: after the log came %s, want the marker %s", i+1, describe(got), marker.ID)
		}
	}
}

// testConnectionDrop: see WithConnectionKiller.
func (s *suite) testConnectionDrop(t *testing.T) {
	if s.killConns == nil {
		t.Skip("the backend passed no WithConnectionKiller")
	}
	// Not parallel: RunStore runs this case alone (see there).
	st := s.store(t)
	ctx := t.Context()
	per := s.n(dropEvents)
	total := dropWriters * per
	sub := s.subscribe(t, st, nova.SubscribeOptions{})

	var wg sync.WaitGroup
	wctx, stopWriters := context.WithCancel(ctx)
	defer func() {
		stopWriters()
		wg.Wait()
	}()
	written := make([][]string, dropWriters)
	var retried atomic.Int64
	for w := range dropWriters {
		wg.Go(func() {
			stream := fmt.Sprintf("writer-%d", w)
			for v := 0; v < per; {
				batch := Events("written", min(1+v%4, per-v))
				var res nova.AppendResult
				var err error
				deadline := time.Now().Add(s.timeout)
				for {
					res, err = st.Append(wctx, stream, nova.Exact(uint64(v)), batch...)
					if err == nil || wctx.Err() != nil || errors.Is(err, nova.ErrConcurrency) ||
						errors.Is(err, nova.ErrDuplicateEvent) || errors.Is(err, nova.ErrInvalid) || time.Now().After(deadline) {
						break
					}
					// The connection dropped under the append: its outcome
					// is unknown, so retry it as it was.
					retried.Add(1)
					time.Sleep(5 * time.Millisecond)
				}
				if err != nil {
					if wctx.Err() == nil {
						t.Errorf("writer %d: append at version %d: %v", w, v, err)
						sub.cancel()
					}
					return
				}
				if res.FirstVersion != uint64(v+1) || res.LastVersion != uint64(v+len(batch)) {
					t.Errorf("writer %d: append at version %d returned %+v", w, v, res)
					sub.cancel()
					return
				}
				written[w] = append(written[w], ids(batch)...)
				v += len(batch)
			}
		})
	}

	check := newOrderCheck(total)
	var got []nova.Event
	kills := 0
	for len(got) < total {
		if kills < dropKills && len(got) >= total*(kills+1)/(dropKills+1) {
			kctx, cancel := context.WithTimeout(ctx, s.timeout)
			err := s.killConns(kctx, st)
			cancel()
			if err != nil {
				t.Fatalf("drop the connections: %v", err)
			}
			kills++
		}
		e := sub.next(t)
		if err := check.add(e); err != nil {
			t.Fatalf("subscriber, event %d (after %d connection drops): %v", len(got), kills, err)
		}
		got = append(got, e)
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("%d events while the connections dropped %d times; %d appends retried", total, kills, retried.Load())
	log := MustReadAll(t, st)
	if d := diffLog(log, got); d != "" {
		t.Fatalf("the subscriber's events differ from the log: %s", d)
	}
	for w, want := range written {
		if have := check.ids[fmt.Sprintf("writer-%d", w)]; !slices.Equal(have, want) {
			t.Fatalf("subscriber received %d events of writer %d, want its %d in append order", len(have), w, len(want))
		}
	}
	// Drop once more while the subscriber waits live: it must wake for the
	// next append.
	if err := s.killConns(s.ctx(t), st); err != nil {
		t.Fatalf("drop the connections: %v", err)
	}
	marker := NewEventData("marker", "{}")
	var err error
	deadline := time.Now().Add(s.timeout)
	for {
		_, err = st.Append(ctx, "marker", nova.NoStream, marker)
		if err == nil || errors.Is(err, nova.ErrConcurrency) || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("append after the connections dropped: %v", err)
	}
	if e := sub.next(t); e.ID != marker.ID {
		t.Fatalf("after the connections dropped while it waited, the subscriber delivered %s, want the marker %s", describe(e), marker.ID)
	}
	if err := sub.stop(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled subscription ended with %v, want an error matching context.Canceled", err)
	}
}

// testSubscribeDuringWrites starts subscribers while writers run: one from
// the start, one from the middle of what is committed by then, and one from
// the head of the log at that moment, so each crosses from catch-up to live
// while commits land. Each must receive exactly the events of the final log
// after its From, none missing, none twice, in order.
func (s *suite) testSubscribeDuringWrites(t *testing.T) {
	t.Parallel()
	st := s.store(t)
	ctx := t.Context()
	per := s.n(duringEvents)
	total := duringWriters * per

	var wg sync.WaitGroup
	wctx, stopWriters := context.WithCancel(ctx)
	defer func() {
		stopWriters()
		wg.Wait()
	}()
	// Each writer appends at least per events and goes on until it has
	// appended a few batches after the subscribers started, so they start
	// while writers run however fast the store is.
	var appended atomic.Int64
	var started atomic.Bool
	for w := range duringWriters {
		wg.Go(func() {
			stream := fmt.Sprintf("writer-%d", w)
			after := 0 // batches appended since the subscribers started
			for v := 0; v < per || after < 4; {
				if started.Load() {
					after++
				}
				batch := Events("written", 1+v%4)
				if _, err := st.Append(wctx, stream, nova.Exact(uint64(v)), batch...); err != nil {
					if wctx.Err() == nil {
						t.Errorf("writer %d: append at version %d: %v", w, v, err)
					}
					return
				}
				v += len(batch)
				appended.Add(int64(len(batch)))
			}
		})
	}

	// Start the subscribers once a third of the events are in.
	deadline := time.Now().Add(s.timeout)
	for appended.Load() < int64(total/3) && time.Now().Before(deadline) && !t.Failed() {
		time.Sleep(time.Millisecond)
	}
	if t.Failed() {
		return
	}
	visible := MustReadAll(t, st)
	if len(visible) == 0 {
		t.Fatalf("no event visible after %d appends returned", appended.Load())
	}
	froms := []nova.Position{nova.Start, visible[len(visible)/2].Position, visible[len(visible)-1].Position}
	subs := make([]*subscription, len(froms))
	for i, from := range froms {
		subs[i] = s.subscribe(t, st, nova.SubscribeOptions{From: from})
	}
	started.Store(true)
	wg.Wait()
	if t.Failed() {
		return
	}
	log := MustReadAll(t, st)
	t.Logf("subscribers started with %d events visible; %d in the end", len(visible), len(log))
	if n := appended.Load(); int64(len(log)) != n {
		t.Fatalf("log has %d events, want the %d appended", len(log), n)
	}
	increasing(t, log, "ReadAll")
	for i, from := range froms {
		start, _ := slices.BinarySearchFunc(log, from, func(e nova.Event, p nova.Position) int { return e.Position.Compare(p) })
		if i > 0 {
			start++ // From is exclusive and is an event's position
		}
		for j, want := range log[start:] {
			if got := subs[i].next(t); got.ID != want.ID || got.Position != want.Position {
				t.Fatalf("subscriber %d (from %s), event %d: delivered %s, want %s", i+1, from, j, describe(got), describe(want))
			}
		}
	}
	marker := NewEventData("marker", "{}")
	MustAppend(t, st, "marker", nova.NoStream, marker)
	for i, sub := range subs {
		if got := sub.next(t); got.ID != marker.ID {
			t.Fatalf("subscriber %d: after the log came %s, want the marker %s", i+1, describe(got), marker.ID)
		}
	}
}
