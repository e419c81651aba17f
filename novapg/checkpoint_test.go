package novapg_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novapg"
	"github.com/nova-go/nova/projection"
)

func newCheckpoints(t *testing.T) (*novapg.Store, *novapg.Checkpoints, scratch) {
	t.Helper()
	sc := newScratch(t)
	s := open(t, sc.config())
	cps, err := novapg.NewCheckpoints(s)
	if err != nil {
		t.Fatal(err)
	}
	return s, cps, sc
}

// inTx runs sql in the transaction of ctx.
func inTx(ctx context.Context, sql string, args ...any) error {
	tx, ok := novapg.TxFromContext(ctx)
	if !ok {
		return errors.New("no transaction in ctx")
	}
	_, err := tx.Exec(ctx, sql, args...)
	return err
}

func count(t *testing.T, s *novapg.Store, table string) int {
	t.Helper()
	var n int
	if err := s.Pool().QueryRow(context.Background(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCheckpointsCommitFences(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, cps, sc := newCheckpoints(t)
	side := sc.schema + ".side"
	if _, err := s.Pool().Exec(ctx, `CREATE TABLE `+side+` (k text PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	write := func(k string) func(context.Context) error {
		return func(ctx context.Context) error { return inTx(ctx, `INSERT INTO `+side+` VALUES ($1)`, k) }
	}
	p := func(c, q uint64) nova.Position { return nova.Position{Commit: c, Prepare: q} }
	if pos, err := cps.Load(ctx, "p"); err != nil || pos != nova.Start {
		t.Fatalf("Load of a new name = %s, %v", pos, err)
	}
	if err := cps.Commit(ctx, "p", "", nova.Start, p(7, 3), write("a")); err != nil {
		t.Fatal(err)
	}
	if err := cps.Commit(ctx, "p", "", p(7, 2), p(8, 1), write("b")); !errors.Is(err, nova.ErrConcurrency) {
		t.Fatalf("stale from: %v, want ErrConcurrency", err)
	}
	boom := errors.New("boom")
	err := cps.Commit(ctx, "p", "", p(7, 3), p(8, 1), func(ctx context.Context) error {
		if err := write("c")(ctx); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("failing apply: %v, want boom", err)
	}
	if ok, err := cps.Acquire(ctx, "p", "one", time.Minute); !ok || err != nil {
		t.Fatalf("Acquire = %v, %v", ok, err)
	}
	if ok, err := cps.Acquire(ctx, "p", "two", time.Minute); ok || err != nil {
		t.Fatalf("Acquire of a held lease = %v, %v", ok, err)
	}
	if err := cps.Commit(ctx, "p", "two", p(7, 3), p(8, 1), write("d")); !errors.Is(err, projection.ErrLeaseLost) {
		t.Fatalf("commit by a non-holder: %v, want ErrLeaseLost", err)
	}
	if err := cps.Commit(ctx, "p", "one", p(7, 3), p(9, 1), write("e")); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, side); n != 2 {
		t.Fatalf("%d rows written, want 2 (a, e)", n)
	}
	if pos, err := cps.Load(ctx, "p"); err != nil || pos != p(9, 1) {
		t.Fatalf("Load = %s, %v; want 9/1", pos, err)
	}
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
	time.Sleep(60 * time.Millisecond)
	if err := cps.Commit(ctx, "p", "two", p(9, 1), p(9, 2), write("f")); !errors.Is(err, projection.ErrLeaseLost) {
		t.Fatalf("commit on an expired lease: %v, want ErrLeaseLost", err)
	}
	if ok, err := cps.Acquire(ctx, "p", "three", time.Minute); !ok || err != nil {
		t.Fatalf("Acquire of an expired lease = %v, %v", ok, err)
	}
	list, err := cps.List(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("List = %+v, %v", list, err)
	}
	if i := list[0]; i.Name != "p" || i.Position != p(9, 1) || i.LeaseOwner != "three" || !i.Active(time.Now()) || i.UpdatedAt.IsZero() {
		t.Fatalf("List = %+v", i)
	}
	if err := cps.Save(ctx, "p", p(1, 0)); err != nil {
		t.Fatal(err)
	}
	if pos, _ := cps.Load(ctx, "p"); pos != p(1, 0) {
		t.Fatalf("Load after Save = %s", pos)
	}
}

func TestCheckpointsPrepareAndSwap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, cps, sc := newCheckpoints(t)
	model := sc.schema + ".model"
	_, err := s.Pool().Exec(ctx, `CREATE TABLE `+model+` (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, k text NOT NULL, v int NOT NULL);
		CREATE UNIQUE INDEX ON `+model+` (v) WHERE v > 0;
		INSERT INTO `+model+` (k, v) VALUES ('live', 1)`)
	if err != nil {
		t.Fatal(err)
	}
	rctx := projection.WithRebuild(ctx)
	tables := []string{model}
	for round := range 3 {
		if err := cps.Prepare(rctx, tables); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if n := count(t, s, projection.Table(rctx, model)); n != 0 {
			t.Fatalf("round %d: the shadow has %d rows", round, n)
		}
		err := cps.Commit(ctx, "m@rebuild", "", nova.Start, nova.Position{Commit: 10, Prepare: 4}, func(ctx context.Context) error {
			return inTx(ctx, `INSERT INTO `+projection.Table(rctx, model)+` (k, v) VALUES ('rebuilt', 2)`)
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := cps.Save(ctx, "m", nova.Position{Commit: 10, Prepare: 5}); err != nil {
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
		if n := count(t, s, model); n != 1 {
			t.Fatalf("round %d: the swapped table has %d rows", round, n)
		}
		if pos, _ := cps.Load(ctx, "m"); pos != (nova.Position{Commit: 10, Prepare: 4}) {
			t.Fatalf("checkpoint after the swap %s, want 10/4", pos)
		}
		_, err = s.Pool().Exec(ctx, `INSERT INTO `+model+` (k, v) VALUES ('x', 2)`)
		if err == nil || !strings.Contains(err.Error(), "23505") {
			t.Fatalf("round %d: unique index not copied: %v", round, err)
		}
		if list, _ := cps.List(ctx); len(list) != 1 {
			t.Fatalf("the rebuild's checkpoint is left: %+v", list)
		}
	}
	if err := cps.Swap(ctx, "m", "m@rebuild", tables); err == nil || !strings.Contains(err.Error(), "Prepare first") {
		t.Fatalf("swap without a shadow: %v", err)
	}
	if err := cps.Prepare(rctx, []string{sc.schema + ".missing"}); !errors.Is(err, nova.ErrInvalid) {
		t.Fatalf("prepare of a missing table: %v, want ErrInvalid", err)
	}
}

func TestCheckpointsInvalidInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, cps, _ := newCheckpoints(t)
	var nilCtx context.Context
	noop := func(context.Context) error { return nil }
	p5 := nova.Position{Commit: 5}
	for name, err := range map[string]error{
		"nil store":        func() error { _, err := novapg.NewCheckpoints(nil); return err }(),
		"load nil ctx":     func() error { _, err := cps.Load(nilCtx, "p"); return err }(),
		"load bad name":    func() error { _, err := cps.Load(ctx, ""); return err }(),
		"save bad name":    cps.Save(ctx, "a\x00", p5),
		"save too big":     cps.Save(ctx, "p", nova.Position{Commit: 1 << 63}),
		"commit nil apply": cps.Commit(ctx, "p", "", nova.Start, p5, nil),
		"commit backwards": cps.Commit(ctx, "p", "", p5, nova.Start, noop),
		"commit owner":     cps.Commit(ctx, "p", "a\nb", nova.Start, p5, noop),
		"acquire ttl":      func() error { _, err := cps.Acquire(ctx, "p", "o", -time.Second); return err }(),
		"acquire owner":    func() error { _, err := cps.Acquire(ctx, "p", "", time.Second); return err }(),
		"release nil ctx":  cps.Release(nilCtx, "p", "o"),
		"list nil ctx":     func() error { _, err := cps.List(nilCtx); return err }(),
		"prepare no table": cps.Prepare(ctx, nil),
		"prepare bad":      cps.Prepare(ctx, []string{"a; drop table x"}),
		"swap same name":   cps.Swap(ctx, "p", "p", []string{"t"}),
		"swap bad table":   cps.Swap(ctx, "p", "q", []string{`"t"`}),
	} {
		if !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if list, err := cps.List(ctx); err != nil || len(list) != 0 {
		t.Fatalf("rejected calls changed the table: %+v, %v", list, err)
	}
}

// TestProjectionOnPostgres runs a projection into a PostgreSQL read
// model: two instances by lease, each event applied once, and a rebuild
// swapped in while readers watch.
func TestProjectionOnPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, cps, sc := newCheckpoints(t)
	totals, applied := sc.schema+".totals", sc.schema+".applied"
	_, err := s.Pool().Exec(ctx, `CREATE TABLE `+totals+` (k text PRIMARY KEY, n int NOT NULL, rebuilt bool NOT NULL);
		CREATE TABLE `+applied+` (event_id uuid PRIMARY KEY)`)
	if err != nil {
		t.Fatal(err)
	}
	reg := nova.NewRegistry(nil)
	p, err := projection.New("totals", reg)
	if err != nil {
		t.Fatal(err)
	}
	err = projection.OnType(p, "added", func(ctx context.Context, e nova.Event) error {
		if err := inTx(ctx, `INSERT INTO `+projection.Table(ctx, applied)+` VALUES ($1)`, e.ID); err != nil {
			return err
		}
		return inTx(ctx, `INSERT INTO `+projection.Table(ctx, totals)+` AS t VALUES ($1, 1, $2)
			ON CONFLICT (k) DO UPDATE SET n = t.n + 1, rebuilt = excluded.rebuilt`, e.Stream, projection.Rebuilding(ctx))
	})
	if err != nil {
		t.Fatal(err)
	}
	appendN := func(from, to int) nova.Position {
		var last nova.Position
		for i := from; i < to; i++ {
			res, err := s.Append(ctx, fmt.Sprint("k", i%20), nova.Any, nova.EventData{Type: "added", Data: []byte(`{}`)})
			if err != nil {
				t.Fatal(err)
			}
			last = res.Position
		}
		return last
	}
	newRunner := func(owner string) *projection.Runner {
		r, err := projection.NewRunner(&projection.Config{
			Store: s, Projection: p, Checkpoints: cps, Leaser: cps, Owner: owner,
			LeaseTTL: 300 * time.Millisecond, Tables: []string{totals, applied}, BatchSize: 25,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Stop(context.Background()) })
		return r
	}
	wait := func(r *projection.Runner, pos nova.Position) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := r.WaitFor(wctx, pos); err != nil {
			t.Fatal(err)
		}
	}
	model := func() (n, rebuilt, events int) {
		t.Helper()
		err := s.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM `+totals+`), (SELECT count(*) FROM `+totals+` WHERE rebuilt),
			(SELECT coalesce(sum(n), 0) FROM `+totals+`)`).Scan(&n, &rebuilt, &events)
		if err != nil {
			t.Error(err)
		}
		return n, rebuilt, events
	}

	const n = 200
	pos := appendN(0, n)
	one := newRunner("one")
	wait(one, pos)
	two := newRunner("two")
	if st := two.Status(); st.State != projection.Standby {
		t.Fatalf("second instance %s, want standby", st.State)
	}
	// The holder stops; the standby takes over from its checkpoint.
	if err := one.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	pos = appendN(n, n+20)
	wait(two, pos)

	stop := make(chan struct{})
	var readers sync.WaitGroup
	var bad atomic.Value
	readers.Go(func() {
		last := 0
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, rebuilt, events := model()
			switch {
			case events < last:
				bad.Store(fmt.Sprintf("the model went back from %d to %d events", last, events))
			case rebuilt > 0 && rebuilt < 20:
				bad.Store(fmt.Sprintf("a reader saw %d rebuilt keys of 20", rebuilt))
			}
			last = events
		}
	})
	var writers sync.WaitGroup
	writers.Go(func() { appendN(n+20, n+60) })
	err = two.Rebuild(ctx, nil)
	writers.Wait()
	close(stop)
	readers.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if v := bad.Load(); v != nil {
		t.Fatal(v)
	}
	pos = appendN(n+60, n+61)
	wait(two, pos)
	if keys, rebuilt, events := model(); keys != 20 || events != n+61 || rebuilt == 0 {
		t.Fatalf("model: %d keys, %d events, %d rebuilt keys; want 20, %d, some", keys, events, rebuilt, n+61)
	}
	if got := count(t, s, applied); got != n+61 {
		t.Fatalf("%d events applied, want %d", got, n+61)
	}
	if err := two.Status().Err; err != nil {
		t.Fatal(err)
	}
	lag, err := projection.StoredLag(ctx, s, cps, "totals", 0)
	if err != nil || lag.Events != 0 || lag.Head != pos {
		t.Fatalf("StoredLag = %+v, %v", lag, err)
	}
}
