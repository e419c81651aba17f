package novasqlite_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novasqlite"
)

// call runs fn and reports a panic instead of dying of it: the original
// fault let user code's panics out of the store.
func call(t *testing.T, what string, fn func() error) (err error) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Errorf("%s panicked in the caller instead of returning an error: %v", what, p)
			err = fmt.Errorf("panicked: %v", p)
		}
	}()
	return fn()
}

func isPanic(err error, v any) bool {
	var pe *nova.PanicError
	return errors.As(err, &pe) && pe.Value == v && len(pe.Stack) > 0
}

func events(n int) []nova.EventData {
	evs := make([]nova.EventData, n)
	for i := range evs {
		evs[i] = nova.EventData{ID: nova.NewEventID(), Type: "t", Data: []byte(`{}`)}
	}
	return evs
}

// mustAppend appends one event to stream with a bounded wait: a wedged
// writer fails it instead of hanging the test.
func mustAppend(t *testing.T, s *novasqlite.Store, stream string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := s.Append(ctx, stream, nova.Any, events(1)...); err != nil {
		t.Fatalf("append to %s after the panic: %v", stream, err)
	}
}

// TestPanicInTxFuncRollsBack: a TxFunc that panics (mid-statement, with
// a statement left stepping) fails its call with a *nova.PanicError; its
// writes and its append are rolled back, and the writer goes on: later
// appends and transactions work.
func TestPanicInTxFuncRollsBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, novasqlite.Config{})
	if err := s.WriteTx(ctx, func(c *sqlite3.Conn) error {
		return c.Exec(`CREATE TABLE side (k TEXT PRIMARY KEY); INSERT INTO side VALUES ('x'), ('y')`)
	}); err != nil {
		t.Fatal(err)
	}
	panicky := func(c *sqlite3.Conn) error {
		if err := insertRow("a")(c); err != nil {
			return err
		}
		st, _, err := c.Prepare(`SELECT k FROM side`)
		if err != nil {
			return err
		}
		st.Step() // left stepping, never closed
		panic("tx boom")
	}
	err := call(t, "WriteTx", func() error { return s.WriteTx(ctx, panicky) })
	if !isPanic(err, "tx boom") {
		t.Errorf("WriteTx = %v, want the panic as a *nova.PanicError", err)
	}
	err = call(t, "AppendTx", func() error {
		_, err := s.AppendTx(ctx, "order-1", nova.NoStream, events(2), panicky)
		return err
	})
	if !isPanic(err, "tx boom") {
		t.Errorf("AppendTx = %v, want the panic as a *nova.PanicError", err)
	}
	mustAppend(t, s, "order-2")
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := s.WriteTx(wctx, insertRow("b")); err != nil {
		t.Fatalf("WriteTx after the panic: %v", err)
	}
	if n := countRows(t, s, "side"); n != 3 {
		t.Errorf("side has %d rows, want x, y and b: the panicking writes must be rolled back", n)
	}
	if n := countRows(t, s, "events"); n != 1 {
		t.Errorf("%d events stored, want order-2's only", n)
	}
}

// blocker is a TxFunc that signals it runs, then waits to be released.
type blocker struct {
	entered, release chan struct{}
}

func newBlocker() *blocker {
	return &blocker{entered: make(chan struct{}), release: make(chan struct{})}
}

func (b *blocker) fn(c *sqlite3.Conn) error {
	close(b.entered)
	<-b.release
	return nil
}

// waitQueued waits until n requests queue behind s's leader.
func waitQueued(t *testing.T, s *novasqlite.Store, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for novasqlite.Queued(s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests queued, want %d", novasqlite.Queued(s), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPanicInGroupCommit: a TxFunc that panics in a group commit led by
// another caller fails only its own call; the group's other writes
// commit, and the panic never reaches the leader's goroutine.
func TestPanicInGroupCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, novasqlite.Config{})
	if err := s.WriteTx(ctx, func(c *sqlite3.Conn) error { return c.Exec(`CREATE TABLE side (k TEXT PRIMARY KEY)`) }); err != nil {
		t.Fatal(err)
	}
	lead := newBlocker()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := call(t, "leader", func() error { return s.WriteTx(ctx, lead.fn) }); err != nil {
			t.Errorf("leader: %v", err)
		}
	})
	<-lead.entered
	errs := make([]error, 3)
	wg.Go(func() {
		errs[0] = call(t, "append", func() error { _, err := s.Append(ctx, "b", nova.NoStream, events(1)...); return err })
	})
	waitQueued(t, s, 1)
	wg.Go(func() {
		errs[1] = call(t, "WriteTx", func() error {
			return s.WriteTx(ctx, func(c *sqlite3.Conn) error {
				if err := insertRow("c")(c); err != nil {
					return err
				}
				panic("group boom")
			})
		})
	})
	waitQueued(t, s, 2)
	wg.Go(func() {
		errs[2] = call(t, "append", func() error { _, err := s.Append(ctx, "d", nova.NoStream, events(2)...); return err })
	})
	waitQueued(t, s, 3)
	close(lead.release)
	wg.Wait()
	if errs[0] != nil || errs[2] != nil || !isPanic(errs[1], "group boom") {
		t.Fatalf("results %v, want the two appends to succeed and the panic as the WriteTx's error", errs)
	}
	if n := countRows(t, s, "side"); n != 0 {
		t.Errorf("side has %d rows, want the panicking write rolled back", n)
	}
	if n := countRows(t, s, "events"); n != 3 {
		t.Errorf("%d events stored, want 3", n)
	}
	mustAppend(t, s, "e")
}

