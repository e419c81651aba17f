package novasqlite_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/aggregate"
	"github.com/nova-go/nova/internal/validate"
	"github.com/nova-go/nova/novasqlite"
	"github.com/nova-go/nova/novatest"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "x.db")
	for _, tc := range []struct {
		name  string
		cfg   novasqlite.Config
		field string
	}{
		{"no path", novasqlite.Config{}, "Path"},
		{"memory", novasqlite.Config{Path: ":memory:"}, "Path"},
		{"uri", novasqlite.Config{Path: "file:x.db?mode=memory"}, "Path"},
		{"unknown synchronous", novasqlite.Config{Path: path, Synchronous: 7}, "Synchronous"},
		{"negative busy timeout", novasqlite.Config{Path: path, BusyTimeout: -time.Second}, "BusyTimeout"},
		{"negative readers", novasqlite.Config{Path: path, MaxReaders: -1}, "MaxReaders"},
		{"too many readers", novasqlite.Config{Path: path, MaxReaders: 5000}, "MaxReaders"},
		{"negative poll interval", novasqlite.Config{Path: path, PollInterval: -1}, "PollInterval"},
		{"negative group", novasqlite.Config{Path: path, MaxGroup: -1}, "MaxGroup"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := novasqlite.Open(context.Background(), tc.cfg)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded, want an error")
			}
			if !errors.Is(err, nova.ErrInvalid) {
				t.Errorf("error %v does not match nova.ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), "Config."+tc.field) {
				t.Errorf("error %q does not name Config.%s", err, tc.field)
			}
		})
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a rejected config created the file: %v", err)
	}
}

func TestPragmasAndDSN(t *testing.T) {
	t.Parallel()
	cfg := novasqlite.Config{Path: "/tmp/a b?.db", Synchronous: novasqlite.SyncNormal, BusyTimeout: 2 * time.Second}
	want := []string{"busy_timeout=2000", "journal_mode=WAL", "synchronous=NORMAL"}
	if got := novasqlite.Pragmas(cfg); strings.Join(got, ";") != strings.Join(want, ";") {
		t.Errorf("Pragmas = %q, want %q", got, want)
	}
	dsn := novasqlite.DSN(cfg)
	for _, part := range []string{"file:/tmp/a%20b%3F.db?", "_pragma=synchronous%28NORMAL%29", "_pragma=journal_mode%28WAL%29", "_txlock=immediate"} {
		if !strings.Contains(dsn, part) {
			t.Errorf("DSN %q lacks %q", dsn, part)
		}
	}
}

