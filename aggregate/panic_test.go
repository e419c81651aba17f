package aggregate_test

import (
	"context"
	"errors"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/aggregate"
)

// Fragile is a state whose Apply panics on a withdrawal.
type Fragile struct{ Balance int64 }

func (f *Fragile) Apply(event any) error {
	switch e := event.(type) {
	case Deposited:
		f.Balance += e.Amount
	case Withdrawn:
		panic("apply boom")
	}
	return nil
}

// noPanic runs fn and fails t if it panics.
func noPanic(t *testing.T, what string, fn func()) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("%s panicked in the caller instead of returning an error: %v", what, p)
		}
	}()
	fn()
}

func isPanic(t *testing.T, err error, v any) {
	t.Helper()
	var pe *nova.PanicError
	if !errors.As(err, &pe) || pe.Value != v || len(pe.Stack) == 0 {
		t.Fatalf("err = %v, want a *nova.PanicError of %v with a stack", err, v)
	}
}

// TestRepositoryRecoversUserCode: a panic in Apply, in a decide function
// or in StreamFunc fails the call with a *nova.PanicError, as an error
// there would.
func TestRepositoryRecoversUserCode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := newMemStore()
	reg := newRegistry(t)
	repo, err := aggregate.NewRepository[Fragile](aggregate.Config{Store: store, Registry: reg, Category: "f"})
	if err != nil {
		t.Fatal(err)
	}

	noPanic(t, "Update with a panicking decide", func() {
		_, err := repo.Update(ctx, "1", func(*Fragile) ([]any, error) { panic("decide boom") }, nil)
		isPanic(t, err, "decide boom")
	})
	if n := store.appendCount(); n != 0 {
		t.Fatalf("%d appends after a panicking decide, want none", n)
	}

	// Apply panicking on a save's own events: the events are stored, the
	// root is broken, as after an Apply error.
	root, err := repo.New("1")
	if err != nil {
		t.Fatal(err)
	}
	noPanic(t, "Save", func() {
		res, err := repo.Save(ctx, root, []any{Deposited{Amount: 5}, Withdrawn{Amount: 1}}, nil)
		isPanic(t, err, "apply boom")
		if res.LastVersion != 2 {
			t.Errorf("Save result %+v, want the stored events up to version 2", res)
		}
		if _, err := repo.Save(ctx, root, []any{Deposited{Amount: 1}}, nil); err == nil {
			t.Error("a root whose Apply panicked saved again; it must be reloaded")
		}
	})
	// Apply panicking on load.
	noPanic(t, "Load", func() {
		_, err := repo.Load(ctx, "1")
		isPanic(t, err, "apply boom")
	})
	noPanic(t, "Update", func() {
		_, err := repo.Update(ctx, "1", func(*Fragile) ([]any, error) { return nil, nil }, nil)
		isPanic(t, err, "apply boom")
	})

	bad, err := aggregate.NewRepository[Fragile](aggregate.Config{Store: store, Registry: reg,
		StreamFunc: func(string) string { panic("stream boom") }})
	if err != nil {
		t.Fatal(err)
	}
	noPanic(t, "Load with a panicking StreamFunc", func() {
		_, err := bad.Load(ctx, "1")
		isPanic(t, err, "stream boom")
	})
	noPanic(t, "New with a panicking StreamFunc", func() {
		_, err := bad.New("1")
		isPanic(t, err, "stream boom")
	})
	if id := bad.StreamID("1"); id != "" {
		t.Errorf("StreamID with a panicking StreamFunc = %q, want empty", id)
	}
}

type panicCodec struct{}

func (panicCodec) Marshal(any) ([]byte, error) { panic("marshal boom") }
func (panicCodec) Unmarshal([]byte, any) error { panic("unmarshal boom") }

// TestSnapshotPanicsAreReported: a snapshot codec or an ErrorFunc that
// panics does not fail a save or a load: the snapshot problem is
// reported, as a codec error would be.
func TestSnapshotPanicsAreReported(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := setup(t, func(c *aggregate.Config) {
		c.Snapshots = nil
	})
	snaps := newMemSnapshots()
	repo, err := aggregate.NewRepository[Account](aggregate.Config{Store: f.store, Registry: f.reg, Category: "account",
		Snapshots: snaps, SnapshotEvery: 1, Codec: panicCodec{}, ErrorFunc: f.reports.add})
	if err != nil {
		t.Fatal(err)
	}
	noPanic(t, "Update", func() {
		if _, err := repo.Update(ctx, "1", func(a *Account) ([]any, error) { return a.Open("ada") }, nil); err != nil {
			t.Fatal(err)
		}
	})
	snaps.put(aggregate.Snapshot{Stream: "account-1", Version: 1, Schema: 1, Data: []byte(`{}`)})
	noPanic(t, "Load", func() {
		root, err := repo.Load(ctx, "1")
		if err != nil || root.State.Owner != "ada" {
			t.Fatalf("Load = %+v, %v", root, err)
		}
	})
	errs := f.reports.list()
	if len(errs) != 2 || !errors.Is(errs[0], nova.ErrPanic) || !errors.Is(errs[1], nova.ErrPanic) {
		t.Errorf("reports %v, want the two codec panics", errs)
	}

	// An ErrorFunc that panics: the report goes to the default logger.
	quiet, err := aggregate.NewRepository[Account](aggregate.Config{Store: f.store, Registry: f.reg, Category: "account",
		Snapshots: snaps, SnapshotEvery: 1, Codec: panicCodec{},
		ErrorFunc: func(context.Context, error) { panic("report boom") }})
	if err != nil {
		t.Fatal(err)
	}
	noPanic(t, "Load with a panicking ErrorFunc", func() {
		if _, err := quiet.Load(ctx, "1"); err != nil {
			t.Fatal(err)
		}
	})
}
