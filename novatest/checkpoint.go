package novatest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/projectiondriver"
	"github.com/nova-go/nova/projection"
)

// CheckpointOption tunes [RunCheckpointStore] for one backend.
type CheckpointOption func(*cpOptions)

type cpOptions struct {
	rm      *ReadModel
	prepare bool
	refused []nova.Position
}

// ReadModel is what [RunCheckpointStore] needs of a backend's read-model
// tables to check that a [projection.TxCheckpoints] commits them and the
// checkpoint together. Each function works in the transaction ctx
// carries: the suite calls them only from the apply function of a
// Commit, with the ctx the store gave apply (the backend's TxFromContext
// finds the transaction in it); Count from a Commit of the checkpoint
// "novatest-probe" that the suite rolls back. Tables are named with plain SQL
// identifiers; the backend resolves them in the database, schema or file
// of the store at hand (a PostgreSQL store may connect with search_path
// set to its scratch schema).
type ReadModel struct {
	// Create creates table with one text column, its primary key.
	Create func(ctx context.Context, table string) error
	// Insert adds the row key to table; a key already there fails.
	Insert func(ctx context.Context, table, key string) error
	// Count returns the number of rows in table.
	Count func(ctx context.Context, table string) (int, error)
}

// WithReadModel gives the suite a backend's read-model tables. It is
// required when the store is a [projection.TxCheckpoints].
func WithReadModel(rm ReadModel) CheckpointOption {
	return func(o *cpOptions) { o.rm = &rm }
}

// WithPrepare says the store keeps both parts of a position (PostgreSQL's
// Position.Prepare too): the cases then also save, commit from and swap
// positions that differ only in Prepare.
func WithPrepare() CheckpointOption {
	return func(o *cpOptions) { o.prepare = true }
}

// WithRefusedPositions lists positions the store cannot hold (SQLite's
// have no Prepare; a SQL bigint ends at math.MaxInt64). Saving one, or
// committing from or to one, must fail with nova.ErrInvalid and write
// nothing.
func WithRefusedPositions(ps ...nova.Position) CheckpointOption {
	return func(o *cpOptions) { o.refused = append(o.refused, ps...) }
}

// RunCheckpointStore runs the checkpoint store conformance suite against
// the stores newStore returns. newStore must return a fresh, empty store
// each time it is called and register its cleanup with t; it is called
// from parallel subtests. The cases every [projection.CheckpointStore]
// passes:
//
//   - LoadSave: Load of a name never saved returns nova.Start; Save
//     replaces the checkpoint, backwards too; positions up to
//     math.MaxInt64 (and, with [WithPrepare], their Prepare part) come
//     back as saved.
//   - Names: names that differ in case, spaces, suffixes or quoting, and
//     a name of nova.MaxStreamLen bytes, keep apart.
//   - BadInput: bad names, refused positions and, by the interfaces the
//     store implements, a backward commit, an empty or bad owner, a ttl that is not positive, bad or no tables and
//     a swap onto itself fail with nova.ErrInvalid, run no apply and
//     write nothing.
//   - Cancel: every call with a cancelled context fails with an error
//     matching context.Canceled and writes nothing.
//
// When the store is a [projection.TxCheckpoints] (which needs
// [WithReadModel]):
//
//   - CommitFence: Commit from anything but the stored checkpoint (behind,
//     ahead, a fresh name's Start) fails with nova.ErrConcurrency and
//     leaves read model and checkpoint as they were; of commits racing
//     from one position exactly one succeeds.
//   - CommitRollback: an error from apply, the suite's own or the
//     database's, is returned and rolls back the read-model rows and the
//     checkpoint (even a fresh name's).
//   - CommitLease: a commit with an owner needs that owner's live lease,
//     or fails with projection.ErrLeaseLost and writes nothing; one
//     without an owner ignores leases.
//
// When it is a [projection.Leaser]:
//
//   - Lease: one holder at a time per name; the holder renews; Release by
//     a non-holder, or of a name never leased, is a no-op; leases leave
//     checkpoints alone.
//   - LeaseExpiry: an expired lease goes to the next owner that asks and
//     fences its old holder; a renewal pushes the expiry back.
//
// When it is a [projection.LeasedCheckpoints]:
//
//   - SaveLease: SaveLeased saves only for the live holder of the
//     lease: a non-holder, a name never leased, a released lease and an
//     expired lease taken over fail with projection.ErrLeaseLost and
//     save nothing.
//
// When it is a [projection.Rebuilder]:
//
//   - PrepareSwap: Prepare makes empty shadows (dropping old ones) of
//     existing tables only; Swap replaces every live table by its shadow
//     and the live checkpoint by the rebuild's, in one transaction, or,
//     when a shadow is missing, changes nothing.
//   - SwapRefused: Swap refuses with nova.ErrConcurrency, changing
//     nothing, while the live checkpoint is ahead of the rebuild's, and
//     swaps once the rebuild has caught up.
//
// When it is a [projection.CheckpointLister]:
//
//   - List: every stored name with its position, lease owner and times;
//     a lease's renewal does not move UpdatedAt.
//
// LeaseExpiry polls Acquire until a lease of 200 ms has run out by the
// store's clock; the whole suite takes a second or two.
func RunCheckpointStore(t *testing.T, newStore func(t *testing.T) projection.CheckpointStore, opts ...CheckpointOption) {
	t.Helper()
	s := &cpSuite{newStore: newStore}
	for _, opt := range opts {
		opt(&s.o)
	}
	for _, c := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"LoadSave", s.testLoadSave},
		{"Names", s.testNames},
		{"BadInput", s.testBadInput},
		{"Cancel", s.testCancel},
		{"CommitFence", s.testCommitFence},
		{"CommitRollback", s.testCommitRollback},
		{"CommitLease", s.testCommitLease},
		{"Lease", s.testLease},
		{"LeaseExpiry", s.testLeaseExpiry},
		{"SaveLease", s.testSaveLease},
		{"PrepareSwap", s.testPrepareSwap},
		{"SwapRefused", s.testSwapRefused},
		{"List", s.testList},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.f(t)
		})
	}
}

