package aggregate_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/aggregate"
)

func TestUpdateCreatesThenChanges(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ctx := t.Context()
	root, err := f.repo.Update(ctx, "1", func(a *Account) ([]any, error) { return a.Open("ada") }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if root.Version != 1 || root.State.Owner != "ada" {
		t.Fatalf("after create: version %d, state %+v", root.Version, *root.State)
	}
	root, err = f.repo.Update(ctx, "1", func(a *Account) ([]any, error) { return a.Deposit(40) }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if root.Version != 2 || root.State.Balance != 40 {
		t.Fatalf("after deposit: version %d, state %+v", root.Version, *root.State)
	}
}

func TestUpdateReturnsTheDecisionError(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	root, err := f.repo.Update(t.Context(), "1", func(a *Account) ([]any, error) { return a.Withdraw(5) }, nil)
	if !errors.Is(err, errInsufficient) || root != nil {
		t.Fatalf("Update = %v, %v; want nil, errInsufficient", root, err)
	}
	if n := f.store.appendCount(); n != 0 {
		t.Fatalf("%d appends, want none", n)
	}
}

func TestUpdateWithNoEventsWritesNothing(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ctx := t.Context()
	if _, err := f.repo.Update(ctx, "1", func(a *Account) ([]any, error) { return a.Open("ada") }, nil); err != nil {
		t.Fatal(err)
	}
	root, err := f.repo.Update(ctx, "1", func(*Account) ([]any, error) { return nil, nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if root.Version != 1 || f.store.appendCount() != 1 {
		t.Fatalf("version %d after %d appends; want version 1 after 1", root.Version, f.store.appendCount())
	}
}

func TestUpdateCarriesMetadata(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	opts := &aggregate.SaveOptions{Metadata: nova.Metadata{CorrelationID: "c", CausationID: "cmd"}}
	if _, err := f.repo.Update(t.Context(), "1", func(a *Account) ([]any, error) { return a.Open("ada") }, opts); err != nil {
		t.Fatal(err)
	}
	e := f.store.events("account-1")[0]
	if e.Metadata.CorrelationID != "c" || e.Metadata.CausationID != "cmd" {
		t.Fatalf("metadata = %+v", e.Metadata)
	}
}

// interfere appends a deposit behind the repository's back, as a
// concurrent writer would.
func interfere(t *testing.T, f *fixture) {
	t.Helper()
	d, err := f.reg.Encode(Deposited{Amount: 1}, nova.Metadata{})
	if err != nil {
		t.Error(err)
		return
	}
	if _, err := f.store.Append(context.Background(), "account-1", nova.Any, d); err != nil {
		t.Error(err)
	}
}

func TestUpdateRetriesOnConcurrency(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ctx := t.Context()
	if _, err := f.repo.Update(ctx, "1", func(a *Account) ([]any, error) { return a.Open("ada") }, nil); err != nil {
		t.Fatal(err)
	}
	calls := 0
	root, err := f.repo.Update(ctx, "1", func(a *Account) ([]any, error) {
		calls++
		if calls == 1 {
			interfere(t, f)
		}
		return a.Withdraw(a.Balance) // depends on the state: must see the other writer's deposit
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Errorf("decide called %d times, want 2", calls)
	}
	if root.Version != 3 || root.State.Balance != 0 {
		t.Errorf("version %d, state %+v; want version 3, balance 0", root.Version, *root.State)
	}
	evs := f.store.events("account-1")
	if got, want := string(evs[2].Data), `{"amount":1}`; got != want {
		t.Errorf("withdrawal saved as %s, want %s (decided on the reloaded state)", got, want)
	}
}

func TestUpdateGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	f := setup(t, func(c *aggregate.Config) { c.MaxAttempts = 4 })
	ctx := t.Context()
	if _, err := f.repo.Update(ctx, "1", func(a *Account) ([]any, error) { return a.Open("ada") }, nil); err != nil {
		t.Fatal(err)
	}
	calls := 0
	_, err := f.repo.Update(ctx, "1", func(a *Account) ([]any, error) {
		calls++
		interfere(t, f)
		return a.Deposit(10)
	}, nil)
	if !errors.Is(err, nova.ErrConcurrency) {
		t.Fatalf("Update = %v, want ErrConcurrency", err)
	}
	var ce *nova.ConcurrencyError
	if !errors.As(err, &ce) {
		t.Errorf("error %v does not carry a *nova.ConcurrencyError", err)
	}
	if calls != 4 {
		t.Errorf("decide called %d times, want 4", calls)
	}
}

func TestUpdateStopsRetryingWhenContextEnds(t *testing.T) {
	t.Parallel()
	f := setup(t, func(c *aggregate.Config) { c.MaxAttempts = 10 })
	if _, err := f.repo.Update(t.Context(), "1", func(a *Account) ([]any, error) { return a.Open("ada") }, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	calls := 0
	_, err := f.repo.Update(ctx, "1", func(a *Account) ([]any, error) {
		calls++
		interfere(t, f)
		cancel()
		return a.Deposit(10)
	}, nil)
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("Update = %v after %d calls; want context.Canceled after 1", err, calls)
	}
}

func TestConcurrentUpdatesLoseNothing(t *testing.T) {
	t.Parallel()
	const writers, each = 4, 10
	f := setup(t, func(c *aggregate.Config) { c.MaxAttempts = 1000 })
	ctx := t.Context()
	if _, err := f.repo.Update(ctx, "1", func(a *Account) ([]any, error) { return a.Open("ada") }, nil); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range each {
				if _, err := f.repo.Update(ctx, "1", func(a *Account) ([]any, error) { return a.Deposit(1) }, nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	root, err := f.repo.Load(ctx, "1")
	if err != nil {
		t.Fatal(err)
	}
	if root.State.Balance != writers*each || root.Version != writers*each+1 {
		t.Fatalf("balance %d at version %d; want %d at %d", root.State.Balance, root.Version, writers*each, writers*each+1)
	}
}
