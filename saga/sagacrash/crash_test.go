// Package sagacrash_test holds the saga engine's acceptance tests that
// need processes of their own: workers killed with SIGKILL at random
// points and restarted, on SQLite, PostgreSQL and MySQL/MariaDB, and two
// worker processes sharing one PostgreSQL database. The test binary runs
// itself as the worker process when childEnv is set (see child).
package sagacrash_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ncruces/go-sqlite3"
	"go.uber.org/goleak"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/filebroker"
	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/novamysql"
	"github.com/nova-go/nova/novapg"
	"github.com/nova-go/nova/novasqlite"
	"github.com/nova-go/nova/saga"
)

// childEnv holds a child's setup, as JSON; the test binary started with it
// is a worker process.
const childEnv = "NOVA_SAGACRASH_CHILD"

func TestMain(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		os.Exit(child(cfg))
	}
	goleak.VerifyTestMain(testenv.Main(m))
}

// setup is what a worker process works on.
type setup struct {
	// SQLite is the store's file; Effects the side-effects file. Or:
	SQLite, Effects string
	// PostgresURL and Schema name the store's schema, which also holds
	// the side-effects tables. Or:
	PostgresURL, Schema string
	// MySQLDSN is the store's scratch database (a go-sql-driver DSN),
	// which also holds the side-effects tables.
	MySQLDSN string
	// Published is the file the test broker appends envelope IDs to.
	Published string
	// Drain, when set, makes the worker exit once every run has ended
	// and the outbox is empty, instead of running until it is killed.
	Drain bool
	// Exclusive makes every step check that no other call of the same
	// run's step is running, in the database.
	Exclusive bool
	// Lease is the workers' lease.
	Lease time.Duration
}

// The saga: three steps, each writing its side effect keyed by its
// idempotency key. What happens to a run depends on its number:
//
//	n % 25 == 11: ship is refused and charge's compensation always fails: Stuck
//	n % 10 == 7:  ship is refused: Compensated
//	n % 10 == 3:  charge fails on its first attempt, then succeeds: Completed
//	otherwise:    Completed
const sagaName = "order"

var steps = []string{"reserve", "charge", "ship"}

// Order is the saga's data.
type Order struct {
	N int `json:"n"`
}

func runID(n int) string { return fmt.Sprintf("r%05d", n) }

type fate int

const (
	completes fate = iota
	compensated
	stuck
)

func fateOf(n int) fate {
	switch {
	case n%25 == 11:
		return stuck
	case n%10 == 7:
		return compensated
	}
	return completes
}

// effects records what the steps did.
type effects interface {
	// do records a side effect under its idempotency key, once.
	do(ctx context.Context, key, run, step, kind string) error
	// enter and exit bracket a step's call: enter records an overlap when
	// another call of the same run's step is running.
	enter(ctx context.Context, run, step string) error
	exit(ctx context.Context, run, step string) error
	// read returns the keys of every side effect.
	read(ctx context.Context) (map[string]bool, error)
	// overlaps returns the overlaps recorded.
	overlaps(ctx context.Context) ([]string, error)
	close()
}

