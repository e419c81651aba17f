package novasqlite_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/ncruces/go-sqlite3"
	"github.com/nova-go/nova"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/novasqlite"
	"github.com/nova-go/nova/novatest"
	"github.com/nova-go/nova/projection"
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

func TestQueryStoreTablesAreApart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, novasqlite.Config{})
	a, b := newQueryStore(t, s, ""), newQueryStore(t, s, "other_views")
	if a.Table() != "projections" || b.Table() != "other_views" {
		t.Fatalf("tables %q and %q, want projections and other_views", a.Table(), b.Table())
	}
	if err := a.UpsertRaw(ctx, "k", json.RawMessage(`1`)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetRaw(ctx, "k"); !errors.Is(err, nova.ErrNotFound) {
		t.Fatalf("other table: GetRaw = %v, want nova.ErrNotFound", err)
	}
	// A second store on the same table sees the first one's rows.
	if got, err := newQueryStore(t, s, "projections").GetRaw(ctx, "k"); err != nil || string(got) != `1` {
		t.Fatalf("same table again: GetRaw = %s, %v; want 1", got, err)
	}
}

func TestNewQueryStoreBadInput(t *testing.T) {
	t.Parallel()
	s := open(t, novasqlite.Config{})
	const tables = "sqlite_master WHERE type = 'table'"
	before := countRows(t, s, tables)
	var nilCtx context.Context
	tests := []struct {
		name  string
		ctx   context.Context
		s     *novasqlite.Store
		table string
	}{
		{"nil context", nilCtx, s, ""},
		{"nil store", context.Background(), nil, ""},
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
	var nilQS *novasqlite.QueryStore
	if _, err := nilQS.GetRaw(context.Background(), "k"); !errors.Is(err, nova.ErrInvalid) {
		t.Errorf("nil QueryStore GetRaw = %v, want nova.ErrInvalid", err)
	}
	if err := nilQS.UpsertRaw(context.Background(), "k", json.RawMessage(`1`)); !errors.Is(err, nova.ErrInvalid) {
		t.Errorf("nil QueryStore UpsertRaw = %v, want nova.ErrInvalid", err)
	}
}

// An upsert in a transaction of the store commits or rolls back with it,
// and a read in it sees its writes.
func TestQueryStoreInTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, novasqlite.Config{})
	qs := newQueryStore(t, s, "")
	boom := errors.New("boom")
	err := s.WriteTx(ctx, func(c *sqlite3.Conn) error {
		tx := novasqlite.WithTx(ctx, c)
		if err := qs.UpsertRaw(tx, "undone", json.RawMessage(`{"v":1}`)); err != nil {
			return err
		}
		got, err := qs.GetRaw(tx, "undone")
		if err != nil || string(got) != `{"v":1}` {
			t.Errorf("GetRaw in the transaction = %s, %v; want its own write", got, err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("WriteTx = %v, want boom", err)
	}
	if _, err := qs.GetRaw(ctx, "undone"); !errors.Is(err, nova.ErrNotFound) {
		t.Fatalf("after rollback: GetRaw = %v, want nova.ErrNotFound", err)
	}

	// Committed with an append.
	_, err = s.AppendTx(ctx, "order-1", nova.NoStream, novatest.Events("placed", 1), func(c *sqlite3.Conn) error {
		return qs.UpsertRaw(novasqlite.WithTx(ctx, c), "order-1", json.RawMessage(`{"status":"placed"}`))
	})
	if err != nil {
		t.Fatalf("AppendTx: %v", err)
	}
	if got, err := qs.GetRaw(ctx, "order-1"); err != nil || string(got) != `{"status":"placed"}` {
		t.Fatalf("after commit: GetRaw = %s, %v", got, err)
	}

	// Bad input inside a transaction fails without failing it.
	err = s.WriteTx(ctx, func(c *sqlite3.Conn) error {
		if err := qs.UpsertRaw(novasqlite.WithTx(ctx, c), "order-1", json.RawMessage(`{`)); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("bad JSON in a transaction: %v, want nova.ErrInvalid", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := qs.GetRaw(ctx, "order-1"); err != nil || string(got) != `{"status":"placed"}` {
		t.Fatalf("after bad input: GetRaw = %s, %v", got, err)
	}
}

// Under a rebuild's ctx the store reads and writes the shadow table.
func TestQueryStoreRebuildShadow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rebuild := projection.WithRebuild(ctx)
	s := open(t, novasqlite.Config{})
	qs := newQueryStore(t, s, "views")

	// No shadow yet: the error says so, and nothing is written.
	if err := qs.UpsertRaw(rebuild, "k", json.RawMessage(`1`)); err == nil || !strings.Contains(err.Error(), "views"+projection.ShadowSuffix) {
		t.Fatalf("upsert with no shadow table: %v, want an error naming it", err)
	}

	newQueryStore(t, s, "views"+projection.ShadowSuffix)
	if err := qs.UpsertRaw(ctx, "k", json.RawMessage(`"live"`)); err != nil {
		t.Fatal(err)
	}
	if err := qs.UpsertRaw(rebuild, "k", json.RawMessage(`"rebuilt"`)); err != nil {
		t.Fatal(err)
	}
	if err := qs.UpsertRaw(rebuild, "new", json.RawMessage(`"rebuilt"`)); err != nil {
		t.Fatal(err)
	}
	if got, err := qs.GetRaw(ctx, "k"); err != nil || string(got) != `"live"` {
		t.Fatalf("live GetRaw = %s, %v; want \"live\"", got, err)
	}
	if _, err := qs.GetRaw(ctx, "new"); !errors.Is(err, nova.ErrNotFound) {
		t.Fatalf("live GetRaw of a shadow-only key = %v, want nova.ErrNotFound", err)
	}
	if got, err := qs.GetRaw(rebuild, "k"); err != nil || string(got) != `"rebuilt"` {
		t.Fatalf("rebuild GetRaw = %s, %v; want \"rebuilt\"", got, err)
	}
	if n := countRows(t, s, "views"+projection.ShadowSuffix); n != 2 {
		t.Fatalf("shadow has %d rows, want 2", n)
	}
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
