package projcrash_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
	"go.uber.org/goleak"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novasqlite"
	"github.com/nova-go/nova/projection"
)

// childEnv names the store file a re-executed test binary runs the
// projection on; headEnv, when set, is the position at which it stops.
const (
	childEnv = "NOVA_PROJCRASH_CHILD"
	headEnv  = "NOVA_PROJCRASH_HEAD"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		os.Exit(child(path, os.Getenv(headEnv)))
	}
	goleak.VerifyTestMain(m)
}

// Added adds Value to Key's total.
type Added struct {
	Key   string `json:"key"`
	Value int64  `json:"value"`
}

const (
	modelDDL = `CREATE TABLE totals (key TEXT PRIMARY KEY, n INTEGER NOT NULL, sum INTEGER NOT NULL);
CREATE TABLE applied (event_id TEXT PRIMARY KEY, key TEXT NOT NULL);
CREATE INDEX applied_key ON applied (key);`
	leaseTTL = 300 * time.Millisecond
)

var tables = []string{"totals", "applied"}

func newRegistry() *nova.Registry {
	reg := nova.NewRegistry(nil)
	nova.MustRegister[Added](reg, "Added")
	return reg
}

// newProjection is the read model: per key, the count and the sum of its
// events, and every applied event's ID under a primary key, so that an
// event applied twice fails its handler.
func newProjection(reg *nova.Registry) (*projection.Projection, error) {
	p, err := projection.New("totals", reg)
	if err != nil {
		return nil, err
	}
	err = projection.On(p, func(ctx context.Context, e nova.Event, v Added) error {
		c, ok := novasqlite.TxFromContext(ctx)
		if !ok {
			return errors.New("no transaction in the handler's ctx")
		}
		if err := execSQL(c, `INSERT INTO `+projection.Table(ctx, "applied")+` (event_id, key) VALUES (?, ?)`, e.ID, v.Key); err != nil {
			return fmt.Errorf("event %s applied twice? %w", e.ID, err)
		}
		return execSQL(c, `INSERT INTO `+projection.Table(ctx, "totals")+` (key, n, sum) VALUES (?, 1, ?)
			ON CONFLICT (key) DO UPDATE SET n = n + 1, sum = sum + excluded.sum`, v.Key, v.Value)
	})
	return p, err
}