// definition builds the saga on fx; exclusive brackets every call with
// enter and exit.
func definition(fx effects, exclusive bool) (*saga.Definition[Order], error) {
	retry := saga.RetryPolicy{MaxAttempts: 30, Backoff: saga.Exponential{Base: time.Millisecond, Cap: 20 * time.Millisecond}}
	// Few compensation attempts, so a run whose compensation always fails
	// becomes Stuck soon; enough that kills alone never make one Stuck.
	compRetry := saga.RetryPolicy{MaxAttempts: 8, Backoff: saga.Exponential{Base: time.Millisecond, Cap: 20 * time.Millisecond}}
	call := func(kind string, fail func(sc saga.StepContext, d *Order) error) func(context.Context, saga.StepContext, *Order) error {
		return func(ctx context.Context, sc saga.StepContext, d *Order) error {
			if exclusive {
				if err := fx.enter(ctx, sc.RunID, sc.Step); err != nil {
					return err
				}
				defer fx.exit(context.WithoutCancel(ctx), sc.RunID, sc.Step)
			}
			// A pause, so that kills land in the middle of steps.
			select {
			case <-time.After(time.Duration(mrand.IntN(2000)) * time.Microsecond):
			case <-ctx.Done():
				return ctx.Err()
			}
			if err := fail(sc, d); err != nil {
				return err
			}
			return fx.do(ctx, sc.IdempotencyKey, sc.RunID, sc.Step, kind)
		}
	}
	never := func(saga.StepContext, *Order) error { return nil }
	return saga.Define(sagaName,
		saga.Step[Order]{
			Name: "reserve", Retry: retry, CompensateRetry: compRetry,
			Execute: call("do", never), Compensate: call("undo", never),
		},
		saga.Step[Order]{
			Name: "charge", Retry: retry, CompensateRetry: compRetry,
			Execute: call("do", func(sc saga.StepContext, d *Order) error {
				if d.N%10 == 3 && sc.Attempt == 1 {
					return errors.New("card network busy")
				}
				return nil
			}),
			Compensate: call("undo", func(sc saga.StepContext, d *Order) error {
				if fateOf(d.N) == stuck {
					return errors.New("refund service down")
				}
				return nil
			}),
		},
		saga.Step[Order]{
			Name: "ship", Retry: retry, CompensateRetry: compRetry,
			Execute: call("do", func(sc saga.StepContext, d *Order) error {
				if fateOf(d.N) != completes {
					return saga.Permanent(errors.New("address refused"))
				}
				return nil
			}),
			Compensate: call("undo", never),
		},
	)
}

