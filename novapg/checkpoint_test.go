package novapg_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/projectiondriver"
	"github.com/nova-go/nova/novapg"
	"github.com/nova-go/nova/novatest"
	"github.com/nova-go/nova/projection"
)

func newCheckpoints(t *testing.T) (*novapg.Store, *novapg.Checkpoints, scratch) {
	t.Helper()
	sc := newScratch(t)
	s := open(t, sc.config())
	cps := novapg.NewCheckpoints(s)
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

// pgReadModel is the suite's read model, in the schema first on the
// search_path of the transaction's connection.
var pgReadModel = novatest.ReadModel{
	Create: func(ctx context.Context, table string) error {
		return inTx(ctx, `CREATE TABLE `+table+` (k text PRIMARY KEY)`)
	},
	Insert: func(ctx context.Context, table, key string) error {
		return inTx(ctx, `INSERT INTO `+table+` (k) VALUES ($1)`, key)
	},
	Count: func(ctx context.Context, table string) (int, error) {
		tx, ok := novapg.TxFromContext(ctx)
		if !ok {
			return 0, errors.New("no transaction in ctx")
		}
		var n int
		err := tx.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n)
		return n, err
	},
}

func TestCheckpoints(t *testing.T) {
	t.Parallel()
	novatest.RunCheckpointStore(t, func(t *testing.T) projection.CheckpointStore {
		// The suite's tables are unqualified: they go to the scratch schema.
		sc := newScratch(t)
		u, err := url.Parse(sc.url)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("search_path", sc.schema)
		u.RawQuery = q.Encode()
		cfg := sc.config()
		cfg.URL = u.String()
		cps := novapg.NewCheckpoints(open(t, cfg))
		return cps
	}, novatest.WithReadModel(pgReadModel), novatest.WithPrepare(),
		novatest.WithRefusedPositions(nova.Position{Commit: 1 << 63}, nova.Position{Commit: 1, Prepare: math.MaxUint64}))
}

