package novatest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/internal/projectiondriver"
	"github.com/nova-go/nova/projection"
)

// WithEventStore gives [RunSQLQueryStore] an event store on the same
// database as the checkpoint store of [WithCheckpoints], for the cases
// that run a projection.Runner (Batched/Runner).
func WithEventStore(s nova.Store) SQLQueryOption {
	return func(o *sqlQueryOptions) { o.events = s }
}

// batchedRows is more rows than one statement of any SQL backend can
// carry as parameters (PostgreSQL and MySQL 65,535 parameters, SQLite
// 32,766; two a row).
const batchedRows = 40_000

// inBatch returns apply as the runner runs it: the writes of the query
// stores buffered in a batch, written at its end.
func inBatch(apply func(ctx context.Context, b *projectiondriver.Batch) error) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		b := projectiondriver.NewBatch()
		ctx = projectiondriver.WithBatch(ctx, b)
		if err := apply(ctx, b); err != nil {
			return err
		}
		return b.Flush(ctx)
	}
}

// getIs returns nil when qs holds want under key ("" for no value).
func getIs(ctx context.Context, qs cqrs.QueryStore, key, want string) error {
	got, err := qs.GetRaw(ctx, key)
	switch {
	case want == "" && errors.Is(err, nova.ErrNotFound):
		return nil
	case want == "":
		return fmt.Errorf("GetRaw(%q) = %s, %v; want nova.ErrNotFound", key, got, err)
	case err != nil || !jsonEqual(got, []byte(want)):
		return fmt.Errorf("GetRaw(%q) = %s, %v; want %s", key, got, err, want)
	}
	return nil
}

