package bench

import (
	"context"
	"fmt"
	"strings"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/aggregate"
)

// The aggregate scenarios measure an [aggregate.Repository] beside the
// same store used directly: what a caller writes without the repository.
// Both of their sides are Nova stores; the raw driver has no part in them.
const (
	// kindRepoSave saves batches of events through a repository, beside
	// registry-encoded appends.
	kindRepoSave kind = 100 + iota
	// kindRepoLoad loads an aggregate through a repository, beside a
	// ReadStream that decodes every event through the registry.
	kindRepoLoad
)

// repoScenario reports whether s compares a repository with its own store
// used directly, so that both of its sides are Nova stores.
func (s scenario) repoScenario() bool {
	return s.kind == kindRepoSave || s.kind == kindRepoLoad
}

// directTarget is the raw side of an aggregate scenario: a Nova store used
// without a repository.
type directTarget struct{ novaTarget }

// openFor returns a fresh target of side s for scenario sc: for the
// aggregate scenarios a Nova store on both sides, the raw one as a
// directTarget.
func openFor(ctx context.Context, b Backend, sc scenario, s side) (target, func() error, error) {
	ctx = context.WithValue(ctx, writersKey{}, sc.writers)
	if !sc.repoScenario() || s == sideNova {
		return open(ctx, b, s)
	}
	t, cleanup, err := open(ctx, b, sideNova)
	if err != nil {
		return nil, nil, err
	}
	return directTarget{t.(novaTarget)}, cleanup, nil
}

// writersKey is the context key under which openFor tells a backend how
// many goroutines the scenario writes with, so that a baseline can give
// each one a connection of its own (see [Postgres]).
type writersKey struct{}

// scenarioWriters returns the number of writers openFor put in ctx, or 1.
func scenarioWriters(ctx context.Context) int {
	if w, ok := ctx.Value(writersKey{}).(int); ok && w > 0 {
		return w
	}
	return 1
}

// repoEvent is the Go type of [EventType] events: the fields of their
// JSON data.
type repoEvent struct {
	Kind     string `json:"kind"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	Ref      string `json:"ref"`
	Note     string `json:"note"`
}

// repoState is the aggregate the scenarios save and load.
type repoState struct {
	Events int
	Amount int64
}

// Apply folds one event into the state.
func (s *repoState) Apply(e any) error {
	ev, ok := e.(repoEvent)
	if !ok {
		return fmt.Errorf("bench: unexpected event %T", e)
	}
	s.Events++
	s.Amount += ev.Amount
	return nil
}

// repoRegistry returns a registry that knows [EventType] as repoEvent.
func repoRegistry() (*nova.Registry, error) {
	reg := nova.NewRegistry(nova.RegistryOptions{})
	if err := nova.Register[repoEvent](reg, EventType); err != nil {
		return nil, err
	}
	return reg, nil
}

const (
	// repoCategory makes the aggregate ID "read" the stream readStream.
	repoCategory = "bench"
	// repoRead is the ID of the aggregate repo-load-10k loads.
	repoRead = "read"
)

// repoValues returns n event values that encode to about [PayloadSize]
// bytes of JSON each, with references of their own.
func repoValues(n int) []any {
	note := strings.Repeat("x", PayloadSize-len(payloadHead)-36-len(payloadMid)-len(payloadTail))
	out := make([]any, n)
	for i := range out {
		out[i] = repoEvent{Kind: "bench", Amount: 12345, Currency: "EUR", Ref: nova.NewEventID(), Note: note}
	}
	return out
}

// prepareRepo does the untimed part of an aggregate scenario on t, a
// novaTarget (the repository side) or a directTarget (the store used
// directly).
func (s scenario) prepareRepo(ctx context.Context, t target, sz sizes) (job, error) {
	var store nova.Store
	switch t := t.(type) {
	case novaTarget:
		store = t.s
	case directTarget:
		store = t.s
	default:
		return job{}, fmt.Errorf("%s: a Nova store is needed on both sides, not %T", s.name, t)
	}
	_, direct := t.(directTarget)
	reg, err := repoRegistry()
	if err != nil {
		return job{}, err
	}
	repo, err := aggregate.NewRepository[repoState](aggregate.Config{Store: store, Registry: reg, Category: repoCategory})
	if err != nil {
		return job{}, err
	}
	if s.kind == kindRepoSave {
		return s.repoSaveJob(store, reg, repo, direct, sz)
	}
	if err := fill(ctx, t, readStream, sz.events); err != nil {
		return job{}, err
	}
	return job{slices: sz.reads, slice: func(ctx context.Context, _ int) (int, error) {
		var n int
		var err error
		if direct {
			n, err = decodeStream(ctx, store, reg, readStream)
		} else {
			var root *aggregate.Root[repoState]
			if root, err = repo.Load(ctx, repoRead); err == nil {
				n = root.State.Events
			}
		}
		if err != nil {
			return 0, fmt.Errorf("load: %w", err)
		}
		if n != sz.events {
			return 0, fmt.Errorf("load: applied %d events, want %d", n, sz.events)
		}
		return n, nil
	}}, nil
}

// repoSaveJob saves s.batch events per save to one aggregate, s.slice
// saves per slice, through repo or, direct, as registry-encoded appends
// at the exact version. The values are made before the timer starts; the
// encoding (fresh IDs included) is timed on both sides.
func (s scenario) repoSaveJob(store nova.Store, reg *nova.Registry, repo *aggregate.Repository[repoState], direct bool, sz sizes) (job, error) {
	saves := sz.events / s.batch
	values := repoValues(s.batch * min(saves, 8))
	batch := func(i int) []any {
		k := i % (len(values) / s.batch) * s.batch
		return values[k : k+s.batch]
	}
	root, err := repo.New("0")
	if err != nil {
		return job{}, err
	}
	stream := repo.StreamID("0")
	var version uint64 // of the direct side
	save := func(ctx context.Context, i int) error {
		if !direct {
			_, err := repo.Save(ctx, root, batch(i), nil)
			return err
		}
		data, err := reg.EncodeAll(nova.Metadata{}, batch(i)...)
		if err != nil {
			return err
		}
		res, err := store.Append(ctx, stream, nova.Exact(version), data...)
		if err != nil {
			return err
		}
		version = res.LastVersion
		return nil
	}
	next := 0 // the next save; slices may run past the last one in benchmarks
	return job{
		slices: (saves + s.slice - 1) / s.slice,
		slice: func(ctx context.Context, i int) (int, error) {
			k := s.slice
			if rest := saves - i*s.slice; rest > 0 && rest < k {
				k = rest
			}
			for range k {
				if err := save(ctx, next); err != nil {
					return 0, fmt.Errorf("save %d events to %s: %w", s.batch, stream, err)
				}
				next++
			}
			return k * s.batch, nil
		},
	}, nil
}

// decodeStream reads stream and decodes every event through reg, as a
// caller rebuilding state without a repository does, and returns how many
// it applied.
func decodeStream(ctx context.Context, store nova.Store, reg *nova.Registry, stream string) (int, error) {
	var state repoState
	for e, err := range store.ReadStream(ctx, stream, nova.ReadStreamOptions{}) {
		if err != nil {
			return 0, err
		}
		v, err := reg.Decode(e)
		if err != nil {
			return 0, err
		}
		if err := state.Apply(v); err != nil {
			return 0, err
		}
	}
	return state.Events, nil
}