// TestCheckpointsSchemaTables rebuilds schema-qualified tables, whose
// shadows are CREATE TABLE ... (LIKE ... INCLUDING ALL): identity
// columns, and a partial unique index, come along.
func TestCheckpointsSchemaTables(t *testing.T) {
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
	rctx := projectiondriver.WithRebuild(ctx)
	tables := []string{model}
	for round := range 2 {
		if err := cps.Prepare(rctx, tables); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		err := cps.Commit(ctx, "m@rebuild", "", nova.Start, nova.Position{Commit: 10, Prepare: 4}, func(ctx context.Context) error {
			return inTx(ctx, `INSERT INTO `+projection.Table(rctx, model)+` (k, v) VALUES ('rebuilt', 2)`)
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := cps.Swap(ctx, "m", "m@rebuild", tables); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if n := count(t, s, model); n != 1 {
			t.Fatalf("round %d: the swapped table has %d rows", round, n)
		}
		_, err = s.Pool().Exec(ctx, `INSERT INTO `+model+` (k, v) VALUES ('x', 2)`)
		if err == nil || !strings.Contains(err.Error(), "23505") {
			t.Fatalf("round %d: unique index not copied: %v", round, err)
		}
	}
	if err := cps.Prepare(rctx, []string{sc.schema + ".missing"}); !errors.Is(err, nova.ErrInvalid) {
		t.Fatalf("prepare of a missing table: %v, want ErrInvalid", err)
	}
}

// TestProjectionOnPostgres runs a projection into a PostgreSQL read
// model: two instances by lease, each event applied once, and a rebuild
// swapped in while readers watch.
// TestCommitMovesCheckpointAtCommit checks that the checkpoint a Commit
// moves (in the statement that also checks the owner and the position,
// before apply runs) shows to others only once the transaction commits,
// and that a Commit fenced by its position or its lease runs no apply
// and leaves the row as it was.
func TestCommitMovesCheckpointAtCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, cps, _ := newCheckpoints(t)
	at := func(n uint64) nova.Position { return nova.Position{Commit: n} }
	for _, c := range []struct {
		name, owner string
		from, to    nova.Position
	}{
		{"fresh", "", nova.Start, at(2)},
		{"fresh", "", at(2), at(5)},
		{"leased", "", nova.Start, at(1)},
		{"leased", "one", at(1), at(4)},
	} {
		if c.owner != "" {
			if held, err := cps.Acquire(ctx, c.name, c.owner, time.Hour); err != nil || !held {
				t.Fatalf("Acquire(%q, %q) = %v, %v", c.name, c.owner, held, err)
			}
		}
		err := cps.Commit(ctx, c.name, c.owner, c.from, c.to, func(ctx context.Context) error {
			got, err := cps.Load(context.Background(), c.name) // another connection
			if err != nil {
				return err
			}
			if got != c.from {
				t.Errorf("during the Commit of %q from %s to %s, Load = %s, want %s", c.name, c.from, c.to, got, c.from)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("Commit(%q, %q, %s → %s): %v", c.name, c.owner, c.from, c.to, err)
		}
		if got, err := cps.Load(ctx, c.name); err != nil || got != c.to {
			t.Fatalf("after the Commit of %q, Load = %s, %v; want %s", c.name, got, err, c.to)
		}
	}
	before, err := cps.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ran := false
	apply := func(context.Context) error { ran = true; return nil }
	for _, c := range []struct {
		what, name, owner string
		from              nova.Position
		want              error
	}{
		{"from a stale position", "fresh", "", at(2), nova.ErrConcurrency},
		{"from ahead", "fresh", "", at(6), nova.ErrConcurrency},
		{"from the start of a name never committed", "never", "one", nova.Start, projection.ErrLeaseLost},
		{"from elsewhere of a name never committed", "never", "", at(3), nova.ErrConcurrency},
		{"by a non-holder", "leased", "two", at(4), projection.ErrLeaseLost},
		{"by a non-holder from a stale position", "leased", "two", at(1), projection.ErrLeaseLost},
		{"by the holder from a stale position", "leased", "one", at(1), nova.ErrConcurrency},
		{"without an owner from a stale position", "leased", "", at(1), nova.ErrConcurrency},
	} {
		err := cps.Commit(ctx, c.name, c.owner, c.from, at(9), apply)
		if !errors.Is(err, c.want) {
			t.Errorf("Commit %s = %v, want an error matching %v", c.what, err, c.want)
		}
		if ran {
			t.Errorf("Commit %s ran apply", c.what)
			ran = false
		}
	}
	after, err := cps.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("fenced commits changed the checkpoints:\n%+v\nwant\n%+v", after, before)
	}
}

// TestCommitDuringLeaseRenewal checks that a Commit by the holder of a
// lease that has just expired, while another transaction renews it,
// waits for the renewal and goes through, as it would had it come a
// moment later: the statement that checks the lease passes over a row
// that its snapshot shows expired, and Commit checks it again, locked.
func TestCommitDuringLeaseRenewal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, cps, sc := newCheckpoints(t)
	if held, err := cps.Acquire(ctx, "p", "one", time.Millisecond); err != nil || !held {
		t.Fatalf("Acquire = %v, %v", held, err)
	}
	time.Sleep(20 * time.Millisecond) // the lease expires
	renewal, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = renewal.Rollback(ctx) }()
	if _, err := renewal.Exec(ctx, `UPDATE `+sc.schema+`.checkpoints SET lease_until = clock_timestamp() + interval '1 hour' WHERE name = 'p'`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- cps.Commit(ctx, "p", "one", nova.Start, nova.Position{Commit: 1}, func(context.Context) error { return nil })
	}()
	select {
	case err := <-done:
		t.Fatalf("Commit while the lease's row is locked by its renewal = %v, want it to wait", err)
	case <-time.After(200 * time.Millisecond):
	}
	if err := renewal.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Commit after the renewal: %v", err)
	}
	if got, err := cps.Load(ctx, "p"); err != nil || got != (nova.Position{Commit: 1}) {
		t.Fatalf("Load = %s, %v; want 1", got, err)
	}
}

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
	reg := nova.NewRegistry(nova.RegistryOptions{})
	p, err := projection.New("totals", reg)
	if err != nil {
		t.Fatal(err)
	}
	err = projection.OnType(p, "added", func(ctx context.Context, e nova.Event) error {
		if err := inTx(ctx, `INSERT INTO `+projection.Table(ctx, applied)+` VALUES ($1)`, e.ID); err != nil {
			return err
		}
		// A row once written by the rebuild stays marked: the live
		// table holds no marked row before the swap and only marked
		// rows after it, whatever the live runner applies after the
		// swap, so a reader seeing some marked rows saw a swap that was
		// not atomic.
		return inTx(ctx, `INSERT INTO `+projection.Table(ctx, totals)+` AS t VALUES ($1, 1, $2)
			ON CONFLICT (k) DO UPDATE SET n = t.n + 1, rebuilt = t.rebuilt OR excluded.rebuilt`, e.Stream, projection.Rebuilding(ctx))
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
		r, err := projection.NewRunner(projection.Config{
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
	if keys, rebuilt, events := model(); keys != 20 || events != n+61 || rebuilt != 20 {
		t.Fatalf("model: %d keys, %d events, %d rebuilt keys; want 20, %d, 20", keys, events, rebuilt, n+61)
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
