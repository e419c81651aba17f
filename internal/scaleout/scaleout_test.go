package scaleout_test

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
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/filebroker"
	"github.com/nova-go/nova/internal/mysqltest"
	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/novamysql"
	"github.com/nova-go/nova/novapg"
	"github.com/nova-go/nova/projection"
	"github.com/nova-go/nova/saga"
)

// childEnv holds a process's setup, as JSON; the test binary started with
// it is one of the service's processes.
const childEnv = "NOVA_SCALEOUT_CHILD"

func TestMain(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		os.Exit(child(cfg))
	}
	goleak.VerifyTestMain(testenv.Main(m))
}

// setup is what a process of the service works on.
type setup struct {
	// MySQL selects the backend; URL is PostgreSQL's URL or MySQL's DSN,
	// and Schema the PostgreSQL schema (a MySQL DSN names its database).
	MySQL       bool
	URL, Schema string
	// Owner names the process in every lease it takes.
	Owner string
	// Published is the file its broker appends envelope IDs to.
	Published string
	// Runs is how many runs the test starts: the process exits once that
	// many have ended, the outbox is empty and the projection has caught
	// up.
	Runs int
}

const (
	sagaName = "order"
	viewName = "runs_view"
	// sagaLease and viewLease are the leases of the process: how long a
	// killed process's runs and projection wait for another. The saga's
	// is long enough that no renewal misses it on a loaded machine: a run
	// handed over while its step is still counting itself out would show
	// as an overlap. A projection's lease may move between live processes
	// (its commits are fenced, and the test checks that), so it is short.
	sagaLease = 5 * time.Second
	viewLease = 2 * time.Second
)

var steps = []string{"reserve", "charge", "pack", "ship"}

// Order is the saga's data.
type Order struct {
	N int `json:"n"`
}

func runID(n int) string { return fmt.Sprintf("r%05d", n) }

// plan is what a run's data makes its steps do: fails[i] is how many
// attempts of step i fail before one succeeds; exhaust, when not 0, is
// the step that fails on every attempt, after which the run compensates;
// undoFails is how many attempts of each compensation fail first.
type plan struct {
	fails     [4]int
	exhaust   int
	undoFails int
}

func planOf(n int) plan {
	rng := mrand.New(mrand.NewPCG(uint64(n), 7))
	var p plan
	for i := range p.fails {
		switch r := rng.IntN(10); {
		case r == 0:
			p.fails[i] = 2
		case r < 3:
			p.fails[i] = 1
		}
	}
	if rng.IntN(8) == 0 {
		p.exhaust = 1 + rng.IntN(3)
	}
	if rng.IntN(5) == 0 {
		p.undoFails = 1
	}
	return p
}

// maxAttempts leaves room for two failing attempts and one cut short by
// the kill before the attempt that succeeds.
const maxAttempts = 5

// backend is an open store of the service with the SQL the test needs
// beside it.
type backend struct {
	mysql  bool
	store  nova.Store
	runs   saga.RunStore
	cps    checkpoints
	pg     *novapg.Store
	my     *novamysql.Store
	prefix string // "schema." on PostgreSQL (the test's schema names need no quotes)
	close  func()
}

type checkpoints interface {
	projection.TxCheckpoints
	projection.Rebuilder
	projection.Leaser
	projection.CheckpointLister
}

func open(ctx context.Context, cfg setup) (*backend, error) {
	if cfg.MySQL {
		s, err := novamysql.Open(ctx, novamysql.Config{DSN: cfg.URL})
		if err != nil {
			return nil, err
		}
		return &backend{mysql: true, store: s, runs: novamysql.NewRunStore(s), cps: novamysql.NewCheckpoints(s), my: s, close: func() { s.Close() }}, nil
	}
	s, err := novapg.Open(ctx, novapg.Config{URL: cfg.URL, Schema: cfg.Schema})
	if err != nil {
		return nil, err
	}
	return &backend{store: s, runs: novapg.NewRunStore(s), cps: novapg.NewCheckpoints(s), pg: s, prefix: cfg.Schema + ".", close: func() { s.Close() }}, nil
}

// t names a table of the test's.
func (b *backend) t(name string) string { return b.prefix + name }