// child is a worker process: it opens the store and the effects, runs a
// worker on the saga, prints "ready", and works until it is killed or,
// with Drain, until every run has ended and the outbox is empty. It
// prints "steps N", the calls its steps made, before a drained exit.
func child(raw string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	var cfg setup
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		return fail(err)
	}
	ctx := context.Background()
	runs, fx, closeAll, err := openBackend(ctx, cfg)
	if err != nil {
		return fail(err)
	}
	defer closeAll()
	b, err := filebroker.Open(cfg.Published)
	if err != nil {
		return fail(err)
	}
	defer b.Close()
	var calls int64
	var callsMu sync.Mutex
	counted := &countingEffects{effects: fx, n: &calls, mu: &callsMu}
	def, err := definition(counted, cfg.Exclusive)
	if err != nil {
		return fail(err)
	}
	c, err := saga.NewCoordinator(saga.Config{
		Runs: runs, Broker: b, Owner: fmt.Sprint("child-", os.Getpid()), Lease: cfg.Lease,
		Logger: quietLogger(),
	})
	if err != nil {
		return fail(err)
	}
	w, err := saga.NewWorker(c, saga.WorkerConfig{Concurrency: 8, PollInterval: 20 * time.Millisecond})
	if err != nil {
		return fail(err)
	}
	if err := saga.Register(w, def); err != nil {
		return fail(err)
	}
	if err := w.Start(ctx); err != nil {
		return fail(err)
	}
	fmt.Println("ready")
	if !cfg.Drain {
		select {} // until killed
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		done, err := drained(ctx, runs)
		if err != nil {
			return fail(err)
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			return fail(errors.New("runs still going after 3 minutes"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := w.Stop(ctx); err != nil {
		return fail(err)
	}
	callsMu.Lock()
	fmt.Println("steps", calls)
	callsMu.Unlock()
	return 0
}

// killLease is the lease of workers that are killed: short, so that a
// restarted worker soon claims the runs its killed predecessor held.
const killLease = 400 * time.Millisecond

// drained reports whether every run has ended (Stuck counts) and the
// outbox is empty.
func drained(ctx context.Context, runs saga.RunStore) (bool, error) {
	counts, err := runs.Count(ctx, sagaName)
	if err != nil {
		return false, err
	}
	for st, n := range counts {
		if n > 0 && !st.Terminal() && st != saga.Stuck {
			return false, nil
		}
	}
	msgs, err := runs.Outbox().Pending(ctx, 1)
	return len(msgs) == 0, err
}

// countingEffects counts the calls that wrote a side effect.
type countingEffects struct {
	effects
	n  *int64
	mu *sync.Mutex
}

func (c *countingEffects) do(ctx context.Context, key, run, step, kind string) error {
	c.mu.Lock()
	*c.n++
	c.mu.Unlock()
	return c.effects.do(ctx, key, run, step, kind)
}

// openBackend opens the run store and the effects of cfg.
func openBackend(ctx context.Context, cfg setup) (saga.RunStore, effects, func(), error) {
	var (
		events interface{ Close() error }
		runs   saga.RunStore
		fx     effects
		err    error
	)
	if cfg.SQLite != "" {
		var s *novasqlite.Store
		if s, err = novasqlite.Open(ctx, novasqlite.Config{Path: cfg.SQLite}); err == nil {
			events = s
			runs = novasqlite.NewRunStore(s)
			fx, err = openSQLiteEffects(cfg.Effects)
		}
	} else if cfg.MySQLDSN != "" {
		var s *novamysql.Store
		if s, err = novamysql.Open(ctx, novamysql.Config{DSN: cfg.MySQLDSN}); err == nil {
			events = s
			runs = novamysql.NewRunStore(s)
			fx, err = openMySQLEffects(cfg.MySQLDSN)
		}
	} else {
		var s *novapg.Store
		if s, err = novapg.Open(ctx, novapg.Config{URL: cfg.PostgresURL, Schema: cfg.Schema}); err == nil {
			events = s
			runs = novapg.NewRunStore(s)
			fx, err = openPGEffects(ctx, cfg.PostgresURL, cfg.Schema)
		}
	}
	if err != nil {
		if events != nil {
			events.Close()
		}
		return nil, nil, nil, err
	}
	return runs, fx, func() { fx.close(); events.Close() }, nil
}

// sqliteEffects keeps side effects in an SQLite file of their own.
type sqliteEffects struct {
	mu sync.Mutex
	c  *sqlite3.Conn
}

func openSQLiteEffects(path string) (*sqliteEffects, error) {
	c, err := sqlite3.Open(path)
	if err != nil {
		return nil, err
	}
	if err := c.Exec(`PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
		CREATE TABLE IF NOT EXISTS effects (key TEXT PRIMARY KEY, run TEXT NOT NULL, step TEXT NOT NULL, kind TEXT NOT NULL)`); err != nil {
		c.Close()
		return nil, err
	}
	return &sqliteEffects{c: c}, nil
}

func (e *sqliteEffects) do(_ context.Context, key, run, step, kind string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	st, _, err := e.c.Prepare(`INSERT OR IGNORE INTO effects (key, run, step, kind) VALUES (?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer st.Close()
	for i, v := range []string{key, run, step, kind} {
		if err := st.BindText(i+1, v); err != nil {
			return err
		}
	}
	return st.Exec()
}

func (e *sqliteEffects) enter(context.Context, string, string) error {
	return errors.New("sagacrash: exclusivity is checked on PostgreSQL only")
}

func (e *sqliteEffects) exit(context.Context, string, string) error { return nil }

func (e *sqliteEffects) read(context.Context) (map[string]bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	st, _, err := e.c.Prepare(`SELECT key FROM effects`)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	out := map[string]bool{}
	for st.Step() {
		out[st.ColumnText(0)] = true
	}
	return out, st.Err()
}

func (e *sqliteEffects) overlaps(context.Context) ([]string, error) { return nil, nil }

func (e *sqliteEffects) close() { e.c.Close() }

// pgEffects keeps side effects, running calls and overlaps in tables of
// the store's schema.
type pgEffects struct {
	pool                           *pgxpool.Pool
	effects, running, overlapTable string
}

func openPGEffects(ctx context.Context, dsn, schema string) (*pgEffects, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, err
	}
	q := pgx.Identifier{schema}.Sanitize()
	e := &pgEffects{pool: pool, effects: q + ".effects", running: q + ".running", overlapTable: q + ".overlaps"}
	_, err = pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+e.effects+` (key text PRIMARY KEY, run text NOT NULL, step text NOT NULL, kind text NOT NULL);
		CREATE TABLE IF NOT EXISTS `+e.running+` (run text NOT NULL, step text NOT NULL, pid integer NOT NULL, PRIMARY KEY (run, step));
		CREATE TABLE IF NOT EXISTS `+e.overlapTable+` (run text NOT NULL, step text NOT NULL, pid integer NOT NULL)`)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return e, nil
}

func (e *pgEffects) do(ctx context.Context, key, run, step, kind string) error {
	_, err := e.pool.Exec(ctx, `INSERT INTO `+e.effects+` (key, run, step, kind) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, key, run, step, kind)
	return err
}

func (e *pgEffects) enter(ctx context.Context, run, step string) error {
	_, err := e.pool.Exec(ctx, `INSERT INTO `+e.running+` (run, step, pid) VALUES ($1, $2, $3)`, run, step, os.Getpid())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		_, err = e.pool.Exec(ctx, `INSERT INTO `+e.overlapTable+` (run, step, pid) VALUES ($1, $2, $3)`, run, step, os.Getpid())
		if err == nil {
			err = fmt.Errorf("step %s of run %s is running elsewhere", step, run)
		}
	}
	return err
}

func (e *pgEffects) exit(ctx context.Context, run, step string) error {
	_, err := e.pool.Exec(ctx, `DELETE FROM `+e.running+` WHERE run = $1 AND step = $2 AND pid = $3`, run, step, os.Getpid())
	return err
}

func (e *pgEffects) read(ctx context.Context) (map[string]bool, error) {
	rows, err := e.pool.Query(ctx, `SELECT key FROM `+e.effects)
	if err != nil {
		return nil, err
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	out := map[string]bool{}
	for _, k := range keys {
		out[k] = true
	}
	return out, err
}

func (e *pgEffects) overlaps(ctx context.Context) ([]string, error) {
	rows, err := e.pool.Query(ctx, `SELECT run || '/' || step || ' in ' || pid FROM `+e.overlapTable)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

func (e *pgEffects) close() { e.pool.Close() }

// worker is a worker process.
type worker struct{ *testenv.Child }

// startWorker starts a worker process on cfg and waits until it is ready.
func startWorker(t *testing.T, cfg setup) worker {
	t.Helper()
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return worker{testenv.StartChild(t, []string{childEnv + "=" + string(raw)}, "ready")}
}

// kill kills w with SIGKILL and fails t unless that is how it ended.
func (w worker) kill(t *testing.T, round int) {
	t.Helper()
	w.Kill(t, fmt.Sprintf("round %d: the worker", round))
}

// finish waits for a draining worker's end and returns the step calls it
// reported.
func (w worker) finish(t *testing.T, what string) int {
	t.Helper()
	var steps int
	for line := range w.Lines() {
		if n, ok := strings.CutPrefix(line, "steps "); ok {
			steps, _ = strconv.Atoi(n)
		}
	}
	if err := w.Err(); err != nil {
		t.Fatalf("%s: %v; stderr: %s", what, err, w.Stderr())
	}
	return steps
}

// killRounds is how many times the kill tests kill a worker: 100 at full
// size, or NOVA_TEST_CRASH_KILLS; 20 by default under the race detector,
// which slows the workers tenfold (SQLite's most), and 10 under -short.
// CI runs this package without -race as well, at full size.
func killRounds(t *testing.T) int { return size(t, "NOVA_TEST_CRASH_KILLS", 100, 20, 10) }

// sharedRuns is how many runs the two workers share: 1,000 at full size,
// or NOVA_TEST_CRASH_RUNS; 300 by default under the race detector and
// 200 under -short.
func sharedRuns(t *testing.T) int { return size(t, "NOVA_TEST_CRASH_RUNS", 1000, 300, 200) }

// size is env's number, or by default full, race under the race
// detector, short under -short.
func size(t *testing.T, env string, full, race, short int) int {
	t.Helper()
	def := full
	if raceEnabled {
		def = race
	}
	if testing.Short() {
		def = short
	}
	return envInt(t, env, def)
}

// runsPerRound is how many runs the kill tests start before each worker:
// fewer under the race detector, where a worker gets less done.
var runsPerRound = map[bool]int{false: 10, true: 4}[raceEnabled]

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a number, 0 or more", name, v)
	}
	return n
}

// startRuns starts runs from..to-1 on the parent's coordinator.
func startRuns(t *testing.T, ctx context.Context, c *saga.Coordinator, def *saga.Definition[Order], from, to int) {
	t.Helper()
	for n := from; n < to; n++ {
		if _, err := saga.Start(ctx, c, def, runID(n), Order{N: n}); err != nil {
			t.Fatalf("start run %d: %v", n, err)
		}
	}
}

// crashRounds starts perRound runs and a worker each round, and kills the
// worker with SIGKILL at a random moment of its work; then a last worker
// drains the runs. It returns the number of runs.
func crashRounds(t *testing.T, ctx context.Context, cfg setup, runs saga.RunStore, kills, perRound int) int {
	t.Helper()
	def, err := definition(nil, false)
	if err != nil {
		t.Fatal(err)
	}
	c, err := saga.NewCoordinator(saga.Config{Runs: runs, Owner: "parent", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	rng := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), 4))
	total := 0
	start := time.Now()
	for round := range kills {
		startRuns(t, ctx, c, def, total, total+perRound)
		total += perRound
		w := startWorker(t, cfg)
		time.Sleep(time.Duration(rng.Int64N(int64(150 * time.Millisecond))))
		w.kill(t, round)
	}
	startRuns(t, ctx, c, def, total, total+perRound)
	total += perRound
	cfg.Drain = true
	startWorker(t, cfg).finish(t, "the last worker")
	t.Logf("%d runs, %d workers killed with SIGKILL, drained after %s", total, kills, time.Since(start).Round(time.Millisecond))
	return total
}

// check asserts the end state of runs 0..total-1: each run ended as its
// number says; every step that started (wrote its side effect) completed
// or was compensated, except those a Stuck run leaves; and every lifecycle
// event of every run's stream reached the broker, which got nothing else.
// It returns the number of attempts the streams record as interrupted.
func check(t *testing.T, ctx context.Context, runs saga.RunStore, fx effects, published string, total int) (interrupted int) {
	t.Helper()
	done, err := fx.read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	key := func(n int, step string, undo bool) string {
		k := sagaName + "/" + runID(n) + "/" + step
		if undo {
			k += "/compensate"
		}
		return k
	}
	want := map[string]bool{} // lifecycle envelope IDs derived from the streams
	count := map[saga.Status]int{}
	for n := range total {
		row, err := runs.Get(ctx, sagaName, runID(n))
		if err != nil {
			t.Fatal(err)
		}
		count[row.Status]++
		wantStatus := map[fate]saga.Status{completes: saga.Completed, compensated: saga.Compensated, stuck: saga.Stuck}[fateOf(n)]
		if row.Status != wantStatus {
			t.Errorf("run %d ended %s, want %s (step %s, attempt %d, error %q)", n, row.Status, wantStatus, row.Step, row.Attempt, row.Error)
			continue
		}
		var did, undid []string
		for _, s := range steps {
			if done[key(n, s, false)] {
				did = append(did, s)
			}
			if done[key(n, s, true)] {
				undid = append(undid, s)
			}
		}
		if fateOf(n) == completes {
			if !slices.Equal(did, steps) || len(undid) > 0 {
				t.Errorf("completed run %d: steps done %v, undone %v; want all done, none undone", n, did, undid)
			}
		}
		// Ship is refused before its side effect, but an attempt of it
		// cut short by a kill has an unknown outcome, so it may have been
		// compensated too.
		undid = slices.DeleteFunc(undid, func(s string) bool { return s == "ship" })
		switch fateOf(n) {
		case compensated:
			if !slices.Equal(did, steps[:2]) || !slices.Equal(undid, steps[:2]) {
				t.Errorf("compensated run %d: steps done %v, undone %v; want reserve and charge both", n, did, undid)
			}
		case stuck:
			if !slices.Equal(did, steps[:2]) || len(undid) > 0 || row.Step != "charge" {
				t.Errorf("stuck run %d at step %s: steps done %v, undone %v; want reserve and charge done, stuck undoing charge", n, row.Step, did, undid)
			}
		}
		ids, cut := lifecycleIDs(t, ctx, runs.Events(), runID(n))
		for id := range ids {
			want[id] = true
		}
		interrupted += cut
	}
	got := readLines(t, published)
	var missing, extra []string
	for id := range want {
		if !got[id] {
			missing = append(missing, id)
		}
	}
	for id := range got {
		if !want[id] {
			extra = append(extra, id)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	if len(missing) > 0 {
		t.Errorf("%d lifecycle events never reached the broker: %v", len(missing), first(missing, 10))
	}
	if len(extra) > 0 {
		t.Errorf("the broker got %d envelopes no stream accounts for: %v", len(extra), first(extra, 10))
	}
	if msgs, err := runs.Outbox().Pending(ctx, 10); err != nil || len(msgs) > 0 {
		t.Errorf("outbox after the drain: %d messages, %v", len(msgs), err)
	}
	t.Logf("statuses %v; %d side effects; %d attempts cut short by a kill; %d lifecycle events, each published",
		count, len(done), interrupted, len(want))
	return interrupted
}

// lifecycleStatus maps a run stream's event types to the lifecycle status
// the engine publishes for them, and whether it is the whole saga's. A
// compensation given up also publishes the whole saga's "stuck", its
// attempt the count of times the run became Stuck.
var lifecycleStatus = map[string]struct {
	status string
	saga   bool
}{
	saga.EventStepStarted:         {"started", false},
	saga.EventStepSucceeded:       {"succeeded", false},
	saga.EventStepFailed:          {"failed", false},
	saga.EventCompensationStarted: {"compensating", false},
	saga.EventStepCompensated:     {"compensated", false},
	saga.EventCompensationFailed:  {"compensation_failed", false},
	saga.EventRunCompleted:        {"completed", true},
	saga.EventRunCompensated:      {"compensated", true},
	saga.EventRunFailed:           {"compensated", true},
}

// lifecycleIDs returns the envelope IDs of the lifecycle events of run's
// stream, and the number of its attempts recorded as interrupted.
func lifecycleIDs(t *testing.T, ctx context.Context, events nova.Store, run string) (map[string]bool, int) {
	t.Helper()
	out, cut, stuck := map[string]bool{}, 0, 0
	for e, err := range events.ReadStream(ctx, saga.StreamName(sagaName, run), nova.ReadStreamOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		var rec struct {
			Step    string `json:"step"`
			Attempt int    `json:"attempt"`
			Unknown bool   `json:"unknown"`
		}
		if err := json.Unmarshal(e.Data, &rec); err != nil {
			t.Fatalf("event %s of run %s: %v", e.Type, run, err)
		}
		if rec.Unknown {
			cut++
		}
		ls, ok := lifecycleStatus[e.Type]
		if !ok {
			continue
		}
		if e.Type == saga.EventCompensationFailed {
			stuck++
			out[saga.EnvelopeID(sagaName, run, "saga", "stuck", stuck)] = true
		}
		if ls.saga {
			rec.Step, rec.Attempt = "saga", 1
		}
		out[saga.EnvelopeID(sagaName, run, rec.Step, ls.status, rec.Attempt)] = true
	}
	return out, cut
}

func readLines(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" {
			out[l] = true
		}
	}
	return out
}

// quietLogger logs errors only, to stderr, which the test shows when a
// worker fails.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

// TestKilledWorkersSQLite runs the saga in worker processes on SQLite,
// killed with SIGKILL at random points and restarted
// (NOVA_TEST_CRASH_KILLS times, default 100), then checks every run's end.
func TestKilledWorkersSQLite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	cfg := setup{SQLite: filepath.Join(dir, "runs.db"), Effects: filepath.Join(dir, "effects.db"), Published: filepath.Join(dir, "published"), Lease: killLease}
	s, err := novasqlite.Open(ctx, novasqlite.Config{Path: cfg.SQLite})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	runs := novasqlite.NewRunStore(s)
	fx, err := openSQLiteEffects(cfg.Effects)
	if err != nil {
		t.Fatal(err)
	}
	defer fx.close()
	killTest(t, ctx, cfg, runs, fx)
}