// testBatched checks the query store inside a projection's batch (a
// checkpoint commit's ctx carrying a projectiondriver.Batch): writes are
// buffered, read back by the batch, written out at its end in the
// commit's transaction, and undone with it.
func (s sqlQuerySuite) testBatched(t *testing.T) {
	if s.rb == nil {
		t.Skip("the backend passed no WithCheckpoints, or not a projection.Rebuilder")
	}
	at := func(n uint64) nova.Position { return nova.Position{Commit: n} }
	t.Run("ReadYourWrites", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		qs := s.newStore(t, "batched_ryw")
		upsert(t, qs, "pre", `{"n":1}`)
		err := s.rb.Commit(ctx, "qs-batched-ryw", "", nova.Start, at(1), inBatch(func(tx context.Context, b *projectiondriver.Batch) error {
			steps := []func() error{
				func() error { return getIs(tx, qs, "new", "") },
				func() error { return qs.UpsertRaw(tx, "new", json.RawMessage(`{"n":1}`)) },
				func() error { return getIs(tx, qs, "new", `{"n":1}`) },
				func() error { return getIs(tx, qs, "pre", `{"n":1}`) },
				func() error { return qs.UpsertRaw(tx, "pre", json.RawMessage(`{"n":2}`)) },
				func() error { return qs.UpsertRaw(tx, "new", json.RawMessage(`{"n":3}`)) },
				func() error { return getIs(tx, qs, "pre", `{"n":2}`) },
				func() error { return getIs(tx, qs, "new", `{"n":3}`) },
				func() error {
					if n := b.Pending(); n != 2 {
						return fmt.Errorf("%d writes wait for the end of the batch, want 2 (one per key)", n)
					}
					return nil
				},
				// Outside the transaction nothing has changed yet.
				func() error { return getIs(context.WithoutCancel(ctx), qs, "new", "") },
			}
			for i, step := range steps {
				if err := step(); err != nil {
					return fmt.Errorf("step %d: %w", i, err)
				}
			}
			return nil
		}))
		if err != nil {
			t.Fatalf("Commit: %v", err)
		}
		wantValue(t, qs, "new", `{"n":3}`)
		wantValue(t, qs, "pre", `{"n":2}`)
		// Outside a batch, nothing is buffered.
		err = s.rb.Commit(ctx, "qs-batched-ryw", "", at(1), at(2), func(tx context.Context) error {
			if err := qs.UpsertRaw(tx, "plain", json.RawMessage(`1`)); err != nil {
				return err
			}
			return getIs(tx, qs, "plain", `1`)
		})
		if err != nil {
			t.Fatalf("Commit without a batch: %v", err)
		}
		wantValue(t, qs, "plain", `1`)
	})
	t.Run("ManyRows", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		qs := s.newStore(t, "batched_many")
		upsert(t, qs, "k-7", `"old"`)
		err := s.rb.Commit(ctx, "qs-batched-many", "", nova.Start, at(1), inBatch(func(tx context.Context, b *projectiondriver.Batch) error {
			for i := range batchedRows {
				if err := qs.UpsertRaw(tx, fmt.Sprintf("k-%d", i), json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))); err != nil {
					return err
				}
			}
			if n := b.Pending(); n != batchedRows {
				return fmt.Errorf("%d writes wait for the end of the batch, want %d", n, batchedRows)
			}
			return nil
		}))
		if err != nil {
			t.Fatalf("Commit of %d rows: %v", batchedRows, err)
		}
		for i := 0; i < batchedRows; i += 997 {
			wantValue(t, qs, fmt.Sprintf("k-%d", i), fmt.Sprintf(`{"i":%d}`, i))
		}
		wantValue(t, qs, "k-7", `{"i":7}`)
		wantValue(t, qs, fmt.Sprintf("k-%d", batchedRows-1), fmt.Sprintf(`{"i":%d}`, batchedRows-1))
		if pos, err := s.rb.Load(ctx, "qs-batched-many"); err != nil || pos != at(1) {
			t.Fatalf("checkpoint = %v, %v; want %v", pos, err, at(1))
		}
	})
	t.Run("Rollback", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		qs := s.newStore(t, "batched_undone")
		upsert(t, qs, "kept", `"old"`)
		boom := errors.New("boom")
		for _, flushed := range []bool{false, true} {
			err := s.rb.Commit(ctx, "qs-batched-undone", "", nova.Start, at(1), inBatch(func(tx context.Context, b *projectiondriver.Batch) error {
				for i := range 100 {
					if err := qs.UpsertRaw(tx, fmt.Sprintf("k-%d", i), json.RawMessage(`1`)); err != nil {
						return err
					}
				}
				if err := qs.UpsertRaw(tx, "kept", json.RawMessage(`"new"`)); err != nil {
					return err
				}
				if flushed {
					if err := b.Flush(tx); err != nil {
						return err
					}
					if err := getIs(tx, qs, "kept", `"new"`); err != nil {
						return err
					}
				}
				return boom
			}))
			if !errors.Is(err, boom) {
				t.Fatalf("Commit of a failing batch (flushed %v) = %v, want its error", flushed, err)
			}
			wantMissing(t, qs, "k-0")
			wantMissing(t, qs, "k-99")
			wantValue(t, qs, "kept", `"old"`)
			if pos, err := s.rb.Load(ctx, "qs-batched-undone"); err != nil || pos != nova.Start {
				t.Fatalf("checkpoint after a failed batch = %v, %v; want the start", pos, err)
			}
		}
	})
	t.Run("Prefetch", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		qs := s.newStore(t, "batched_prefetch")
		pre, ok := qs.(projectiondriver.Prefetcher)
		if !ok {
			t.Skip("the query store does not prefetch")
		}
		upsert(t, qs, "a", `"a"`)
		upsert(t, qs, "b", `"b"`)
		if err := pre.Prefetch(ctx, []string{"a"}); err != nil {
			t.Fatalf("Prefetch outside a batch: %v", err)
		}
		err := s.rb.Commit(ctx, "qs-batched-prefetch", "", nova.Start, at(1), inBatch(func(tx context.Context, b *projectiondriver.Batch) error {
			if err := qs.UpsertRaw(tx, "b", json.RawMessage(`"new"`)); err != nil {
				return err
			}
			if err := pre.Prefetch(tx, []string{"a", "b", "missing", "", "a"}); err != nil {
				return fmt.Errorf("prefetch: %w", err)
			}
			for key, want := range map[string]string{"a": `"a"`, "b": `"new"`, "missing": ""} {
				if err := getIs(tx, qs, key, want); err != nil {
					return err
				}
			}
			if _, err := qs.GetRaw(tx, ""); !errors.Is(err, nova.ErrInvalid) {
				return fmt.Errorf("GetRaw of an empty key after its prefetch = %v, want nova.ErrInvalid", err)
			}
			return nil
		}))
		if err != nil {
			t.Fatalf("Commit: %v", err)
		}
		wantValue(t, qs, "b", `"new"`)
	})
	t.Run("Runner", s.testBatchedRunner)
	t.Run("RawSQL", s.testBatchedRawSQL)
}