// sql writes query's ? placeholders as PostgreSQL's $n there.
func (b *backend) sql(query string) string {
	if b.mysql {
		return query
	}
	var sb strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			fmt.Fprintf(&sb, "$%d", n)
			continue
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

func (b *backend) exec(ctx context.Context, query string, args ...any) error {
	var err error
	if b.mysql {
		_, err = b.my.DB().ExecContext(ctx, query, args...)
	} else {
		_, err = b.pg.Pool().Exec(ctx, b.sql(query), args...)
	}
	return err
}

// execResult runs a statement and returns the rows it changed.
func (b *backend) execResult(ctx context.Context, query string, args ...any) (int64, error) {
	if b.mysql {
		res, err := b.my.DB().ExecContext(ctx, query, args...)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	}
	tag, err := b.pg.Pool().Exec(ctx, b.sql(query), args...)
	return tag.RowsAffected(), err
}

// rows runs query and calls scan for each row.
func (b *backend) rows(ctx context.Context, query string, scan func(func(...any) error) error, args ...any) error {
	if b.mysql {
		rows, err := b.my.DB().QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows.Scan); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	rows, err := b.pg.Pool().Query(ctx, b.sql(query), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows.Scan); err != nil {
			return err
		}
	}
	return rows.Err()
}

// txExec runs a statement in the transaction of a projection's commit.
func (b *backend) txExec(ctx context.Context, query string, args ...any) error {
	if b.mysql {
		tx, ok := novamysql.TxFromContext(ctx)
		if !ok {
			return errors.New("no transaction in the handler's ctx")
		}
		_, err := tx.ExecContext(ctx, query, args...)
		return err
	}
	tx, ok := novapg.TxFromContext(ctx)
	if !ok {
		return errors.New("no transaction in the handler's ctx")
	}
	_, err := tx.Exec(ctx, b.sql(query), args...)
	return err
}

// txLease reads the projection's lease row in the transaction in ctx,
// by the database's clock: who holds it and whether it is current. The
// transaction returns the pointer that identifies it.
func (b *backend) txLease(ctx context.Context) (tx any, owner string, held bool, err error) {
	if b.mysql {
		t, ok := novamysql.TxFromContext(ctx)
		if !ok {
			return nil, "", false, errors.New("no transaction in the handler's ctx")
		}
		err = t.QueryRowContext(ctx, `SELECT lease_owner, COALESCE(lease_until > UTC_TIMESTAMP(6), FALSE) FROM `+
			novamysql.DefaultTablePrefix+`checkpoints WHERE name = ?`, viewName).Scan(&owner, &held)
		return t, owner, held, err
	}
	t, ok := novapg.TxFromContext(ctx)
	if !ok {
		return nil, "", false, errors.New("no transaction in the handler's ctx")
	}
	err = t.QueryRow(ctx, `SELECT lease_owner, coalesce(lease_until > clock_timestamp(), false) FROM `+
		b.t("checkpoints")+` WHERE name = $1`, viewName).Scan(&owner, &held)
	return t, owner, held, err
}

