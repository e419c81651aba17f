package projcrash_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ncruces/go-sqlite3"
	"go.uber.org/goleak"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/novamysql"
	"github.com/nova-go/nova/novapg"
	"github.com/nova-go/nova/novasqlite"
	"github.com/nova-go/nova/projection"
)

// childEnv holds the JSON of the target a re-executed test binary runs
// the projection on; headEnv, when set, is the position at which it
// stops.
const (
	childEnv = "NOVA_PROJCRASH_CHILD"
	headEnv  = "NOVA_PROJCRASH_HEAD"
)

func TestMain(m *testing.M) {
	if tg := os.Getenv(childEnv); tg != "" {
		os.Exit(child(tg, os.Getenv(headEnv)))
	}
	goleak.VerifyTestMain(testenv.Main(m))
}

// Added adds Value to Key's total.
type Added struct {
	Key   string `json:"key"`
	Value int64  `json:"value"`
}

const leaseTTL = 150 * time.Millisecond

func newRegistry() *nova.Registry {
	reg := nova.NewRegistry(nova.RegistryOptions{})
	nova.MustRegister[Added](reg, "Added")
	return reg
}

// target is where a run keeps its events and its read model: a SQLite
// file, a PostgreSQL schema, or a MySQL/MariaDB database (a go-sql-driver
// DSN).
type target struct {
	Path     string `json:",omitempty"`
	URL      string `json:",omitempty"`
	Schema   string `json:",omitempty"`
	MySQLDSN string `json:",omitempty"`
}

// backend is an open target: its store, checkpoints and SQL.
type backend struct {
	store  nova.Store
	cps    checkpoints
	tables []string // totals, applied
	// exec runs a statement in the transaction in ctx, with $n arguments.
	exec func(ctx context.Context, sql string, args ...any) error
	// cte: the database takes an INSERT in a WITH clause, so a handler
	// writes both tables in one round trip.
	cte bool
	// mysql: the statements are MySQL's (? arguments, ON DUPLICATE KEY).
	mysql bool
	// model reads the totals by key and the count of applied events.
	model func(ctx context.Context) (map[string][2]int64, int, error)
	// applied counts the applied events.
	applied func(ctx context.Context) (int, error)
	close   func()
}

type checkpoints interface {
	projection.Rebuilder
	projection.Leaser
}

func (tg target) open(ctx context.Context, child bool) (*backend, error) {
	switch {
	case tg.Path != "":
		return openSQLite(ctx, tg, child)
	case tg.MySQLDSN != "":
		return openMySQL(ctx, tg, child)
	}
	return openPostgres(ctx, tg)
}

func openSQLite(ctx context.Context, tg target, child bool) (*backend, error) {
	cfg := novasqlite.Config{Path: tg.Path}
	if child {
		cfg.PollInterval = 5 * time.Millisecond // the writers are the parent
	}
	s, err := novasqlite.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	cps := novasqlite.NewCheckpoints(s)
	b := &backend{store: s, cps: cps, tables: []string{"totals", "applied"}, close: func() { s.Close() }}
	b.exec = func(ctx context.Context, sql string, args ...any) error {
		c, ok := novasqlite.TxFromContext(ctx)
		if !ok {
			return errors.New("no transaction in the handler's ctx")
		}
		st, _, err := c.Prepare(sql)
		if err != nil {
			return err
		}
		defer st.Close()
		for i, a := range args {
			switch v := a.(type) {
			case string:
				err = st.BindText(i+1, v)
			case int64:
				err = st.BindInt64(i+1, v)
			}
			if err != nil {
				return err
			}
		}
		return st.Exec()
	}
	b.applied = func(ctx context.Context) (n int, err error) {
		err = s.ReadTx(ctx, func(c *sqlite3.Conn) error {
			st, _, err := c.Prepare(`SELECT count(*) FROM applied`)
			if err != nil {
				return err
			}
			defer st.Close()
			if st.Step() {
				n = st.ColumnInt(0)
			}
			return st.Err()
		})
		return n, err
	}
	b.model = func(ctx context.Context) (map[string][2]int64, int, error) {
		got := map[string][2]int64{}
		applied := 0
		err := s.ReadTx(ctx, func(c *sqlite3.Conn) error {
			st, _, err := c.Prepare(`SELECT key, n, sum FROM totals`)
			if err != nil {
				return err
			}
			defer st.Close()
			for st.Step() {
				got[st.ColumnText(0)] = [2]int64{st.ColumnInt64(1), st.ColumnInt64(2)}
			}
			if err := st.Err(); err != nil {
				return err
			}
			st2, _, err := c.Prepare(`SELECT count(DISTINCT event_id) FROM applied`)
			if err != nil {
				return err
			}
			defer st2.Close()
			if st2.Step() {
				applied = st2.ColumnInt(0)
			}
			return st2.Err()
		})
		return got, applied, err
	}
	return b, nil
}

