package projection_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novamem"
	"github.com/nova-go/nova/projection"
)

// leasedCheckpoints is a projection.LeasedCheckpoints in memory whose
// lease can be taken from its holder.
type leasedCheckpoints struct {
	projection.MemoryCheckpoints
	mu     sync.Mutex
	holder string
	plain  int      // calls of Save
	savers []string // owners of SaveLeased calls that saved
}

var _ projection.LeasedCheckpoints = (*leasedCheckpoints)(nil)

func (l *leasedCheckpoints) Acquire(_ context.Context, _, owner string, _ time.Duration) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.holder == "" || l.holder == owner {
		l.holder = owner
		return true, nil
	}
	return false, nil
}

func (l *leasedCheckpoints) Release(_ context.Context, _, owner string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.holder == owner {
		l.holder = ""
	}
	return nil
}

func (l *leasedCheckpoints) Save(ctx context.Context, name string, pos nova.Position) error {
	l.mu.Lock()
	l.plain++
	l.mu.Unlock()
	return l.MemoryCheckpoints.Save(ctx, name, pos)
}

func (l *leasedCheckpoints) SaveLeased(ctx context.Context, name, owner string, pos nova.Position) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.holder != owner {
		return projection.ErrLeaseLost
	}
	l.savers = append(l.savers, owner)
	return l.MemoryCheckpoints.Save(ctx, name, pos)
}

// take gives the lease to owner, as another instance taking over does.
func (l *leasedCheckpoints) take(owner string) {
	l.mu.Lock()
	l.holder = owner
	l.mu.Unlock()
}

// TestLeasedSaves: a runner whose Leaser and Checkpoints are one
// LeasedCheckpoints saves through SaveLeased as its owner; once its lease
// is taken, its next save is refused, the checkpoint stays, and it
// stands by.
func TestLeasedSaves(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	s := newStore(t, novamem.Config{})
	rec := &recorder{}
	cps := &leasedCheckpoints{}
	r := start(t, projection.Config{Store: s, Projection: newProjection(t, reg, rec), Checkpoints: cps,
		Leaser: cps, Owner: "one", LeaseTTL: time.Hour})
	first := place(t, s, reg, "a", "b")
	waitFor(t, r, first)
	cps.mu.Lock()
	plain, savers := cps.plain, append([]string(nil), cps.savers...)
	cps.mu.Unlock()
	if plain != 0 || len(savers) == 0 {
		t.Fatalf("%d plain saves and fenced saves by %q, want only fenced saves", plain, savers)
	}
	for _, o := range savers {
		if o != "one" {
			t.Fatalf("fenced save by %q, want the runner's owner one", o)
		}
	}

	cps.take("two")
	place(t, s, reg, "c")
	deadline := time.Now().Add(10 * time.Second)
	for r.Status().State != projection.Standby {
		if time.Now().After(deadline) {
			t.Fatalf("runner whose save was refused is %s, want standby", r.Status().State)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if cp, err := cps.Load(context.Background(), "orders"); err != nil || cp != first {
		t.Fatalf("checkpoint after a refused save = %s, %v; want %s", cp, err, first)
	}
}
