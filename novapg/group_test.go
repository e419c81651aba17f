package novapg_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novapg"
	"github.com/nova-go/nova/novatest"
	"github.com/nova-go/nova/telemetry"
)

// groupAppend is one append of a group test and what it must get.
type groupAppend struct {
	stream   string
	expected nova.ExpectedVersion
	events   []nova.EventData
	// first is the version its first event must get; 0 for a
	// conflict, which must report actual.
	first     uint64
	actual    uint64
	duplicate bool
	// fails says the append must fail with another error.
	fails bool

	res nova.AppendResult
	err error
}

// blockStream holds the row of stream, which must exist, locked from a
// connection outside the store, until release.
func blockStream(t *testing.T, sc scratch, stream string) (release func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, sc.admin)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err == nil {
		_, err = tx.Exec(ctx, `UPDATE `+pgx.Identifier{sc.schema, "streams"}.Sanitize()+` SET version = version WHERE stream = $1`, stream)
	}
	if err != nil {
		_ = conn.Close(ctx)
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			if err := tx.Commit(ctx); err != nil {
				t.Error(err)
			}
			_ = conn.Close(ctx)
		})
	}
	t.Cleanup(release)
	return release
}

// waitFor polls cond until it holds, or fails t after 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// lockWaiters returns the pids of the scratch schema's connections that wait
// for a lock.
func lockWaiters(t *testing.T, sc scratch) []int32 {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, sc.admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`, sc.schema)
	if err != nil {
		t.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	return pids
}

// runGroup commits appends in one group: with one writer, it blocks the
// writer on the row of stream "block", held locked from outside, queues
// the appends one after the other behind it, and releases the row. It
// returns once every append has its result.
//
// after, if not nil, runs once the append to "block" has returned, while
// the group commits.
func runGroup(t *testing.T, sc scratch, s *novapg.Store, appends []*groupAppend, after func()) {
	t.Helper()
	ctx := context.Background()
	release := blockStream(t, sc, "block")
	var wg sync.WaitGroup
	blocked := make(chan struct{})
	wg.Go(func() {
		defer close(blocked)
		if _, err := s.Append(ctx, "block", nova.Any, novatest.Events("block", 1)...); err != nil {
			t.Errorf("append to the blocked stream: %v", err)
		}
	})
	waitFor(t, "the writer to wait for the blocked row", func() bool { return len(lockWaiters(t, sc)) > 0 })
	for i, a := range appends {
		wg.Go(func() { a.res, a.err = s.Append(ctx, a.stream, a.expected, a.events...) })
		waitFor(t, fmt.Sprintf("append %d to queue", i), func() bool { return novapg.QueuedAppends(s) == i+1 })
	}
	release()
	if after != nil {
		<-blocked
		after()
	}
	wg.Wait()
}

// checkGroup checks each append's result, then the log: positions
// strictly increase and every stream's versions run 1, 2, 3, ...
func checkGroup(t *testing.T, s *novapg.Store, appends []*groupAppend) {
	t.Helper()
	for i, a := range appends {
		switch {
		case a.fails:
			if a.err == nil || errors.Is(a.err, nova.ErrConcurrency) {
				t.Errorf("append %d to %s: err %v, want an error of its own", i, a.stream, a.err)
			}
		case a.first == 0:
			var ce *nova.ConcurrencyError
			if !errors.As(a.err, &ce) || ce.Stream != a.stream || ce.Expected != a.expected || ce.Actual != a.actual {
				t.Errorf("append %d to %s at %v: err %v, want a conflict at actual version %d", i, a.stream, a.expected, a.err, a.actual)
			}
		case a.err != nil:
			t.Errorf("append %d to %s at %v: %v", i, a.stream, a.expected, a.err)
		case a.res.FirstVersion != a.first || a.res.LastVersion != a.first+uint64(len(a.events))-1 || a.res.Duplicate != a.duplicate:
			t.Errorf("append %d to %s at %v = %+v, want versions from %d, duplicate %v", i, a.stream, a.expected, a.res, a.first, a.duplicate)
		}
	}
	checkLog(t, s)
}

// checkLog checks that the log's positions strictly increase and that
// every stream's versions are dense from 1.
func checkLog(t *testing.T, s *novapg.Store) {
	t.Helper()
	last := nova.Position{}
	versions := map[string]uint64{}
	for i, e := range novatest.MustReadAll(t, s) {
		if i > 0 && !last.Less(e.Position) {
			t.Errorf("event %d at %v after %v", i, e.Position, last)
		}
		last = e.Position
		if e.Version != versions[e.Stream]+1 {
			t.Errorf("stream %s: version %d after %d", e.Stream, e.Version, versions[e.Stream])
		}
		versions[e.Stream] = e.Version
	}
}

// transactions returns how many transactions wrote the events of
// appends, and how many of those events are stored.
func transactions(t *testing.T, sc scratch, appends []*groupAppend) (txs, events int) {
	t.Helper()
	var ids []string
	for _, a := range appends {
		for _, e := range a.events {
			ids = append(ids, e.ID)
		}
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, sc.admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, `SELECT count(DISTINCT xmin::text), count(*) FROM `+pgx.Identifier{sc.schema, "events"}.Sanitize()+` WHERE id = ANY($1::uuid[])`, ids).Scan(&txs, &events); err != nil {
		t.Fatal(err)
	}
	return txs, events
}

// groupStore opens a store with one writer, so that runGroup forms one
// group, and creates the streams "block" and each of streams at version 1.
func groupStore(t *testing.T, sc scratch, streams ...string) *novapg.Store {
	t.Helper()
	cfg := sc.config()
	cfg.Writers = 1
	s := open(t, cfg)
	for _, st := range append([]string{"block"}, streams...) {
		novatest.MustAppend(t, s, st, nova.NoStream, novatest.Events("init", 1)...)
	}
	return s
}

// TestGroupCommitResults: appends to their own streams in one group, at
// right and wrong expected versions of every kind, each get their own
// result; the ones that write commit in one transaction; the log has no
// gap and no misorder.
func TestGroupCommitResults(t *testing.T) {
	t.Parallel()
	sc := newScratch(t)
	var appends []*groupAppend
	var streams []string
	var written []*groupAppend
	for i := range 24 {
		st := fmt.Sprint("s-", i)
		a := &groupAppend{stream: st, events: novatest.Events("e", 1+i%3)}
		switch i % 8 {
		case 0:
			a.expected, a.first = nova.Exact(1), 2
		case 1:
			a.expected, a.actual = nova.Exact(3), 1
		case 2:
			a.expected, a.first = nova.Any, 2
		case 3:
			a.expected, a.actual = nova.NoStream, 1
		case 4:
			a.expected, a.first = nova.StreamExists, 2
		case 5:
			a.expected, a.actual = nova.Exact(0), 1
		case 6:
			// A stream that does not exist yet.
			st = "new-" + st
			a.stream, a.expected, a.first = st, nova.NoStream, 1
		case 7:
			st = "new-" + st
			a.stream, a.expected, a.actual = st, nova.StreamExists, 0
		}
		if !strings.HasPrefix(st, "new-") {
			streams = append(streams, st)
		}
		if a.first > 0 {
			written = append(written, a)
		}
		appends = append(appends, a)
	}
	s := groupStore(t, sc, streams...)
	runGroup(t, sc, s, appends, nil)
	checkGroup(t, s, appends)
	if txs, _ := transactions(t, sc, written); txs != 1 {
		t.Errorf("the group's appends committed in %d transactions, want 1", txs)
	}
}

// TestGroupCommitSameStream: appends to one stream in one group behave as
// if they ran one after the other: each is checked against the version
// the ones before it left.
func TestGroupCommitSameStream(t *testing.T) {
	t.Parallel()
	sc := newScratch(t)
	s := groupStore(t, sc, "a", "b")
	appends := []*groupAppend{
		{stream: "a", expected: nova.Exact(1), events: novatest.Events("e", 2), first: 2},
		{stream: "b", expected: nova.Exact(1), events: novatest.Events("e", 1), first: 2},
		{stream: "a", expected: nova.Exact(3), events: novatest.Events("e", 1), first: 4},
		// Expects what the first append found: a conflict now, which
		// reports the version read once the group has committed.
		{stream: "a", expected: nova.Exact(1), events: novatest.Events("e", 1), actual: 7},
		{stream: "a", expected: nova.Any, events: novatest.Events("e", 3), first: 5},
		{stream: "c", expected: nova.NoStream, events: novatest.Events("e", 1), first: 1},
		{stream: "c", expected: nova.NoStream, events: novatest.Events("e", 1), actual: 2},
		{stream: "c", expected: nova.StreamExists, events: novatest.Events("e", 1), first: 2},
		{stream: "b", expected: nova.Exact(2), events: novatest.Events("e", 1), first: 3},
	}
	runGroup(t, sc, s, appends, nil)
	checkGroup(t, s, appends)
	var written []*groupAppend
	for _, a := range appends {
		if a.first > 0 {
			written = append(written, a)
		}
	}
	if txs, _ := transactions(t, sc, written); txs != 1 {
		t.Errorf("the group's appends committed in %d transactions, want 1", txs)
	}
	// Labels follow versions within each stream.
	evs, err := novatest.Collect(s.ReadStream(context.Background(), "a", nova.ReadStreamOptions{}), 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(evs); i++ {
		if !evs[i-1].Position.Less(evs[i].Position) {
			t.Errorf("stream a: version %d at %v, version %d at %v", evs[i-1].Version, evs[i-1].Position, evs[i].Version, evs[i].Position)
		}
	}
}

// TestGroupCommitDuplicates: an append whose events are stored, at the
// place they were stored, is an idempotent retry in a group too, whatever
// its expected version, and the others of the group commit; one that
// repeats an append of its own group is one as well.
func TestGroupCommitDuplicates(t *testing.T) {
	t.Parallel()
	sc := newScratch(t)
	s := groupStore(t, sc, "x")
	stored := novatest.Events("e", 2)
	novatest.MustAppend(t, s, "d", nova.NoStream, stored...)
	fresh := novatest.Events("f", 1)
	appends := []*groupAppend{
		{stream: "d", expected: nova.NoStream, events: stored, first: 1, duplicate: true},
		{stream: "x", expected: nova.Exact(1), events: novatest.Events("e", 1), first: 2},
		{stream: "d", expected: nova.Any, events: stored, first: 1, duplicate: true},
		{stream: "d", expected: nova.StreamExists, events: stored, first: 1, duplicate: true},
		{stream: "y", expected: nova.NoStream, events: fresh, first: 1},
		{stream: "y", expected: nova.NoStream, events: fresh, first: 1, duplicate: true},
		{stream: "y", expected: nova.Any, events: fresh, first: 1, duplicate: true},
		{stream: "z", expected: nova.Any, events: novatest.Events("e", 1), first: 1},
	}
	runGroup(t, sc, s, appends, nil)
	checkGroup(t, s, appends)
	if txs, n := transactions(t, sc, []*groupAppend{appends[1], appends[4], appends[7]}); txs != 1 || n != 3 {
		t.Errorf("the group's new events: %d stored by %d transactions, want 3 by 1", n, txs)
	}
	if txs, n := transactions(t, sc, appends[:1]); txs != 1 || n != 2 {
		t.Errorf("the stored events: %d stored by %d transactions, want 2 by 1 (no copy)", n, txs)
	}
}

// TestGroupCommitFailedStatement: a statement that fails aborts its
// group's transaction, which leaves no row; each append then runs alone,
// so only the one at fault fails.
func TestGroupCommitFailedStatement(t *testing.T) {
	t.Parallel()
	sc := newScratch(t)
	s := groupStore(t, sc, "a", "b")
	// A rule of the database's that one event breaks.
	if _, err := sc.exec(context.Background(), `ALTER TABLE `+pgx.Identifier{sc.schema, "events"}.Sanitize()+` ADD CONSTRAINT no_poison CHECK (type <> 'poison')`); err != nil {
		t.Fatal(err)
	}
	appends := []*groupAppend{
		{stream: "a", expected: nova.Exact(1), events: novatest.Events("e", 1), first: 2},
		{stream: "p", expected: nova.Any, events: novatest.Events("poison", 1), fails: true},
		{stream: "b", expected: nova.Exact(1), events: novatest.Events("e", 2), first: 2},
		{stream: "c", expected: nova.NoStream, events: novatest.Events("e", 1), first: 1},
	}
	runGroup(t, sc, s, appends, nil)
	checkGroup(t, s, appends)
	good := []*groupAppend{appends[0], appends[2], appends[3]}
	if txs, n := transactions(t, sc, good); txs != 3 || n != 4 {
		t.Errorf("%d events stored by %d transactions, want 4 by 3 (each append alone, once)", n, txs)
	}
	var v int64
	if err := pgxQueryRow(context.Background(), sc, `SELECT count(*) FROM `+pgx.Identifier{sc.schema, "streams"}.Sanitize()+` WHERE stream = 'p'`, &v); err != nil || v != 0 {
		t.Errorf("the failed append's stream: %d rows, %v; want none", v, err)
	}
}

// TestGroupCommitBrokenConnection: a group whose connection is
// terminated while it waits for a row lock leaves nothing; its appends
// run again alone and commit once each.
func TestGroupCommitBrokenConnection(t *testing.T) {
	t.Parallel()
	sc := newScratch(t)
	s := groupStore(t, sc, "a", "b", "c")
	// The group waits for c's row.
	appends := []*groupAppend{
		{stream: "a", expected: nova.Exact(1), events: novatest.Events("e", 1), first: 2},
		{stream: "b", expected: nova.Any, events: novatest.Events("e", 1), first: 2},
		{stream: "c", expected: nova.Exact(1), events: novatest.Events("e", 1), first: 2},
		{stream: "d", expected: nova.NoStream, events: novatest.Events("e", 1), first: 1},
	}
	release := blockStream(t, sc, "c")
	runGroup(t, sc, s, appends, func() {
		var pids []int32
		waitFor(t, "the group to wait for c's row", func() bool {
			pids = lockWaiters(t, sc)
			return len(pids) > 0
		})
		if _, err := sc.exec(context.Background(), `SELECT pg_terminate_backend($1, 5000)`, pids[0]); err != nil {
			t.Error(err)
		}
		release()
	})
	checkGroup(t, s, appends)
	if txs, n := transactions(t, sc, appends); txs != 4 || n != 4 {
		t.Errorf("%d events stored by %d transactions, want 4 by 4 (each append alone, once)", n, txs)
	}
}

// TestConcurrentAppendsWithConflicts: 64 writers append to their own
// streams at once, every fourth append at a wrong version, with group
// commit and without: each append gets exactly its result, and the log
// has no gap and no misorder.
func TestConcurrentAppendsWithConflicts(t *testing.T) {
	t.Parallel()
	for _, maxGroup := range []int{0, 1} {
		t.Run(fmt.Sprint("MaxGroup=", maxGroup), func(t *testing.T) {
			t.Parallel()
			sc := newScratch(t)
			cfg := sc.config()
			cfg.MaxGroup = maxGroup
			s := open(t, cfg)
			const writers, appends = 64, 12
			errs := make([]error, writers)
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					ctx := context.Background()
					stream := fmt.Sprint("w-", w)
					var version uint64
					for i := range appends {
						expected, wrong := nova.Exact(version), (i+w)%4 == 3
						if wrong {
							expected = nova.Exact(version + 2)
						}
						res, err := s.Append(ctx, stream, expected, novatest.Events("e", 1+i%2)...)
						var ce *nova.ConcurrencyError
						switch {
						case wrong && (!errors.As(err, &ce) || ce.Actual != version || ce.Stream != stream):
							errs[w] = fmt.Errorf("append %d at a wrong version: %v, want a conflict at %d", i, err, version)
						case wrong:
						case err != nil:
							errs[w] = fmt.Errorf("append %d: %w", i, err)
						case res.FirstVersion != version+1 || res.Duplicate:
							errs[w] = fmt.Errorf("append %d = %+v, want versions from %d", i, res, version+1)
						default:
							version = res.LastVersion
							continue
						}
						if errs[w] != nil {
							return
						}
					}
				})
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			checkLog(t, s)
		})
	}
}

// A group's size is reported as the nova.store.group_commit.size
// histogram, under nova.component=novapg. Not parallel: it installs the
// process's meter provider for its duration.
func TestGroupCommitReportsItsSize(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	telemetry.Use(telemetry.Config{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
	defer telemetry.Use(telemetry.Config{})
	sc := newScratch(t)
	var appends []*groupAppend
	var streams []string
	for i := range 4 {
		st := fmt.Sprint("m-", i)
		streams = append(streams, st)
		appends = append(appends, &groupAppend{stream: st, expected: nova.Exact(1), first: 2, events: novatest.Events("e", 1)})
	}
	s := groupStore(t, sc, streams...)
	runGroup(t, sc, s, appends, nil)
	checkGroup(t, s, appends)
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "nova.store.group_commit.size" {
				continue
			}
			h, _ := m.Data.(metricdata.Histogram[int64])
			for _, p := range h.DataPoints {
				if c, _ := p.Attributes.Value("nova.component"); c.AsString() == "novapg" {
					if max, ok := p.Max.Value(); !ok || max < 4 {
						t.Fatalf("largest group reported %d, want at least the 4 appends that committed together", max)
					}
					return
				}
			}
		}
	}
	t.Fatalf("no nova.store.group_commit.size point for novapg in %+v", rm.ScopeMetrics)
}