// createTables creates the steps' table with a row for every call a run
// may make (so that a call only updates its row, which locks that row
// alone), the overlaps, the killed processes and the read model.
func (b *backend) createTables(ctx context.Context, runs int) error {
	text := "text"
	if b.mysql {
		text = "varchar(100)"
	}
	for _, ddl := range []string{
		`CREATE TABLE ` + b.t("step_exec") + ` (run_id ` + text + ` NOT NULL, step ` + text + ` NOT NULL, kind ` + text + ` NOT NULL,
			active integer NOT NULL DEFAULT 0, calls integer NOT NULL DEFAULT 0, done integer NOT NULL DEFAULT 0, holder ` + text + ` NOT NULL DEFAULT '',
			PRIMARY KEY (run_id, step, kind))`,
		`CREATE TABLE ` + b.t("overlaps") + ` (run_id ` + text + ` NOT NULL, step ` + text + ` NOT NULL, kind ` + text + ` NOT NULL, holder ` + text + ` NOT NULL, active integer NOT NULL)`,
		`CREATE TABLE ` + b.t("dead") + ` (owner ` + text + ` NOT NULL PRIMARY KEY)`,
		`CREATE TABLE ` + b.t("run_view") + ` (run_id ` + text + ` NOT NULL PRIMARY KEY, status ` + text + ` NOT NULL,
			steps_done integer NOT NULL, steps_undone integer NOT NULL, events integer NOT NULL)`,
		`CREATE TABLE ` + b.t("applied") + ` (event_id ` + text + ` NOT NULL PRIMARY KEY, pos bigint NOT NULL, owner ` + text + ` NOT NULL)`,
		`CREATE TABLE ` + b.t("lease_violations") + ` (owner ` + text + ` NOT NULL, lease_owner ` + text + ` NOT NULL, held integer NOT NULL)`,
	} {
		if err := b.exec(ctx, ddl); err != nil {
			return err
		}
	}
	var vals []string
	var args []any
	flush := func() error {
		if len(vals) == 0 {
			return nil
		}
		err := b.exec(ctx, `INSERT INTO `+b.t("step_exec")+` (run_id, step, kind) VALUES `+strings.Join(vals, ", "), args...)
		vals, args = vals[:0], args[:0]
		return err
	}
	for n := range runs {
		for _, s := range steps {
			for _, kind := range []string{"do", "undo"} {
				vals = append(vals, "(?, ?, ?)")
				args = append(args, runID(n), s, kind)
			}
		}
		if len(vals) >= 800 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// enter counts a call of run's step in: it returns the calls now inside,
// 1 unless another process's call is running too. A call of a killed
// process (in the dead table) no longer counts: it never counted itself
// out, and the statements it sent just before it died may still run
// after the kill, so the row cannot be put right from outside.
func (b *backend) enter(ctx context.Context, run, step, kind, owner string) (int, error) {
	res, err := b.execResult(ctx, `UPDATE `+b.t("step_exec")+` SET active = 1, calls = calls + 1, holder = ?
		WHERE run_id = ? AND step = ? AND kind = ? AND (active = 0 OR holder IN (SELECT owner FROM `+b.t("dead")+`))`, owner, run, step, kind)
	if err != nil || res == 1 {
		return 1, err
	}
	// Another call is in: count this one in too, and report how many.
	if err := b.exec(ctx, `UPDATE `+b.t("step_exec")+` SET active = active + 1, calls = calls + 1 WHERE run_id = ? AND step = ? AND kind = ?`, run, step, kind); err != nil {
		return 0, err
	}
	active := 0
	err = b.rows(ctx, `SELECT active FROM `+b.t("step_exec")+` WHERE run_id = ? AND step = ? AND kind = ?`, func(scan func(...any) error) error {
		return scan(&active)
	}, run, step, kind)
	return active, err
}

// exit counts owner's call out and, when done, records its side effect,
// in one statement. A call that found another one in leaves the count to
// it (the test fails on the overlap already).
func (b *backend) exit(ctx context.Context, run, step, kind, owner string, done bool) error {
	set := ""
	if done {
		set = ", done = 1"
	}
	return b.exec(ctx, `UPDATE `+b.t("step_exec")+` SET active = active - 1`+set+` WHERE run_id = ? AND step = ? AND kind = ? AND holder = ?`, run, step, kind, owner)
}

// definition builds the saga: each call counts itself in and out of its
// row, fails as the run's plan says, and otherwise writes its side effect
// (done = 1 on its row) as it counts itself out.
func (b *backend) definition(owner string, calls *atomic.Int64) (*saga.Definition[Order], error) {
	backoff := saga.Exponential{Base: time.Millisecond, Cap: 20 * time.Millisecond}
	retry := saga.RetryPolicy{MaxAttempts: maxAttempts, Backoff: backoff}
	undoRetry := saga.RetryPolicy{MaxAttempts: 10, Backoff: backoff}
	call := func(i int, kind string) func(context.Context, saga.StepContext, *Order) error {
		return func(ctx context.Context, sc saga.StepContext, d *Order) (err error) {
			calls.Add(1)
			in, err := b.enter(ctx, sc.RunID, sc.Step, kind, owner)
			if err != nil {
				return err
			}
			defer func() {
				err = errors.Join(err, b.exit(context.WithoutCancel(ctx), sc.RunID, sc.Step, kind, owner, err == nil))
			}()
			if in != 1 {
				err := b.exec(ctx, `INSERT INTO `+b.t("overlaps")+` (run_id, step, kind, holder, active) VALUES (?, ?, ?, ?, ?)`, sc.RunID, sc.Step, kind, owner, in)
				return errors.Join(fmt.Errorf("%s: %d calls running", sc.IdempotencyKey, in), err)
			}
			// A pause, so that the kill lands in the middle of calls.
			select {
			case <-time.After(time.Duration(mrand.IntN(3000)) * time.Microsecond):
			case <-ctx.Done():
				return ctx.Err()
			}
			p := planOf(d.N)
			switch {
			case kind == "do" && p.exhaust != 0 && p.exhaust == i:
				return errors.New("warehouse refuses")
			case kind == "do" && sc.Attempt <= p.fails[i]:
				return errors.New("service busy")
			case kind == "undo" && sc.Attempt <= p.undoFails:
				return errors.New("refund queue busy")
			}
			return nil
		}
	}
	var def []saga.Step[Order]
	for i, s := range steps {
		def = append(def, saga.Step[Order]{Name: s, Retry: retry, CompensateRetry: undoRetry, Execute: call(i, "do"), Compensate: call(i, "undo")})
	}
	return saga.Define(sagaName, def...)
}

// newProjection is the service's read model of its runs, from their
// streams: each run's status, steps done and undone and events, and every
// applied event under a primary key with the process that applied it, so
// that an event applied twice fails its handler. Outside a rebuild, the
// first event of each commit reads the checkpoint store's lease row in
// the commit's transaction and records a violation unless it names owner
// as the holder.
func (b *backend) newProjection(owner string) (*projection.Projection, error) {
	p, err := projection.New(viewName, nova.NewRegistry(nova.RegistryOptions{}))
	if err != nil {
		return nil, err
	}
	var last any // the transaction whose lease was checked last
	prefix := saga.StreamName(sagaName, "")
	err = projection.OnAny(p, func(ctx context.Context, e nova.Event) error {
		if !projection.Rebuilding(ctx) {
			tx, holder, held, err := b.txLease(ctx)
			if err != nil {
				return err
			}
			if tx != last {
				last = tx
				// The commit has checked the lease and holds the row's
				// lock: the lease may run out meanwhile (held false), but
				// no other instance can take it before this commit ends.
				if holder != owner {
					if err := b.txExec(ctx, `INSERT INTO `+b.t("lease_violations")+` (owner, lease_owner, held) VALUES (?, ?, ?)`, owner, holder, map[bool]int{false: 0, true: 1}[held]); err != nil {
						return err
					}
				}
			}
		}
		run, ok := strings.CutPrefix(e.Stream, prefix)
		if !ok {
			return fmt.Errorf("event %s of stream %s: not a run of %s", e.ID, e.Stream, sagaName)
		}
		view, applied := projection.Table(ctx, b.t("run_view")), projection.Table(ctx, b.t("applied"))
		if err := b.txExec(ctx, `INSERT INTO `+applied+` (event_id, pos, owner) VALUES (?, ?, ?)`, e.ID, int64(e.Position.Commit), owner); err != nil {
			return fmt.Errorf("event %s applied twice? %w", e.ID, err)
		}
		if e.Type == saga.EventRunStarted {
			return b.txExec(ctx, `INSERT INTO `+view+` (run_id, status, steps_done, steps_undone, events) VALUES (?, 'running', 0, 0, 1)`, run)
		}
		done, undone, status := 0, 0, ""
		switch e.Type {
		case saga.EventStepSucceeded:
			done = 1
		case saga.EventStepCompensated:
			undone = 1
		case saga.EventRunCompleted:
			status = string(saga.Completed)
		case saga.EventRunCompensated:
			status = string(saga.Compensated)
		case saga.EventRunFailed:
			status = string(saga.Failed)
		}
		return b.txExec(ctx, `UPDATE `+view+` SET events = events + 1, steps_done = steps_done + ?, steps_undone = steps_undone + ?,
			status = CASE WHEN ? = '' THEN status ELSE ? END WHERE run_id = ?`, done, undone, status, status, run)
	})
	return p, err
}

// tables are the read model's tables, for a rebuild.
func (b *backend) tables() []string {
	return []string{b.t("run_view"), b.t("applied")}
}

// child is a process of the service: a saga worker and the projection's
// runner, each under cfg.Owner. It prints "ready" once both have started
// and works until it is killed or until every run has ended, the outbox is
// empty and the projection has caught up; then it prints "calls N", the
// step calls it made, and exits.
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
	b, err := open(ctx, cfg)
	if err != nil {
		return fail(err)
	}
	defer b.close()
	fb, err := filebroker.Open(cfg.Published)
	if err != nil {
		return fail(err)
	}
	defer fb.Close()
	var calls atomic.Int64
	def, err := b.definition(cfg.Owner, &calls)
	if err != nil {
		return fail(err)
	}
	c, err := saga.NewCoordinator(saga.Config{Runs: b.runs, Broker: fb, Owner: cfg.Owner, Lease: sagaLease, Logger: quietLogger()})
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
	p, err := b.newProjection(cfg.Owner)
	if err != nil {
		return fail(err)
	}
	r, err := projection.NewRunner(projection.Config{
		Store: b.store, Projection: p, Checkpoints: b.cps, Leaser: b.cps,
		Owner: cfg.Owner, LeaseTTL: viewLease, BatchSize: 200,
	})
	if err != nil {
		return fail(err)
	}
	if err := r.Start(ctx); err != nil {
		return fail(err)
	}
	defer r.Stop(ctx)
	if err := w.Start(ctx); err != nil {
		return fail(err)
	}
	fmt.Println("ready")
	deadline := time.Now().Add(10 * time.Minute)
	for {
		done, err := drained(ctx, b, cfg.Runs)
		if err != nil {
			return fail(err)
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			return fail(errors.New("not drained after 10 minutes"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := errors.Join(w.Stop(ctx), r.Stop(ctx)); err != nil {
		return fail(err)
	}
	fmt.Println("calls", calls.Load())
	return 0
}

// drained reports whether runs runs have ended, the outbox is empty and
// the projection's stored checkpoint is at the log's head.
func drained(ctx context.Context, b *backend, runs int) (bool, error) {
	counts, err := b.runs.Count(ctx, sagaName)
	if err != nil {
		return false, err
	}
	ended := 0
	for st, n := range counts {
		if st.Terminal() {
			ended += n
		}
	}
	if ended < runs {
		return false, nil
	}
	msgs, err := b.runs.Outbox().Pending(ctx, 1)
	if err != nil || len(msgs) > 0 {
		return false, err
	}
	lag, err := projection.StoredLag(ctx, b.store, b.cps, viewName, 1)
	return err == nil && lag.Events == 0, err
}

// quietLogger logs errors only, to stderr, which the test shows when a
// process fails.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

// process is a running process of the service.
type process struct {
	*testenv.Child
	owner string
}

// startProcess starts a process of the service under owner and waits
// until it is ready; it is stopped when t ends, if it still runs.
func startProcess(t *testing.T, cfg setup, owner string) process {
	t.Helper()
	cfg.Owner = owner
	cfg.Published = filepath.Join(filepath.Dir(cfg.Published), "published-"+owner)
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := testenv.StartChild(t, []string{childEnv + "=" + string(raw)}, "ready")
	t.Cleanup(c.Stop)
	return process{c, owner}
}

// finish waits for a process's drained exit and returns the step calls it
// reported.
func (p process) finish(t *testing.T) int {
	t.Helper()
	calls := -1
	for line := range p.Lines() {
		if n, ok := strings.CutPrefix(line, "calls "); ok {
			calls, _ = strconv.Atoi(n)
		}
	}
	if err := p.Err(); err != nil {
		t.Fatalf("process %s: %v; stderr: %s", p.owner, err, p.Stderr())
	}
	return calls
}

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

func randomName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// TestThreeProcessesPostgres runs the service in three processes on one
// PostgreSQL schema (NOVA_SCALE_RUNS runs, default 3,000; 600 under the
// race detector).
func TestThreeProcessesPostgres(t *testing.T) {
	t.Parallel()
	addr := testenv.Need(t, testenv.Postgres)
	runs := size(t, "NOVA_SCALE_RUNS", 3000, 600, 200)
	schema := randomName("scaleout_")
	u, err := url.Parse(addr)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("pool_max_conns", "16")
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
	scaleOut(t, setup{URL: u.String(), Schema: schema, Runs: runs})
}

// TestThreeProcessesMySQL is the same on a scratch MySQL/MariaDB
// database (NOVA_SCALE_MYSQL_RUNS runs, default 600; 200 under the race
// detector): every saga transition appends to a run's stream, and
// novamysql's appends take turns on one counter row, which holds MySQL to
// 60 to 120 three-step sagas a second where PostgreSQL drives several
// hundred.
func TestThreeProcessesMySQL(t *testing.T) {
	t.Parallel()
	runs := size(t, "NOVA_SCALE_MYSQL_RUNS", 600, 200, 100)
	mc := mysqltest.Scratch(t, "scaleout_")
	scaleOut(t, setup{MySQL: true, URL: mc.FormatDSN(), Runs: runs})
}

// scaleOut starts three processes on cfg, starts cfg.Runs runs, kills the
// process holding the projection's lease once half the runs have ended,
// starts another in its place, waits for all of them to drain and checks
// the end.
func scaleOut(t *testing.T, cfg setup) {
	ctx := context.Background()
	b, err := open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	if err := b.createTables(ctx, cfg.Runs); err != nil {
		t.Fatal(err)
	}
	cfg.Published = filepath.Join(t.TempDir(), "published")
	start := time.Now()
	procs := []process{startProcess(t, cfg, "p0"), startProcess(t, cfg, "p1"), startProcess(t, cfg, "p2")}

	// Start the runs from four goroutines while the processes work.
	var calls atomic.Int64
	def, err := b.definition("parent", &calls)
	if err != nil {
		t.Fatal(err)
	}
	c, err := saga.NewCoordinator(saga.Config{Runs: b.runs, Owner: "parent", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	var next atomic.Int64
	var starters sync.WaitGroup
	var startErr error
	var startErrOnce sync.Once
	for range 4 {
		starters.Go(func() {
			for n := int(next.Add(1) - 1); n < cfg.Runs; n = int(next.Add(1) - 1) {
				if _, err := saga.Start(ctx, c, def, runID(n), Order{N: n}); err != nil {
					startErrOnce.Do(func() { startErr = fmt.Errorf("start run %d: %w", n, err) })
					return
				}
			}
		})
	}

	// Once half the runs have ended, kill the process that holds the
	// projection's lease and start another.
	ended := func() int {
		counts, err := b.runs.Count(ctx, sagaName)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for st, k := range counts {
			if st.Terminal() {
				n += k
			}
		}
		return n
	}
	for ended() < cfg.Runs/2 {
		select {
		case <-procs[0].Done():
		case <-procs[1].Done():
		case <-procs[2].Done():
		case <-time.After(20 * time.Millisecond):
			continue
		}
		t.Fatalf("a process ended before the kill; stderr: %s%s%s", procs[0].Stderr(), procs[1].Stderr(), procs[2].Stderr())
	}
	// The victim is the projection's active instance: the process the
	// lease row names that also applied the latest event applied, so that
	// the kill moves the projection to another process. A process that
	// has just taken the lease over and committed nothing yet (on a loaded
	// machine a renewal can come late) is waited for.
	victim := -1
	var infos []projection.CheckpointInfo
	for deadline := time.Now().Add(30 * time.Second); victim < 0; {
		if infos, err = b.cps.List(ctx); err != nil {
			t.Fatal(err)
		}
		var holder, last string
		for _, in := range infos {
			if in.Name == viewName {
				holder = in.LeaseOwner
			}
		}
		err := b.rows(ctx, `SELECT owner FROM `+b.t("applied")+` ORDER BY pos DESC LIMIT 1`, func(scan func(...any) error) error {
			return scan(&last)
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range procs {
			if holder == p.owner && last == p.owner {
				victim = i
			}
		}
		if victim < 0 {
			if time.Now().After(deadline) {
				t.Fatalf("no process both holds the projection's lease and applied its latest event: the lease row names %q, the latest event was applied by %q", holder, last)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	killedAt := ended()
	var held []string // the runs the victim holds
	for _, st := range []saga.Status{saga.Running, saga.Compensating} {
		for _, r := range listRuns(t, ctx, b, st) {
			if strings.HasPrefix(r.LeaseOwner, procs[victim].owner) {
				held = append(held, r.RunID)
			}
		}
	}
	killed := procs[victim].owner
	procs[victim].Kill(t, "process "+killed)
	// The killed process's calls never count themselves out: from now on
	// a call finding one of them in may take the row over. That is safe
	// because another process can call the same step only once the runs'
	// leases have run out, seconds from now.
	if err := b.exec(ctx, `INSERT INTO `+b.t("dead")+` (owner) VALUES (?)`, killed); err != nil {
		t.Fatal(err)
	}
	procs[victim] = startProcess(t, cfg, killed+"-restarted")
	t.Logf("killed %s (%d runs ended; it held %d runs, and the projection's lease: %v) and started %s",
		killed, killedAt, len(held), infos, procs[victim].owner)

	starters.Wait()
	if startErr != nil {
		t.Fatal(startErr)
	}
	var perProc []string
	for _, p := range procs {
		n := p.finish(t)
		perProc = append(perProc, fmt.Sprintf("%s %d", p.owner, n))
		if n <= 0 {
			t.Errorf("process %s made no step calls", p.owner)
		}
	}
	took := time.Since(start)
	t.Logf("%d runs by 3 processes in %s (%.0f runs/s); step calls after the kill: %s",
		cfg.Runs, took.Round(time.Millisecond), float64(cfg.Runs)/took.Seconds(), strings.Join(perProc, ", "))
	checkRuns(t, ctx, b, cfg)
	checkView(t, ctx, b)
	cut := 0
	for _, run := range held {
		tl, err := saga.Timeline(ctx, b.runs, sagaName, run)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range tl {
			if e.Unknown {
				cut++
			}
		}
	}
	t.Logf("the kill cut %d calls short in the %d runs %s held, which others finished after its lease ran out", cut, len(held), killed)
}

// listRuns lists every run of the saga with status st, or all of them.
func listRuns(t *testing.T, ctx context.Context, b *backend, st saga.Status) []saga.RunInfo {
	t.Helper()
	var out []saga.RunInfo
	for {
		f := saga.RunFilter{Saga: sagaName, Status: st, Limit: 1000}
		if len(out) > 0 {
			f.AfterSaga, f.AfterRun = sagaName, out[len(out)-1].RunID
		}
		page, err := b.runs.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page...)
		if len(page) < f.Limit {
			return out
		}
	}
}

// stepRow is a call's row of step_exec.
type stepRow struct {
	active, calls int
	done          bool
}

// checkRuns checks that every run ended as its plan says with its side
// effects consistent, no step ran twice at once and every run's end
// reached the broker.
func checkRuns(t *testing.T, ctx context.Context, b *backend, cfg setup) {
	t.Helper()
	var overlaps []string
	err := b.rows(ctx, `SELECT run_id, step, kind, holder, active FROM `+b.t("overlaps"), func(scan func(...any) error) error {
		var run, step, kind, holder string
		var active int
		if err := scan(&run, &step, &kind, &holder, &active); err != nil {
			return err
		}
		overlaps = append(overlaps, fmt.Sprintf("%s/%s/%s in %s with %d in", run, step, kind, holder, active))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(overlaps) > 0 {
		t.Errorf("%d calls found another call of the same step running: %v", len(overlaps), overlaps[:min(10, len(overlaps))])
	}
	rows := map[string]stepRow{}
	totalCalls := 0
	err = b.rows(ctx, `SELECT run_id, step, kind, active, calls, done, holder, holder IN (SELECT owner FROM `+b.t("dead")+`) FROM `+b.t("step_exec"),
		func(scan func(...any) error) error {
			var run, step, kind, holder string
			var r stepRow
			var done int
			var dead bool
			if err := scan(&run, &step, &kind, &r.active, &r.calls, &done, &holder, &dead); err != nil {
				return err
			}
			r.done = done == 1
			rows[run+"/"+step+"/"+kind] = r
			totalCalls += r.calls
			if r.active != 0 && !(dead && r.active == 1) {
				t.Errorf("%s/%s/%s ended with %d calls counted in, the last by %s", run, step, kind, r.active, holder)
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	published := map[string]bool{}
	sends := 0 // envelopes published, repeats included
	files, _ := filepath.Glob(filepath.Join(filepath.Dir(cfg.Published), "published-*"))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for l := range strings.SplitSeq(string(raw), "\n") {
			if l != "" {
				published[l] = true
				sends++
			}
		}
	}
	count := map[saga.Status]int{}
	retried := 0
	for n := range cfg.Runs {
		p := planOf(n)
		run := runID(n)
		info, err := b.runs.Get(ctx, sagaName, run)
		if err != nil {
			t.Fatal(err)
		}
		count[info.Status]++
		want := saga.Completed
		if p.exhaust != 0 {
			want = saga.Compensated
		}
		if info.Status != want {
			tl, _ := saga.Timeline(ctx, b.runs, sagaName, run)
			t.Errorf("run %d ended %s, want %s (step %s, attempt %d); its timeline: %+v", n, info.Status, want, info.Step, info.Attempt, tl)
			continue
		}
		var did, undid []string
		for i, s := range steps {
			do, undo := rows[run+"/"+s+"/do"], rows[run+"/"+s+"/undo"]
			if do.done {
				did = append(did, s)
			}
			if undo.done {
				undid = append(undid, s)
			}
			if p.fails[i] > 0 {
				retried++
			}
		}
		switch want {
		case saga.Completed:
			if !slices.Equal(did, steps) || len(undid) > 0 {
				t.Errorf("completed run %d: steps done %v, undone %v; want all done, none undone", n, did, undid)
			}
		case saga.Compensated:
			// The refused step writes nothing, but an attempt of it that
			// the kill cut short has an unknown outcome, so it may have
			// been compensated too.
			undid = slices.DeleteFunc(undid, func(s string) bool { return s == steps[p.exhaust] })
			if !slices.Equal(did, steps[:p.exhaust]) || !slices.Equal(undid, steps[:p.exhaust]) {
				t.Errorf("compensated run %d (step %s refused): steps done %v, undone %v; want each step before it done and undone", n, steps[p.exhaust], did, undid)
			}
		}
		if id := saga.EnvelopeID(sagaName, run, "saga", string(want), 1); !published[id] {
			t.Errorf("run %d: its end, %s, never reached the broker", n, id)
		}
	}
	if msgs, err := b.runs.Outbox().Pending(ctx, 10); err != nil || len(msgs) > 0 {
		t.Errorf("outbox after the drain: %d messages, %v", len(msgs), err)
	}
	t.Logf("statuses %v; %d step calls; %d steps retried before they succeeded; %d envelopes published, %d of them again by another relay or after the kill",
		count, totalCalls, retried, len(published), sends-len(published))
}

// viewRow is a run's row of the read model.
type viewRow struct {
	status               string
	done, undone, events int
}

func readView(t *testing.T, ctx context.Context, b *backend) map[string]viewRow {
	t.Helper()
	out := map[string]viewRow{}
	err := b.rows(ctx, `SELECT run_id, status, steps_done, steps_undone, events FROM `+b.t("run_view"), func(scan func(...any) error) error {
		var run string
		var r viewRow
		if err := scan(&run, &r.status, &r.done, &r.undone, &r.events); err != nil {
			return err
		}
		out[run] = r
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkView checks the read model: no commit without the lease, each
// event applied once, the model in agreement
// with the runs' ends and side effects, and equal to a fresh rebuild.
func checkView(t *testing.T, ctx context.Context, b *backend) {
	t.Helper()
	var violations []string
	err := b.rows(ctx, `SELECT owner, lease_owner, held FROM `+b.t("lease_violations"), func(scan func(...any) error) error {
		var owner, holder string
		var held int
		if err := scan(&owner, &holder, &held); err != nil {
			return err
		}
		violations = append(violations, fmt.Sprintf("%s committed while the lease row said %q, current %v", owner, holder, held == 1))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(violations) > 0 {
		t.Errorf("%d commits of the projection without the lease: %v", len(violations), violations[:min(10, len(violations))])
	}
	// The log against the applied events, in position order: each event
	// once, and the owners in turns.
	var log []nova.Event
	for e, err := range b.store.ReadAll(ctx, nova.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		log = append(log, e)
	}
	var owners []string // the owner of each applied event, by position
	var positions []int64
	err = b.rows(ctx, `SELECT pos, owner FROM `+b.t("applied")+` ORDER BY pos`, func(scan func(...any) error) error {
		var pos int64
		var owner string
		if err := scan(&pos, &owner); err != nil {
			return err
		}
		positions = append(positions, pos)
		owners = append(owners, owner)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(positions) != len(log) {
		// Name the events the model lacks, with who applied the events
		// around them.
		byPos := map[int64]string{}
		for i, p := range positions {
			byPos[p] = owners[i]
		}
		var missing []string
		for _, e := range log {
			p := int64(e.Position.Commit)
			if _, ok := byPos[p]; !ok {
				missing = append(missing, fmt.Sprintf("%s %s %s v%d at %s (recorded %s; before it %q, after it %q)",
					e.ID, e.Type, e.Stream, e.Version, e.Position, e.RecordedAt.Format(time.StampMicro), byPos[p-1], byPos[p+1]))
			}
		}
		cp, err := b.cps.Load(ctx, viewName)
		t.Fatalf("%d events applied, the log holds %d up to %s, the checkpoint is at %s (%v); not applied: %v",
			len(positions), len(log), log[len(log)-1].Position, cp, err, missing[:min(10, len(missing))])
	}
	for i, e := range log {
		if int64(e.Position.Commit) != positions[i] {
			t.Fatalf("applied event %d is at position %d, the log's at %s", i, positions[i], e.Position)
		}
	}
	var turns []string // the owners in turn, each once per turn
	for _, o := range owners {
		if len(turns) == 0 || turns[len(turns)-1] != o {
			turns = append(turns, o)
		}
	}
	if len(turns) < 2 {
		t.Errorf("one process applied every event (%v): the lease never moved", turns)
	}
	t.Logf("%d events applied once each; the projection's lease in turns: %v", len(log), turns)

	// The model against the runs and their side effects.
	view := readView(t, ctx, b)
	effects := map[string][2]int{}
	err = b.rows(ctx, `SELECT run_id, kind, count(*) FROM `+b.t("step_exec")+` WHERE done = 1 GROUP BY run_id, kind`, func(scan func(...any) error) error {
		var run, kind string
		var n int
		if err := scan(&run, &kind, &n); err != nil {
			return err
		}
		e := effects[run]
		e[map[string]int{"do": 0, "undo": 1}[kind]] = n
		effects[run] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	runs := listRuns(t, ctx, b, "")
	if len(runs) != len(view) {
		t.Errorf("the read model has %d runs, the runs table %d", len(view), len(runs))
	}
	for _, r := range runs {
		v := view[r.RunID]
		if e := effects[r.RunID]; v.status != string(r.Status) || v.done != e[0] || v.undone != e[1] {
			t.Errorf("run %s: the read model says %s with %d steps done and %d undone; the runs table says %s, the side effects %d and %d",
				r.RunID, v.status, v.done, v.undone, r.Status, e[0], e[1])
		}
	}

	// The model against a fresh rebuild, swapped in.
	p, err := b.newProjection("rebuild")
	if err != nil {
		t.Fatal(err)
	}
	rb, err := projection.NewRunner(projection.Config{Store: b.store, Projection: p, Checkpoints: b.cps, Tables: b.tables(), BatchSize: 500})
	if err != nil {
		t.Fatal(err)
	}
	if err := rb.Rebuild(ctx, nil); err != nil {
		t.Fatal(err)
	}
	rebuilt := readView(t, ctx, b)
	if len(rebuilt) != len(view) {
		t.Fatalf("a fresh rebuild has %d runs, the live model %d", len(rebuilt), len(view))
	}
	for run, v := range view {
		if rebuilt[run] != v {
			t.Errorf("run %s: the live model has %+v, a fresh rebuild %+v", run, v, rebuilt[run])
		}
	}
}
