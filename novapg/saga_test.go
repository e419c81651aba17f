package novapg_test

import (
	"context"
	"errors"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novapg"
	"github.com/nova-go/nova/novatest"
	"github.com/nova-go/nova/saga"
)

func newRunStore(t *testing.T, s *novapg.Store) *novapg.RunStore {
	t.Helper()
	rs := novapg.NewRunStore(s)
	return rs
}

func TestRunStore(t *testing.T) {
	t.Parallel()
	novatest.RunSagaStore(t, func(t *testing.T) saga.RunStore {
		return newRunStore(t, open(t, newScratch(t).config()))
	})
}

// TestRunStoreClaimAcrossStores has workers on two stores (two pools, as
// two processes would have) claim due runs at once: no run is claimed
// twice, and every run is claimed.
func TestRunStoreClaimAcrossStores(t *testing.T) {
	t.Parallel()
	sc := newScratch(t)
	novatest.RunSagaClaimsAcrossStores(t, newRunStore(t, open(t, sc.config())), newRunStore(t, open(t, sc.config())))
}

// TestRunStoreClosed shows that a closed store fails the run store's
// calls with nova.ErrClosed.
func TestRunStoreClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, newScratch(t).config())
	rs := newRunStore(t, s)
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
	if _, err := rs.Outbox().Pending(ctx, 1); !errors.Is(err, nova.ErrClosed) {
		t.Errorf("Pending: %v", err)
	}
}
