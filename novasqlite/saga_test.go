package novasqlite_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/novasqlite"
	"github.com/nova-go/nova/novatest"
	"github.com/nova-go/nova/saga"
)

func newRunStore(t *testing.T, s *novasqlite.Store) *novasqlite.RunStore {
	t.Helper()
	rs := novasqlite.NewRunStore(s)
	return rs
}

func TestRunStore(t *testing.T) {
	t.Parallel()
	novatest.RunSagaStore(t, func(t *testing.T) saga.RunStore { return newRunStore(t, open(t, novasqlite.Config{})) })
}

// TestRunStoreReopen shows that runs, leases and the outbox are in the
// file: a second store on it, as after a restart, sees them, and its
// claims respect the first one's leases.
func TestRunStoreReopen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "runs.db")
	s1 := open(t, novasqlite.Config{Path: path})
	rs1 := newRunStore(t, s1)
	now, err := rs1.Now(ctx)
	if err != nil {
		t.Fatal(err)
	}
	env := []broker.Envelope{{ID: "e1", Topic: "saga.order.a.started", EventType: "saga.event", Payload: []byte(`{}`)}}
	tr := saga.Transition{
		Stream: saga.StreamName("order", "r1"), Expected: nova.NoStream,
		Events: novatest.Events("saga.test", 1),
		Run:    saga.RunInfo{Saga: "order", RunID: "r1", Status: saga.Running, DueAt: now.Add(-time.Second)},
		Owner:  "w1", Lease: time.Hour, Outbox: env,
	}
	wake := rs1.Outbox().Wake()
	want, err := rs1.Record(ctx, tr)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-wake:
	default:
		t.Fatal("Record with outbox rows did not close Wake's channel")
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := open(t, novasqlite.Config{Path: path})
	rs2 := newRunStore(t, s2)
	got, err := rs2.Get(ctx, "order", "r1")
	if err != nil || got != want {
		t.Fatalf("after reopening: %+v, %v; want %+v", got, err, want)
	}
	if c, err := rs2.Claim(ctx, saga.ClaimRequest{Owner: "w2", Sagas: []string{"order"}, Lease: time.Minute, Limit: 1}); err != nil || len(c) != 0 {
		t.Fatalf("claim of a run leased before the restart: %v, %v", c, err)
	}
	msgs, err := rs2.Outbox().Pending(ctx, 10)
	if err != nil || len(msgs) != 1 || msgs[0].Envelope.ID != env[0].ID {
		t.Fatalf("outbox after reopening: %v, %v", msgs, err)
	}
	// The old owner goes on under its lease.
	tr.Expected, tr.Events = nova.Exact(1), novatest.Events("saga.test", 1)
	tr.Run.Status, tr.Outbox = saga.Completed, nil
	if _, err := rs2.Record(ctx, tr); err != nil {
		t.Fatal(err)
	}
	// A retry of that transition writes nothing and returns the row.
	again, err := rs2.Record(ctx, tr)
	if err != nil || again.Version != 2 || again.Status != saga.Completed {
		t.Fatalf("retried transition: %+v, %v", again, err)
	}
	if n := len(novatest.MustReadAll(t, s2)); n != 2 {
		t.Fatalf("the retry appended: %d events", n)
	}
}

// TestRunStoreClosed shows that a closed store fails the run store's
// calls with nova.ErrClosed.
func TestRunStoreClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, novasqlite.Config{})
	rs := newRunStore(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := rs.Get(ctx, "order", "r1")
	if !errors.Is(err, nova.ErrClosed) {
		t.Errorf("Get: %v", err)
	}
	_, err = rs.Claim(ctx, saga.ClaimRequest{Owner: "w", Sagas: []string{"order"}, Lease: time.Second, Limit: 1})
	if !errors.Is(err, nova.ErrClosed) {
		t.Errorf("Claim: %v", err)
	}
	_, err = rs.Record(ctx, saga.Transition{Stream: saga.StreamName("order", "r1"), Expected: nova.NoStream,
		Events: novatest.Events("saga.test", 1), Run: saga.RunInfo{Saga: "order", RunID: "r1", Status: saga.Running}})
	if !errors.Is(err, nova.ErrClosed) {
		t.Errorf("Record: %v", err)
	}
	if _, err := rs.Outbox().Pending(ctx, 1); !errors.Is(err, nova.ErrClosed) {
		t.Errorf("Pending: %v", err)
	}
}

// TestRunStoreManyEnvelopes records a transition with more envelopes than
// one insert statement takes: all of them reach the outbox, in order, and
// the row's version is the append's with any expectation.
func TestRunStoreManyEnvelopes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rs := newRunStore(t, open(t, novasqlite.Config{}))
	var env []broker.Envelope
	for i := range 150 {
		env = append(env, broker.Envelope{ID: fmt.Sprint("e", i), Topic: "saga.order.a.started", EventType: "saga.event", Payload: []byte(`{}`)})
	}
	for i, exp := range []nova.ExpectedVersion{nova.NoStream, nova.Any} {
		row, err := rs.Record(ctx, saga.Transition{
			Stream: saga.StreamName("order", "r1"), Expected: exp, Events: novatest.Events("saga.test", 2),
			Run:    saga.RunInfo{Saga: "order", RunID: "r1", Status: saga.Running},
			Outbox: env[i*75 : i*75+75],
		})
		if err != nil || row.Version != uint64(2*i+2) {
			t.Fatalf("record %d: %+v, %v", i, row, err)
		}
	}
	msgs, err := rs.Outbox().Pending(ctx, 200)
	if err != nil || len(msgs) != len(env) {
		t.Fatalf("pending: %d, %v", len(msgs), err)
	}
	for i, m := range msgs {
		if m.Envelope.ID != env[i].ID {
			t.Fatalf("message %d is %q, want %q", i, m.Envelope.ID, env[i].ID)
		}
	}
}