// killTest runs the kill rounds on cfg and checks the end, and that the
// kills did cut attempts short.
func killTest(t *testing.T, ctx context.Context, cfg setup, runs saga.RunStore, fx effects) {
	t.Helper()
	kills := killRounds(t)
	total := crashRounds(t, ctx, cfg, runs, kills, runsPerRound)
	if cut := check(t, ctx, runs, fx, cfg.Published, total); kills >= 10 && cut == 0 {
		t.Errorf("no kill of %d cut an attempt short: the test does not test crashes", kills)
	}
}

// TestKilledWorkersPostgres is TestKilledWorkersSQLite on PostgreSQL, in a
// scratch schema.
func TestKilledWorkersPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := pgSetup(t)
	runs, fx := openPG(t, ctx, cfg)
	killTest(t, ctx, cfg, runs, fx)
}

// TestTwoWorkersPostgres has two worker processes finish 1,000 runs
// (NOVA_TEST_CRASH_RUNS) together on one PostgreSQL schema, while every
// step checks in the database that no other call of the same run's step
// is running.
func TestTwoWorkersPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := pgSetup(t)
	runs, fx := openPG(t, ctx, cfg)
	total := sharedRuns(t)
	def, err := definition(nil, false)
	if err != nil {
		t.Fatal(err)
	}
	c, err := saga.NewCoordinator(saga.Config{Runs: runs, Owner: "parent", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	startRuns(t, ctx, c, def, 0, total)
	start := time.Now()
	// A lease no renewal misses, even on a loaded machine: a worker
	// whose lease lapses while its step runs would rightly lose the run
	// to the other, whose call could then overlap the first's.
	cfg.Drain, cfg.Exclusive, cfg.Lease = true, true, 10*time.Second
	a, b := startWorker(t, cfg), startWorker(t, cfg)
	na, nb := a.finish(t, "worker A"), b.finish(t, "worker B")
	t.Logf("%d runs by two workers in %s: %d and %d side effects", total, time.Since(start).Round(time.Millisecond), na, nb)
	if na == 0 || nb == 0 {
		t.Errorf("one worker did everything: %d and %d side effects", na, nb)
	}
	if o, err := fx.overlaps(ctx); err != nil || len(o) > 0 {
		t.Fatalf("steps ran in both workers at once: %v, %v", o, err)
	}
	check(t, ctx, runs, fx, cfg.Published, total)
}

// pgSetup returns the setup of a fresh scratch schema, dropped when t
// ends.
func pgSetup(t *testing.T) setup {
	t.Helper()
	addr := testenv.Need(t, testenv.Postgres)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "sagacrash_" + hex.EncodeToString(b[:])
	u, err := url.Parse(addr)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("pool_max_conns", "12")
	u.RawQuery = q.Encode()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, addr)
		if err != nil {
			t.Errorf("drop scratch schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("drop scratch schema %s: %v", schema, err)
		}
	})
	return setup{PostgresURL: u.String(), Schema: schema, Published: filepath.Join(t.TempDir(), "published"), Lease: killLease}
}

// openPG opens the parent's store and effects on cfg's schema.
func openPG(t *testing.T, ctx context.Context, cfg setup) (saga.RunStore, effects) {
	t.Helper()
	s, err := novapg.Open(ctx, novapg.Config{URL: cfg.PostgresURL, Schema: cfg.Schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	runs := novapg.NewRunStore(s)
	fx, err := openPGEffects(ctx, cfg.PostgresURL, cfg.Schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fx.close)
	return runs, fx
}
