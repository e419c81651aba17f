package novamysql_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nova-go/nova"
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
	ctx := context.Background()
	_, dsn := scratchDB(t)
	stores := []*novamysql.RunStore{
		novamysql.NewRunStore(open(t, novamysql.Config{DSN: dsn})),
		novamysql.NewRunStore(open(t, novamysql.Config{DSN: dsn})),
	}
	const runs = 200
	now, err := stores[0].Now(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range runs {
		_, err := stores[i%2].Record(ctx, saga.Transition{
			Stream: saga.StreamName("order", fmt.Sprint(i)), Expected: nova.NoStream,
			Events: novatest.Events("saga.test", 1),
			Run:    saga.RunInfo{Saga: "order", RunID: fmt.Sprint(i), Status: saga.Running, DueAt: now.Add(-time.Second)},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu   sync.Mutex
		seen = map[string]string{}
		errs []error
		wg   sync.WaitGroup
	)
	for w := range 12 {
		rs, owner := stores[w%2], fmt.Sprintf("w%d", w)
		wg.Go(func() {
			for range runs {
				got, err := rs.Claim(ctx, saga.ClaimRequest{Owner: owner, Sagas: []string{"order"}, Lease: time.Minute, Limit: 4})
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				}
				for _, r := range got {
					if prev, ok := seen[r.RunID]; ok {
						errs = append(errs, fmt.Errorf("run %s claimed by %s and %s", r.RunID, prev, owner))
					}
					seen[r.RunID] = owner
				}
				mu.Unlock()
				if err != nil || len(got) == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(errors.Join(errs...))
	}
	if len(seen) != runs {
		t.Fatalf("claimed %d runs, want %d", len(seen), runs)
	}
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
