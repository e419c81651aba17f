package novasqlite_test

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/ncruces/go-sqlite3"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/projectiondriver"
	"github.com/nova-go/nova/novasqlite"
	"github.com/nova-go/nova/novatest"
	"github.com/nova-go/nova/projection"
)

func newCheckpoints(t *testing.T) (*novasqlite.Store, *novasqlite.Checkpoints) {
	t.Helper()
	s := open(t, novasqlite.Config{})
	cps := novasqlite.NewCheckpoints(s)
	return s, cps
}

// txConn returns the connection of the transaction in ctx.
func txConn(ctx context.Context) (*sqlite3.Conn, error) {
	c, ok := novasqlite.TxFromContext(ctx)
	if !ok {
		return nil, errors.New("no transaction in ctx")
	}
	return c, nil
}

// sqliteReadModel is the suite's read model in the store's file.
var sqliteReadModel = novatest.ReadModel{
	Create: func(ctx context.Context, table string) error {
		c, err := txConn(ctx)
		if err != nil {
			return err
		}
		return c.Exec(`CREATE TABLE ` + table + ` (k TEXT PRIMARY KEY)`)
	},
	Insert: func(ctx context.Context, table, key string) error {
		c, err := txConn(ctx)
		if err != nil {
			return err
		}
		st, _, err := c.Prepare(`INSERT INTO ` + table + ` (k) VALUES (?)`)
		if err != nil {
			return err
		}
		defer st.Close()
		if err := st.BindText(1, key); err != nil {
			return err
		}
		return st.Exec()
	},
	Count: func(ctx context.Context, table string) (int, error) {
		c, err := txConn(ctx)
		if err != nil {
			return 0, err
		}
		st, _, err := c.Prepare(`SELECT count(*) FROM ` + table)
		if err != nil {
			return 0, err
		}
		defer st.Close()
		n := 0
		if st.Step() {
			n = st.ColumnInt(0)
		}
		return n, st.Err()
	},
}

func TestCheckpoints(t *testing.T) {
	t.Parallel()
	novatest.RunCheckpointStore(t, func(t *testing.T) projection.CheckpointStore {
		_, cps := newCheckpoints(t)
		return cps
	}, novatest.WithReadModel(sqliteReadModel),
		novatest.WithRefusedPositions(nova.Position{Commit: 1, Prepare: 2}, nova.Position{Commit: math.MaxInt64 + 1}))
}

// TestCheckpointsShadowIndexes checks what SQLite's Prepare copies from
// the statements sqlite_master keeps as written: quoted and bracketed
// names, any case, and indexes, partial and unique, across several
// rounds of swaps (an index's shadow name loses the suffix it gained).
func TestCheckpointsShadowIndexes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, cps := newCheckpoints(t)
	ddl := `CREATE TABLE IF NOT EXISTS   "Model" (k TEXT PRIMARY KEY, v INTEGER NOT NULL DEFAULT 0, UNIQUE (v, k));
		create unique index [model_v] on Model (v) WHERE v > 0;
		CREATE INDEX "model_k" ON "Model"(k);
		INSERT INTO Model (k, v) VALUES ('live', 1);`
	if err := s.WriteTx(ctx, func(c *sqlite3.Conn) error { return c.Exec(ddl) }); err != nil {
		t.Fatal(err)
	}
	rctx := projectiondriver.WithRebuild(ctx)
	tables := []string{"Model"}
	for round := range 3 {
		if err := cps.Prepare(rctx, tables); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		err := cps.Commit(ctx, "m@rebuild", "", nova.Start, nova.Position{Commit: 10}, func(ctx context.Context) error {
			c, _ := novasqlite.TxFromContext(ctx)
			return c.Exec(`INSERT INTO ` + projection.Table(rctx, "Model") + ` (k, v) VALUES ('rebuilt', 2)`)
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := cps.Save(ctx, "m", nova.Position{Commit: 9}); err != nil {
			t.Fatal(err)
		}
		if err := cps.Swap(ctx, "m", "m@rebuild", tables); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if n := countRows(t, s, "Model"); n != 1 {
			t.Fatalf("round %d: the swapped table has %d rows", round, n)
		}
		// The indexes came along: the partial unique one refuses a second v=2.
		err = s.WriteTx(ctx, func(c *sqlite3.Conn) error { return c.Exec(`INSERT INTO Model (k, v) VALUES ('x', 2)`) })
		if !errors.Is(err, sqlite3.CONSTRAINT) {
			t.Fatalf("round %d: unique index not copied: %v", round, err)
		}
	}
}

func TestCheckpointsInvalidInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, cps := newCheckpoints(t)
	// SQLite has no schemas: a qualified table name is refused.
	if err := cps.Prepare(projectiondriver.WithRebuild(ctx), []string{"main.t"}); !errors.Is(err, nova.ErrInvalid) {
		t.Errorf("Prepare of main.t = %v, want ErrInvalid", err)
	}
	if err := cps.Swap(ctx, "p", "p@rebuild", []string{"main.t"}); !errors.Is(err, nova.ErrInvalid) {
		t.Errorf("Swap of main.t = %v, want ErrInvalid", err)
	}
}
