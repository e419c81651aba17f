package novasqlite_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ncruces/go-sqlite3"
	"github.com/nova-go/nova"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/internal/projectiondriver"
	"github.com/nova-go/nova/novasqlite"
	"github.com/nova-go/nova/novatest"
)

func newQueryStore(t *testing.T, s *novasqlite.Store, table string) *novasqlite.QueryStore {
	t.Helper()
	qs, err := novasqlite.NewQueryStore(context.Background(), s, table)
	if err != nil {
		t.Fatalf("NewQueryStore(%q): %v", table, err)
	}
	return qs
}

func TestQueryStore(t *testing.T) {
	t.Parallel()
	novatest.RunQueryStore(t, func(t *testing.T) cqrs.QueryStore {
		return newQueryStore(t, open(t, novasqlite.Config{}), "")
	})
}

func TestSQLQueryStore(t *testing.T) {
	t.Parallel()
	s := open(t, novasqlite.Config{})
	novatest.RunSQLQueryStore(t, func(t *testing.T, table string) cqrs.QueryStore {
		return newQueryStore(t, s, table)
	}, novatest.WithTx(func(ctx context.Context, t *testing.T, fn func(ctx context.Context) error) error {
		return s.WriteTx(ctx, func(c *sqlite3.Conn) error { return fn(novasqlite.WithTx(ctx, c)) })
	}), novatest.WithCheckpoints(checkpoints(t, s)), novatest.WithEventStore(s), novatest.WithRawSQL(novatest.RawSQL{
		Get: func(ctx context.Context, qs cqrs.QueryStore, key string) (string, error) {
			c, ok := novasqlite.TxFromContext(ctx)
			if !ok {
				return "", errors.New("no connection in the ctx")
			}
			st, _, err := c.Prepare(`SELECT value FROM "` + qs.(*novasqlite.QueryStore).Table() + `" WHERE key = ?`)
			if err != nil {
				return "", err
			}
			defer st.Close()
			if err := st.BindText(1, key); err != nil {
				return "", err
			}
			if !st.Step() {
				return "", errors.Join(fmt.Errorf("no row %q", key), st.Err())
			}
			return st.ColumnText(0), nil
		},
		Put: func(ctx context.Context, qs cqrs.QueryStore, key, value string) error {
			c, ok := novasqlite.TxFromContext(ctx)
			if !ok {
				return errors.New("no connection in the ctx")
			}
			st, _, err := c.Prepare(`INSERT INTO "` + qs.(*novasqlite.QueryStore).Table() + `" (key, value, updated_at) VALUES (?, ?, 0)`)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := errors.Join(st.BindText(1, key), st.BindText(2, value)); err != nil {
				return err
			}
			return st.Exec()
		},
	}))
}

func checkpoints(t *testing.T, s *novasqlite.Store) *novasqlite.Checkpoints {
	t.Helper()
	cp := novasqlite.NewCheckpoints(s)
	return cp
}

// A read-model write commits with an append.
func TestQueryStoreAppendTx(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, novasqlite.Config{})
	qs := newQueryStore(t, s, "")
	_, err := s.AppendTx(ctx, "order-1", nova.NoStream, novatest.Events("placed", 1), func(c *sqlite3.Conn) error {
		return qs.UpsertRaw(novasqlite.WithTx(ctx, c), "order-1", json.RawMessage(`{"status":"placed"}`))
	})
	if err != nil {
		t.Fatalf("AppendTx: %v", err)
	}
	if got, err := qs.GetRaw(ctx, "order-1"); err != nil || string(got) != `{"status":"placed"}` {
		t.Fatalf("after commit: GetRaw = %s, %v", got, err)
	}
	if qs.Table() != "projections" {
		t.Fatalf("default table %q, want projections", qs.Table())
	}
}