func openPostgres(ctx context.Context, tg target) (*backend, error) {
	s, err := novapg.Open(ctx, novapg.Config{URL: tg.URL, Schema: tg.Schema})
	if err != nil {
		return nil, err
	}
	cps := novapg.NewCheckpoints(s)
	q := tg.Schema + "."
	b := &backend{store: s, cps: cps, tables: []string{q + "totals", q + "applied"}, cte: true, close: func() { s.Close() }}
	b.exec = func(ctx context.Context, sql string, args ...any) error {
		tx, ok := novapg.TxFromContext(ctx)
		if !ok {
			return errors.New("no transaction in the handler's ctx")
		}
		_, err := tx.Exec(ctx, sql, args...)
		return err
	}
	b.applied = func(ctx context.Context) (n int, err error) {
		err = s.Pool().QueryRow(ctx, `SELECT count(*) FROM `+q+`applied`).Scan(&n)
		return n, err
	}
	b.model = func(ctx context.Context) (map[string][2]int64, int, error) {
		got := map[string][2]int64{}
		tx, err := s.Pool().BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			return nil, 0, err
		}
		defer tx.Rollback(ctx)
		rows, err := tx.Query(ctx, `SELECT key, n, sum FROM `+q+`totals`)
		if err != nil {
			return nil, 0, err
		}
		for rows.Next() {
			var k string
			var n, sum int64
			if err := rows.Scan(&k, &n, &sum); err != nil {
				rows.Close()
				return nil, 0, err
			}
			got[k] = [2]int64{n, sum}
		}
		if err := rows.Err(); err != nil {
			return nil, 0, err
		}
		var applied int
		err = tx.QueryRow(ctx, `SELECT count(DISTINCT event_id) FROM `+q+`applied`).Scan(&applied)
		return got, applied, err
	}
	return b, nil
}

// createModel creates the read model's tables.
func (b *backend) createModel(ctx context.Context) error {
	ddl := `CREATE TABLE %s (key TEXT PRIMARY KEY, n BIGINT NOT NULL, sum BIGINT NOT NULL);
CREATE TABLE %s (event_id TEXT PRIMARY KEY, key TEXT NOT NULL);
CREATE INDEX applied_key ON %[2]s (key)`
	ddl = fmt.Sprintf(ddl, b.tables[0], b.tables[1])
	switch s := b.store.(type) {
	case *novasqlite.Store:
		return s.WriteTx(ctx, func(c *sqlite3.Conn) error { return c.Exec(ddl) })
	case *novapg.Store:
		_, err := s.Pool().Exec(ctx, ddl)
		return err
	case *novamysql.Store:
		return createMySQLModel(ctx, s.DB(), b.tables)
	}
	return fmt.Errorf("unknown store %T", b.store)
}

// newProjection is the read model: per key, the count and the sum of its
// events, and every applied event's ID under a primary key, so that an
// event applied twice fails its handler.
func (b *backend) newProjection(reg *nova.Registry) (*projection.Projection, error) {
	p, err := projection.New("totals", reg)
	if err != nil {
		return nil, err
	}
	err = projection.On(p, func(ctx context.Context, e nova.Event, v Added) error {
		totals, applied := projection.Table(ctx, b.tables[0]), projection.Table(ctx, b.tables[1])
		if b.mysql {
			if err := b.exec(ctx, "INSERT INTO `"+applied+"` (event_id, `key`) VALUES (?, ?)", e.ID, v.Key); err != nil {
				return fmt.Errorf("event %s applied twice? %w", e.ID, err)
			}
			return b.exec(ctx, "INSERT INTO `"+totals+"` (`key`, n, sum) VALUES (?, 1, ?) ON DUPLICATE KEY UPDATE n = n + 1, sum = sum + VALUES(sum)",
				v.Key, v.Value)
		}
		if b.cte {
			err := b.exec(ctx, `WITH a AS (INSERT INTO `+applied+` (event_id, key) VALUES ($1, $2) RETURNING key)
				INSERT INTO `+totals+` AS t (key, n, sum) SELECT key, 1, $3 FROM a
				ON CONFLICT (key) DO UPDATE SET n = t.n + 1, sum = t.sum + excluded.sum`, e.ID, v.Key, v.Value)
			if err != nil {
				return fmt.Errorf("event %s applied twice? %w", e.ID, err)
			}
			return nil
		}
		if err := b.exec(ctx, `INSERT INTO `+applied+` (event_id, key) VALUES ($1, $2)`, e.ID, v.Key); err != nil {
			return fmt.Errorf("event %s applied twice? %w", e.ID, err)
		}
		return b.exec(ctx, `INSERT INTO `+totals+` AS t (key, n, sum) VALUES ($1, 1, $2)
			ON CONFLICT (key) DO UPDATE SET n = t.n + 1, sum = t.sum + excluded.sum`, v.Key, v.Value)
	})
	return p, err
}

