package aggregate_test

import (
	"errors"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/aggregate"
	"github.com/nova-go/nova/novamem"
)

// Noted keeps a note the codec does not write.
type Noted struct {
	N    int
	Note string `json:"-"`
}

// Lossy encodes to data it cannot read back.
type Lossy struct{}

func (Lossy) MarshalJSON() ([]byte, error) { return []byte(`"lossy"`), nil }

// Plain round-trips through JSON.
type Plain struct {
	N int `json:"n"`
}

// Log records what it is given.
type Log struct{ Seen []any }

func (l *Log) Apply(e any) error {
	l.Seen = append(l.Seen, e)
	return nil
}

func newLogRepo(t *testing.T) (*aggregate.Repository[Log], nova.Store) {
	t.Helper()
	store, err := novamem.New(novamem.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	reg := nova.NewRegistry(nova.RegistryOptions{})
	nova.MustRegister[Noted](reg, "noted")
	nova.MustRegister[Lossy](reg, "lossy")
	nova.MustRegister[Plain](reg, "plain")
	repo, err := aggregate.NewRepository[Log](aggregate.Config{Store: store, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	return repo, store
}

// The state sees after a save what a load sees: the events as they
// decode, not as they were given.
func TestSaveAppliesWhatALoadSees(t *testing.T) {
	repo, _ := newLogRepo(t)
	ctx := t.Context()
	root, err := repo.New("a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Save(ctx, root, []any{Noted{N: 1, Note: "dropped"}, &Plain{N: 2}, Plain{N: 3}}, nil); err != nil {
		t.Fatal(err)
	}
	loaded, err := repo.Load(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	want := []any{Noted{N: 1}, Plain{N: 2}, Plain{N: 3}}
	for _, got := range [][]any{root.State.Seen, loaded.State.Seen} {
		if len(got) != len(want) {
			t.Fatalf("state saw %#v, want %#v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("event %d applied as %#v, want %#v", i+1, got[i], want[i])
			}
		}
	}
}

// An event whose data does not decode back fails the save before
// anything is written.
func TestSaveRefusesAnEventThatDoesNotDecodeBack(t *testing.T) {
	repo, store := newLogRepo(t)
	ctx := t.Context()
	root, err := repo.New("a")
	if err != nil {
		t.Fatal(err)
	}
	_, err = repo.Save(ctx, root, []any{Plain{N: 1}, Lossy{}}, nil)
	if err == nil {
		t.Fatal("saved an event that does not decode back")
	}
	if root.Version != 0 || len(root.State.Seen) != 0 {
		t.Errorf("root moved to version %d with %v", root.Version, root.State.Seen)
	}
	for _, err := range store.ReadStream(ctx, "a", nova.ReadStreamOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		t.Fatal("the stream has events")
	}
	if _, err := repo.Load(ctx, "a"); !errors.Is(err, nova.ErrNotFound) {
		t.Errorf("load: %v, want not found", err)
	}
}
