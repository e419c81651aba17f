package novamysql_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novamysql"
	"github.com/nova-go/nova/novatest"
)

func TestMigrate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, dsn := scratchDB(t)
	cfg := novamysql.Config{DSN: dsn, TablePrefix: "m_"}

	// SkipMigrate on missing tables says what to do.
	if _, err := novamysql.Open(ctx, novamysql.Config{DSN: dsn, TablePrefix: "m_", SkipMigrate: true}); err == nil || !strings.Contains(err.Error(), "Migrate") {
		t.Fatalf("Open with SkipMigrate before Migrate: %v, want an error that asks for Migrate", err)
	}
	for range 2 { // a second run finds the tables current
		v, err := novamysql.Migrate(ctx, cfg)
		if err != nil || v != novamysql.SchemaVersion {
			t.Fatalf("Migrate = %d, %v; want %d", v, err, novamysql.SchemaVersion)
		}
	}
	s := open(t, novamysql.Config{DSN: dsn, TablePrefix: "m_", SkipMigrate: true})
	novatest.MustAppend(t, s, "a", nova.NoStream, novatest.Events("e", 2)...)

	db := s.DB()
	if _, err := db.Exec(`UPDATE m_schema SET version = 99`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []novamysql.Config{cfg, {DSN: dsn, TablePrefix: "m_", SkipMigrate: true}} {
		if s2, err := novamysql.Open(ctx, c); !errors.Is(err, novamysql.ErrSchemaTooNew) || !strings.Contains(err.Error(), "99") {
			if s2 != nil {
				s2.Close()
			}
			t.Errorf("Open(SkipMigrate %v) of schema 99: %v, want ErrSchemaTooNew naming 99", c.SkipMigrate, err)
		}
	}
	if v, err := novamysql.Migrate(ctx, cfg); !errors.Is(err, novamysql.ErrSchemaTooNew) || v != 99 {
		t.Errorf("Migrate of schema 99 = %d, %v; want 99 and ErrSchemaTooNew", v, err)
	}
	if _, err := db.Exec(`UPDATE m_schema SET version = 1`); err != nil {
		t.Fatal(err)
	}
	if got := novatest.MustReadAll(t, s); len(got) != 2 {
		t.Errorf("after the refused opens the log has %d events, want 2", len(got))
	}

	// Tables of schema version 1 (events only) are brought forward: the
	// saga tables are created, the events kept.
	if _, err := db.Exec(`DROP TABLE m_saga_runs, m_outbox`); err != nil {
		t.Fatal(err)
	}
	if _, err := novamysql.Open(ctx, novamysql.Config{DSN: dsn, TablePrefix: "m_", SkipMigrate: true}); !errors.Is(err, novamysql.ErrSchemaOutdated) {
		t.Fatalf("Open(SkipMigrate) of schema 1: %v, want ErrSchemaOutdated", err)
	}
	if v, err := novamysql.Migrate(ctx, cfg); err != nil || v != novamysql.SchemaVersion {
		t.Fatalf("Migrate from schema 1 = %d, %v", v, err)
	}
	rs := novamysql.NewRunStore(s)
	if n, err := rs.Count(ctx, ""); err != nil || len(n) != 0 {
		t.Fatalf("runs after the migration: %v, %v", n, err)
	}
	if got := novatest.MustReadAll(t, s); len(got) != 2 {
		t.Errorf("after the migration the log has %d events, want 2", len(got))
	}
}

