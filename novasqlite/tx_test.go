package novasqlite_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/ncruces/go-sqlite3"
	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novasqlite"
)

func countRows(t *testing.T, s *novasqlite.Store, table string) int {
	t.Helper()
	var n int
	err := s.ReadTx(context.Background(), func(c *sqlite3.Conn) error {
		st, _, err := c.Prepare(`SELECT count(*) FROM ` + table)
		if err != nil {
			return err
		}
		defer st.Close()
		if st.Step() {
			n = st.ColumnInt(0)
		}
		return st.Err()
	})
	if err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

func insertRow(key string) novasqlite.TxFunc {
	return func(c *sqlite3.Conn) error {
		st, _, err := c.Prepare(`INSERT INTO side (k) VALUES (?)`)
		if err != nil {
			return err
		}
		defer st.Close()
		if err := st.BindText(1, key); err != nil {
			return err
		}
		return st.Exec()
	}
}

func TestAppendTx(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, novasqlite.Config{})
	if err := s.WriteTx(ctx, func(c *sqlite3.Conn) error { return c.Exec(`CREATE TABLE side (k TEXT PRIMARY KEY)`) }); err != nil {
		t.Fatal(err)
	}
	ev := func() []nova.EventData {
		return []nova.EventData{{ID: nova.NewEventID(), Type: "t", Data: []byte(`{}`)}}
	}

	// Both commit.
	if _, err := s.AppendTx(ctx, "a", nova.NoStream, ev(), insertRow("one")); err != nil {
		t.Fatal(err)
	}
	// fn fails: the append is undone and fn's error comes back as is.
	boom := errors.New("boom")
	_, err := s.AppendTx(ctx, "a", nova.Exact(1), ev(), func(c *sqlite3.Conn) error {
		if err := insertRow("two")(c); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("failing fn: got %v, want boom", err)
	}
	// A version conflict does not run fn.
	ran := false
	_, err = s.AppendTx(ctx, "a", nova.Exact(5), ev(), func(c *sqlite3.Conn) error { ran = true; return nil })
	if !errors.Is(err, nova.ErrConcurrency) || ran {
		t.Fatalf("conflict: err %v, fn ran %v", err, ran)
	}
	// A constraint error inside fn undoes everything.
	if _, err := s.AppendTx(ctx, "a", nova.Exact(1), ev(), insertRow("one")); err == nil {
		t.Fatal("duplicate key in fn: no error")
	}
	if got := countRows(t, s, "side"); got != 1 {
		t.Fatalf("side rows = %d, want 1", got)
	}
	if got := countRows(t, s, "events"); got != 1 {
		t.Fatalf("events = %d, want 1", got)
	}
	// Bad input runs nothing and changes nothing.
	if _, err := s.AppendTx(ctx, "a\nb", nova.Any, ev(), insertRow("two")); !errors.Is(err, nova.ErrInvalid) {
		t.Fatalf("bad stream name: %v", err)
	}
	if got := countRows(t, s, "side"); got != 1 {
		t.Fatalf("side rows after bad input = %d, want 1", got)
	}
}

// Many writers with side writes, some failing, share group commits: each
// failing one is undone alone.
func TestAppendTxGroupsUndoOnlyTheFailing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, novasqlite.Config{})
	if err := s.WriteTx(ctx, func(c *sqlite3.Conn) error { return c.Exec(`CREATE TABLE side (k TEXT PRIMARY KEY)`) }); err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 50
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				key := fmt.Sprintf("w%d-%d", w, i)
				fn := insertRow(key)
				if i%5 == 0 {
					fn = func(c *sqlite3.Conn) error {
						if err := insertRow(key)(c); err != nil {
							return err
						}
						return errors.New("fail")
					}
				}
				_, err := s.AppendTx(ctx, key, nova.NoStream, []nova.EventData{{ID: nova.NewEventID(), Type: "t"}}, fn)
				if err == nil {
					mu.Lock()
					ok++
					mu.Unlock()
				} else if i%5 != 0 {
					t.Errorf("%s: %v", key, err)
				}
			}
		})
	}
	wg.Wait()
	if ok != writers*each*4/5 {
		t.Fatalf("succeeded %d, want %d", ok, writers*each*4/5)
	}
	if a, b := countRows(t, s, "side"), countRows(t, s, "events"); a != ok || b != ok {
		t.Fatalf("side %d events %d, want %d each", a, b, ok)
	}
}
