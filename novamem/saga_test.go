package novamem_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/novamem"
	"github.com/nova-go/nova/novatest"
	"github.com/nova-go/nova/saga"
)

func TestRunStore(t *testing.T) {
	novatest.RunSagaStore(t, func(t *testing.T) saga.RunStore { return newRunStore(t, newStore(t)) })
}

// newRunStore returns a run store on s.
func newRunStore(t *testing.T, s *novamem.Store) *novamem.RunStore {
	t.Helper()
	rs := novamem.NewRunStore(s)
	return rs
}

// clock is a test clock moved by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestRunStoreClock shows that leases and due times follow the Store's
// NowFunc, to the nanosecond.
func TestRunStoreClock(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)}
	s, err := novamem.New(novamem.Config{NowFunc: c.now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rs := newRunStore(t, s)
	ctx := t.Context()
	start := c.now()
	tr := saga.Transition{
		Stream: saga.StreamName("order", "r1"), Expected: nova.NoStream,
		Events: novatest.Events("saga.test", 1),
		Run:    saga.RunInfo{Saga: "order", RunID: "r1", Status: saga.Running, DueAt: start.Add(time.Second)},
		Owner:  "w1", Lease: time.Minute,
	}
	row, err := rs.Record(ctx, tr)
	if err != nil {
		t.Fatal(err)
	}
	if !row.CreatedAt.Equal(start) || !row.LeaseUntil.Equal(start.Add(time.Minute)) {
		t.Fatalf("row %+v: want CreatedAt %v and LeaseUntil a minute later", row, start)
	}
	claim := saga.ClaimRequest{Owner: "w2", Sagas: []string{"order"}, Lease: time.Minute, Limit: 1}
	c.add(time.Minute - 1)
	if got, err := rs.Claim(ctx, claim); err != nil || len(got) != 0 {
		t.Fatalf("claim a nanosecond before the lease ends: %v, %v", got, err)
	}
	if err := rs.Renew(ctx, "order", "r1", "w1", time.Minute); err != nil {
		t.Fatalf("renew a nanosecond before the lease ends: %v", err)
	}
	c.add(time.Minute)
	if now, _ := rs.Now(ctx); !now.Equal(start.Add(2*time.Minute - 1)) {
		t.Fatalf("Now is %v, want the clock's", now)
	}
	got, err := rs.Claim(ctx, claim)
	if err != nil || len(got) != 1 || got[0].LeaseOwner != "w2" {
		t.Fatalf("claim when the renewed lease ends: %v, %v", got, err)
	}
	tr.Expected = nova.Exact(1)
	tr.Events = novatest.Events("saga.test", 1)
	if _, err := rs.Record(ctx, tr); !errors.Is(err, saga.ErrLeaseLost) {
		t.Fatalf("old owner's record: %v, want saga.ErrLeaseLost", err)
	}
}

// TestRunStoreRetry shows that a transition recorded again, as a retry
// after an unknown outcome, writes nothing and returns the run's row.
func TestRunStoreRetry(t *testing.T) {
	rs := newRunStore(t, newStore(t))
	ctx := t.Context()
	tr := saga.Transition{
		Stream: saga.StreamName("order", "r1"), Expected: nova.NoStream,
		Events: novatest.Events("saga.test", 2),
		Run:    saga.RunInfo{Saga: "order", RunID: "r1", Status: saga.Running},
	}
	first, err := rs.Record(ctx, tr)
	if err != nil {
		t.Fatal(err)
	}
	again, err := rs.Record(ctx, tr)
	if err != nil || again != first {
		t.Fatalf("retry: %+v, %v; want %+v", again, err, first)
	}
	if n := len(novatest.MustReadAll(t, rs.Events())); n != 2 {
		t.Fatalf("retry appended: %d events", n)
	}
}

// TestRunStoreClosed shows that a run store whose event store is closed
// fails every call with nova.ErrClosed, and a nil one with nova.ErrInvalid.
func TestRunStoreClosed(t *testing.T) {
	s, err := novamem.New(novamem.Config{})
	if err != nil {
		t.Fatal(err)
	}
	rs := newRunStore(t, s)
	s.Close()
	ctx := context.Background()
	calls := map[string]func(rs *novamem.RunStore) error{
		"Get":      func(rs *novamem.RunStore) error { _, err := rs.Get(ctx, "order", "r1"); return err },
		"List":     func(rs *novamem.RunStore) error { _, err := rs.List(ctx, saga.RunFilter{}); return err },
		"Count":    func(rs *novamem.RunStore) error { _, err := rs.Count(ctx, ""); return err },
		"Now":      func(rs *novamem.RunStore) error { _, err := rs.Now(ctx); return err },
		"Release":  func(rs *novamem.RunStore) error { return rs.Release(ctx, "order", "r1", "w") },
		"Renew":    func(rs *novamem.RunStore) error { return rs.Renew(ctx, "order", "r1", "w", time.Second) },
		"Pending":  func(rs *novamem.RunStore) error { _, err := rs.Outbox().Pending(ctx, 1); return err },
		"MarkSent": func(rs *novamem.RunStore) error { return rs.Outbox().MarkSent(ctx, nil) },
		"Claim": func(rs *novamem.RunStore) error {
			_, err := rs.Claim(ctx, saga.ClaimRequest{Owner: "w", Sagas: []string{"order"}, Lease: time.Second, Limit: 1})
			return err
		},
		"Record": func(rs *novamem.RunStore) error {
			_, err := rs.Record(ctx, saga.Transition{Stream: saga.StreamName("order", "r1"), Expected: nova.NoStream,
				Events: novatest.Events("saga.test", 1), Run: saga.RunInfo{Saga: "order", RunID: "r1", Status: saga.Running}})
			return err
		},
	}
	for name, call := range calls {
		if err := call(rs); !errors.Is(err, nova.ErrClosed) {
			t.Errorf("%s on a closed store: %v, want nova.ErrClosed", name, err)
		}
	}
}

// A run store keeps a run's stream, its row and its outbox together: one
// Record writes all three, and a worker claims the run when it is due.
func ExampleNewRunStore() {
	s, _ := novamem.New(novamem.Config{})
	defer s.Close()
	runs := novamem.NewRunStore(s)
	ctx := context.Background()

	now, _ := runs.Now(ctx)
	env, _ := broker.NewEnvelope("order-r1-saga-started", "saga.order.saga.started", "saga.event", map[string]string{"run": "r1"})
	row, err := runs.Record(ctx, saga.Transition{
		Stream:   saga.StreamName("order", "r1"),
		Expected: nova.NoStream,
		Events:   []nova.EventData{{Type: saga.EventRunStarted, Data: []byte(`{"saga":"order","run_id":"r1"}`)}},
		Run:      saga.RunInfo{Saga: "order", RunID: "r1", Status: saga.Running, DueAt: now},
		Outbox:   []broker.Envelope{env},
	})
	fmt.Println(row.Status, row.Version, err)

	claimed, _ := runs.Claim(ctx, saga.ClaimRequest{Owner: "worker-1", Sagas: []string{"order"}, Lease: time.Minute, Limit: 10})
	fmt.Println(len(claimed), claimed[0].RunID, claimed[0].LeaseOwner)

	msgs, _ := runs.Outbox().Pending(ctx, 10)
	fmt.Println(msgs[0].Envelope.Topic)
	// Output:
	// running 1 <nil>
	// 1 r1 worker-1
	// saga.order.saga.started
}