// setUserVersion writes PRAGMA user_version of the file at path directly.
func setPragma(t *testing.T, path, pragma string) {
	t.Helper()
	c, err := sqlite3.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Exec("PRAGMA " + pragma); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefusesFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("newer schema", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "events.db")
		s := open(t, novasqlite.Config{Path: path})
		novatest.MustAppend(t, s, "a", nova.NoStream, novatest.Events("e", 1)...)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		setPragma(t, path, "user_version = 99")
		s2, err := novasqlite.Open(ctx, novasqlite.Config{Path: path})
		if err == nil {
			s2.Close()
			t.Fatal("Open of a newer schema succeeded")
		}
		if !errors.Is(err, novasqlite.ErrSchemaTooNew) || !strings.Contains(err.Error(), "99") {
			t.Errorf("Open: %v, want ErrSchemaTooNew naming version 99", err)
		}
		setPragma(t, path, fmt.Sprintf("user_version = %d", novasqlite.SchemaVersion))
		s3 := open(t, novasqlite.Config{Path: path})
		if n := len(novatest.MustReadAll(t, s3)); n != 1 {
			t.Errorf("after the refused open the log has %d events, want 1", n)
		}
	})

	t.Run("older schema migrates", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "events.db")
		s := open(t, novasqlite.Config{Path: path})
		novatest.MustAppend(t, s, "a", nova.NoStream, novatest.Events("e", 2)...)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		// Back to the first schema: the tables later versions add are gone.
		setPragma(t, path, "user_version = 1")
		for _, table := range []string{"saga_runs", "outbox", "checkpoints"} {
			setPragma(t, path, "user_version = 1; DROP TABLE "+table)
		}
		s2 := open(t, novasqlite.Config{Path: path})
		if n := len(novatest.MustReadAll(t, s2)); n != 2 {
			t.Errorf("after migrating the log has %d events, want 2", n)
		}
		if err := s2.WriteTx(ctx, func(c *sqlite3.Conn) error {
			return c.Exec(`INSERT INTO checkpoints (name) VALUES ('p'); DELETE FROM saga_runs; DELETE FROM outbox`)
		}); err != nil {
			t.Errorf("tables of the new schema: %v", err)
		}
	})

	t.Run("not a database", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "notes.txt")
		content := strings.Repeat("this is not an SQLite file\n", 200)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := novasqlite.Open(ctx, novasqlite.Config{Path: path})
		if err == nil {
			s.Close()
			t.Fatal("Open of a text file succeeded")
		}
		if !errors.Is(err, novasqlite.ErrNotDatabase) {
			t.Errorf("Open: %v, want ErrNotDatabase", err)
		}
		if got, _ := os.ReadFile(path); string(got) != content {
			t.Error("the refused file was modified")
		}
	})

	t.Run("other application", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "other.db")
		setPragma(t, path, "application_id = 42")
		s, err := novasqlite.Open(ctx, novasqlite.Config{Path: path})
		if err == nil {
			s.Close()
			t.Fatal("Open of another application's database succeeded")
		}
		if !errors.Is(err, novasqlite.ErrNotDatabase) {
			t.Errorf("Open: %v, want ErrNotDatabase", err)
		}
	})
}

func TestReopenKeepsDataAndPositions(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "events.db")
	ctx := context.Background()
	s, err := novasqlite.Open(ctx, novasqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	first := novatest.Events("first", 3)
	first[1].Metadata = nova.Metadata{CorrelationID: "c-1", CausationID: "x\"y", Schema: 2, Extra: map[string]string{"k": "v\n"}}
	r1 := novatest.MustAppend(t, s, "a", nova.NoStream, first...)
	if err := s.SaveSnapshot(ctx, aggregate.Snapshot{Stream: "a", Version: 3, Schema: 1, Data: []byte("state")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, novasqlite.Config{Path: path})
	log := novatest.MustReadAll(t, s)
	if len(log) != 3 || log[2].Position != r1.Position {
		t.Fatalf("reopened log = %d events ending at %v, want 3 ending at %v", len(log), log[len(log)-1].Position, r1.Position)
	}
	for i, e := range log {
		if !validate.SameContent(e, first[i]) || e.Stream != "a" || e.Version != uint64(i+1) {
			t.Errorf("event %d after reopen = %+v, want the content of %+v", i, e, first[i])
		}
	}
	r2 := novatest.MustAppend(t, s, "a", nova.Exact(3), novatest.Events("second", 2)...)
	if r2.FirstVersion != 4 || r2.Position.Commit != r1.Position.Commit+2 {
		t.Errorf("append after reopen = %+v, want versions from 4 and position %d", r2, r1.Position.Commit+2)
	}
	snap, err := s.LoadSnapshot(ctx, "a")
	if err != nil || snap.Version != 3 || string(snap.Data) != "state" {
		t.Errorf("snapshot after reopen = %+v, %v", snap, err)
	}
}

// holdWriteLock takes SQLite's write lock on path from another connection
// and returns the function that releases it.
func holdWriteLock(t *testing.T, path string) (release func()) {
	t.Helper()
	c, err := sqlite3.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Exec("BEGIN IMMEDIATE"); err != nil {
		c.Close()
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			if err := c.Exec("ROLLBACK"); err != nil {
				t.Error(err)
			}
			c.Close()
		})
	}
	t.Cleanup(release)
	return release
}

// waitFor polls cond until it holds, failing t after 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

