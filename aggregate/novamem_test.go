package aggregate_test

import (
	"sync"
	"testing"

	"github.com/nova-go/nova/aggregate"
	"github.com/nova-go/nova/novamem"
)

// TestOnNovamem runs the repository over a real backend: the in-memory
// store, which is also a snapshot store.
func TestOnNovamem(t *testing.T) {
	t.Parallel()
	store, err := novamem.New(novamem.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	rep := &reports{}
	repo, err := aggregate.NewRepository[Account](aggregate.Config{
		Store: store, Registry: newRegistry(t), Category: "account",
		Snapshots: store, SnapshotEvery: 5, ErrorFunc: rep.add, MaxAttempts: 1000,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := repo.Update(ctx, "1", func(a *Account) ([]any, error) { return a.Open("ada") }, nil); err != nil {
		t.Fatal(err)
	}
	const writers, each = 4, 8
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range each {
				if _, err := repo.Update(ctx, "1", func(a *Account) ([]any, error) { return a.Deposit(2) }, nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	root, err := repo.Load(ctx, "1")
	if err != nil {
		t.Fatal(err)
	}
	const version = writers*each + 1
	if root.Version != version || root.State.Balance != 2*writers*each || root.State.Events != version {
		t.Fatalf("Load = version %d, state %+v; want version %d, balance %d", root.Version, *root.State, version, 2*writers*each)
	}
	snap, err := store.LoadSnapshot(ctx, "account-1")
	if err != nil {
		t.Fatal(err)
	}
	if snap.Version != version/5*5 {
		t.Errorf("snapshot at version %d, want %d", snap.Version, version/5*5)
	}
	if errs := rep.list(); len(errs) != 0 {
		t.Errorf("reports: %v", errs)
	}
}