type cpSuite struct {
	newStore func(t *testing.T) projection.CheckpointStore
	o        cpOptions
}

// cpTimeout bounds each case's calls and waits.
const cpTimeout = time.Minute

// cpShortLease is the lease of the cases that wait for one to expire.
const cpShortLease = 200 * time.Millisecond

// at is the position of commit n.
func at(n uint64) nova.Position { return nova.Position{Commit: n} }

// setup returns a fresh store and a context bounded by cpTimeout.
func (s *cpSuite) setup(t *testing.T) (projection.CheckpointStore, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), cpTimeout)
	t.Cleanup(cancel)
	return s.newStore(t), ctx
}

// as returns v as a T, skipping t when it is not one: the cases of an
// interface run on the stores that implement it.
func as[T any](t *testing.T, v any) T {
	t.Helper()
	w, ok := v.(T)
	if !ok {
		t.Skipf("%T is not a %s", v, reflect.TypeFor[T]())
	}
	return w
}

// txStore returns a fresh store as a TxCheckpoints, skipping t when it is
// not one.
func (s *cpSuite) txStore(t *testing.T) (projection.TxCheckpoints, context.Context) {
	t.Helper()
	cs, ctx := s.setup(t)
	tx := as[projection.TxCheckpoints](t, cs)
	if s.o.rm == nil {
		t.Fatalf("novatest: %T is a projection.TxCheckpoints: pass WithReadModel", cs)
	}
	return tx, ctx
}

func wantCheckpoint(t *testing.T, ctx context.Context, cs projection.CheckpointStore, name string, want nova.Position) {
	t.Helper()
	got, err := cs.Load(ctx, name)
	if err != nil || got != want {
		t.Fatalf("Load(%q) = %s, %v; want %s", name, got, err, want)
	}
}

func mustSave(t *testing.T, ctx context.Context, cs projection.CheckpointStore, name string, pos nova.Position) {
	t.Helper()
	if err := cs.Save(ctx, name, pos); err != nil {
		t.Fatalf("Save(%q, %s): %v", name, pos, err)
	}
}

// inserts returns an apply function that inserts keys into table,
// creating it first when create is set.
func (s *cpSuite) inserts(create bool, table string, keys ...string) func(context.Context) error {
	return func(ctx context.Context) error {
		if create {
			if err := s.o.rm.Create(ctx, table); err != nil {
				return fmt.Errorf("create %s: %w", table, err)
			}
		}
		for _, k := range keys {
			if err := s.o.rm.Insert(ctx, table, k); err != nil {
				return fmt.Errorf("insert %q into %s: %w", k, table, err)
			}
		}
		return nil
	}
}

func mustCommit(t *testing.T, ctx context.Context, tx projection.TxCheckpoints, name, owner string, from, to nova.Position, apply func(context.Context) error) {
	t.Helper()
	if err := tx.Commit(ctx, name, owner, from, to, apply); err != nil {
		t.Fatalf("Commit(%q, owner %q, %s → %s): %v", name, owner, from, to, err)
	}
}

// errProbe rolls back the suite's reading transactions.
var errProbe = errors.New("novatest: probe rolled back")

// probeName is the checkpoint the suite's reading transactions commit
// under, and roll back.
const probeName = "novatest-probe"

// wantRows fails t unless table has n rows, read in a transaction of tx
// that is rolled back.
func (s *cpSuite) wantRows(t *testing.T, ctx context.Context, tx projection.TxCheckpoints, table string, n int) {
	t.Helper()
	got := -1
	err := tx.Commit(ctx, probeName, "", nova.Start, nova.Start, func(ctx context.Context) error {
		var err error
		if got, err = s.o.rm.Count(ctx, table); err != nil {
			return err
		}
		return errProbe
	})
	if !errors.Is(err, errProbe) {
		t.Fatalf("count %s in a Commit rolled back by the suite: %v, want the suite's error back", table, err)
	}
	if got != n {
		t.Fatalf("%s has %d rows, want %d", table, got, n)
	}
}