// batchedCount is the document the Runner case keeps per stream.
type batchedCount struct {
	Events int    `json:"events"`
	Last   string `json:"last"`
}

// testBatchedRunner runs a projection that reads, changes and upserts
// one document per stream for each event: a handler error in the middle
// of a batch leaves the model holding exactly the events before it; the
// model caught up equals its rebuild.
func (s sqlQuerySuite) testBatchedRunner(t *testing.T) {
	if s.events == nil {
		t.Skip("the backend passed no WithEventStore")
	}
	t.Parallel()
	ctx := t.Context()
	qs := s.newStore(t, "batched_runner")
	const streams, perStream = 3, 20
	prefix := fmt.Sprintf("batched-%d-", time.Now().UnixNano())
	for v := range perStream {
		for i := range streams {
			if _, err := s.events.Append(ctx, fmt.Sprintf("%s%d", prefix, i), nova.Exact(uint64(v)), Events("placed", 1)...); err != nil {
				t.Fatal(err)
			}
		}
	}
	var evs []nova.Event
	for e, err := range s.events.ReadAll(ctx, nova.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if len(e.Stream) > len(prefix) && e.Stream[:len(prefix)] == prefix {
			evs = append(evs, e)
		}
	}
	if len(evs) != streams*perStream {
		t.Fatalf("read %d events of the test, want %d", len(evs), streams*perStream)
	}
	poison := evs[len(evs)/2]
	boom := errors.New("boom")
	newRunner := func(fail bool) *projection.Runner {
		t.Helper()
		p, err := projection.New(prefix+"projection", nova.NewRegistry(nova.RegistryOptions{}))
		if err != nil {
			t.Fatal(err)
		}
		err = projection.OnType(p, "placed", func(ctx context.Context, e nova.Event) error {
			if len(e.Stream) < len(prefix) || e.Stream[:len(prefix)] != prefix {
				return nil // another test's
			}
			c, err := cqrs.GetProjection[batchedCount](ctx, qs, e.Stream)
			if err != nil && !errors.Is(err, nova.ErrNotFound) {
				return err
			}
			c.Events++
			c.Last = e.ID
			if err := cqrs.UpsertProjection(ctx, qs, e.Stream, c); err != nil {
				return err
			}
			if fail && e.ID == poison.ID {
				return boom // after its write: it must be undone
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !fail {
			projection.Prefetch(p, qs, func(e nova.Event) string { return e.Stream })
		}
		table := "batched_runner"
		if named, ok := qs.(interface{ Table() string }); ok {
			table = named.Table()
		}
		r, err := projection.NewRunner(projection.Config{Store: s.events, Projection: p, Checkpoints: s.rb,
			BatchSize: 500, RetryBackoff: time.Millisecond, Tables: []string{table}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	model := func() map[string]string {
		t.Helper()
		out := make(map[string]string)
		for i := range streams {
			key := fmt.Sprintf("%s%d", prefix, i)
			raw, err := qs.GetRaw(ctx, key)
			if err != nil {
				t.Fatalf("GetRaw(%q): %v", key, err)
			}
			out[key] = string(raw)
		}
		return out
	}
	want := func(upto int) map[string]batchedCount {
		m := make(map[string]batchedCount)
		for _, e := range evs[:upto] {
			c := m[e.Stream]
			c.Events++
			c.Last = e.ID
			m[e.Stream] = c
		}
		return m
	}
	check := func(what string, upto int) map[string]string {
		t.Helper()
		got := model()
		for key, w := range want(upto) {
			var c batchedCount
			if err := json.Unmarshal([]byte(got[key]), &c); err != nil || c != w {
				t.Fatalf("%s: %s holds %s, want %+v", what, key, got[key], w)
			}
		}
		return got
	}

	r := newRunner(true)
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var pe *projection.PoisonError
	if err := r.Wait(); !errors.As(err, &pe) || !errors.Is(err, boom) || pe.Position != poison.Position {
		t.Fatalf("Wait = %v, want a poison error at %s", err, poison.Position)
	}
	check("after a handler error", len(evs)/2)
	// Other tests' events may lie between the test's own.
	if pos, err := s.rb.Load(ctx, prefix+"projection"); err != nil || !pos.Less(poison.Position) || pos.Less(evs[len(evs)/2-1].Position) {
		t.Fatalf("checkpoint = %v, %v; want before the failing event %s, not before %s", pos, err, poison.Position, evs[len(evs)/2-1].Position)
	}

	r = newRunner(false)
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := r.Stop(context.WithoutCancel(ctx)); err != nil {
			t.Error(err)
		}
	}()
	if err := r.WaitFor(ctx, evs[len(evs)-1].Position); err != nil {
		t.Fatal(err)
	}
	live := check("caught up", len(evs))
	if err := r.Rebuild(ctx, nil); err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	rebuilt := check("rebuilt", len(evs))
	for key, v := range live {
		if !jsonEqual([]byte(v), []byte(rebuilt[key])) {
			t.Fatalf("%s: rebuilt %s, caught up %s", key, rebuilt[key], v)
		}
	}
}

// RawSQL is a handler's own SQL in a projection's transaction, reached
// through the backend's TxFromContext(ctx), on the table of qs (one of
// the suite's query stores): Get reads key's stored JSON, Put writes
// one. Given with [WithRawSQL], it checks that TxFromContext writes out
// the batch's buffered writes before handing out the transaction.
type RawSQL struct {
	Get func(ctx context.Context, qs cqrs.QueryStore, key string) (string, error)
	Put func(ctx context.Context, qs cqrs.QueryStore, key, value string) error
}

// WithRawSQL gives [RunSQLQueryStore] the backend's own SQL for the
// Batched/RawSQL case, which skips without it.
func WithRawSQL(r RawSQL) SQLQueryOption {
	return func(o *sqlQueryOptions) { o.raw = r }
}

// testBatchedRawSQL: inside a batch, the handler's own SQL (through
// TxFromContext) sees the writes buffered before it, and what it writes
// is read back by the query store after.
func (s sqlQuerySuite) testBatchedRawSQL(t *testing.T) {
	if s.rb == nil || s.raw.Get == nil || s.raw.Put == nil {
		t.Skip("the backend passed no WithCheckpoints or no WithRawSQL")
	}
	t.Parallel()
	ctx := t.Context()
	qs := s.newStore(t, "batched_raw")
	err := s.rb.Commit(ctx, "qs-batched-raw", "", nova.Start, nova.Position{Commit: 1}, inBatch(func(tx context.Context, b *projectiondriver.Batch) error {
		if err := qs.UpsertRaw(tx, "k", json.RawMessage(`{"n":1}`)); err != nil {
			return err
		}
		if err := getIs(tx, qs, "other", ""); err != nil {
			return err
		}
		if n := b.Pending(); n != 1 {
			return fmt.Errorf("%d writes buffered, want 1", n)
		}
		if v, err := s.raw.Get(tx, qs, "k"); err != nil || !jsonEqual([]byte(v), []byte(`{"n":1}`)) {
			return fmt.Errorf("the handler's own SELECT = %s, %v; want the buffered write", v, err)
		}
		if n := b.Pending(); n != 0 {
			return fmt.Errorf("%d writes still buffered after TxFromContext", n)
		}
		if err := s.raw.Put(tx, qs, "other", `"raw"`); err != nil {
			return fmt.Errorf("the handler's own INSERT: %w", err)
		}
		// "other" was read as missing before: the batch must not answer
		// from what it remembered.
		if err := getIs(tx, qs, "other", `"raw"`); err != nil {
			return fmt.Errorf("after the handler's own INSERT: %w", err)
		}
		return qs.UpsertRaw(tx, "k", json.RawMessage(`{"n":2}`))
	}))
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"k": `{"n":2}`, "other": `"raw"`} {
		if err := getIs(ctx, qs, key, want); err != nil {
			t.Error(err)
		}
	}
}
