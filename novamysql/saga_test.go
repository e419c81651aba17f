package novamysql_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/novamysql"
	"github.com/nova-go/nova/novatest"
	"github.com/nova-go/nova/saga"
)

func TestRunStore(t *testing.T) {
	t.Parallel()
	admin(t)
	novatest.RunSagaStore(t, func(t *testing.T) saga.RunStore {
		return novamysql.NewRunStore(open(t, novamysql.Config{}))
	})
}

// TestRunStoreClaimAcrossStores has workers on two stores (two pools, as
// two processes would have) claim due runs at once: no run is claimed
// twice, and every run is claimed.
func TestRunStoreClaimAcrossStores(t *testing.T) {
	t.Parallel()
	_, dsn := scratchDB(t)
	novatest.RunSagaClaimsAcrossStores(t,
		novamysql.NewRunStore(open(t, novamysql.Config{DSN: dsn})),
		novamysql.NewRunStore(open(t, novamysql.Config{DSN: dsn})))
}

// TestRunStoreClosed shows that a closed store fails the run store's
// calls with nova.ErrClosed.
func TestRunStoreClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, novamysql.Config{})
	rs := novamysql.NewRunStore(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.Get(ctx, "order", "r1"); !errors.Is(err, nova.ErrClosed) {
		t.Errorf("Get: %v", err)
	}
	if _, err := rs.Now(ctx); !errors.Is(err, nova.ErrClosed) {
		t.Errorf("Now: %v", err)
	}
	_, err := rs.Record(ctx, saga.Transition{Stream: saga.StreamName("order", "r1"), Expected: nova.NoStream,
		Events: novatest.Events("saga.test", 1), Run: saga.RunInfo{Saga: "order", RunID: "r1", Status: saga.Running}})
	if !errors.Is(err, nova.ErrClosed) {
		t.Errorf("Record: %v", err)
	}
	if _, err := rs.Claim(ctx, saga.ClaimRequest{Owner: "w", Sagas: []string{"order"}, Lease: time.Second, Limit: 1}); !errors.Is(err, nova.ErrClosed) {
		t.Errorf("Claim: %v", err)
	}
	if _, err := rs.Outbox().Pending(ctx, 1); !errors.Is(err, nova.ErrClosed) {
		t.Errorf("Pending: %v", err)
	}
}

// TestRunStoreConnectionSettings runs the suite on pools whose
// connections parse times into a zone far from UTC, keep another session
// time zone and count found rather than changed rows: leases, due times
// and renewals come out the same.
func TestRunStoreConnectionSettings(t *testing.T) {
	t.Parallel()
	admin(t)
	novatest.RunSagaStore(t, func(t *testing.T) saga.RunStore {
		_, dsn := scratchDB(t)
		db, err := sql.Open("mysql", dsn+"?parseTime=true&loc=Asia%2FKolkata&time_zone=%27-07%3A00%27&clientFoundRows=true")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return novamysql.NewRunStore(open(t, novamysql.Config{DB: db}))
	})
}

// TestRunStoreTransitionLocksCounterLast shows that a transition takes
// the position counter's lock only once everything else is done: one
// waiting for its run's row, held by another transaction, holds up no
// append of the store.
func TestRunStoreTransitionLocksCounterLast(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, novamysql.Config{})
	rs := novamysql.NewRunStore(s)
	tr := func(expected nova.ExpectedVersion) saga.Transition {
		return saga.Transition{Stream: saga.StreamName("order", "r1"), Expected: expected,
			Events: novatest.Events("saga.test", 1), Run: saga.RunInfo{Saga: "order", RunID: "r1", Status: saga.Running}}
	}
	if _, err := rs.Record(ctx, tr(nova.NoStream)); err != nil {
		t.Fatal(err)
	}
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM nova_saga_runs WHERE saga = 'order' AND run_id = 'r1' FOR UPDATE").Scan(&n); err != nil || n != 1 {
		t.Fatalf("lock the run's row: %d rows, %v", n, err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := rs.Record(ctx, tr(nova.Exact(1)))
		done <- err
	}()
	time.Sleep(200 * time.Millisecond) // the transition waits for the row
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := s.Append(actx, "other", nova.Any, novatest.Events("test", 1)...); err != nil {
		t.Fatalf("append while a transition waits for its run's row: %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("the transition ended while its run's row was locked: %v", err)
	default:
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the transition, once the row was free: %v", err)
	}
}

// TestRunStoreOnePoolConnection records transitions on a pool of one
// connection: a transition prepares its statements before it takes the
// connection for its transaction, never while holding it. A retry of a
// recorded transition returns the run's row; a transition whose event ID
// another stream holds fails and writes nothing.
func TestRunStoreOnePoolConnection(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, dsn := scratchDB(t)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	rs := novamysql.NewRunStore(open(t, novamysql.Config{DB: db}))
	events := novatest.Events("saga.test", 2)
	tr := saga.Transition{Stream: saga.StreamName("order", "r1"), Expected: nova.NoStream, Events: events,
		Run:   saga.RunInfo{Saga: "order", RunID: "r1", Status: saga.Running},
		Owner: "w", Lease: time.Minute,
		Outbox: []broker.Envelope{{ID: nova.NewEventID(), Topic: "saga.order", EventType: "started", Payload: []byte(`{}`)}}}
	first, err := rs.Record(ctx, tr)
	if err != nil {
		t.Fatal(err)
	}
	again, err := rs.Record(ctx, tr)
	if err != nil || again.Version != 2 || again.LeaseOwner != "w" {
		t.Fatalf("retry: %+v, %v; want the row of the first, %+v", again, err, first)
	}
	reuse := tr
	reuse.Stream, reuse.Run.RunID, reuse.Events = saga.StreamName("order", "r2"), "r2", events[1:]
	var de *nova.DuplicateEventError
	if _, err := rs.Record(ctx, reuse); !errors.As(err, &de) || de.StoredStream != tr.Stream {
		t.Fatalf("an event ID of another stream: %v; want a *nova.DuplicateEventError naming %s", err, tr.Stream)
	}
	if _, err := rs.Get(ctx, "order", "r2"); !errors.Is(err, nova.ErrNotFound) {
		t.Fatalf("the refused run's row: %v; want none", err)
	}
	if msgs, err := rs.Outbox().Pending(ctx, 10); err != nil || len(msgs) != 1 {
		t.Fatalf("outbox: %d messages, %v; want the first transition's only", len(msgs), err)
	}
}