func (s *cpSuite) testLoadSave(t *testing.T) {
	cs, ctx := s.setup(t)
	wantCheckpoint(t, ctx, cs, "p", nova.Start)
	for _, pos := range []nova.Position{at(5), at(3), nova.Start, at(1), at(math.MaxInt64)} {
		mustSave(t, ctx, cs, "p", pos)
		wantCheckpoint(t, ctx, cs, "p", pos)
	}
	if s.o.prepare {
		for _, pos := range []nova.Position{{Commit: 7, Prepare: 3}, {Commit: 7, Prepare: 2}, {Prepare: 1}, {Commit: math.MaxInt64, Prepare: math.MaxInt64}} {
			mustSave(t, ctx, cs, "p", pos)
			wantCheckpoint(t, ctx, cs, "p", pos)
		}
	}
	wantCheckpoint(t, ctx, cs, "q", nova.Start)
}

func (s *cpSuite) testNames(t *testing.T) {
	cs, ctx := s.setup(t)
	names := []string{"p", "P", "p ", " p", "p@rebuild", "orders.by-day", "注文/ü", `a'b"c;--`, "%_", strings.Repeat("n", nova.MaxStreamLen)}
	for i, name := range names {
		mustSave(t, ctx, cs, name, at(uint64(i+1)))
	}
	for i, name := range names {
		wantCheckpoint(t, ctx, cs, name, at(uint64(i+1)))
	}
	wantCheckpoint(t, ctx, cs, "pp", nova.Start)
}

func (s *cpSuite) testBadInput(t *testing.T) {
	cs, ctx := s.setup(t)
	mustSave(t, ctx, cs, "kept", at(4))
	wantInvalid := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("%s = %v, want an error matching nova.ErrInvalid", what, err)
		}
	}
	badNames := []string{"", "a\x00b", "a\nb", "\xff", strings.Repeat("n", nova.MaxStreamLen+1)}
	for _, name := range badNames {
		_, err := cs.Load(ctx, name)
		wantInvalid(fmt.Sprintf("Load(%q)", name), err)
		wantInvalid(fmt.Sprintf("Save(%q)", name), cs.Save(ctx, name, at(1)))
	}
	for _, pos := range s.o.refused {
		wantInvalid(fmt.Sprintf("Save(%s)", pos), cs.Save(ctx, "kept", pos))
		wantInvalid(fmt.Sprintf("Save(%q, %s)", "new", pos), cs.Save(ctx, "new", pos))
	}

	if tx, ok := cs.(projection.TxCheckpoints); ok {
		ran := false
		apply := func(context.Context) error { ran = true; return nil }
		commits := map[string]error{
			"backwards":     tx.Commit(ctx, "kept", "", at(4), at(3), apply),
			"bad name":      tx.Commit(ctx, "", "", nova.Start, at(1), apply),
			"control owner": tx.Commit(ctx, "kept", "a\nb", at(4), at(5), apply),
			"long owner":    tx.Commit(ctx, "kept", strings.Repeat("o", nova.MaxStreamLen+1), at(4), at(5), apply),
		}
		for _, pos := range s.o.refused {
			commits[fmt.Sprintf("from %s", pos)] = tx.Commit(ctx, "kept", "", pos, at(math.MaxInt64), apply)
			commits[fmt.Sprintf("to %s", pos)] = tx.Commit(ctx, "kept", "", at(4), pos, apply)
		}
		for what, err := range commits {
			wantInvalid("Commit with "+what, err)
		}
		if ran {
			t.Errorf("a rejected Commit ran apply")
		}
	}
	if l, ok := cs.(projection.Leaser); ok {
		for what, f := range map[string]func() error{
			"ttl 0":         func() error { _, err := l.Acquire(ctx, "new", "o", 0); return err },
			"negative ttl":  func() error { _, err := l.Acquire(ctx, "new", "o", -time.Second); return err },
			"empty owner":   func() error { _, err := l.Acquire(ctx, "new", "", time.Minute); return err },
			"control owner": func() error { _, err := l.Acquire(ctx, "new", "o\x00", time.Minute); return err },
			"bad name":      func() error { _, err := l.Acquire(ctx, "\xff", "o", time.Minute); return err },
		} {
			wantInvalid("Acquire with "+what, f())
		}
		wantInvalid("Release with an empty owner", l.Release(ctx, "kept", ""))
		wantInvalid("Release with a bad name", l.Release(ctx, "", "o"))
	}
	if lc, ok := cs.(projection.LeasedCheckpoints); ok {
		wantInvalid("SaveLeased with an empty owner", lc.SaveLeased(ctx, "kept", "", at(5)))
		wantInvalid("SaveLeased with a control owner", lc.SaveLeased(ctx, "kept", "o\x00", at(5)))
		wantInvalid("SaveLeased with a bad name", lc.SaveLeased(ctx, "\xff", "o", at(5)))
		for _, pos := range s.o.refused {
			wantInvalid(fmt.Sprintf("SaveLeased(%s)", pos), lc.SaveLeased(ctx, "kept", "o", pos))
		}
	}
	if rb, ok := cs.(projection.Rebuilder); ok {
		rctx := projectiondriver.WithRebuild(ctx)
		for what, tables := range map[string][]string{
			"no tables":    nil,
			"empty name":   {""},
			"statement":    {"a; DROP TABLE b"},
			"quoted":       {`"t"`},
			"digit first":  {"1t"},
			"a shadow":     {"t" + projectiondriver.ShadowSuffix},
			"one bad of 2": {"t", "t t"},
			"too long":     {strings.Repeat("t", 64)},
		} {
			wantInvalid("Prepare with "+what, rb.Prepare(rctx, tables))
			wantInvalid("Swap with "+what, rb.Swap(ctx, "kept", "kept"+projectiondriver.RebuildSuffix, tables))
		}
		wantInvalid("Swap onto itself", rb.Swap(ctx, "kept", "kept", []string{"t"}))
		wantInvalid("Swap with a bad name", rb.Swap(ctx, "", "kept@rebuild", []string{"t"}))
		wantInvalid("Swap with a bad shadow", rb.Swap(ctx, "kept", "\x00", []string{"t"}))
	}
	s.wantOnly(t, ctx, cs, "kept", at(4))
}

