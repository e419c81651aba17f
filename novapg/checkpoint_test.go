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