type appendResult struct {
	res nova.AppendResult
	err error
}

// blockedWriter opens a store whose writer is stuck in BEGIN IMMEDIATE on
// a lock another connection holds, with one append in its group. Appends made
// after it returns queue up and form the next group, committed once
// release is called.
func blockedWriter(t *testing.T) (s *novasqlite.Store, release func(), first <-chan appendResult) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "events.db")
	s = open(t, novasqlite.Config{Path: path, BusyTimeout: time.Minute})
	release = holdWriteLock(t, path)
	first = appendAsync(t, s, context.Background(), "first", nova.Any, novatest.Events("e", 1))
	waitFor(t, "the writer waits for the lock", func() bool { return novasqlite.Groups(s) == 1 })
	return s, release, first
}

// appendAsync starts an append and waits until it is queued.
func appendAsync(t *testing.T, s *novasqlite.Store, ctx context.Context, stream string, exp nova.ExpectedVersion, events []nova.EventData) <-chan appendResult {
	t.Helper()
	ch := make(chan appendResult, 1)
	queued := novasqlite.Queued(s)
	taken := novasqlite.Taken(s)
	groups := novasqlite.Groups(s)
	go func() {
		res, err := s.Append(ctx, stream, exp, events...)
		ch <- appendResult{res, err}
	}()
	waitFor(t, "the append is queued", func() bool {
		return novasqlite.Queued(s) > queued || novasqlite.Taken(s) > taken || novasqlite.Groups(s) > groups
	})
	return ch
}

func TestGroupCommitKeepsEachResult(t *testing.T) {
	t.Parallel()
	s, release, first := blockedWriter(t)
	groups := novasqlite.Groups(s) // counts the blocked transaction already

	ok := novatest.Events("ok", 2)
	retried := ok // an exact retry of ok, in the same group
	reused := novatest.Events("reuse", 2)
	reused[1].ID = ok[0].ID
	other := novatest.Events("other", 3)
	ctx := context.Background()
	results := []<-chan appendResult{
		appendAsync(t, s, ctx, "a", nova.NoStream, ok),
		appendAsync(t, s, ctx, "a", nova.NoStream, novatest.Events("late", 1)), // a exists by now
		appendAsync(t, s, ctx, "b", nova.Any, reused),                          // ID stored in a
		appendAsync(t, s, ctx, "c", nova.NoStream, other),
		appendAsync(t, s, ctx, "a", nova.NoStream, retried),
		appendAsync(t, s, ctx, "a", nova.Exact(2), novatest.Events("next", 1)),
	}
	if q := novasqlite.Queued(s); q != len(results) {
		t.Fatalf("%d appends queued, want %d", q, len(results))
	}
	release()
	if r := <-first; r.err != nil {
		t.Fatalf("first append: %v", r.err)
	}
	got := make([]appendResult, len(results))
	for i, ch := range results {
		got[i] = <-ch
	}
	if d := novasqlite.Groups(s) - groups; d != 1 {
		t.Errorf("writer ran %d transactions after the blocked one, want 1 for the whole group", d)
	}

	// Positions: first=1, ok=2..3, other=4..6, next=7.
	want := []struct {
		res     nova.AppendResult
		wantErr error
	}{
		{nova.AppendResult{FirstVersion: 1, LastVersion: 2, Position: nova.Position{Commit: 3}}, nil},
		{wantErr: nova.ErrConcurrency},
		{wantErr: nova.ErrDuplicateEvent},
		{nova.AppendResult{FirstVersion: 1, LastVersion: 3, Position: nova.Position{Commit: 6}}, nil},
		{nova.AppendResult{FirstVersion: 1, LastVersion: 2, Position: nova.Position{Commit: 3}, Duplicate: true}, nil},
		{nova.AppendResult{FirstVersion: 3, LastVersion: 3, Position: nova.Position{Commit: 7}}, nil},
	}
	for i, w := range want {
		if w.wantErr != nil {
			if !errors.Is(got[i].err, w.wantErr) {
				t.Errorf("append %d: err = %v, want %v", i, got[i].err, w.wantErr)
			}
			continue
		}
		if got[i].err != nil || got[i].res != w.res {
			t.Errorf("append %d = %+v, %v; want %+v", i, got[i].res, got[i].err, w.res)
		}
	}
	var ce *nova.ConcurrencyError
	if errors.As(got[1].err, &ce) && (ce.Stream != "a" || ce.Actual != 2) {
		t.Errorf("concurrency error = %+v, want stream a at version 2", ce)
	}

	log := novatest.MustReadAll(t, s)
	var streams []string
	for i, e := range log {
		if e.Position.Commit != uint64(i+1) {
			t.Errorf("event %d at position %v: the log has a gap", i, e.Position)
		}
		streams = append(streams, e.Stream)
	}
	if g := strings.Join(streams, ","); g != "first,a,a,c,c,c,a" {
		t.Errorf("log streams = %s, want first,a,a,c,c,c,a", g)
	}
	if infos := novatest.MustStreams(t, s, nova.StreamsOptions{}); len(infos) != 3 {
		t.Errorf("streams = %v, want a, c and first only", infos)
	}
}