// wantOnly fails t unless name's checkpoint is pos and, as far as the
// store shows, no other checkpoint exists.
func (s *cpSuite) wantOnly(t *testing.T, ctx context.Context, cs projection.CheckpointStore, name string, pos nova.Position) {
	t.Helper()
	wantCheckpoint(t, ctx, cs, name, pos)
	wantCheckpoint(t, ctx, cs, "new", nova.Start)
	if ls, ok := cs.(projection.CheckpointLister); ok {
		list, err := ls.List(ctx)
		if err != nil || len(list) != 1 || list[0].Name != name || list[0].Position != pos {
			t.Fatalf("List = %+v, %v; want only %q at %s", list, err, name, pos)
		}
	}
}

func (s *cpSuite) testCancel(t *testing.T) {
	cs, ctx := s.setup(t)
	mustSave(t, ctx, cs, "kept", at(4))
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	calls := map[string]error{
		"Save":                     cs.Save(cancelled, "new", at(1)),
		"Save of an existing name": cs.Save(cancelled, "kept", at(5)),
	}
	_, calls["Load"] = cs.Load(cancelled, "kept")
	if tx, ok := cs.(projection.TxCheckpoints); ok {
		calls["Commit"] = tx.Commit(cancelled, "kept", "", at(4), at(5), func(context.Context) error { return nil })
	}
	if l, ok := cs.(projection.Leaser); ok {
		_, calls["Acquire"] = l.Acquire(cancelled, "new", "o", time.Minute)
		calls["Release"] = l.Release(cancelled, "kept", "o")
	}
	if lc, ok := cs.(projection.LeasedCheckpoints); ok {
		calls["SaveLeased"] = lc.SaveLeased(cancelled, "kept", "o", at(5))
	}
	if rb, ok := cs.(projection.Rebuilder); ok {
		calls["Prepare"] = rb.Prepare(projectiondriver.WithRebuild(cancelled), []string{"t"})
		calls["Swap"] = rb.Swap(cancelled, "kept", "kept@rebuild", []string{"t"})
	}
	if ls, ok := cs.(projection.CheckpointLister); ok {
		_, calls["List"] = ls.List(cancelled)
	}
	for what, err := range calls {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled ctx = %v, want an error matching context.Canceled", what, err)
		}
	}
	s.wantOnly(t, ctx, cs, "kept", at(4))
}

func (s *cpSuite) testCommitFence(t *testing.T) {
	tx, ctx := s.txStore(t)
	mustCommit(t, ctx, tx, "p", "", nova.Start, at(3), s.inserts(true, "side", "a"))
	wantCheckpoint(t, ctx, tx, "p", at(3))
	stale := []nova.Position{nova.Start, at(2), at(4), at(math.MaxInt64)}
	if s.o.prepare {
		stale = append(stale, nova.Position{Commit: 3, Prepare: 1})
	}
	for i, from := range stale {
		err := tx.Commit(ctx, "p", "", from, at(math.MaxInt64), s.inserts(false, "side", fmt.Sprint("stale-", i)))
		if !errors.Is(err, nova.ErrConcurrency) {
			t.Fatalf("Commit from %s with the checkpoint at 3 = %v, want an error matching nova.ErrConcurrency", from, err)
		}
	}
	if err := tx.Commit(ctx, "fresh", "", at(3), at(4), s.inserts(false, "side", "fresh")); !errors.Is(err, nova.ErrConcurrency) {
		t.Fatalf("Commit from 3 of a name never saved = %v, want an error matching nova.ErrConcurrency", err)
	}
	s.wantRows(t, ctx, tx, "side", 1)
	wantCheckpoint(t, ctx, tx, "p", at(3))
	wantCheckpoint(t, ctx, tx, "fresh", nova.Start)

	// A commit that does not move the checkpoint still applies.
	mustCommit(t, ctx, tx, "p", "", at(3), at(3), s.inserts(false, "side", "b"))
	mustCommit(t, ctx, tx, "p", "", at(3), at(6), s.inserts(false, "side", "c"))
	if err := tx.Commit(ctx, "p", "", at(3), at(7), s.inserts(false, "side", "d")); !errors.Is(err, nova.ErrConcurrency) {
		t.Fatalf("Commit from 3 after a commit to 6 = %v, want an error matching nova.ErrConcurrency", err)
	}
	s.wantRows(t, ctx, tx, "side", 3)
	wantCheckpoint(t, ctx, tx, "p", at(6))
	if s.o.prepare {
		mid := nova.Position{Commit: 6, Prepare: 2}
		mustCommit(t, ctx, tx, "p", "", at(6), mid, s.inserts(false, "side", "e"))
		if err := tx.Commit(ctx, "p", "", at(6), at(7), s.inserts(false, "side", "f")); !errors.Is(err, nova.ErrConcurrency) {
			t.Fatalf("Commit from 6 with the checkpoint at %s = %v, want an error matching nova.ErrConcurrency", mid, err)
		}
		mustCommit(t, ctx, tx, "p", "", mid, at(7), s.inserts(false, "side", "f"))
		s.wantRows(t, ctx, tx, "side", 5)
	}

	// Commits racing from one position: one wins, the others are fenced.
	const racers = 8
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			errs[i] = tx.Commit(ctx, "race", "", nova.Start, at(1), s.inserts(false, "side", fmt.Sprint("race-", i)))
		})
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, nova.ErrConcurrency):
			t.Errorf("racing Commit #%d = %v, want nil or an error matching nova.ErrConcurrency", i, err)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d commits racing from one position succeeded, want 1", won, racers)
	}
	wantCheckpoint(t, ctx, tx, "race", at(1))
	rows := 3 + 1 // a, b, c and the winner
	if s.o.prepare {
		rows += 2 // e, f
	}
	s.wantRows(t, ctx, tx, "side", rows)
}

