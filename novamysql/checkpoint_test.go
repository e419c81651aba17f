package novamysql_test

import (
	"context"

	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/projectiondriver"
	"github.com/nova-go/nova/novamysql"
	"github.com/nova-go/nova/novatest"
	"github.com/nova-go/nova/projection"
)

// inTx runs q in the transaction of ctx.
func inTx(ctx context.Context, q string, args ...any) error {
	tx, ok := novamysql.TxFromContext(ctx)
	if !ok {
		return errors.New("no transaction in ctx")
	}
	_, err := tx.ExecContext(ctx, q, args...)
	return err
}

// mysqlReadModel is the suite's read model, in the database of the
// transaction's connection. MySQL commits a transaction at any DDL
// statement, so a table is created through another connection, beside
// the transaction, rather than in it.
var mysqlReadModel = novatest.ReadModel{
	Create: func(ctx context.Context, table string) error {
		tx, ok := novamysql.TxFromContext(ctx)
		if !ok {
			return errors.New("no transaction in ctx")
		}
		var db string
		if err := tx.QueryRowContext(ctx, `SELECT DATABASE()`).Scan(&db); err != nil {
			return err
		}
		var err error
		adminDo(func() {
			_, err = adminDB.ExecContext(ctx, "CREATE TABLE `"+db+"`.`"+table+"` (k VARBINARY(255) PRIMARY KEY)")
		})
		return err
	},
	Insert: func(ctx context.Context, table, key string) error {
		return inTx(ctx, "INSERT INTO `"+table+"` (k) VALUES (?)", key)
	},
	Count: func(ctx context.Context, table string) (int, error) {
		tx, ok := novamysql.TxFromContext(ctx)
		if !ok {
			return 0, errors.New("no transaction in ctx")
		}
		var n int
		err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM `"+table+"`").Scan(&n)
		return n, err
	},
}

func TestCheckpoints(t *testing.T) {
	t.Parallel()
	admin(t)
	novatest.RunCheckpointStore(t, func(t *testing.T) projection.CheckpointStore {
		return novamysql.NewCheckpoints(open(t, novamysql.Config{}))
	}, novatest.WithReadModel(mysqlReadModel), novatest.WithPrepare())
}