// child runs the projection on the target tgJSON until it is killed or,
// with head set, until it has handled the event at head. It prints
// "active" once it holds the lease.
func child(tgJSON, head string) int {
	ctx := context.Background()
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	var tg target
	if err := json.Unmarshal([]byte(tgJSON), &tg); err != nil {
		return fail(err)
	}
	b, err := tg.open(ctx, true)
	if err != nil {
		return fail(err)
	}
	defer b.close()
	p, err := b.newProjection(newRegistry())
	if err != nil {
		return fail(err)
	}
	r, err := projection.NewRunner(projection.Config{
		Store: b.store, Projection: p, Checkpoints: b.cps, Leaser: b.cps,
		Owner: fmt.Sprint("child-", os.Getpid()), LeaseTTL: leaseTTL,
		BatchSize: 1 + mrand.IntN(200),
	})
	if err != nil {
		return fail(err)
	}
	if err := r.Start(ctx); err != nil {
		return fail(err)
	}
	defer r.Stop(ctx)
	for r.Status().State == projection.Standby {
		time.Sleep(2 * time.Millisecond)
	}
	fmt.Println("active")
	if head == "" {
		return fail(fmt.Errorf("runner ended: %w", r.Wait()))
	}
	pos, err := nova.ParsePosition(head)
	if err != nil {
		return fail(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := r.WaitFor(wctx, pos); err != nil {
		return fail(err)
	}
	return 0
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// TestKilledRunnerAppliesEachEventOnce appends events from eight writers
// while a projection runner in a child process on SQLite (the events and
// the read model in one file) is killed with SIGKILL at random points and
// restarted; then the read model must hold each event's effect exactly
// once and equal a fresh rebuild.
func TestKilledRunnerAppliesEachEventOnce(t *testing.T) {
	t.Parallel()
	defaultEvents := 10_000
	if raceEnabled {
		defaultEvents = 4_000
	}
	crash(t, target{Path: filepath.Join(t.TempDir(), "crash.db")}, defaultEvents)
}

// TestKilledRunnerOnPostgres is the same on PostgreSQL, in a scratch
// schema, with a quarter of the events by default.
func TestKilledRunnerOnPostgres(t *testing.T) {
	t.Parallel()
	url := testenv.Need(t, testenv.Postgres)
	var b [6]byte
	_, _ = rand.Read(b[:])
	tg := target{URL: url, Schema: "projcrash_" + hex.EncodeToString(b[:])}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, `DROP SCHEMA IF EXISTS `+tg.Schema+` CASCADE`); err != nil {
			t.Error(err)
		}
	})
	defaultEvents := 2_500
	if raceEnabled {
		defaultEvents = 1_000
	}
	crash(t, tg, defaultEvents)
}

// crash is the crash test on tg with NOVA_PROJCRASH_EVENTS events, by
// default defaultEvents.
func crash(t *testing.T, tg target, defaultEvents int) {
	crashSized(t, tg, envInt(t, "NOVA_PROJCRASH_EVENTS", defaultEvents))
}