func (s *cpSuite) testCommitRollback(t *testing.T) {
	tx, ctx := s.txStore(t)
	mustCommit(t, ctx, tx, "p", "", nova.Start, at(2), s.inserts(true, "side", "a"))
	boom := errors.New("boom")
	err := tx.Commit(ctx, "p", "", at(2), at(3), func(ctx context.Context) error {
		if err := s.inserts(false, "side", "b")(ctx); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Commit whose apply fails = %v, want apply's error", err)
	}
	// The database's own error: the key a exists.
	if err := tx.Commit(ctx, "p", "", at(2), at(3), s.inserts(false, "side", "c", "a")); err == nil {
		t.Fatal("Commit whose insert of an existing key fails succeeded")
	}
	s.wantRows(t, ctx, tx, "side", 1)
	wantCheckpoint(t, ctx, tx, "p", at(2))
	if err := tx.Commit(ctx, "fresh", "", nova.Start, at(1), func(context.Context) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Commit of a fresh name whose apply fails = %v, want apply's error", err)
	}
	wantCheckpoint(t, ctx, tx, "fresh", nova.Start)
	if ls, ok := tx.(projection.CheckpointLister); ok {
		if list, err := ls.List(ctx); err != nil || len(list) != 1 {
			t.Fatalf("List after rolled-back commits = %+v, %v; want only p", list, err)
		}
	}
	// b and c were rolled back, so they insert now.
	mustCommit(t, ctx, tx, "p", "", at(2), at(3), s.inserts(false, "side", "b", "c"))
	s.wantRows(t, ctx, tx, "side", 3)
	wantCheckpoint(t, ctx, tx, "p", at(3))
}

func wantLeaseLost(t *testing.T, err error, what string) {
	t.Helper()
	if !errors.Is(err, projection.ErrLeaseLost) {
		t.Fatalf("%s = %v, want an error matching projection.ErrLeaseLost", what, err)
	}
}

func mustAcquire(t *testing.T, ctx context.Context, l projection.Leaser, name, owner string, ttl time.Duration, want bool) {
	t.Helper()
	if got, err := l.Acquire(ctx, name, owner, ttl); got != want || err != nil {
		t.Fatalf("Acquire(%q, %q) = %v, %v; want %v", name, owner, got, err, want)
	}
}

func mustRelease(t *testing.T, ctx context.Context, l projection.Leaser, name, owner string) {
	t.Helper()
	if err := l.Release(ctx, name, owner); err != nil {
		t.Fatalf("Release(%q, %q): %v", name, owner, err)
	}
}

func (s *cpSuite) testCommitLease(t *testing.T) {
	tx, ctx := s.txStore(t)
	mustCommit(t, ctx, tx, "p", "", nova.Start, at(1), s.inserts(true, "side", "a"))
	wantLeaseLost(t, tx.Commit(ctx, "p", "one", at(1), at(2), s.inserts(false, "side", "b")), "Commit by an owner of a name never leased")
	wantLeaseLost(t, tx.Commit(ctx, "fresh", "one", nova.Start, at(2), s.inserts(false, "side", "b")), "Commit by an owner of a fresh name")
	s.wantRows(t, ctx, tx, "side", 1)
	wantCheckpoint(t, ctx, tx, "p", at(1))
	l, ok := tx.(projection.Leaser)
	if !ok {
		return
	}
	mustAcquire(t, ctx, l, "p", "one", time.Hour, true)
	wantLeaseLost(t, tx.Commit(ctx, "p", "two", at(1), at(2), s.inserts(false, "side", "b")), "Commit by a non-holder")
	s.wantRows(t, ctx, tx, "side", 1)
	mustCommit(t, ctx, tx, "p", "one", at(1), at(2), s.inserts(false, "side", "b"))
	mustCommit(t, ctx, tx, "p", "", at(2), at(3), s.inserts(false, "side", "c"))
	mustRelease(t, ctx, l, "p", "one")
	wantLeaseLost(t, tx.Commit(ctx, "p", "one", at(3), at(4), s.inserts(false, "side", "d")), "Commit after Release")
	s.wantRows(t, ctx, tx, "side", 3)
	wantCheckpoint(t, ctx, tx, "p", at(3))
}

func (s *cpSuite) leaser(t *testing.T) (projection.Leaser, context.Context) {
	t.Helper()
	cs, ctx := s.setup(t)
	return as[projection.Leaser](t, cs), ctx
}

func (s *cpSuite) testLease(t *testing.T) {
	l, ctx := s.leaser(t)
	cs := l.(projection.CheckpointStore)
	mustAcquire(t, ctx, l, "a", "one", time.Hour, true)
	mustAcquire(t, ctx, l, "a", "one", time.Hour, true) // a renewal
	mustAcquire(t, ctx, l, "a", "two", time.Hour, false)
	mustAcquire(t, ctx, l, "b", "two", time.Hour, true) // leases are per name
	mustRelease(t, ctx, l, "a", "two")
	mustAcquire(t, ctx, l, "a", "two", time.Hour, false)
	mustRelease(t, ctx, l, "never", "one")
	mustRelease(t, ctx, l, "a", "one")
	mustAcquire(t, ctx, l, "a", "two", time.Hour, true)
	mustRelease(t, ctx, l, "a", "two")
	mustRelease(t, ctx, l, "a", "two")
	mustAcquire(t, ctx, l, "a", "one", time.Hour, true)

	// Leases leave checkpoints alone, and checkpoints leases.
	mustSave(t, ctx, cs, "c", at(5))
	mustAcquire(t, ctx, l, "c", "one", time.Hour, true)
	wantCheckpoint(t, ctx, cs, "c", at(5))
	mustSave(t, ctx, cs, "c", at(6))
	mustAcquire(t, ctx, l, "c", "two", time.Hour, false)
	mustRelease(t, ctx, l, "c", "one")
	wantCheckpoint(t, ctx, cs, "c", at(6))
	wantCheckpoint(t, ctx, cs, "a", nova.Start)
	wantCheckpoint(t, ctx, cs, "never", nova.Start)
	if ls, ok := l.(projection.CheckpointLister); ok {
		list, err := ls.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range list {
			if i.Name == "never" {
				t.Fatalf("Release of a name never leased stored it: %+v", i)
			}
		}
	}
}

func (s *cpSuite) testLeaseExpiry(t *testing.T) {
	l, ctx := s.leaser(t)
	mustAcquire(t, ctx, l, "x", "one", cpShortLease, true)
	mustAcquire(t, ctx, l, "r", "one", cpShortLease, true)
	mustAcquire(t, ctx, l, "r", "one", time.Hour, true)
	// ctl's lease, taken last, ends last: once another owner gets it, x's
	// lease has expired too.
	mustAcquire(t, ctx, l, "ctl", "one", cpShortLease, true)
	for {
		ok, err := l.Acquire(ctx, "ctl", "two", time.Hour)
		if err != nil {
			t.Fatalf("Acquire of an expiring lease: %v", err)
		}
		if ok {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("a lease of %s not expired after %s", cpShortLease, cpTimeout)
		case <-time.After(cpShortLease / 10):
		}
	}
	if tx, ok := l.(projection.TxCheckpoints); ok {
		noop := func(context.Context) error { return nil }
		wantLeaseLost(t, tx.Commit(ctx, "x", "one", nova.Start, at(1), noop), "Commit on an expired lease")
		mustAcquire(t, ctx, l, "x", "two", time.Hour, true)
		wantLeaseLost(t, tx.Commit(ctx, "x", "one", nova.Start, at(1), noop), "Commit by the holder of a lease taken over")
		mustCommit(t, ctx, tx, "x", "two", nova.Start, at(1), noop)
	} else {
		mustAcquire(t, ctx, l, "x", "two", time.Hour, true)
	}
	mustAcquire(t, ctx, l, "x", "one", time.Hour, false)
	mustAcquire(t, ctx, l, "r", "two", time.Hour, false) // renewed
	mustAcquire(t, ctx, l, "r", "one", time.Hour, true)
}

func (s *cpSuite) testSaveLease(t *testing.T) {
	cs, ctx := s.setup(t)
	lc := as[projection.LeasedCheckpoints](t, cs)
	wantLeaseLost(t, lc.SaveLeased(ctx, "p", "one", at(1)), "SaveLeased of a name never leased")
	mustSave(t, ctx, lc, "p", at(1))
	wantLeaseLost(t, lc.SaveLeased(ctx, "p", "one", at(2)), "SaveLeased of a saved name never leased")
	mustAcquire(t, ctx, lc, "p", "one", time.Hour, true)
	wantLeaseLost(t, lc.SaveLeased(ctx, "p", "two", at(2)), "SaveLeased by a non-holder")
	wantCheckpoint(t, ctx, lc, "p", at(1))
	if err := lc.SaveLeased(ctx, "p", "one", at(3)); err != nil {
		t.Fatalf("SaveLeased by the holder: %v", err)
	}
	wantCheckpoint(t, ctx, lc, "p", at(3))
	mustRelease(t, ctx, lc, "p", "one")
	wantLeaseLost(t, lc.SaveLeased(ctx, "p", "one", at(4)), "SaveLeased after Release")
	wantCheckpoint(t, ctx, lc, "p", at(3))

	// An expired lease taken over fences its old holder.
	mustAcquire(t, ctx, lc, "x", "one", cpShortLease, true)
	for {
		ok, err := lc.Acquire(ctx, "x", "two", time.Hour)
		if err != nil {
			t.Fatalf("Acquire of an expiring lease: %v", err)
		}
		if ok {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("a lease of %s not expired after %s", cpShortLease, cpTimeout)
		case <-time.After(cpShortLease / 10):
		}
	}
	wantLeaseLost(t, lc.SaveLeased(ctx, "x", "one", at(1)), "SaveLeased by the holder of a lease taken over")
	wantCheckpoint(t, ctx, lc, "x", nova.Start)
	if err := lc.SaveLeased(ctx, "x", "two", at(2)); err != nil {
		t.Fatalf("SaveLeased by the new holder: %v", err)
	}
	wantCheckpoint(t, ctx, lc, "x", at(2))
}

func (s *cpSuite) rebuilder(t *testing.T) (projection.Rebuilder, context.Context) {
	t.Helper()
	tx, ctx := s.txStore(t)
	return as[projection.Rebuilder](t, tx), ctx
}

func (s *cpSuite) mustSwap(t *testing.T, ctx context.Context, rb projection.Rebuilder, tables []string) {
	t.Helper()
	if err := rb.Swap(ctx, "m", "m"+projectiondriver.RebuildSuffix, tables); err != nil {
		t.Fatalf("Swap(%q): %v", tables, err)
	}
}

func mustPrepare(t *testing.T, ctx context.Context, rb projection.Rebuilder, tables ...string) {
	t.Helper()
	if err := rb.Prepare(projectiondriver.WithRebuild(ctx), tables); err != nil {
		t.Fatalf("Prepare(%q): %v", tables, err)
	}
}

func (s *cpSuite) testPrepareSwap(t *testing.T) {
	rb, ctx := s.rebuilder(t)
	const shadow = "m" + projectiondriver.RebuildSuffix
	model, other := "model", "other"
	sModel, sOther := model+projectiondriver.ShadowSuffix, other+projectiondriver.ShadowSuffix
	mustCommit(t, ctx, rb, "m", "", nova.Start, at(2), func(ctx context.Context) error {
		return errors.Join(s.inserts(true, model, "live")(ctx), s.inserts(true, other, "live")(ctx))
	})
	if err := rb.Prepare(projectiondriver.WithRebuild(ctx), []string{model, "missing"}); !errors.Is(err, nova.ErrInvalid) {
		t.Fatalf("Prepare of a table that does not exist = %v, want an error matching nova.ErrInvalid", err)
	}
	tables := []string{model, other}
	mustPrepare(t, ctx, rb, tables...)
	s.wantRows(t, ctx, rb, sModel, 0)
	s.wantRows(t, ctx, rb, sOther, 0)
	// A second Prepare drops the shadow a first one left.
	mustCommit(t, ctx, rb, shadow, "", nova.Start, at(1), s.inserts(false, sModel, "old"))
	mustPrepare(t, ctx, rb, tables...)
	s.wantRows(t, ctx, rb, sModel, 0)
	mustSave(t, ctx, rb, shadow, nova.Start)

	mustCommit(t, ctx, rb, shadow, "", nova.Start, at(5), func(ctx context.Context) error {
		return errors.Join(s.inserts(false, sModel, "r1", "r2")(ctx), s.inserts(false, sOther, "r3")(ctx))
	})
	s.wantRows(t, ctx, rb, model, 1)
	s.mustSwap(t, ctx, rb, tables)
	s.wantRows(t, ctx, rb, model, 2)
	s.wantRows(t, ctx, rb, other, 1)
	wantCheckpoint(t, ctx, rb, "m", at(5))
	wantCheckpoint(t, ctx, rb, shadow, nova.Start)
	if ls, ok := rb.(projection.CheckpointLister); ok {
		if list, err := ls.List(ctx); err != nil || len(list) != 1 || list[0].Name != "m" {
			t.Fatalf("List after a swap = %+v, %v; want only m", list, err)
		}
	}
	// The swapped-in table keeps its primary key.
	if err := rb.Commit(ctx, "m", "", at(5), at(6), s.inserts(false, model, "r1")); err == nil {
		t.Fatal("the swapped-in table took a second row r1: its primary key was not copied")
	}

	// No shadow, or one of two missing: nothing is swapped.
	if err := rb.Swap(ctx, "m", shadow, tables); err == nil {
		t.Fatal("Swap with no shadow tables succeeded")
	}
	mustPrepare(t, ctx, rb, model)
	mustCommit(t, ctx, rb, shadow, "", nova.Start, at(7), s.inserts(false, sModel, "new"))
	if err := rb.Swap(ctx, "m", shadow, tables); err == nil {
		t.Fatalf("Swap of %q with only %s prepared succeeded", tables, sModel)
	}
	s.wantRows(t, ctx, rb, model, 2)
	s.wantRows(t, ctx, rb, sModel, 1)
	wantCheckpoint(t, ctx, rb, "m", at(5))
	wantCheckpoint(t, ctx, rb, shadow, at(7))
	s.mustSwap(t, ctx, rb, []string{model})
	s.wantRows(t, ctx, rb, model, 1)
	wantCheckpoint(t, ctx, rb, "m", at(7))
}

func (s *cpSuite) testSwapRefused(t *testing.T) {
	rb, ctx := s.rebuilder(t)
	const shadow = "m" + projectiondriver.RebuildSuffix
	tables := []string{"model"}
	sModel := "model" + projectiondriver.ShadowSuffix
	mustCommit(t, ctx, rb, "m", "", nova.Start, at(3), s.inserts(true, "model", "live"))
	mustPrepare(t, ctx, rb, tables...)
	mustCommit(t, ctx, rb, shadow, "", nova.Start, at(2), s.inserts(false, sModel, "r1"))
	refused := func(live, rebuilt nova.Position) {
		t.Helper()
		if err := rb.Swap(ctx, "m", shadow, tables); !errors.Is(err, nova.ErrConcurrency) {
			t.Fatalf("Swap with the live checkpoint at %s and the rebuild's at %s = %v, want an error matching nova.ErrConcurrency", live, rebuilt, err)
		}
		s.wantRows(t, ctx, rb, "model", 1)
		s.wantRows(t, ctx, rb, sModel, 1)
		wantCheckpoint(t, ctx, rb, "m", live)
		wantCheckpoint(t, ctx, rb, shadow, rebuilt)
	}
	refused(at(3), at(2))
	if s.o.prepare {
		ahead := nova.Position{Commit: 2, Prepare: 1}
		mustSave(t, ctx, rb, "m", ahead)
		refused(ahead, at(2))
		mustSave(t, ctx, rb, "m", at(3))
	}
	// The rebuild catches up, to the live checkpoint: the swap goes ahead.
	mustCommit(t, ctx, rb, shadow, "", at(2), at(3), s.inserts(false, sModel, "r2"))
	s.mustSwap(t, ctx, rb, tables)
	s.wantRows(t, ctx, rb, "model", 2)
	wantCheckpoint(t, ctx, rb, "m", at(3))
	wantCheckpoint(t, ctx, rb, shadow, nova.Start)
}

func (s *cpSuite) testList(t *testing.T) {
	cs, ctx := s.setup(t)
	ls := as[projection.CheckpointLister](t, cs)
	list := func() []projection.CheckpointInfo {
		t.Helper()
		list, err := ls.List(ctx)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		slices.SortFunc(list, func(a, b projection.CheckpointInfo) int { return strings.Compare(a.Name, b.Name) })
		return list
	}
	if got := list(); len(got) != 0 {
		t.Fatalf("List of an empty store = %+v", got)
	}
	before := time.Now()
	bPos := at(2)
	if s.o.prepare {
		bPos = nova.Position{Commit: 2, Prepare: 7}
	}
	mustSave(t, ctx, cs, "b", bPos)
	mustSave(t, ctx, cs, "a", at(1))
	want := []projection.CheckpointInfo{{Name: "a", Position: at(1)}, {Name: "b", Position: bPos}}
	l, leases := cs.(projection.Leaser)
	if leases {
		mustAcquire(t, ctx, l, "a", "x", time.Hour, true)
		mustRelease(t, ctx, l, "a", "x")
		mustAcquire(t, ctx, l, "b", "one", time.Hour, true)
		mustAcquire(t, ctx, l, "c", "two", time.Hour, true)
		want[1].LeaseOwner = "one"
		want = append(want, projection.CheckpointInfo{Name: "c", LeaseOwner: "two"})
	}
	got := list()
	now := time.Now()
	// The store's clock may be another machine's: allow for some skew.
	const skew = 5 * time.Minute
	if len(got) != len(want) {
		t.Fatalf("List = %+v, want %d checkpoints", got, len(want))
	}
	for i, g := range got {
		w := want[i]
		if g.Name != w.Name || g.Position != w.Position || g.LeaseOwner != w.LeaseOwner {
			t.Fatalf("List[%d] = %+v, want %q at %s leased to %q", i, g, w.Name, w.Position, w.LeaseOwner)
		}
		if active := g.Active(now); active != (w.LeaseOwner != "") {
			t.Errorf("List[%d] = %+v: Active = %v", i, g, active)
		}
		if w.LeaseOwner != "" && (g.LeaseUntil.Before(now.Add(time.Hour-skew)) || g.LeaseUntil.After(now.Add(time.Hour+skew))) {
			t.Errorf("List[%d]: a lease of an hour taken at %s runs until %s", i, now, g.LeaseUntil)
		}
		if w.Name != "c" && (g.UpdatedAt.Before(before.Add(-skew)) || g.UpdatedAt.After(now.Add(skew))) {
			t.Errorf("List[%d]: saved between %s and %s, UpdatedAt %s", i, before, now, g.UpdatedAt)
		}
	}
	if leases {
		mustAcquire(t, ctx, l, "b", "one", 2*time.Hour, true)
		if again := list(); !again[1].UpdatedAt.Equal(got[1].UpdatedAt) || !again[1].LeaseUntil.After(got[1].LeaseUntil) {
			t.Errorf("a renewal moved UpdatedAt from %s to %s, or LeaseUntil not on from %s to %s",
				got[1].UpdatedAt, again[1].UpdatedAt, got[1].LeaseUntil, again[1].LeaseUntil)
		}
	}
}