// TestPrefixesShareADatabase opens two stores in one database, on a pool
// the caller owns whose connections parse times in local time.
func TestPrefixesShareADatabase(t *testing.T) {
	t.Parallel()
	_, dsn := scratchDB(t)
	db, err := sql.Open("mysql", dsn+"?parseTime=true&loc=Local")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	a := open(t, novamysql.Config{DB: db, TablePrefix: "a_"})
	b := open(t, novamysql.Config{DB: db, TablePrefix: "b_"})
	ra := novatest.MustAppend(t, a, "s", nova.NoStream, novatest.Events("a", 3)...)
	rb := novatest.MustAppend(t, b, "s", nova.NoStream, novatest.Events("b", 1)...)
	if ra.Position.Commit != 3 || rb.Position.Commit != 1 {
		t.Errorf("positions %v and %v, want 3 and 1: each store has its own log", ra.Position, rb.Position)
	}
	if got := novatest.MustReadAll(t, a); len(got) != 3 || got[0].Type != "a" {
		t.Errorf("store a holds %d events, want its 3", len(got))
	}
	if got := novatest.MustReadAll(t, b); len(got) != 1 || got[0].Type != "b" {
		t.Errorf("store b holds %d events, want its 1", len(got))
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(); err != nil {
		t.Errorf("Close of a store closed the caller's pool: %v", err)
	}
}

func TestAppendTx(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, novamysql.Config{})
	db := s.DB()
	begin := func() *sql.Tx {
		t.Helper()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tx.Rollback() })
		return tx
	}

	t.Run("commits with the caller", func(t *testing.T) {
		tx := begin()
		evs := novatest.Events("in-tx", 2)
		res, err := s.AppendTx(ctx, tx, "tx-1", nova.NoStream, evs...)
		if err != nil || res.FirstVersion != 1 || res.LastVersion != 2 {
			t.Fatalf("AppendTx = %+v, %v", res, err)
		}
		if got := novatest.MustReadStream(t, s, "tx-1", nova.ReadStreamOptions{}); len(got) != 0 {
			t.Fatalf("before commit the stream shows %d events", len(got))
		}
		// A failing append inside the transaction is undone alone.
		if _, err := s.AppendTx(ctx, tx, "tx-1", nova.NoStream, novatest.Events("late", 1)...); !errors.Is(err, nova.ErrConcurrency) {
			t.Fatalf("second NoStream append in the transaction: %v, want ErrConcurrency", err)
		}
		if _, err := s.AppendTx(ctx, tx, "tx-other", nova.Any, evs[0]); !errors.Is(err, nova.ErrDuplicateEvent) {
			t.Fatalf("reused ID in the transaction: %v, want ErrDuplicateEvent", err)
		}
		if dup, err := s.AppendTx(ctx, tx, "tx-1", nova.NoStream, evs...); err != nil || !dup.Duplicate || dup.Position != res.Position {
			t.Fatalf("retry inside the transaction = %+v, %v; want the original result with Duplicate", dup, err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		got := novatest.MustReadStream(t, s, "tx-1", nova.ReadStreamOptions{})
		if !slices.EqualFunc(got, evs, func(e nova.Event, d nova.EventData) bool { return e.ID == d.ID }) {
			t.Fatalf("after commit the stream holds %d events, want the 2 appended", len(got))
		}
		next := novatest.MustAppend(t, s, "tx-1", nova.Exact(2), novatest.Events("after", 1)...)
		if next.Position.Commit != res.Position.Commit+1 {
			t.Errorf("append after the transaction at %v, want %d", next.Position, res.Position.Commit+1)
		}
	})

	t.Run("rolls back with the caller", func(t *testing.T) {
		before := novatest.MustReadAll(t, s)
		tx := begin()
		if _, err := s.AppendTx(ctx, tx, "tx-2", nova.Any, novatest.Events("gone", 3)...); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		res := novatest.MustAppend(t, s, "tx-2", nova.NoStream, novatest.Events("kept", 1)...)
		if want := before[len(before)-1].Position.Commit + 1; res.Position.Commit != want {
			t.Errorf("append after a rolled-back transaction at %v, want %d: positions have no holes", res.Position, want)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		tx := begin()
		if _, err := s.AppendTx(ctx, tx, "", nova.Any, novatest.Events("e", 1)...); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("empty stream: %v, want nova.ErrInvalid", err)
		}
	})
}

// TestGroupCommit has many writers append at once: the writers commit
// them in fewer transactions than appends, and every append lands.
func TestGroupCommit(t *testing.T) {
	t.Parallel()
	s := open(t, novamysql.Config{})
	const writers, each = 16, 20
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := s.Append(context.Background(), fmt.Sprintf("g-%d", w), nova.Exact(uint64(i)), novatest.Events("g", 1)...); err != nil {
					t.Errorf("writer %d, append %d: %v", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := len(novatest.MustReadAll(t, s)); got != writers*each {
		t.Fatalf("log holds %d events, want %d", got, writers*each)
	}
	groups, taken := novamysql.Groups(s), novamysql.Taken(s)
	t.Logf("%d appends in %d transactions", taken, groups)
	if taken != writers*each || groups >= taken {
		t.Errorf("%d appends taken in %d transactions, want %d in fewer", taken, groups, writers*each)
	}
}

// TestAppendWithdrawnWhileLocked gives up on an append while a caller's
// transaction holds the counter row: it returns the context's error and
// writes nothing, also after the transaction commits.
func TestAppendWithdrawnWhileLocked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, novamysql.Config{})
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback() })
	if _, err := s.AppendTx(ctx, tx, "held", nova.NoStream, novatest.Events("held", 1)...); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	withdrawn := novatest.Events("withdrawn", 1)
	if _, err := s.Append(wctx, "other", nova.NoStream, withdrawn...); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("append while the counter is held: %v, want context.DeadlineExceeded", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	next := novatest.MustAppend(t, s, "later", nova.NoStream, novatest.Events("later", 1)...)
	log := novatest.MustReadAll(t, s)
	if len(log) != 2 || log[0].Stream != "held" || log[1].Stream != "later" || next.Position.Commit != 2 {
		t.Fatalf("log = %d events ending at %v, want the held one then the later one: the withdrawn append wrote something", len(log), next.Position)
	}
}