// TestCallersBehindABlockedLeaderKeepTheirDeadlines: appends that a
// leader has taken into its group, but not yet written, return when
// their ctx ends even though the leader is held up in another call's
// TxFunc; nothing of theirs is written, and the store goes on.
func TestCallersBehindABlockedLeaderKeepTheirDeadlines(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, novasqlite.Config{})
	first, second := newBlocker(), newBlocker()
	var wg sync.WaitGroup
	defer wg.Wait()
	var released sync.Once
	release := func() { released.Do(func() { close(second.release) }) }
	defer release()

	wg.Go(func() {
		if err := s.WriteTx(ctx, first.fn); err != nil {
			t.Errorf("first: %v", err)
		}
	})
	<-first.entered
	// The second TxFunc's call queues, then the appends behind it: when
	// the first is done, the second leads a group with all of them and
	// blocks in its TxFunc before writing them.
	wg.Go(func() {
		if err := s.WriteTx(ctx, second.fn); err != nil {
			t.Errorf("second: %v", err)
		}
	})
	waitQueued(t, s, 1)
	const n = 4
	results := make(chan error, n)
	cancels := make([]context.CancelFunc, n)
	for i := range n {
		actx, cancel := context.WithCancel(ctx)
		if i == n-1 {
			actx, cancel = context.WithTimeout(ctx, 50*time.Millisecond)
		}
		cancels[i] = cancel
		wg.Go(func() {
			_, err := s.Append(actx, fmt.Sprint("late-", i), nova.NoStream, events(1)...)
			results <- err
		})
		waitQueued(t, s, 2+i)
	}
	close(first.release)
	<-second.entered
	for _, cancel := range cancels {
		cancel()
	}
	watchdog := time.NewTimer(30 * time.Second)
	defer watchdog.Stop()
	for range n {
		select {
		case err := <-results:
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("append behind a blocked leader = %v, want its ctx's error", err)
			}
		case <-watchdog.C:
			t.Fatal("appends behind a blocked leader did not return when their ctx ended")
		}
	}
	release()
	for i := range n {
		for _, err := range s.ReadStream(ctx, fmt.Sprint("late-", i), nova.ReadStreamOptions{}) {
			if !errors.Is(err, nova.ErrNotFound) {
				t.Errorf("stream late-%d: %v, want nothing written for a withdrawn append", i, err)
			}
			break
		}
	}
	mustAppend(t, s, "after")
}

// TestBusyIsTransient: a write that fails because another process holds
// the file's write lock past BusyTimeout is a transient error, which the
// projection runner and the saga workers wait out.
func TestBusyIsTransient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "busy.db")
	holder := open(t, novasqlite.Config{Path: path})
	other := open(t, novasqlite.Config{Path: path, BusyTimeout: time.Millisecond})
	b := newBlocker()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := holder.WriteTx(ctx, b.fn); err != nil {
			t.Errorf("holder: %v", err)
		}
	})
	<-b.entered
	_, err := other.Append(ctx, "s", nova.Any, events(1)...)
	close(b.release)
	wg.Wait()
	if err == nil || !nova.IsTransient(err) {
		t.Fatalf("append while another store holds the lock = %v, want a transient error", err)
	}
	mustAppend(t, other, "s")
}

// TestPanicInReadTx: a ReadTx function that panics, with a statement
// left stepping, fails its call with a *nova.PanicError; its reading
// connection goes back to the pool out of its transaction, so reads go
// on, however many panicked, and see later writes.
func TestPanicInReadTx(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, novasqlite.Config{})
	mustAppend(t, s, "a")
	for range 20 {
		err := call(t, "ReadTx", func() error {
			return s.ReadTx(ctx, func(c *sqlite3.Conn) error {
				st, _, err := c.Prepare(`SELECT id FROM events`)
				if err != nil {
					return err
				}
				st.Step()
				panic("read boom")
			})
		})
		if !isPanic(err, "read boom") {
			t.Fatalf("ReadTx = %v, want the panic as a *nova.PanicError", err)
		}
	}
	mustAppend(t, s, "b")
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	n := 0
	for _, err := range s.ReadAll(rctx, nova.ReadAllOptions{}) {
		if err != nil {
			t.Fatalf("read after the panics: %v", err)
		}
		n++
	}
	if n != 2 {
		t.Fatalf("read %d events after the panics, want 2", n)
	}
}
