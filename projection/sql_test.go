package projection_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/projectiondriver"
	"github.com/nova-go/nova/novasqlite"
	"github.com/nova-go/nova/projection"
)

// sqlModel is a read model in a SQLite store's file: order totals by ID,
// and the ID of every event applied, unique, so that applying an event
// twice fails.
type sqlModel struct {
	s    *novasqlite.Store
	cps  *novasqlite.Checkpoints
	reg  *nova.Registry
	p    *projection.Projection
	mu   sync.Mutex
	fail func(v OrderPlaced) error // called after the handler's writes
}

const modelDDL = `CREATE TABLE order_totals (id TEXT PRIMARY KEY, total INTEGER NOT NULL, rebuilt INTEGER NOT NULL);
CREATE INDEX order_totals_total ON order_totals (total);
CREATE TABLE applied (event_id TEXT PRIMARY KEY);`

var modelTables = []string{"order_totals", "applied"}

func newSQLModel(t *testing.T) *sqlModel {
	t.Helper()
	ctx := context.Background()
	s, err := novasqlite.Open(ctx, novasqlite.Config{Path: filepath.Join(t.TempDir(), "model.db"), PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.WriteTx(ctx, func(c *sqlite3.Conn) error { return c.Exec(modelDDL) }); err != nil {
		t.Fatal(err)
	}
	cps := novasqlite.NewCheckpoints(s)
	m := &sqlModel{s: s, cps: cps, reg: newRegistry(t)}
	m.p, err = projection.New("orders", m.reg)
	if err != nil {
		t.Fatal(err)
	}
	err = projection.On(m.p, func(ctx context.Context, e nova.Event, v OrderPlaced) error {
		c, ok := novasqlite.TxFromContext(ctx)
		if !ok {
			return errors.New("no transaction in the handler's ctx")
		}
		if err := exec(c, `INSERT INTO `+projection.Table(ctx, "applied")+` (event_id) VALUES (?)`, e.ID); err != nil {
			return err
		}
		rebuilt := int64(0)
		if projection.Rebuilding(ctx) {
			rebuilt = 1
		}
		err := exec(c, `INSERT INTO `+projection.Table(ctx, "order_totals")+` (id, total, rebuilt) VALUES (?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET total = total + excluded.total, rebuilt = excluded.rebuilt`, v.ID, int64(v.Total), rebuilt)
		if err != nil {
			return err
		}
		m.mu.Lock()
		fail := m.fail
		m.mu.Unlock()
		if fail != nil {
			return fail(v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (m *sqlModel) setFail(f func(v OrderPlaced) error) {
	m.mu.Lock()
	m.fail = f
	m.mu.Unlock()
}

func (m *sqlModel) config() projection.Config {
	return projection.Config{Store: m.s, Projection: m.p, Checkpoints: m.cps, Tables: modelTables}
}

func exec(c *sqlite3.Conn, sql string, args ...any) error {
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

// totals reads the live model in one snapshot: totals by ID, how many
// rows a rebuild wrote, and the applied events.
func (m *sqlModel) totals(t *testing.T) (totals map[string]int, rebuilt, applied int) {
	t.Helper()
	totals = map[string]int{}
	err := m.s.ReadTx(context.Background(), func(c *sqlite3.Conn) error {
		st, _, err := c.Prepare(`SELECT id, total, rebuilt FROM order_totals`)
		if err != nil {
			return err
		}
		defer st.Close()
		for st.Step() {
			totals[st.ColumnText(0)] = st.ColumnInt(1)
			rebuilt += st.ColumnInt(2)
		}
		if err := st.Err(); err != nil {
			return err
		}
		st2, _, err := c.Prepare(`SELECT count(*) FROM applied`)
		if err != nil {
			return err
		}
		defer st2.Close()
		if st2.Step() {
			applied = st2.ColumnInt(0)
		}
		return st2.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return totals, rebuilt, applied
}

// placeN places orders o<from>..o<to-1> and returns the last position.
func placeN(t *testing.T, m *sqlModel, from, to int) nova.Position {
	t.Helper()
	ids := make([]string, 0, to-from)
	for i := from; i < to; i++ {
		ids = append(ids, fmt.Sprint("o", i))
	}
	return place(t, m.s, m.reg, ids...)
}

func TestSQLRunnerAppliesEachEventOnce(t *testing.T) {
	t.Parallel()
	m := newSQLModel(t)
	ctx := context.Background()
	pos := place(t, m.s, m.reg, "a", "bb", "a")
	cfg := m.config()
	cfg.BatchSize = 2
	r := start(t, cfg)
	waitFor(t, r, pos)
	pos = place(t, m.s, m.reg, "ccc")
	waitFor(t, r, pos)
	if err := r.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := m.cps.Load(ctx, "orders"); err != nil || got != pos {
		t.Fatalf("stored checkpoint %s, %v; want %s", got, err, pos)
	}
	// A restart resumes after the stored checkpoint: nothing is applied
	// twice (the applied table would refuse it and stop the runner).
	pos = place(t, m.s, m.reg, "bb")
	r2 := start(t, m.config())
	waitFor(t, r2, pos)
	totals, _, applied := m.totals(t)
	if want := map[string]int{"a": 2, "bb": 4, "ccc": 3}; fmt.Sprint(totals) != fmt.Sprint(want) || applied != 5 {
		t.Fatalf("model %v with %d applied, want %v and 5", totals, applied, want)
	}
	if st := r2.Status(); st.State != projection.Running || st.Handled != 1 || st.Checkpoint != pos {
		t.Fatalf("status %+v", st)
	}
}

func TestSQLHandlerErrorCommitsThePrefixOnly(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	for name, policy := range map[string]projection.PoisonPolicy{"stop": projection.PoisonStop, "skip": projection.PoisonSkip} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			m := newSQLModel(t)
			m.setFail(func(v OrderPlaced) error {
				if v.ID == "o2" {
					return boom // after its writes: they must be undone
				}
				return nil
			})
			placeN(t, m, 0, 2)
			poison := placeN(t, m, 2, 3)
			last := placeN(t, m, 3, 5)
			cfg := m.config()
			cfg.OnPoison = policy
			cfg.Retries = 1
			cfg.RetryBackoff = time.Millisecond
			r := start(t, cfg)
			if policy == projection.PoisonStop {
				var pe *projection.PoisonError
				if err := r.Wait(); !errors.As(err, &pe) || !errors.Is(err, boom) || pe.Position != poison || pe.Attempts != 2 {
					t.Fatalf("Wait = %v, want a poison error at %s after 2 attempts", err, poison)
				}
				totals, _, applied := m.totals(t)
				if len(totals) != 2 || applied != 2 || totals["o2"] != 0 {
					t.Fatalf("model %v (%d applied), want o0 and o1 only", totals, applied)
				}
				if got, _ := m.cps.Load(context.Background(), "orders"); got.Commit != poison.Commit-1 {
					t.Fatalf("checkpoint %s, want just before the poison event %s", got, poison)
				}
				return
			}
			waitFor(t, r, last)
			totals, _, applied := m.totals(t)
			if len(totals) != 4 || applied != 4 || totals["o2"] != 0 {
				t.Fatalf("model %v (%d applied), want all but o2", totals, applied)
			}
			if sk := r.Skipped(); len(sk) != 1 || sk[0].Err.Position != poison {
				t.Fatalf("skipped %+v", sk)
			}
			if got, _ := m.cps.Load(context.Background(), "orders"); got != last {
				t.Fatalf("checkpoint %s, want %s", got, last)
			}
		})
	}
}

func TestSQLRetryAppliesOnce(t *testing.T) {
	t.Parallel()
	m := newSQLModel(t)
	var calls atomic.Int32
	m.setFail(func(v OrderPlaced) error {
		if v.ID == "o1" && calls.Add(1) <= 2 {
			return errors.New("transient")
		}
		return nil
	})
	pos := placeN(t, m, 0, 3)
	cfg := m.config()
	cfg.Retries = 3
	cfg.RetryBackoff = time.Millisecond
	r := start(t, cfg)
	waitFor(t, r, pos)
	if totals, _, applied := m.totals(t); applied != 3 || totals["o1"] != 2 {
		t.Fatalf("model %v (%d applied)", totals, applied)
	}
}

func TestSQLCheckpointMovedElsewhereReloads(t *testing.T) {
	t.Parallel()
	m := newSQLModel(t)
	ctx := context.Background()
	pos := placeN(t, m, 0, 2)
	r := start(t, m.config())
	waitFor(t, r, pos)
	// Another party moves the checkpoint past two events the runner has
	// not seen: the runner's next commit fails its fence, and it reloads
	// and goes on from there without them.
	r.Stop(ctx)
	jump := placeN(t, m, 2, 4)
	if err := m.cps.Save(ctx, "orders", jump); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	last := placeN(t, m, 4, 5)
	waitFor(t, r, last)
	totals, _, _ := m.totals(t)
	if len(totals) != 3 || totals["o2"] != 0 || totals["o4"] != 2 {
		t.Fatalf("model %v, want o0, o1 and o4", totals)
	}
}

// pausableLeaser refuses every Acquire while paused, as if another
// instance had taken the lease.
type pausableLeaser struct {
	projection.Leaser
	paused atomic.Bool
}

func (p *pausableLeaser) Acquire(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	if p.paused.Load() {
		return false, nil
	}
	return p.Leaser.Acquire(ctx, name, owner, ttl)
}

func waitState(t *testing.T, r *projection.Runner, want projection.State) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.Status().State != want {
		if time.Now().After(deadline) {
			t.Fatalf("state %s, want %s", r.Status().State, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSQLLeaseOneActiveInstance(t *testing.T) {
	t.Parallel()
	m := newSQLModel(t)
	ctx := context.Background()
	ttl := 500 * time.Millisecond // long enough for renewals under load
	// A dead instance's lease: the first runner waits for it to run out.
	if ok, err := m.cps.Acquire(ctx, "orders", "dead", ttl); !ok || err != nil {
		t.Fatalf("Acquire = %v, %v", ok, err)
	}
	leaser := &pausableLeaser{Leaser: m.cps}
	cfg1 := m.config()
	cfg1.Leaser, cfg1.Owner, cfg1.LeaseTTL = leaser, "one", ttl
	r1 := start(t, cfg1)
	if st := r1.Status(); st.State != projection.Standby || st.Owner != "one" {
		t.Fatalf("first runner status %+v while the lease is held, want standby", st)
	}
	waitState(t, r1, projection.Running)
	cfg2 := m.config()
	cfg2.Leaser, cfg2.Owner, cfg2.LeaseTTL = m.cps, "two", ttl
	r2 := start(t, cfg2)
	waitState(t, r2, projection.Standby)
	pos := placeN(t, m, 0, 3)
	waitFor(t, r1, pos)
	waitFor(t, r2, pos) // a standby follows the stored checkpoint
	list, err := m.cps.List(ctx)
	if err != nil || len(list) != 1 || list[0].LeaseOwner != "one" || list[0].LeaseUntil.IsZero() || list[0].Position != pos {
		t.Fatalf("List = %+v, %v", list, err)
	}
	// The first loses its lease (renewals refused): it goes standby, the
	// second takes over once the lease runs out, and the first cannot
	// commit meanwhile.
	leaser.paused.Store(true)
	waitState(t, r1, projection.Standby)
	waitState(t, r2, projection.Running)
	pos = placeN(t, m, 3, 6)
	waitFor(t, r2, pos)
	// Stopping the holder releases the lease at once.
	leaser.paused.Store(false)
	if err := r2.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	waitState(t, r1, projection.Running)
	pos = placeN(t, m, 6, 8)
	waitFor(t, r1, pos)
	if totals, _, applied := m.totals(t); len(totals) != 8 || applied != 8 {
		t.Fatalf("model %v with %d applied, want 8 orders applied once", totals, applied)
	}
	if r1.Status().Err != nil || r2.Status().Err != nil {
		t.Fatalf("errors: %v, %v", r1.Status().Err, r2.Status().Err)
	}
}

func TestSQLRebuildSwapsAWholeModel(t *testing.T) {
	t.Parallel()
	m := newSQLModel(t)
	ctx := context.Background()
	const n = 300
	pos := placeN(t, m, 0, n)
	cfg := m.config()
	cfg.BatchSize = 50
	r := start(t, cfg)
	waitFor(t, r, pos)

	// Readers watch the live model throughout: it never shrinks, and once
	// they see rebuilt rows, the rebuild's rows are all there.
	stop := make(chan struct{})
	var readers sync.WaitGroup
	var bad atomic.Value
	var snapshots atomic.Int64
	for range 2 {
		readers.Go(func() {
			last := 0
			for {
				select {
				case <-stop:
					return
				default:
				}
				totals, rebuilt, applied := m.totals(t)
				snapshots.Add(1)
				switch {
				case len(totals) < last:
					bad.Store(fmt.Sprintf("the model shrank from %d to %d orders", last, len(totals)))
				case rebuilt > 0 && rebuilt < n:
					bad.Store(fmt.Sprintf("a reader saw %d rebuilt orders of %d", rebuilt, n))
				case applied != len(totals):
					bad.Store(fmt.Sprintf("%d applied events for %d orders", applied, len(totals)))
				}
				last = len(totals)
			}
		})
	}
	// Writers go on during the rebuild; the live runner follows them.
	var writers sync.WaitGroup
	writers.Go(func() { placeN(t, m, n, n+100) })
	var calls, lastDone, lastTotal int
	err := r.Rebuild(ctx, func(done, total int) { calls++; lastDone, lastTotal = done, total })
	writers.Wait()
	close(stop)
	readers.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if v := bad.Load(); v != nil {
		t.Fatal(v)
	}
	if calls < 2 || lastDone < n || lastDone != lastTotal {
		t.Fatalf("progress called %d times, last with %d/%d", calls, lastDone, lastTotal)
	}
	// The live runner reloads the swapped checkpoint and follows on.
	pos = placeN(t, m, n+100, n+110)
	waitFor(t, r, pos)
	totals, rebuilt, applied := m.totals(t)
	if len(totals) != n+110 || applied != n+110 || rebuilt < n {
		t.Fatalf("after the rebuild: %d orders, %d applied, %d rebuilt", len(totals), applied, rebuilt)
	}
	if r.Status().Err != nil {
		t.Fatal(r.Status().Err)
	}
	// A second rebuild works on the swapped tables (their indexes too).
	if err := r.Rebuild(ctx, nil); err != nil {
		t.Fatal(err)
	}
	pos = placeN(t, m, n+110, n+111)
	waitFor(t, r, pos)
	if totals, _, applied := m.totals(t); len(totals) != n+111 || applied != n+111 {
		t.Fatalf("after a second rebuild: %d orders, %d applied", len(totals), applied)
	}
	t.Logf("readers took %d snapshots during the rebuild", snapshots.Load())
}

func TestSQLRebuildPoisonLeavesTheLiveModel(t *testing.T) {
	t.Parallel()
	m := newSQLModel(t)
	ctx := context.Background()
	pos := placeN(t, m, 0, 5)
	r := start(t, m.config())
	waitFor(t, r, pos)
	m.setFail(func(v OrderPlaced) error {
		if v.ID == "o3" {
			return errors.New("bad")
		}
		return nil
	})
	if err := r.Rebuild(ctx, nil); !errors.Is(err, projection.ErrPoison) {
		t.Fatalf("Rebuild = %v, want ErrPoison", err)
	}
	if totals, rebuilt, _ := m.totals(t); len(totals) != 5 || rebuilt != 0 {
		t.Fatalf("live model %v (%d rebuilt) after a failed rebuild", totals, rebuilt)
	}
	if got, _ := m.cps.Load(ctx, "orders"); got != pos {
		t.Fatalf("checkpoint %s, want %s", got, pos)
	}
}

func TestRebuildInvalid(t *testing.T) {
	t.Parallel()
	m := newSQLModel(t)
	ctx := context.Background()
	r, err := projection.NewRunner(projection.Config{Store: m.s, Projection: m.p, Checkpoints: m.cps})
	if err != nil {
		t.Fatal(err)
	}
	mem, err := projection.NewRunner(projection.Config{Store: m.s, Projection: m.p, Tables: modelTables})
	if err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"no tables":     r.Rebuild(ctx, nil),
		"not rebuilder": mem.Rebuild(ctx, nil),
	} {
		if !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	for _, tables := range [][]string{{""}, {"a b"}, {"x;drop"}, {"1a"}, {"a.b.c"}, {"t__rebuild"}, {"a", "a"}} {
		cfg := m.config()
		cfg.Tables = tables
		if _, err := projection.NewRunner(cfg); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("Tables %q: %v, want ErrInvalid", tables, err)
		}
	}
	for _, c := range []projection.Config{{LeaseTTL: time.Millisecond}, {LeaseTTL: -1}, {Owner: "a\nb"}} {
		c.Store, c.Projection = m.s, m.p
		if _, err := projection.NewRunner(c); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("config %+v: %v, want ErrInvalid", c, err)
		}
	}
}

func TestStoredLag(t *testing.T) {
	t.Parallel()
	m := newSQLModel(t)
	ctx := context.Background()
	placeN(t, m, 0, 3)
	lag, err := projection.StoredLag(ctx, m.s, m.cps, "orders", 0)
	if err != nil || lag.Events != 3 || lag.Capped || lag.Time < 0 {
		t.Fatalf("StoredLag = %+v, %v", lag, err)
	}
	pos := placeN(t, m, 3, 4)
	r := start(t, m.config())
	waitFor(t, r, pos)
	if lag, err := projection.StoredLag(ctx, m.s, m.cps, "orders", 2); err != nil || lag != (projection.Lag{Head: pos}) {
		t.Fatalf("StoredLag when caught up = %+v, %v", lag, err)
	}
	if lag, err := r.Lag(ctx); err != nil || lag.Events != 0 {
		t.Fatalf("Lag = %+v, %v", lag, err)
	}
	for name, f := range map[string]func() error{
		"bad name": func() error { _, err := projection.StoredLag(ctx, m.s, m.cps, "", 0); return err },
		"limit":    func() error { _, err := projection.StoredLag(ctx, m.s, m.cps, "orders", -1); return err },
	} {
		if err := f(); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

// failingLeaser fails every Acquire.
type failingLeaser struct{ projection.Leaser }

var errLeaseStore = errors.New("lease store down")

func (failingLeaser) Acquire(context.Context, string, string, time.Duration) (bool, error) {
	return false, errLeaseStore
}

func TestLeaseErrorsAreWaitedOut(t *testing.T) {
	t.Parallel()
	m := newSQLModel(t)
	cfg := m.config()
	cfg.Leaser, cfg.LeaseTTL = failingLeaser{m.cps}, 60*time.Millisecond
	r := start(t, cfg)
	deadline := time.Now().Add(5 * time.Second)
	for r.Status().Warning == nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if st := r.Status(); st.State != projection.Standby || !errors.Is(st.Warning, errLeaseStore) {
		t.Fatalf("status %+v, want standby with the lease store's error", st)
	}
	// It still stops promptly.
	if err := r.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestRebuildLeaseHeldElsewhere(t *testing.T) {
	t.Parallel()
	m := newSQLModel(t)
	ctx := context.Background()
	placeN(t, m, 0, 2)
	if ok, err := m.cps.Acquire(ctx, "orders"+projectiondriver.RebuildSuffix, "other", time.Minute); !ok || err != nil {
		t.Fatalf("Acquire = %v, %v", ok, err)
	}
	cfg := m.config()
	cfg.Leaser = m.cps
	r, err := projection.NewRunner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Rebuild(ctx, nil); !errors.Is(err, projection.ErrRebuilding) {
		t.Fatalf("Rebuild while another instance rebuilds: %v, want ErrRebuilding", err)
	}
	if err := m.cps.Release(ctx, "orders"+projectiondriver.RebuildSuffix, "other"); err != nil {
		t.Fatal(err)
	}
	// Free: a rebuild of a stopped runner, which then starts from the
	// swapped checkpoint.
	if err := r.Rebuild(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if totals, rebuilt, applied := m.totals(t); len(totals) != 2 || rebuilt != 2 || applied != 2 {
		t.Fatalf("model %v (%d rebuilt, %d applied)", totals, rebuilt, applied)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer r.Stop(ctx)
	pos := placeN(t, m, 2, 3)
	waitFor(t, r, pos)
	if _, _, applied := m.totals(t); applied != 3 {
		t.Fatalf("%d applied, want 3", applied)
	}
}

// lyingLeaser grants the first Acquire without asking, as an instance
// whose lease ran out while it was paused would believe it still holds
// it.
type lyingLeaser struct {
	projection.Leaser
	calls atomic.Int32
}

func (l *lyingLeaser) Acquire(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	if l.calls.Add(1) == 1 {
		return true, nil
	}
	return l.Leaser.Acquire(ctx, name, owner, ttl)
}

func TestStaleInstanceIsFencedAndWaits(t *testing.T) {
	t.Parallel()
	m := newSQLModel(t)
	ctx := context.Background()
	if ok, err := m.cps.Acquire(ctx, "orders", "other", time.Minute); !ok || err != nil {
		t.Fatalf("Acquire = %v, %v", ok, err)
	}
	pos := placeN(t, m, 0, 3)
	cfg := m.config()
	leaser := &lyingLeaser{Leaser: m.cps}
	cfg.Leaser, cfg.LeaseTTL = leaser, 60*time.Millisecond
	r := start(t, cfg)
	// Its commit fails on the lease: it writes nothing and goes back to
	// asking for the lease, in vain.
	deadline := time.Now().Add(10 * time.Second)
	for leaser.calls.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	waitState(t, r, projection.Standby)
	if totals, _, _ := m.totals(t); len(totals) != 0 {
		t.Fatalf("a fenced instance wrote %v", totals)
	}
	if st := r.Status(); st.Handled != 0 || st.Err != nil {
		t.Fatalf("status %+v", st)
	}
	// The holder goes: it takes over.
	if err := m.cps.Release(ctx, "orders", "other"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, r, pos)
	if totals, _, applied := m.totals(t); len(totals) != 3 || applied != 3 {
		t.Fatalf("model %v (%d applied)", totals, applied)
	}
}

func TestHandlerErrorMatchingConcurrencyIsPoison(t *testing.T) {
	t.Parallel()
	m := newSQLModel(t)
	m.setFail(func(v OrderPlaced) error {
		return fmt.Errorf("the handler's own append: %w", nova.ErrConcurrency)
	})
	placeN(t, m, 0, 1)
	r := start(t, m.config())
	if err := r.Wait(); !errors.Is(err, projection.ErrPoison) || !errors.Is(err, nova.ErrConcurrency) {
		t.Fatalf("Wait = %v, want a poison error wrapping the handler's", err)
	}
}

func TestRebuildStopsWhenItsLeaseIsLost(t *testing.T) {
	t.Parallel()
	m := newSQLModel(t)
	ctx := context.Background()
	placeN(t, m, 0, 6)
	leaser := &pausableLeaser{Leaser: m.cps}
	cfg := m.config()
	cfg.Leaser, cfg.LeaseTTL, cfg.BatchSize = leaser, 60*time.Millisecond, 1
	r, err := projection.NewRunner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.setFail(func(v OrderPlaced) error {
		if v.ID == "o2" && !leaser.paused.Load() {
			leaser.paused.Store(true) // renewals refused from now on
			time.Sleep(100 * time.Millisecond)
		}
		return nil
	})
	if err := r.Rebuild(ctx, nil); !errors.Is(err, projection.ErrLeaseLost) {
		t.Fatalf("Rebuild = %v, want ErrLeaseLost", err)
	}
	if totals, _, _ := m.totals(t); len(totals) != 0 {
		t.Fatalf("the live model changed: %v", totals)
	}
}