func execSQL(c *sqlite3.Conn, sql string, args ...any) error {
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

// child runs the projection on the file at path until it is killed or,
// with head set, until it has handled the event at head. It prints
// "active" once it holds the lease.
func child(path, head string) int {
	ctx := context.Background()
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	s, err := novasqlite.Open(ctx, novasqlite.Config{Path: path, PollInterval: 5 * time.Millisecond})
	if err != nil {
		return fail(err)
	}
	defer s.Close()
	cps, err := novasqlite.NewCheckpoints(s)
	if err != nil {
		return fail(err)
	}
	p, err := newProjection(newRegistry())
	if err != nil {
		return fail(err)
	}
	r, err := projection.NewRunner(&projection.Config{
		Store: s, Projection: p, Checkpoints: cps, Leaser: cps,
		Owner: fmt.Sprint("child-", os.Getpid()), LeaseTTL: leaseTTL,
		BatchSize: 1 + rand.IntN(200),
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
// while a projection runner in a child process is killed with SIGKILL at
// random points and restarted; then the read model must hold each
// event's effect exactly once and equal a fresh rebuild.
func TestKilledRunnerAppliesEachEventOnce(t *testing.T) {
	defaultEvents := 10_000
	if raceEnabled {
		defaultEvents = 4_000
	}
	events := envInt(t, "NOVA_PROJCRASH_EVENTS", defaultEvents)
	kills := envInt(t, "NOVA_PROJCRASH_KILLS", 20)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "crash.db")
	s, err := novasqlite.Open(ctx, novasqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.WriteTx(ctx, func(c *sqlite3.Conn) error { return c.Exec(modelDDL) }); err != nil {
		t.Fatal(err)
	}
	reg := newRegistry()

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
			rng := rand.New(rand.NewPCG(uint64(w), 1))
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
				if _, err := s.Append(ctx, "acct-"+key, nova.Any, batch...); err != nil {
					werrOnce.Do(func() { werr = err })
					return
				}
			}
		})
	}
	defer grant(events) // so that the writers end whatever happens
	cps, err := novasqlite.NewCheckpoints(s)
	if err != nil {
		t.Fatal(err)
	}

	// Each round grants the writers a share of the events and starts the
	// runner, which handles them as they come; the runner is killed when
	// its checkpoint passes a random point of the share, plus up to 3 ms,
	// so the kill lands in the middle of its work.
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	chunk := events / (kills + 1)
	var progress []string
	for i := range kills {
		grant(chunk)
		prev, err := cps.Load(ctx, "totals")
		if err != nil {
			t.Fatal(err)
		}
		target := min(prev.Commit+1+uint64(rng.IntN(chunk)), uint64((i+1)*chunk))
		c := startChild(t, path, "")
		deadline := time.Now().Add(2 * time.Minute)
		for {
			cp, err := cps.Load(ctx, "totals")
			if err != nil {
				t.Fatal(err)
			}
			if cp.Commit >= target {
				break
			}
			if time.Now().After(deadline) {
				_ = c.cmd.Process.Kill()
				<-c.done
				t.Fatalf("round %d: the runner did not reach %d from %s; stderr: %s", i, target, cp, c.stderr)
			}
			select {
			case err := <-c.done:
				t.Fatalf("round %d: the runner ended by itself (%v); stderr: %s", i, err, c.stderr)
			case <-time.After(500 * time.Microsecond):
			}
		}
		time.Sleep(time.Duration(rng.Int64N(int64(3 * time.Millisecond))))
		if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err = <-c.done
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: the runner ended by itself (%v) before the kill; stderr: %s", i, err, c.stderr)
		}
		cp, err := cps.Load(ctx, "totals")
		if err != nil {
			t.Fatal(err)
		}
		progress = append(progress, cp.String())
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
	for e, err := range s.ReadAll(ctx, nova.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		head = e.Position
		logEvents = append(logEvents, e)
	}
	if len(logEvents) != events {
		t.Fatalf("the log holds %d events, want %d", len(logEvents), events)
	}
	c := startChild(t, path, head.String())
	if err := <-c.done; err != nil {
		t.Fatalf("final run: %v; stderr: %s", err, c.stderr)
	}
	t.Logf("%d events from 8 writers in %s; checkpoint after each of %d kills: %s; caught up %s after the writers",
		events, written.Round(time.Millisecond), kills, strings.Join(progress, " "), (time.Since(start) - written).Round(time.Millisecond))

	if cp, err := cps.Load(ctx, "totals"); err != nil || cp != head {
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
	got, applied := readModel(t, s)
	if applied != len(logEvents) {
		t.Errorf("%d events applied, want %d", applied, len(logEvents))
	}
	if !maps.Equal(got, want) {
		t.Fatalf("the model differs from the log:\n got %v\nwant %v", got, want)
	}
	// The model against a fresh rebuild, swapped in.
	p, err := newProjection(reg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := projection.NewRunner(&projection.Config{Store: s, Projection: p, Checkpoints: cps, Tables: tables, BatchSize: 500})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Rebuild(ctx, nil); err != nil {
		t.Fatal(err)
	}
	rebuilt, applied := readModel(t, s)
	if applied != len(logEvents) || !maps.Equal(rebuilt, got) {
		t.Fatalf("a fresh rebuild (%d applied) differs:\n got %v\nrebuilt %v", applied, got, rebuilt)
	}
}

// runner is a runner's process.
type runner struct {
	cmd    *exec.Cmd
	stderr *strings.Builder // read after done
	done   chan error       // the process's end, from Wait
}

// startChild starts the runner's process on path and waits until it holds
// the lease.
func startChild(t *testing.T, path, head string) *runner {
	t.Helper()
	c := &runner{cmd: exec.Command(os.Args[0], "-test.run=^$"), stderr: &strings.Builder{}, done: make(chan error, 1)}
	c.cmd.Env = append(os.Environ(), childEnv+"="+path, headEnv+"="+head)
	c.cmd.Stderr = c.stderr
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "active" {
		_ = c.cmd.Process.Kill()
		_ = c.cmd.Wait()
		t.Fatalf("child said %q; stderr: %s", lines.Text(), c.stderr)
	}
	go func() {
		// Read to the end before Wait, which closes the pipe.
		for lines.Scan() {
		}
		c.done <- c.cmd.Wait()
	}()
	return c
}

// readModel reads the totals by key and the count of applied events.
func readModel(t *testing.T, s *novasqlite.Store) (map[string][2]int64, int) {
	t.Helper()
	got := map[string][2]int64{}
	applied := 0
	err := s.ReadTx(context.Background(), func(c *sqlite3.Conn) error {
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
	if err != nil {
		t.Fatal(err)
	}
	return got, applied
}
