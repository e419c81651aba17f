package novasqlite_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novasqlite"
	"github.com/nova-go/nova/projection"
)

func newCheckpoints(t *testing.T) (*novasqlite.Store, *novasqlite.Checkpoints) {
	t.Helper()
	s := open(t, novasqlite.Config{})
	cps, err := novasqlite.NewCheckpoints(s)
	if err != nil {
		t.Fatal(err)
	}
	return s, cps
}

func TestCheckpointsCommitFences(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, cps := newCheckpoints(t)
	if err := s.WriteTx(ctx, func(c *sqlite3.Conn) error { return c.Exec(`CREATE TABLE side (k TEXT PRIMARY KEY)`) }); err != nil {
		t.Fatal(err)
	}
	write := func(key string) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			c, ok := novasqlite.TxFromContext(ctx)
			if !ok {
				return errors.New("no transaction in ctx")
			}
			return insertRow(key)(c)
		}
	}
	p := func(n uint64) nova.Position { return nova.Position{Commit: n} }
	if pos, err := cps.Load(ctx, "p"); err != nil || pos != nova.Start {
		t.Fatalf("Load of a new name = %s, %v", pos, err)
	}
	if err := cps.Commit(ctx, "p", "", nova.Start, p(3), write("a")); err != nil {
		t.Fatal(err)
	}
	// A stale from: nothing applied, ErrConcurrency.
	if err := cps.Commit(ctx, "p", "", p(2), p(5), write("b")); !errors.Is(err, nova.ErrConcurrency) {
		t.Fatalf("stale from: %v, want ErrConcurrency", err)
	}
	// apply fails: its error as is, nothing committed.
	boom := errors.New("boom")
	err := cps.Commit(ctx, "p", "", p(3), p(4), func(ctx context.Context) error {
		if err := write("c")(ctx); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("failing apply: %v, want boom", err)
	}
	// Leases: an owner that does not hold the lease is fenced.
	if ok, err := cps.Acquire(ctx, "p", "one", time.Minute); !ok || err != nil {
		t.Fatalf("Acquire = %v, %v", ok, err)
	}
	if ok, err := cps.Acquire(ctx, "p", "two", time.Minute); ok || err != nil {
		t.Fatalf("Acquire of a held lease = %v, %v", ok, err)
	}
	if err := cps.Commit(ctx, "p", "two", p(3), p(4), write("d")); !errors.Is(err, projection.ErrLeaseLost) {
		t.Fatalf("commit by a non-holder: %v, want ErrLeaseLost", err)
	}
	if err := cps.Commit(ctx, "p", "one", p(3), p(6), write("e")); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, s, "side"); n != 2 {
		t.Fatalf("%d rows written, want 2 (a, e)", n)
	}
	if pos, err := cps.Load(ctx, "p"); err != nil || pos != p(6) {
		t.Fatalf("Load = %s, %v; want 6", pos, err)
	}
	// Release by a non-holder does nothing; by the holder frees the lease.
	if err := cps.Release(ctx, "p", "two"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := cps.Acquire(ctx, "p", "two", time.Minute); ok {
		t.Fatal("a release by a non-holder freed the lease")
	}
	if err := cps.Release(ctx, "p", "one"); err != nil {
		t.Fatal(err)
	}
	if ok, err := cps.Acquire(ctx, "p", "two", 50*time.Millisecond); !ok || err != nil {
		t.Fatalf("Acquire after release = %v, %v", ok, err)
	}
	// An expired lease goes to whoever asks, and fences its old holder.
	time.Sleep(60 * time.Millisecond)
	if err := cps.Commit(ctx, "p", "two", p(6), p(7), write("f")); !errors.Is(err, projection.ErrLeaseLost) {
		t.Fatalf("commit on an expired lease: %v, want ErrLeaseLost", err)
	}
	if ok, err := cps.Acquire(ctx, "p", "three", time.Minute); !ok || err != nil {
		t.Fatalf("Acquire of an expired lease = %v, %v", ok, err)
	}
	list, err := cps.List(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("List = %+v, %v", list, err)
	}
	if i := list[0]; i.Name != "p" || i.Position != p(6) || i.LeaseOwner != "three" || !i.Active(time.Now()) || i.UpdatedAt.IsZero() {
		t.Fatalf("List = %+v", i)
	}
	// Save ignores the lease and the fence.
	if err := cps.Save(ctx, "p", p(1)); err != nil {
		t.Fatal(err)
	}
	if pos, _ := cps.Load(ctx, "p"); pos != p(1) {
		t.Fatalf("Load after Save = %s", pos)
	}
}