// Positions are kept whole, up to the largest of each part.
func TestCheckpointsLargestPosition(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cps := novamysql.NewCheckpoints(open(t, novamysql.Config{}))
	top := nova.Position{Commit: math.MaxUint64, Prepare: math.MaxUint64}
	if err := cps.Save(ctx, "p", nova.Position{Commit: math.MaxUint64 - 1}); err != nil {
		t.Fatal(err)
	}
	if err := cps.Commit(ctx, "p", "", nova.Position{Commit: math.MaxUint64 - 1}, top, func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if got, err := cps.Load(ctx, "p"); err != nil || got != top {
		t.Fatalf("Load = %s, %v; want %s", got, err, top)
	}
}

// execute runs q on the store's pool and fails t on an error.
func execute(t *testing.T, s *novamysql.Store, q string, args ...any) {
	t.Helper()
	if _, err := s.DB().Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func countRows(t *testing.T, s *novamysql.Store, table string) int {
	t.Helper()
	var n int
	if err := s.DB().QueryRow("SELECT COUNT(*) FROM `" + table + "`").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func tableThere(t *testing.T, s *novamysql.Store, table string) bool {
	t.Helper()
	var n int
	if err := s.DB().QueryRow(`SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?`, table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// TestCheckpointsSwapCutShort leaves a swap as a crash would, its record
// written and the tables renamed or not, and checks that Load and List
// show the checkpoint the live tables hold, writing nothing, and that
// the next Commit finishes or undoes the swap before it decides.
func TestCheckpointsSwapCutShort(t *testing.T) {
	t.Parallel()
	for _, renamed := range []bool{true, false} {
		t.Run(fmt.Sprint("renamed=", renamed), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := open(t, novamysql.Config{})
			cps := novamysql.NewCheckpoints(s)
			execute(t, s, "CREATE TABLE model (k VARBINARY(255) PRIMARY KEY)")
			insert := func(k string) func(context.Context) error {
				return func(ctx context.Context) error {
					return inTx(ctx, "INSERT INTO `"+projection.Table(ctx, "model")+"` (k) VALUES (?)", k)
				}
			}
			if err := cps.Commit(ctx, "m", "", nova.Start, nova.Position{Commit: 3}, insert("live")); err != nil {
				t.Fatal(err)
			}
			rctx := projectiondriver.WithRebuild(ctx)
			if err := cps.Prepare(rctx, []string{"model"}); err != nil {
				t.Fatal(err)
			}
			if err := cps.Commit(rctx, "m@rebuild", "", nova.Start, nova.Position{Commit: 5}, func(ctx context.Context) error {
				return errors.Join(insert("r1")(ctx), insert("r2")(ctx))
			}); err != nil {
				t.Fatal(err)
			}
			// The swap's record, then the rename or not, and no more.
			execute(t, s, `UPDATE nova_checkpoints SET swap_commit = 5, swap_prepare = 0, swap_shadow = 'm@rebuild', swap_tables = 'model' WHERE name = 'm'`)
			want := nova.Position{Commit: 3}
			if renamed {
				execute(t, s, "RENAME TABLE model TO model__retired, model__rebuild TO model")
				want = nova.Position{Commit: 5}
			}
			if got, err := cps.Load(ctx, "m"); err != nil || got != want {
				t.Fatalf("Load = %s, %v; want %s, the checkpoint of the live tables", got, err, want)
			}
			list, err := cps.List(ctx)
			if err != nil || len(list) != 2 || list[0].Name != "m" || list[0].Position != want {
				t.Fatalf("List = %+v, %v; want m at %s first", list, err, want)
			}
			var pending int
			if err := s.DB().QueryRow(`SELECT COUNT(*) FROM nova_checkpoints WHERE swap_commit IS NOT NULL`).Scan(&pending); err != nil || pending != 1 {
				t.Fatalf("after Load and List %d records of a swap (%v), want the one left: they only read", pending, err)
			}

			// A commit from the old checkpoint: refused if the swap
			// happened, and it is finished; applied if it did not, and
			// the record is cleared.
			err = cps.Commit(ctx, "m", "", nova.Position{Commit: 3}, nova.Position{Commit: 4}, insert("after"))
			if renamed {
				if !errors.Is(err, nova.ErrConcurrency) {
					t.Fatalf("Commit from the old checkpoint after the rename = %v, want nova.ErrConcurrency", err)
				}
				if tableThere(t, s, "model__retired") || tableThere(t, s, "model__rebuild") {
					t.Fatal("the retired table is left, or the shadow is back")
				}
				if n := countRows(t, s, "model"); n != 2 {
					t.Fatalf("the live table has %d rows, want the rebuild's 2", n)
				}
				if got, _ := cps.Load(ctx, "m@rebuild"); got != nova.Start {
					t.Fatalf("the rebuild's checkpoint is %s, want it gone", got)
				}
				err = cps.Commit(ctx, "m", "", nova.Position{Commit: 5}, nova.Position{Commit: 6}, insert("after"))
			}
			if err != nil {
				t.Fatalf("Commit after the swap was settled: %v", err)
			}
			if err := s.DB().QueryRow(`SELECT COUNT(*) FROM nova_checkpoints WHERE swap_commit IS NOT NULL`).Scan(&pending); err != nil || pending != 0 {
				t.Fatalf("%d records of a swap left (%v)", pending, err)
			}
			if !renamed {
				if n := countRows(t, s, "model"); n != 2 || !tableThere(t, s, "model__rebuild") {
					t.Fatalf("the live table has %d rows, want live and after; the shadow must be kept", n)
				}
				// The swap can be made again, and goes through.
				if err := cps.Swap(ctx, "m", "m@rebuild", []string{"model"}); err != nil {
					t.Fatal(err)
				}
				if got, err := cps.Load(ctx, "m"); err != nil || got != (nova.Position{Commit: 5}) {
					t.Fatalf("Load after the swap = %s, %v; want 5", got, err)
				}
				if n := countRows(t, s, "model"); n != 2 {
					t.Fatalf("after the swap the live table has %d rows, want the rebuild's 2", n)
				}
			}
		})
	}
}

// A Save of a projection whose swap was cut short after the rename
// finishes the swap first, then sets the checkpoint.
func TestCheckpointsSaveSettlesASwap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, novamysql.Config{})
	cps := novamysql.NewCheckpoints(s)
	execute(t, s, "CREATE TABLE model (k VARBINARY(255) PRIMARY KEY)")
	if err := cps.Prepare(projectiondriver.WithRebuild(ctx), []string{"model"}); err != nil {
		t.Fatal(err)
	}
	if err := cps.Save(ctx, "m", nova.Position{Commit: 1}); err != nil {
		t.Fatal(err)
	}
	execute(t, s, `UPDATE nova_checkpoints SET swap_commit = 9, swap_prepare = 0, swap_shadow = 'm@rebuild', swap_tables = 'model' WHERE name = 'm'`)
	execute(t, s, "RENAME TABLE model TO model__retired, model__rebuild TO model")
	if err := cps.Save(ctx, "m", nova.Position{Commit: 2}); err != nil {
		t.Fatal(err)
	}
	if got, err := cps.Load(ctx, "m"); err != nil || got != (nova.Position{Commit: 2}) {
		t.Fatalf("Load = %s, %v; want the saved 2", got, err)
	}
	if tableThere(t, s, "model__retired") {
		t.Fatal("the retired table is left")
	}
}

func TestCheckpointsClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, novamysql.Config{})
	cps := novamysql.NewCheckpoints(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	calls := map[string]error{
		"Save":    cps.Save(ctx, "p", nova.Position{Commit: 1}),
		"Commit":  cps.Commit(ctx, "p", "", nova.Start, nova.Position{Commit: 1}, func(context.Context) error { return nil }),
		"Release": cps.Release(ctx, "p", "o"),
		"Prepare": cps.Prepare(ctx, []string{"t"}),
		"Swap":    cps.Swap(ctx, "p", "p@rebuild", []string{"t"}),
	}
	_, calls["Load"] = cps.Load(ctx, "p")
	_, calls["Acquire"] = cps.Acquire(ctx, "p", "o", time.Second)
	_, calls["List"] = cps.List(ctx)
	for what, err := range calls {
		if !errors.Is(err, nova.ErrClosed) {
			t.Errorf("%s after Close = %v, want nova.ErrClosed", what, err)
		}
	}
}

// TestProjectionOnMySQL runs a projection into a MySQL read model: two
// instances by lease, each event applied once, and a rebuild swapped in
// while readers watch.
func TestProjectionOnMySQL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, novamysql.Config{})
	cps := novamysql.NewCheckpoints(s)
	execute(t, s, "CREATE TABLE totals (k VARBINARY(64) PRIMARY KEY, n INT NOT NULL, rebuilt BOOL NOT NULL)")
	execute(t, s, "CREATE TABLE applied (event_id CHAR(36) PRIMARY KEY)")
	reg := nova.NewRegistry(nova.RegistryOptions{})
	p, err := projection.New("totals", reg)
	if err != nil {
		t.Fatal(err)
	}
	err = projection.OnType(p, "added", func(ctx context.Context, e nova.Event) error {
		if err := inTx(ctx, "INSERT INTO `"+projection.Table(ctx, "applied")+"` VALUES (?)", e.ID); err != nil {
			return err
		}
		return inTx(ctx, "INSERT INTO `"+projection.Table(ctx, "totals")+"` VALUES (?, 1, ?) ON DUPLICATE KEY UPDATE n = n + 1, rebuilt = VALUES(rebuilt)",
			e.Stream, projection.Rebuilding(ctx))
	})
	if err != nil {
		t.Fatal(err)
	}
	appendN := func(from, to int) nova.Position {
		var last nova.Position
		for i := from; i < to; i++ {
			res, err := s.Append(ctx, fmt.Sprint("k", i%20), nova.Any, nova.EventData{Type: "added", Data: []byte(`{}`)})
			if err != nil {
				t.Error(err)
				return last
			}
			last = res.Position
		}
		return last
	}
	newRunner := func(owner string) *projection.Runner {
		r, err := projection.NewRunner(projection.Config{
			Store: s, Projection: p, Checkpoints: cps, Leaser: cps, Owner: owner,
			// A lease outlives a renewal held up by the batch that
			// holds the checkpoint's row, on a loaded machine.
			LeaseTTL: 2 * time.Second, Tables: []string{"totals", "applied"}, BatchSize: 25,
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
		err := s.DB().QueryRow(`SELECT (SELECT COUNT(*) FROM totals), (SELECT COUNT(*) FROM totals WHERE rebuilt),
			(SELECT COALESCE(SUM(n), 0) FROM totals)`).Scan(&n, &rebuilt, &events)
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
	if got := countRows(t, s, "applied"); got != n+61 {
		t.Fatalf("%d events applied, want %d", got, n+61)
	}
	for _, table := range []string{"totals__retired", "applied__retired", "totals__rebuild", "applied__rebuild"} {
		if tableThere(t, s, table) {
			t.Errorf("table %s is left after the rebuild", table)
		}
	}
	if err := two.Status().Err; err != nil {
		t.Fatal(err)
	}
	lag, err := projection.StoredLag(ctx, s, cps, "totals", 0)
	if err != nil || lag.Events != 0 || lag.Head != pos {
		t.Fatalf("StoredLag = %+v, %v", lag, err)
	}
}
