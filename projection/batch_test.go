package projection_test

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"sync"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/internal/projectiondriver"
	"github.com/nova-go/nova/novamem"
	"github.com/nova-go/nova/novatest"
	"github.com/nova-go/nova/projection"
)

// stagedKey carries a txModel's rows of the transaction in progress.
type stagedKey struct{}

// txModel is a TxCheckpoints over an in-memory read model whose writes
// buffer in the runner's batch as the SQL query stores' do; a value
// "bad" is refused when written, buffered or not.
type txModel struct {
	mu      sync.Mutex
	cps     map[string]nova.Position
	rows    map[string]string
	flushes int
}

var errBad = errors.New("bad value")

func (m *txModel) Load(_ context.Context, name string) (nova.Position, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cps[name], nil
}

func (m *txModel) Save(_ context.Context, name string, pos nova.Position) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cps[name] = pos
	return nil
}

func (m *txModel) Commit(ctx context.Context, name, _ string, from, to nova.Position, apply func(ctx context.Context) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cps[name] != from {
		return nova.ErrConcurrency
	}
	staged := maps.Clone(m.rows)
	if err := apply(context.WithValue(ctx, stagedKey{}, staged)); err != nil {
		return err
	}
	m.rows, m.cps[name] = staged, to
	return nil
}

// put writes value under key in the transaction of ctx.
func (m *txModel) put(ctx context.Context, key, value string) error {
	staged := ctx.Value(stagedKey{}).(map[string]string)
	if b := projectiondriver.BatchFrom(ctx); b != nil {
		b.Table("model", func(_ context.Context, rows []projectiondriver.Row) error {
			m.flushes++
			for _, r := range rows {
				if r.Value == "bad" {
					return errBad
				}
				staged[r.Key] = r.Value
			}
			return nil
		}).Put(key, value)
		return nil
	}
	if value == "bad" {
		return errBad
	}
	staged[key] = value
	return nil
}

// A write refused only at the end of the batch is the fault of the event
// whose handler made it: the runner runs the batch again unbuffered and
// stops on that event, with the events before it applied.
func TestBatchRefusedAtTheEndPoisonsItsEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, novamem.Config{})
	if _, err := s.Append(ctx, "s", nova.NoStream, novatest.Events("placed", 5)...); err != nil {
		t.Fatal(err)
	}
	var evs []nova.Event
	for e, err := range s.ReadAll(ctx, nova.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	m := &txModel{cps: map[string]nova.Position{}, rows: map[string]string{}}
	p, err := projection.New("model", nova.NewRegistry(nova.RegistryOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	err = projection.OnType(p, "placed", func(ctx context.Context, e nova.Event) error {
		v := "ok"
		if e.ID == evs[2].ID {
			v = "bad"
		}
		return m.put(ctx, e.ID, v)
	})
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, projection.Config{Store: s, Projection: p, Checkpoints: m})
	var pe *projection.PoisonError
	if err := r.Wait(); !errors.As(err, &pe) || !errors.Is(err, errBad) || pe.Position != evs[2].Position {
		t.Fatalf("Wait = %v, want a poison error at %s", err, evs[2].Position)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.rows) != 2 || m.rows[evs[0].ID] != "ok" || m.rows[evs[1].ID] != "ok" {
		t.Fatalf("model %v, want the two events before the refused one", m.rows)
	}
	if m.flushes == 0 {
		t.Fatal("the runner gave its handlers no batch")
	}
}

// prefetchStore is a query store that records the keys it is asked to
// prefetch, and whether a batch was in the ctx.
type prefetchStore struct {
	cqrs.QueryStore
	mu    sync.Mutex
	calls [][]string
}

func (s *prefetchStore) Prefetch(ctx context.Context, keys []string) error {
	if projectiondriver.BatchFrom(ctx) == nil {
		return errors.New("no batch in the ctx")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, keys)
	return nil
}

// Before a batch's handlers run, a Prefetch declaration's store is given
// the distinct keys of the events the projection handles, once.
func TestPrefetchGivesTheBatchKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, novamem.Config{})
	for _, stream := range []string{"a", "b", "a", "boom"} {
		if _, err := s.Append(ctx, stream, nova.Any, novatest.Events("placed", 1)...); err != nil {
			t.Fatal(err)
		}
	}
	last, err := s.Append(ctx, "c", nova.Any, novatest.Events("ignored", 1)...)
	if err != nil {
		t.Fatal(err)
	}
	m := &txModel{cps: map[string]nova.Position{}, rows: map[string]string{}}
	p, err := projection.New("model", nova.NewRegistry(nova.RegistryOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := projection.OnType(p, "placed", func(ctx context.Context, e nova.Event) error { return m.put(ctx, e.Stream, "ok") }); err != nil {
		t.Fatal(err)
	}
	qs := &prefetchStore{}
	projection.Prefetch(p, qs, func(e nova.Event) string {
		if e.Stream == "boom" {
			panic("boom")
		}
		return e.Stream
	})
	projection.Prefetch(p, novamem.NewQueryStore(), func(e nova.Event) string { return e.Stream }) // ignored
	r := start(t, projection.Config{Store: s, Projection: p, Checkpoints: m})
	waitFor(t, r, last.Position)
	qs.mu.Lock()
	defer qs.mu.Unlock()
	// The events were stored before the runner started, but how they are
	// cut into batches depends on timing: check each batch's keys are
	// distinct, and that together they are the handled events' keys, the
	// panicking key function's event and the unhandled type left out.
	seen := map[string]bool{}
	for _, call := range qs.calls {
		distinct := map[string]bool{}
		for _, k := range call {
			if distinct[k] {
				t.Fatalf("Prefetch call %q names %q twice", call, k)
			}
			distinct[k], seen[k] = true, true
		}
	}
	if want := map[string]bool{"a": true, "b": true}; !reflect.DeepEqual(seen, want) {
		t.Fatalf("Prefetch calls %q, want the keys a and b", qs.calls)
	}
}