func TestCheckpointsPrepareAndSwap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, cps := newCheckpoints(t)
	ddl := `CREATE TABLE IF NOT EXISTS   "Model" (k TEXT PRIMARY KEY, v INTEGER NOT NULL DEFAULT 0, UNIQUE (v, k));
		create unique index [model_v] on Model (v) WHERE v > 0;
		CREATE INDEX "model_k" ON "Model"(k);
		INSERT INTO Model (k, v) VALUES ('live', 1);`
	if err := s.WriteTx(ctx, func(c *sqlite3.Conn) error { return c.Exec(ddl) }); err != nil {
		t.Fatal(err)
	}
	rctx := projection.WithRebuild(ctx)
	tables := []string{"Model"}
	for round := range 3 {
		if err := cps.Prepare(rctx, tables); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if n := countRows(t, s, projection.Table(rctx, "Model")); n != 0 {
			t.Fatalf("round %d: the shadow has %d rows", round, n)
		}
		err := cps.Commit(ctx, "m@rebuild", "", nova.Start, nova.Position{Commit: 10}, func(ctx context.Context) error {
			c, _ := novasqlite.TxFromContext(ctx)
			return c.Exec(`INSERT INTO ` + projection.Table(rctx, "Model") + ` (k, v) VALUES ('rebuilt', 2)`)
		})
		if err != nil {
			t.Fatal(err)
		}
		// A live checkpoint ahead of the shadow's: no swap.
		if err := cps.Save(ctx, "m", nova.Position{Commit: 11}); err != nil {
			t.Fatal(err)
		}
		if err := cps.Swap(ctx, "m", "m@rebuild", tables); !errors.Is(err, nova.ErrConcurrency) {
			t.Fatalf("swap behind the live checkpoint: %v, want ErrConcurrency", err)
		}
		if err := cps.Save(ctx, "m", nova.Position{Commit: 9}); err != nil {
			t.Fatal(err)
		}
		if err := cps.Swap(ctx, "m", "m@rebuild", tables); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if n := countRows(t, s, "Model"); n != 1 {
			t.Fatalf("round %d: the swapped table has %d rows", round, n)
		}
		if pos, _ := cps.Load(ctx, "m"); pos.Commit != 10 {
			t.Fatalf("checkpoint after the swap %s, want 10", pos)
		}
		// The indexes came along: the partial unique one refuses a second v=2.
		err = s.WriteTx(ctx, func(c *sqlite3.Conn) error { return c.Exec(`INSERT INTO Model (k, v) VALUES ('x', 2)`) })
		if !errors.Is(err, sqlite3.CONSTRAINT) {
			t.Fatalf("round %d: unique index not copied: %v", round, err)
		}
		if list, _ := cps.List(ctx); len(list) != 1 {
			t.Fatalf("the rebuild's checkpoint is left: %+v", list)
		}
	}
	if err := cps.Swap(ctx, "m", "m@rebuild", tables); err == nil || !strings.Contains(err.Error(), "Prepare first") {
		t.Fatalf("swap without a shadow: %v", err)
	}
	if err := cps.Prepare(rctx, []string{"missing"}); !errors.Is(err, nova.ErrInvalid) {
		t.Fatalf("prepare of a missing table: %v, want ErrInvalid", err)
	}
}

func TestCheckpointsInvalidInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, cps := newCheckpoints(t)
	var nilCtx context.Context
	noop := func(context.Context) error { return nil }
	p5 := nova.Position{Commit: 5}
	for name, err := range map[string]error{
		"nil store":        func() error { _, err := novasqlite.NewCheckpoints(nil); return err }(),
		"load nil ctx":     func() error { _, err := cps.Load(nilCtx, "p"); return err }(),
		"load bad name":    func() error { _, err := cps.Load(ctx, ""); return err }(),
		"save bad name":    cps.Save(ctx, "a\x00", p5),
		"save pg position": cps.Save(ctx, "p", nova.Position{Commit: 1, Prepare: 2}),
		"commit nil apply": cps.Commit(ctx, "p", "", nova.Start, p5, nil),
		"commit backwards": cps.Commit(ctx, "p", "", p5, nova.Start, noop),
		"commit owner":     cps.Commit(ctx, "p", "a\nb", nova.Start, p5, noop),
		"commit nil ctx":   cps.Commit(nilCtx, "p", "", nova.Start, p5, noop),
		"acquire ttl":      func() error { _, err := cps.Acquire(ctx, "p", "o", 0); return err }(),
		"acquire owner":    func() error { _, err := cps.Acquire(ctx, "p", "", time.Second); return err }(),
		"release owner":    cps.Release(ctx, "p", ""),
		"list nil ctx":     func() error { _, err := cps.List(nilCtx); return err }(),
		"prepare no table": cps.Prepare(ctx, nil),
		"prepare bad":      cps.Prepare(ctx, []string{"a;b"}),
		"prepare schema":   cps.Prepare(ctx, []string{"main.t"}),
		"swap same name":   cps.Swap(ctx, "p", "p", []string{"t"}),
		"swap bad table":   cps.Swap(ctx, "p", "q", []string{"t__rebuild"}),
	} {
		if !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if list, err := cps.List(ctx); err != nil || len(list) != 0 {
		t.Fatalf("rejected calls changed the table: %+v, %v", list, err)
	}
}
