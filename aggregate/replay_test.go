package aggregate_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/aggregate"
)

// Ledger keeps every amount in the order it was applied, so a load that
// applies events out of order shows it.
type Ledger struct {
	Owner   string
	Amounts []int64
}

func (l *Ledger) Apply(event any) error {
	switch e := event.(type) {
	case Opened:
		l.Owner = e.Owner
	case Deposited:
		l.Amounts = append(l.Amounts, e.Amount)
	default:
		return fmt.Errorf("ledger: unexpected event %T", event)
	}
	return nil
}

// ledgerStore returns a store holding ledger "1" of n events: an opening
// and deposits of 1, 2, …, n-1.
func ledgerStore(t *testing.T, reg *nova.Registry, n int) *memStore {
	t.Helper()
	store := newMemStore()
	vs := []any{Opened{Owner: "ada"}}
	for i := 1; i < n; i++ {
		vs = append(vs, Deposited{Amount: int64(i)})
	}
	evs, err := reg.EncodeAll(nova.Metadata{}, vs...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Append(t.Context(), "ledger-1", nova.NoStream, evs...); err != nil {
		t.Fatal(err)
	}
	return store
}

func ledgerRepo(t *testing.T, store nova.Store, reg *nova.Registry, decoders int) *aggregate.Repository[Ledger] {
	t.Helper()
	repo, err := aggregate.NewRepository[Ledger](aggregate.Config{Store: store, Registry: reg, Category: "ledger", LoadDecoders: decoders})
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

// Streams shorter than, equal to and longer than a decode chunk load the
// same with any number of decoders: every event, in stream order.
func TestLoadDecodesAheadInOrder(t *testing.T) {
	reg := newRegistry(t)
	for _, n := range []int{1, 255, 256, 257, 513, 5003} {
		store := ledgerStore(t, reg, n)
		want := make([]int64, 0, n-1)
		for i := 1; i < n; i++ {
			want = append(want, int64(i))
		}
		for _, decoders := range []int{0, 1, 2, 7} {
			root, err := ledgerRepo(t, store, reg, decoders).Load(t.Context(), "1")
			if err != nil {
				t.Fatalf("n=%d decoders=%d: %v", n, decoders, err)
			}
			if root.Version != uint64(n) || root.State.Owner != "ada" || !slices.Equal(root.State.Amounts, want) {
				t.Fatalf("n=%d decoders=%d: version %d, %d amounts, first %v: not the stream in order", n, decoders, root.Version, len(root.State.Amounts), root.State.Amounts[:min(3, len(root.State.Amounts))])
			}
		}
	}
}

// A load that fails part-way through a long stream fails as a load on
// one goroutine does: the first failure in stream order, whatever the
// decoders had reached, and no decoder left running (goleak checks).
func TestLoadDecodingAheadFailsAsInOrder(t *testing.T) {
	const n = 3000
	reg := newRegistry(t)
	poison, err := reg.Encode(Poison{}, nova.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		spoil func(s *memStore)
		want  string
	}{
		{"undecodable data", func(s *memStore) { s.setData("ledger-1", 1500, []byte(`{"amount":"x"}`)) }, "decode"},
		{"an event Apply refuses", func(s *memStore) { s.setType("ledger-1", 1300, poison.Type, poison.Data) }, "unexpected event"},
		{"refused before undecodable", func(s *memStore) {
			s.setData("ledger-1", 2900, []byte(`{`))
			s.setType("ledger-1", 700, poison.Type, poison.Data)
		}, "version 701"},
		{"a version jump", func(s *memStore) { s.corrupt("ledger-1", 2100, 9999) }, "jumps from version 2100"},
		{"a read error", func(s *memStore) { s.setReadErr(errors.New("disk on fire")) }, "disk on fire"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			store := ledgerStore(t, reg, n)
			c.spoil(store)
			_, seqErr := ledgerRepo(t, store, reg, 1).Load(t.Context(), "1")
			if seqErr == nil {
				t.Fatal("a load on one goroutine succeeded")
			}
			for _, decoders := range []int{2, 4} {
				_, err := ledgerRepo(t, store, reg, decoders).Load(t.Context(), "1")
				if err == nil || err.Error() != seqErr.Error() {
					t.Fatalf("decoders=%d: %v, want the in-order error %v", decoders, err, seqErr)
				}
			}
			if !strings.Contains(seqErr.Error(), c.want) {
				t.Fatalf("error %v does not mention %q", seqErr, c.want)
			}
		})
	}
}

// A snapshot with a long tail after it loads the tail ahead too.
func TestLoadDecodesTailAfterSnapshotAhead(t *testing.T) {
	reg := newRegistry(t)
	store := newMemStore()
	snaps := newMemSnapshots()
	repo, err := aggregate.NewRepository[Ledger](aggregate.Config{Store: store, Registry: reg, Category: "ledger", Snapshots: snaps, SnapshotEvery: 2, LoadDecoders: 3})
	if err != nil {
		t.Fatal(err)
	}
	root, err := repo.New("1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Save(t.Context(), root, []any{Opened{Owner: "ada"}, Deposited{Amount: 1}}, nil); err != nil {
		t.Fatal(err)
	}
	var vs []any
	for i := 2; i <= 2000; i++ {
		vs = append(vs, Deposited{Amount: int64(i)})
	}
	evs, err := reg.EncodeAll(nova.Metadata{}, vs...)
	if err != nil {
		t.Fatal(err)
	}
	// Appended behind the repository's back: no snapshot past version 2.
	if _, err := store.Append(t.Context(), "ledger-1", nova.Exact(2), evs...); err != nil {
		t.Fatal(err)
	}
	got, err := repo.Load(t.Context(), "1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 2001 || len(got.State.Amounts) != 2000 || got.State.Amounts[1999] != 2000 {
		t.Fatalf("version %d, %d amounts", got.Version, len(got.State.Amounts))
	}
	if from := store.lastReadFrom(); from != 2 {
		t.Fatalf("the load read from version %d, not the snapshot's 2", from)
	}
}

func TestNegativeLoadDecodersInvalid(t *testing.T) {
	_, err := aggregate.NewRepository[Ledger](aggregate.Config{Store: newMemStore(), Registry: newRegistry(t), LoadDecoders: -1})
	if !errors.Is(err, nova.ErrInvalid) {
		t.Fatalf("LoadDecoders -1: %v, want nova.ErrInvalid", err)
	}
}