// The store's prepared statements follow the tables through a rebuild's
// swap: the live statements read the table swapped in, and the shadow's
// work again once a new shadow exists.
func TestQueryStoreAcrossSwap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rebuild := projectiondriver.WithRebuild(ctx)
	s := open(t, novasqlite.Config{})
	qs := newQueryStore(t, s, "views")
	newQueryStore(t, s, "views"+projectiondriver.ShadowSuffix)
	upsertAll := func(ctx context.Context, value string) {
		t.Helper()
		for _, key := range []string{"a", "b"} {
			if err := qs.UpsertRaw(ctx, key, json.RawMessage(value)); err != nil {
				t.Fatalf("UpsertRaw(%q): %v", key, err)
			}
			if got, err := qs.GetRaw(ctx, key); err != nil || string(got) != value {
				t.Fatalf("GetRaw(%q) = %s, %v; want %s", key, got, err, value)
			}
		}
	}
	upsertAll(ctx, `"old"`)
	upsertAll(rebuild, `"new"`)
	swap := func(c *sqlite3.Conn) error {
		return c.Exec(`DROP TABLE views; ALTER TABLE views__rebuild RENAME TO views`)
	}
	if err := s.WriteTx(ctx, swap); err != nil {
		t.Fatal(err)
	}
	for range 3 { // every reading connection, likely
		if got, err := qs.GetRaw(ctx, "a"); err != nil || string(got) != `"new"` {
			t.Fatalf("after the swap: GetRaw = %s, %v; want \"new\"", got, err)
		}
	}
	if err := qs.UpsertRaw(rebuild, "a", json.RawMessage(`1`)); err == nil {
		t.Fatal("UpsertRaw under a rebuild with the shadow swapped away succeeded")
	}
	newQueryStore(t, s, "views"+projectiondriver.ShadowSuffix)
	upsertAll(rebuild, `"newer"`)
	upsertAll(ctx, `"live"`)
}

func TestNewQueryStoreBadInput(t *testing.T) {
	t.Parallel()
	s := open(t, novasqlite.Config{})
	const tables = "sqlite_master WHERE type = 'table'"
	before := countRows(t, s, tables)
	tests := []struct {
		name  string
		ctx   context.Context
		s     *novasqlite.Store
		table string
	}{
		{"upper case", context.Background(), s, "Views"},
		{"quote", context.Background(), s, `a"b`},
		{"space", context.Background(), s, "a b"},
		{"dot", context.Background(), s, "main.x"},
		{"leading digit", context.Background(), s, "1x"},
		{"too long", context.Background(), s, strings.Repeat("x", 55)},
		{"injection", context.Background(), s, `x"; DROP TABLE events; --`},
	}
	for _, tt := range tests {
		if _, err := novasqlite.NewQueryStore(tt.ctx, tt.s, tt.table); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("%s: NewQueryStore = %v, want nova.ErrInvalid", tt.name, err)
		}
	}
	if n := countRows(t, s, tables); n != before {
		t.Errorf("bad input created %d tables", n-before)
	}
	// The longest name is fine.
	newQueryStore(t, s, strings.Repeat("x", 54))
}

func TestQueryStoreClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, novasqlite.Config{})
	qs := newQueryStore(t, s, "")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := qs.UpsertRaw(ctx, "k", json.RawMessage(`1`)); !errors.Is(err, nova.ErrClosed) {
		t.Errorf("UpsertRaw after Close = %v, want nova.ErrClosed", err)
	}
	if _, err := qs.GetRaw(ctx, "k"); !errors.Is(err, nova.ErrClosed) {
		t.Errorf("GetRaw after Close = %v, want nova.ErrClosed", err)
	}
	if _, err := novasqlite.NewQueryStore(ctx, s, ""); !errors.Is(err, nova.ErrClosed) {
		t.Errorf("NewQueryStore after Close = %v, want nova.ErrClosed", err)
	}
}

// Keep a read model in the store's file, writing it in the transaction of
// the append that caused it, so that both commit or neither does.
func ExampleNewQueryStore() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "nova-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	s, err := novasqlite.Open(ctx, novasqlite.Config{Path: filepath.Join(dir, "shop.db")})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	views, err := novasqlite.NewQueryStore(ctx, s, "order_summaries")
	if err != nil {
		log.Fatal(err)
	}

	type summary struct {
		Status string `json:"status"`
		Total  int    `json:"total"`
	}
	placed := nova.EventData{Type: "order.placed", Data: []byte(`{"total":4200}`)}
	_, err = s.AppendTx(ctx, "order-1", nova.NoStream, []nova.EventData{placed}, func(c *sqlite3.Conn) error {
		return cqrs.UpsertProjection(novasqlite.WithTx(ctx, c), views, "order-1", summary{"placed", 4200})
	})
	if err != nil {
		log.Fatal(err)
	}
	v, err := cqrs.GetProjection[summary](ctx, views, "order-1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(v.Status, v.Total)
	// Output: placed 4200
}
