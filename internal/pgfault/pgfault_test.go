package pgfault_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	mrand "math/rand/v2"
	"net/url"
	"os"
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
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/novapg"
	"github.com/nova-go/nova/projection"
	"github.com/nova-go/nova/saga"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Added adds Value to Key's total.
type Added struct {
	Key   string `json:"key"`
	Value int64  `json:"value"`
}

// Order is the saga's data.
type Order struct {
	N int `json:"n"`
}

const sagaName = "order"

// refused reports whether run n's last step is refused, so that the run
// ends Compensated; the others complete.
func refused(n int) bool { return n%10 == 7 }

func runID(n int) string { return fmt.Sprintf("r%05d", n) }

// converge bounds how long the runner and the workers may take to finish
// once the faults stop.
const converge = 4 * time.Minute

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

func quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 4}))
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// withParam returns rawURL with the query parameter k set to v.
func withParam(t *testing.T, rawURL, k, v string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("parse %s: %v", testenv.Postgres.Env, err)
	}
	q := u.Query()
	q.Set(k, v)
	u.RawQuery = q.Encode()
	return u.String()
}

// effects records the saga steps' side effects by idempotency key.
type effects struct {
	mu   sync.Mutex
	keys map[string]bool
}

func (f *effects) do(key string) {
	f.mu.Lock()
	f.keys[key] = true
	f.mu.Unlock()
}

func (f *effects) has(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.keys[key]
}

func definition(fx *effects) (*saga.Definition[Order], error) {
	// Interrupted attempts count as failed ones: enough attempts that
	// faults alone never fail a step.
	retry := saga.RetryPolicy{MaxAttempts: 100, Backoff: saga.Exponential{Base: time.Millisecond, Cap: 50 * time.Millisecond}}
	call := func(refuse func(d *Order) bool) func(context.Context, saga.StepContext, *Order) error {
		return func(ctx context.Context, sc saga.StepContext, d *Order) error {
			if refuse != nil && refuse(d) {
				return saga.Permanent(errors.New("address refused"))
			}
			fx.do(sc.IdempotencyKey)
			return nil
		}
	}
	step := func(name string, refuse func(d *Order) bool) saga.Step[Order] {
		return saga.Step[Order]{Name: name, Retry: retry, CompensateRetry: retry, Execute: call(refuse), Compensate: call(nil)}
	}
	return saga.Define(sagaName, step("reserve", nil), step("charge", nil), step("ship", func(d *Order) bool { return refused(d.N) }))
}

// world is a store in one schema with a projection runner on its SQL read
// model and a saga worker, all running.
type world struct {
	store  *novapg.Store
	cps    *novapg.Checkpoints
	runs   *novapg.RunStore
	reg    *nova.Registry
	q      string // the schema, with a dot
	runner *projection.Runner
	coord  *saga.Coordinator
	worker *saga.Worker
	mem    *broker.Memory
	def    *saga.Definition[Order]
	fx     *effects
	seen   *stateLog
	closed bool
}