// crashSized is the crash test with events events.
func crashSized(t *testing.T, tg target, events int) {
	kills := envInt(t, "NOVA_PROJCRASH_KILLS", 20)
	ctx := context.Background()
	b, err := tg.open(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	if err := b.createModel(ctx); err != nil {
		t.Fatal(err)
	}
	reg := newRegistry()
	tgJSON, err := json.Marshal(tg)
	if err != nil {
		t.Fatal(err)
	}

	// Eight writers append batches of 1 to 5 events to 64 keys' streams,
	// as far as the budget the kill loop hands out allows.
	start := time.Now()
	var (
		mu      sync.Mutex
		more    = sync.NewCond(&mu)
		allowed int // events the writers may take
		taken   int // events taken
	)
	take := func(k int) int {
		mu.Lock()
		defer mu.Unlock()
		for taken == allowed && taken < events {
			more.Wait()
		}
		k = min(k, allowed-taken)
		taken += k
		return k
	}
	grant := func(n int) {
		mu.Lock()
		allowed = min(allowed+n, events)
		more.Broadcast()
		mu.Unlock()
	}
	var writers sync.WaitGroup
	var werr error
	var werrOnce sync.Once
	for w := range 8 {
		writers.Go(func() {
			rng := mrand.New(mrand.NewPCG(uint64(w), 1))
			for {
				k := take(1 + rng.IntN(5))
				if k == 0 {
					return
				}
				key := fmt.Sprint("k", rng.IntN(64))
				batch := make([]nova.EventData, k)
				for i := range batch {
					d, err := reg.Encode(Added{Key: key, Value: rng.Int64N(1000) - 300}, nova.Metadata{})
					if err != nil {
						werrOnce.Do(func() { werr = err })
						return
					}
					batch[i] = d
				}
				if _, err := b.store.Append(ctx, "acct-"+key, nova.Any, batch...); err != nil {
					werrOnce.Do(func() { werr = err })
					return
				}
			}
		})
	}
	defer grant(events) // so that the writers end whatever happens

	// Each round grants the writers a share of the events and starts the
	// runner, which handles them as they come; the runner is killed when
	// it has applied a random number of the share's events, plus up to
	// 3 ms, so the kills land in the middle of its work all along the log.
	rng := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), 2))
	chunk := events / (kills + 1)
	applied := func() int {
		n, err := b.applied(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	var progress []string
	for i := range kills {
		grant(chunk)
		target := max(applied()+1, i*chunk+1+rng.IntN(chunk))
		c := startChild(t, tgJSON, "")
		what := fmt.Sprintf("round %d: the runner", i)
		deadline := time.Now().Add(2 * time.Minute)
		for {
			n := applied()
			if n >= target {
				break
			}
			if time.Now().After(deadline) {
				c.Stop()
				t.Fatalf("%s did not reach %d events from %d; stderr: %s", what, target, n, c.Stderr())
			}
			select {
			case <-c.Done():
				t.Fatalf("%s ended by itself (%v); stderr: %s", what, c.Err(), c.Stderr())
			case <-time.After(time.Millisecond):
			}
		}
		time.Sleep(time.Duration(rng.Int64N(int64(3 * time.Millisecond))))
		c.Kill(t, what)
		progress = append(progress, strconv.Itoa(applied()))
	}
	grant(events)
	writers.Wait()
	if werr != nil {
		t.Fatal(werr)
	}
	written := time.Since(start)

	// A last run to the head.
	var head nova.Position
	var logEvents []nova.Event
	for e, err := range b.store.ReadAll(ctx, nova.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		head = e.Position
		logEvents = append(logEvents, e)
	}
	if len(logEvents) != events {
		t.Fatalf("the log holds %d events, want %d", len(logEvents), events)
	}
	c := startChild(t, tgJSON, head.String())
	if err := c.Err(); err != nil {
		t.Fatalf("final run: %v; stderr: %s", err, c.Stderr())
	}
	t.Logf("%d events from 8 writers in %s; events applied after each of %d kills: %s; caught up %s after the writers",
		events, written.Round(time.Millisecond), kills, strings.Join(progress, " "), (time.Since(start) - written).Round(time.Millisecond))

	if cp, err := b.cps.Load(ctx, "totals"); err != nil || cp != head {
		t.Fatalf("checkpoint %s, %v; want the head %s", cp, err, head)
	}
	// The model against the log: each event counted once.
	want := map[string][2]int64{}
	for _, e := range logEvents {
		v, err := nova.DecodeAs[Added](reg, e)
		if err != nil {
			t.Fatal(err)
		}
		w := want[v.Key]
		want[v.Key] = [2]int64{w[0] + 1, w[1] + v.Value}
	}
	got, n, err := b.model(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(logEvents) {
		t.Errorf("%d events applied, want %d", n, len(logEvents))
	}
	if !maps.Equal(got, want) {
		t.Fatalf("the model differs from the log:\n got %v\nwant %v", got, want)
	}
	// The model against a fresh rebuild, swapped in.
	p, err := b.newProjection(reg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := projection.NewRunner(projection.Config{Store: b.store, Projection: p, Checkpoints: b.cps, Tables: b.tables, BatchSize: 500})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Rebuild(ctx, nil); err != nil {
		t.Fatal(err)
	}
	rebuilt, n, err := b.model(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(logEvents) || !maps.Equal(rebuilt, got) {
		t.Fatalf("a fresh rebuild (%d applied) differs:\n got %v\nrebuilt %v", n, got, rebuilt)
	}
}

// startChild starts the runner's process on the target and waits until it
// holds the lease.
func startChild(t *testing.T, tgJSON []byte, head string) *testenv.Child {
	t.Helper()
	return testenv.StartChild(t, []string{childEnv + "=" + string(tgJSON), headEnv + "=" + head}, "active")
}