func TestCancelWhileQueuedWritesNothing(t *testing.T) {
	t.Parallel()
	s, release, first := blockedWriter(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancelled := appendAsync(t, s, ctx, "cancelled", nova.NoStream, novatest.Events("e", 5))
	kept := appendAsync(t, s, context.Background(), "kept", nova.NoStream, novatest.Events("e", 2))
	cancel()
	if r := <-cancelled; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("cancelled append: %+v, %v; want context.Canceled", r.res, r.err)
	}
	release()
	if r := <-first; r.err != nil {
		t.Fatal(r.err)
	}
	if r := <-kept; r.err != nil || r.res.Position.Commit != 3 {
		t.Fatalf("append after the cancelled one = %+v, %v; want it at position 3", r.res, r.err)
	}
	for _, e := range novatest.MustReadAll(t, s) {
		if e.Stream == "cancelled" {
			t.Errorf("cancelled append wrote %s", e.ID)
		}
	}
	if evs := novatest.MustReadStream(t, s, "cancelled", nova.ReadStreamOptions{}); len(evs) != 0 {
		t.Errorf("cancelled stream has %d events", len(evs))
	}
}

func TestTwoStoresOnOneFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "shared.db")
	a := open(t, novasqlite.Config{Path: path, PollInterval: 10 * time.Millisecond})
	b := open(t, novasqlite.Config{Path: path, PollInterval: 10 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	const n = 20
	done := make(chan error, 1)
	var seen []nova.Event
	go func() {
		evs, err := novatest.Collect(a.Subscribe(ctx, nova.SubscribeOptions{}), 2*n)
		seen = evs
		done <- err
	}()
	for i := range n {
		// Each store appends in turn; a's subscription sees b's appends
		// only by polling the file.
		novatest.MustAppend(t, b, "from-b", nova.Exact(uint64(i)), novatest.Events("b", 1)...)
		novatest.MustAppend(t, a, "from-a", nova.Exact(uint64(i)), novatest.Events("a", 1)...)
	}
	if err := <-done; err != nil {
		t.Fatalf("subscription: %v", err)
	}
	if len(seen) != 2*n {
		t.Fatalf("subscription saw %d events, want %d", len(seen), 2*n)
	}
	for i, e := range seen {
		if e.Position.Commit != uint64(i+1) {
			t.Fatalf("event %d at %v, want position %d", i, e.Position, i+1)
		}
		if want := []string{"from-b", "from-a"}[i%2]; e.Stream != want {
			t.Errorf("event %d in %s, want %s", i, e.Stream, want)
		}
	}
	_, err := a.Append(ctx, "from-b", nova.Exact(n-1), novatest.Events("x", 1)...)
	if !errors.Is(err, nova.ErrConcurrency) {
		t.Errorf("append with a version b has moved past: %v, want ErrConcurrency", err)
	}
}

func TestClose(t *testing.T) {
	t.Parallel()
	s := open(t, novasqlite.Config{})
	ctx := context.Background()
	novatest.MustAppend(t, s, "a", nova.NoStream, novatest.Events("e", 1)...)
	sub := make(chan error, 1)
	go func() {
		_, err := novatest.Collect(s.Subscribe(ctx, nova.SubscribeOptions{}), 0)
		sub <- err
	}()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-sub; !errors.Is(err, nova.ErrClosed) {
		t.Errorf("subscription at Close ended with %v, want nova.ErrClosed", err)
	}
	if _, err := s.Append(ctx, "a", nova.Any, novatest.Events("e", 1)...); !errors.Is(err, nova.ErrClosed) {
		t.Errorf("Append after Close: %v", err)
	}
	if _, err := novatest.Collect(s.ReadAll(ctx, nova.ReadAllOptions{}), 0); !errors.Is(err, nova.ErrClosed) {
		t.Errorf("ReadAll after Close: %v", err)
	}
	if err := s.SaveSnapshot(ctx, aggregate.Snapshot{Stream: "a", Version: 1}); !errors.Is(err, nova.ErrClosed) {
		t.Errorf("SaveSnapshot after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestCloseCommitsQueuedAppends(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := novasqlite.Open(context.Background(), novasqlite.Config{Path: path, BusyTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	release := holdWriteLock(t, path)
	first := appendAsync(t, s, context.Background(), "a", nova.NoStream, novatest.Events("e", 1))
	waitFor(t, "the writer waits for the lock", func() bool { return novasqlite.Groups(s) == 1 })
	second := appendAsync(t, s, context.Background(), "a", nova.Exact(1), novatest.Events("e", 1))
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	release()
	for i, ch := range []<-chan appendResult{first, second} {
		if r := <-ch; r.err != nil {
			t.Errorf("append %d queued before Close: %v", i, r.err)
		}
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	s = open(t, novasqlite.Config{Path: path})
	if n := len(novatest.MustReadAll(t, s)); n != 2 {
		t.Errorf("after Close the log has %d events, want 2", n)
	}
}

func TestGroupCommitConflictsOnly(t *testing.T) {
	t.Parallel()
	// No append of the group writes before failing, so the group is
	// written without savepoints; the results are the same.
	s, release, first := blockedWriter(t)
	groups := novasqlite.Groups(s)
	ctx := context.Background()
	results := []<-chan appendResult{
		appendAsync(t, s, ctx, "a", nova.NoStream, novatest.Events("a", 2)),
		appendAsync(t, s, ctx, "a", nova.Exact(1), novatest.Events("stale", 1)),
		appendAsync(t, s, ctx, "b", nova.StreamExists, novatest.Events("b", 1)),
		appendAsync(t, s, ctx, "a", nova.Exact(2), novatest.Events("a", 1)),
	}
	release()
	if r := <-first; r.err != nil {
		t.Fatal(r.err)
	}
	got := make([]appendResult, len(results))
	for i, ch := range results {
		got[i] = <-ch
	}
	if d := novasqlite.Groups(s) - groups; d != 1 {
		t.Errorf("writer ran %d transactions after the blocked one, want 1", d)
	}
	if got[0].err != nil || got[0].res.LastVersion != 2 || got[0].res.Position.Commit != 3 {
		t.Errorf("append 0 = %+v, %v", got[0].res, got[0].err)
	}
	for _, i := range []int{1, 2} {
		if !errors.Is(got[i].err, nova.ErrConcurrency) {
			t.Errorf("append %d: err = %v, want ErrConcurrency", i, got[i].err)
		}
	}
	if got[3].err != nil || got[3].res.FirstVersion != 3 || got[3].res.Position.Commit != 4 {
		t.Errorf("append 3 = %+v, %v", got[3].res, got[3].err)
	}
	if log := novatest.MustReadAll(t, s); len(log) != 4 {
		t.Errorf("log has %d events, want 4", len(log))
	}
}

func TestReadAllEndsAtTheHeadItStartedWith(t *testing.T) {
	t.Parallel()
	s := open(t, novasqlite.Config{Synchronous: novasqlite.SyncNormal})
	const n = 600 // more than a page
	novatest.MustAppend(t, s, "a", nova.NoStream, novatest.Events("e", n)...)
	ctx := context.Background()
	read := 0
	for e, err := range s.ReadAll(ctx, nova.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Position.Commit > n {
			t.Fatalf("ReadAll returned %v, appended after it began", e.Position)
		}
		read++
		// Every event read brings a new one: a read that followed the
		// log's end would never finish.
		novatest.MustAppend(t, s, "b", nova.Any, novatest.Events("more", 1)...)
	}
	if read != n {
		t.Errorf("ReadAll returned %d events, want the %d there when it began", read, n)
	}
}

func TestCancelWhileWaitingForTheLock(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "events.db")
	s := open(t, novasqlite.Config{Path: path, BusyTimeout: time.Minute})
	release := holdWriteLock(t, path)
	ctx, cancel := context.WithCancel(context.Background())
	withdrawn := appendAsync(t, s, ctx, "withdrawn", nova.NoStream, novatest.Events("e", 3))
	waitFor(t, "the writer waits for the lock", func() bool { return novasqlite.Groups(s) == 1 })
	cancel()
	// The lock is still held: the append returns without waiting for it.
	if r := <-withdrawn; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("append cancelled while the writer waited for the lock: %+v, %v", r.res, r.err)
	}
	release()
	res := novatest.MustAppend(t, s, "kept", nova.NoStream, novatest.Events("e", 1)...)
	if res.Position.Commit != 1 {
		t.Errorf("next append at %v, want position 1", res.Position)
	}
	if log := novatest.MustReadAll(t, s); len(log) != 1 || log[0].Stream != "kept" {
		t.Errorf("log = %v, want the one kept event", log)
	}
}

func TestLeaderWithdrawsAndHandsOn(t *testing.T) {
	t.Parallel()
	// a leads and waits for the lock; b and c queue behind it. a gives
	// up and b leads with c in its group; b gives up too and c, queued
	// again, leads alone and commits once the lock is free.
	path := filepath.Join(t.TempDir(), "events.db")
	s := open(t, novasqlite.Config{Path: path, BusyTimeout: time.Minute})
	release := holdWriteLock(t, path)
	ctxA, cancelA := context.WithCancel(context.Background())
	ctxB, cancelB := context.WithCancel(context.Background())
	defer cancelA()
	defer cancelB()
	a := appendAsync(t, s, ctxA, "a", nova.NoStream, novatest.Events("a", 1))
	waitFor(t, "a waits for the lock", func() bool { return novasqlite.Groups(s) == 1 })
	b := appendAsync(t, s, ctxB, "b", nova.NoStream, novatest.Events("b", 1))
	c := appendAsync(t, s, context.Background(), "c", nova.NoStream, novatest.Events("c", 2))
	cancelA()
	if r := <-a; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("a: %+v, %v; want context.Canceled", r.res, r.err)
	}
	waitFor(t, "b leads and waits for the lock", func() bool { return novasqlite.Groups(s) == 2 })
	if q := novasqlite.Queued(s); q != 0 {
		t.Fatalf("%d appends queued while b leads, want c in b's group", q)
	}
	cancelB()
	if r := <-b; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("b: %+v, %v; want context.Canceled", r.res, r.err)
	}
	waitFor(t, "c leads and waits for the lock", func() bool { return novasqlite.Groups(s) == 3 })
	release()
	if r := <-c; r.err != nil || r.res.Position.Commit != 2 || r.res.LastVersion != 2 {
		t.Fatalf("c = %+v, %v; want versions 1..2 at position 2", r.res, r.err)
	}
	if log := novatest.MustReadAll(t, s); len(log) != 2 || log[0].Stream != "c" {
		t.Errorf("log = %v, want c's two events only", log)
	}
}