// open opens the store at url in schema and starts the runner (leased,
// when leased is set) and the worker.
func open(t *testing.T, url, schema string, leased bool) *world {
	t.Helper()
	ctx := context.Background()
	store, err := novapg.Open(ctx, novapg.Config{URL: url, Schema: schema, PollInterval: 100 * time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{store: store, q: schema + ".", reg: nova.NewRegistry(nova.RegistryOptions{}), fx: &effects{keys: map[string]bool{}}}
	t.Cleanup(w.close)
	nova.MustRegister[Added](w.reg, "Added")
	w.cps = novapg.NewCheckpoints(store)
	w.runs = novapg.NewRunStore(store)
	if _, err := store.Pool().Exec(ctx, fmt.Sprintf(`CREATE TABLE %[1]stotals (key TEXT PRIMARY KEY, n BIGINT NOT NULL, sum BIGINT NOT NULL);
		CREATE TABLE %[1]sapplied (event_id TEXT PRIMARY KEY, key TEXT NOT NULL)`, w.q)); err != nil {
		t.Fatal(err)
	}

	p, err := projection.New("totals", w.reg)
	if err != nil {
		t.Fatal(err)
	}
	// Each event's ID goes in applied under a primary key: an event
	// applied twice fails its handler, and the runner stops on it.
	err = projection.On(p, func(ctx context.Context, e nova.Event, v Added) error {
		tx, ok := novapg.TxFromContext(ctx)
		if !ok {
			return errors.New("no transaction in the handler's ctx")
		}
		totals, applied := projection.Table(ctx, w.q+"totals"), projection.Table(ctx, w.q+"applied")
		_, err := tx.Exec(ctx, `WITH a AS (INSERT INTO `+applied+` (event_id, key) VALUES ($1, $2) RETURNING key)
			INSERT INTO `+totals+` AS t (key, n, sum) SELECT key, 1, $3 FROM a
			ON CONFLICT (key) DO UPDATE SET n = t.n + 1, sum = t.sum + excluded.sum`, e.ID, v.Key, v.Value)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := projection.Config{
		Store: store, Projection: p, Checkpoints: w.cps, BatchSize: 50,
		RetryBackoff: 10 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
		Tables: []string{w.q + "totals", w.q + "applied"},
	}
	if leased {
		cfg.Leaser, cfg.LeaseTTL = w.cps, time.Second
	}
	if w.runner, err = projection.NewRunner(cfg); err != nil {
		t.Fatal(err)
	}
	if err := w.runner.Start(ctx); err != nil {
		t.Fatal(err)
	}
	w.seen = watch(w.runner)

	if w.mem, err = broker.NewMemory(broker.MemoryConfig{}); err != nil {
		t.Fatal(err)
	}
	if w.def, err = definition(w.fx); err != nil {
		t.Fatal(err)
	}
	if w.coord, err = saga.NewCoordinator(saga.Config{Runs: w.runs, Broker: w.mem, Lease: time.Second, Logger: quiet()}); err != nil {
		t.Fatal(err)
	}
	if w.worker, err = saga.NewWorker(w.coord, saga.WorkerConfig{Concurrency: 8, PollInterval: 20 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if err := saga.Register(w.worker, w.def); err != nil {
		t.Fatal(err)
	}
	if err := w.worker.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) close() {
	if w.closed {
		return
	}
	w.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if w.worker != nil {
		_ = w.worker.Stop(ctx)
	}
	if w.runner != nil {
		_ = w.runner.Stop(ctx)
	}
	if w.seen != nil {
		w.seen.stop()
	}
	if w.mem != nil {
		_ = w.mem.Close()
	}
	_ = w.store.Close()
}

// stateLog records the states a runner goes through, by polling.
type stateLog struct {
	mu       sync.Mutex
	states   map[projection.State]int
	attempts int
	warning  error
	failed   error
	done     chan struct{}
	wg       sync.WaitGroup
}

func watch(r *projection.Runner) *stateLog {
	l := &stateLog{states: map[projection.State]int{}, done: make(chan struct{})}
	l.wg.Go(func() {
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		last := projection.State("")
		for {
			select {
			case <-l.done:
				return
			case <-t.C:
			}
			st := r.Status()
			l.mu.Lock()
			if st.State != last {
				l.states[st.State]++
				last = st.State
			}
			l.attempts = max(l.attempts, st.Attempt)
			if st.State == projection.Retrying && l.warning == nil {
				l.warning = st.Warning
			}
			if st.State == projection.Failed && l.failed == nil {
				l.failed = st.Err
			}
			l.mu.Unlock()
		}
	})
	return l
}

func (l *stateLog) stop() {
	select {
	case <-l.done:
	default:
		close(l.done)
	}
	l.wg.Wait()
}

func (l *stateLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, st := range slices.Sorted(maps.Keys(l.states)) {
		fmt.Fprintf(&b, "%s×%d ", st, l.states[st])
	}
	fmt.Fprintf(&b, "(most attempts in a row %d; first retried error: %v)", l.attempts, l.warning)
	return b.String()
}

// retrying runs op until it succeeds, for up to converge: the faults
// make calls fail, and the callers here try again, as a service would.
// Appends repeat the same events, so a retry of one that committed is
// idempotent; starting a run that exists returns it.
func retrying(t *testing.T, what string, op func() error) {
	deadline := time.Now().Add(converge)
	for {
		err := op()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: still failing after %s: %v", what, converge, err)
			return
		}
		time.Sleep(time.Duration(10+mrand.IntN(40)) * time.Millisecond)
	}
}

// load appends events Added events from four writers and starts runs
// saga runs, while faults runs; it returns the totals the writers
// appended, by key, once all three are done.
func (w *world) load(t *testing.T, events, runs int, faults func()) map[string][2]int64 {
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	want := map[string][2]int64{}
	var next atomic.Int64
	for i := range 4 {
		wg.Go(func() {
			rng := mrand.New(mrand.NewPCG(uint64(i), 7))
			for {
				k := int64(1 + rng.IntN(3))
				end := next.Add(k)
				if start := end - k; start >= int64(events) {
					return
				} else if end > int64(events) {
					k = int64(events) - start
				}
				key := fmt.Sprint("k", rng.IntN(32))
				batch := make([]nova.EventData, k)
				var sum int64
				for j := range batch {
					v := rng.Int64N(1000) - 300
					d, err := w.reg.Encode(Added{Key: key, Value: v}, nova.Metadata{})
					if err != nil {
						t.Error(err)
						return
					}
					batch[j], sum = d, sum+v
				}
				retrying(t, "append", func() error {
					_, err := w.store.Append(ctx, "acct-"+key, nova.Any, batch...)
					return err
				})
				mu.Lock()
				tot := want[key]
				want[key] = [2]int64{tot[0] + k, tot[1] + sum}
				mu.Unlock()
			}
		})
	}
	wg.Go(func() {
		for n := range runs {
			retrying(t, "start run", func() error {
				_, err := saga.Start(ctx, w.coord, w.def, runID(n), Order{N: n})
				return err
			})
		}
	})
	wg.Go(faults)
	wg.Wait()
	return want
}

// check waits for the sagas to end and the runner to catch up, then
// checks the read model, a fresh rebuild of it, and every run.
func (w *world) check(t *testing.T, want map[string][2]int64, events, runs int) {
	ctx := context.Background()
	deadline := time.Now().Add(converge)

	// Every run ends, and its lifecycle events leave the outbox.
	for {
		counts, err := w.runs.Count(ctx, sagaName)
		pending, perr := w.runs.Outbox().Pending(ctx, 1)
		ended := 0
		for st, n := range counts {
			if st.Terminal() {
				ended += n
			}
		}
		if err == nil && perr == nil && ended == runs && len(pending) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: runs by status %v (%d of %d ended), outbox pending %d (%v, %v)", converge, counts, ended, runs, len(pending), err, perr)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The runner catches up with the log's head on its own.
	var head nova.Position
	for e, err := range w.store.ReadAll(ctx, nova.ReadAllOptions{From: nova.Start}) {
		if err != nil {
			t.Fatal(err)
		}
		head = e.Position
	}
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if err := w.runner.WaitFor(wctx, head); err != nil {
		t.Fatalf("runner did not catch up with %s: %v; status %+v; states %s", head, err, w.runner.Status(), w.seen)
	}
	w.seen.stop()
	t.Logf("runner states: %s", w.seen)
	if st := w.runner.Status(); st.State != projection.Running || st.Err != nil || st.Skipped != 0 {
		t.Fatalf("runner status %+v, want running", st)
	}
	if w.seen.failed != nil {
		t.Fatalf("the runner failed on its way: %v", w.seen.failed)
	}

	// The model holds each appended event once, as the log has them and
	// as a fresh rebuild makes it.
	fromLog := map[string][2]int64{}
	n := 0
	for e, err := range w.store.ReadAll(ctx, nova.ReadAllOptions{From: nova.Start}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Type != "Added" {
			continue
		}
		v, err := nova.DecodeAs[Added](w.reg, e)
		if err != nil {
			t.Fatal(err)
		}
		tot := fromLog[v.Key]
		fromLog[v.Key] = [2]int64{tot[0] + 1, tot[1] + v.Value}
		n++
	}
	if n != events || !maps.Equal(fromLog, want) {
		t.Fatalf("the log holds %d Added events, totals %v; the writers appended %d, totals %v", n, fromLog, events, want)
	}
	got, applied := w.model(t)
	if applied != events || !maps.Equal(got, want) {
		t.Fatalf("read model %v with %d events applied; want %v with %d", got, applied, want, events)
	}
	if err := w.runner.Rebuild(ctx, nil); err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	if rebuilt, applied := w.model(t); applied != events || !maps.Equal(rebuilt, got) {
		t.Fatalf("a fresh rebuild made %v with %d applied; the runner had %v", rebuilt, applied, got)
	}

	// Every run ended as its data says, its row agrees with its stream,
	// and its steps' side effects with its steps.
	for i := range runs {
		id := runID(i)
		row, err := w.runs.Get(ctx, sagaName, id)
		if err != nil {
			t.Fatal(err)
		}
		x, err := saga.Load(ctx, w.coord, w.def, id)
		if err != nil {
			t.Fatal(err)
		}
		wantStatus, done, undone := saga.Completed, []string{"reserve", "charge", "ship"}, []string(nil)
		if refused(i) {
			wantStatus, done = saga.Compensated, []string{"reserve", "charge"}
		}
		if row.Status != wantStatus || x.Status != wantStatus || !slices.Equal(x.CompletedSteps, done) {
			t.Fatalf("run %s: row %s, stream %s with completed steps %v; want %s with %v", id, row.Status, x.Status, x.CompletedSteps, wantStatus, done)
		}
		for _, s := range done {
			if !w.fx.has(sagaName + "/" + id + "/" + s) {
				t.Fatalf("run %s: step %s completed without its side effect", id, s)
			}
		}
		if refused(i) {
			undone = x.CompensatedSteps
			for _, s := range done {
				if !slices.Contains(undone, s) || !w.fx.has(sagaName+"/"+id+"/"+s+"/compensate") {
					t.Fatalf("run %s: step %s not compensated (compensated %v)", id, s, undone)
				}
			}
		} else if len(x.CompensatedSteps) != 0 {
			t.Fatalf("run %s completed with compensations %v", id, x.CompensatedSteps)
		}
	}
}

// model reads the read model's totals and how many events it applied.
func (w *world) model(t *testing.T) (map[string][2]int64, int) {
	t.Helper()
	ctx := context.Background()
	got := map[string][2]int64{}
	var applied int
	err := pgx.BeginTxFunc(ctx, w.store.Pool(), pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT key, n, sum FROM `+w.q+`totals`)
		if err != nil {
			return err
		}
		var k string
		var n, sum int64
		if _, err := pgx.ForEachRow(rows, []any{&k, &n, &sum}, func() error {
			got[k] = [2]int64{n, sum}
			return nil
		}); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT count(*) FROM `+w.q+`applied`).Scan(&applied)
	})
	if err != nil {
		t.Fatal(err)
	}
	return got, applied
}

// TestTerminatedConnections terminates every connection of the test's
// store (its application_name) on the shared server, again and again,
// while writers append, a leased runner projects and workers drive saga
// runs; then everything must have finished on its own and agree.
func TestTerminatedConnections(t *testing.T) {
	t.Parallel()
	base := testenv.Need(t, testenv.Postgres)
	events, runs, kills := 3000, 200, 25
	if raceEnabled {
		events, runs, kills = 1000, 60, 15
	}
	events = envInt(t, "NOVA_PGFAULT_EVENTS", events)
	runs = envInt(t, "NOVA_PGFAULT_RUNS", runs)
	kills = envInt(t, "NOVA_PGFAULT_KILLS", kills)

	schema := "pgfault_" + randomSuffix()
	app := schema
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, withParam(t, base, "application_name", schema+"_admin"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.Exec(cctx, `DROP SCHEMA IF EXISTS `+schema+` CASCADE`); err != nil {
			t.Error(err)
		}
		admin.Close(cctx)
	})
	w := open(t, withParam(t, base, "application_name", app), schema, true)

	terminated := 0
	want := w.load(t, events, runs, func() {
		rng := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), 3))
		for range kills {
			time.Sleep(time.Duration(50+rng.IntN(250)) * time.Millisecond)
			var n int
			err := admin.QueryRow(ctx, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
				WHERE application_name = $1 AND pid <> pg_backend_pid()) k`, app).Scan(&n)
			if err != nil {
				t.Errorf("terminate: %v", err)
				return
			}
			terminated += n
		}
	})
	t.Logf("terminated %d connections in %d rounds", terminated, kills)
	w.check(t, want, events, runs)
}
