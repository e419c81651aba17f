package novamysql_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/novamysql"
	"github.com/nova-go/nova/novatest"
	"github.com/nova-go/nova/projection"
)

func newQueryStore(t *testing.T, s *novamysql.Store, table string) *novamysql.QueryStore {
	t.Helper()
	qs, err := novamysql.NewQueryStore(context.Background(), s, table)
	if err != nil {
		t.Fatalf("NewQueryStore(%q): %v", table, err)
	}
	return qs
}

func TestQueryStore(t *testing.T) {
	t.Parallel()
	s := open(t, novamysql.Config{})
	var n atomic.Int64
	novatest.RunQueryStore(t, func(t *testing.T) cqrs.QueryStore {
		return newQueryStore(t, s, fmt.Sprint("views_", n.Add(1)))
	})
}

func TestQueryStoreTables(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, novamysql.Config{TablePrefix: "app_"})
	a, b := newQueryStore(t, s, ""), newQueryStore(t, s, "other_views")
	if a.Table() != "app_projections" || b.Table() != "other_views" {
		t.Fatalf("tables %q and %q, want app_projections and other_views", a.Table(), b.Table())
	}
	if err := a.UpsertRaw(ctx, "k", json.RawMessage(`1`)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetRaw(ctx, "k"); !errors.Is(err, nova.ErrNotFound) {
		t.Fatalf("other table: GetRaw = %v, want nova.ErrNotFound", err)
	}
	if got, err := newQueryStore(t, s, "app_projections").GetRaw(ctx, "k"); err != nil || string(got) != `1` {
		t.Fatalf("same table again: GetRaw = %s, %v; want 1", got, err)
	}
}

func countTables(t *testing.T, s *novamysql.Store) int {
	t.Helper()
	var n int
	if err := s.DB().QueryRow(`SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE()`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNewQueryStoreBadInput(t *testing.T) {
	t.Parallel()
	s := open(t, novamysql.Config{})
	before := countTables(t, s)
	var nilCtx context.Context
	tests := []struct {
		name  string
		ctx   context.Context
		s     *novamysql.Store
		table string
	}{
		{"nil context", nilCtx, s, ""},
		{"nil store", context.Background(), nil, ""},
		{"upper case", context.Background(), s, "Views"},
		{"backtick", context.Background(), s, "a`b"},
		{"dot", context.Background(), s, "mysql.x"},
		{"leading digit", context.Background(), s, "1x"},
		{"too long", context.Background(), s, strings.Repeat("x", 55)},
	}
	for _, tt := range tests {
		if _, err := novamysql.NewQueryStore(tt.ctx, tt.s, tt.table); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("%s: NewQueryStore = %v, want nova.ErrInvalid", tt.name, err)
		}
	}
	if after := countTables(t, s); after != before {
		t.Errorf("bad input created %d tables", after-before)
	}
	newQueryStore(t, s, strings.Repeat("x", 54)) // the longest name is fine
	var nilQS *novamysql.QueryStore
	if _, err := nilQS.GetRaw(context.Background(), "k"); !errors.Is(err, nova.ErrInvalid) {
		t.Errorf("nil QueryStore GetRaw = %v, want nova.ErrInvalid", err)
	}
	if err := nilQS.UpsertRaw(context.Background(), "k", json.RawMessage(`1`)); !errors.Is(err, nova.ErrInvalid) {
		t.Errorf("nil QueryStore UpsertRaw = %v, want nova.ErrInvalid", err)
	}
}

// Values the server's JSON_VALID refuses are bad input and leave the
// caller's transaction usable; values come back byte for byte.
func TestQueryStoreJSONLimits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, novamysql.Config{})
	qs := newQueryStore(t, s, "")
	var version string
	if err := s.DB().QueryRow(`SELECT VERSION()`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	inTx := novamysql.WithTx(ctx, tx)
	if strings.Contains(version, "MariaDB") {
		for _, v := range []string{strings.Repeat("[", 40) + strings.Repeat("]", 40), `"\ud800"`} {
			if err := qs.UpsertRaw(inTx, "k", json.RawMessage(v)); !errors.Is(err, nova.ErrInvalid) {
				t.Errorf("UpsertRaw(%.20s) = %v, want nova.ErrInvalid", v, err)
			}
		}
	}
	kept := []string{`"a\u0000b"`, `"\ud83d\ude80"`, " {\"b\" : 1, \"a\":[ 2 ]}\n", `1E400`, `{"a":1,"a":2}`}
	for i, v := range kept {
		key := fmt.Sprint("kept-", i)
		if err := qs.UpsertRaw(inTx, key, json.RawMessage(v)); err != nil {
			t.Fatalf("UpsertRaw(%s) in a transaction after refused values: %v", v, err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("commit after refused values: %v", err)
	}
	for i, v := range kept {
		if got, err := qs.GetRaw(ctx, fmt.Sprint("kept-", i)); err != nil || string(got) != v {
			t.Errorf("GetRaw = %q, %v; want %q byte for byte", got, err, v)
		}
	}
	if _, err := qs.GetRaw(ctx, "k"); !errors.Is(err, nova.ErrNotFound) {
		t.Fatalf("refused values: GetRaw = %v, want nova.ErrNotFound", err)
	}
}

// An upsert in a transaction commits or rolls back with it, and a read
// in it sees its writes.
func TestQueryStoreInTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, novamysql.Config{})
	qs := newQueryStore(t, s, "")

	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	inTx := novamysql.WithTx(ctx, tx)
	if err := qs.UpsertRaw(inTx, "undone", json.RawMessage(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	if got, err := qs.GetRaw(inTx, "undone"); err != nil || string(got) != `{"v":1}` {
		t.Errorf("GetRaw in the transaction = %s, %v; want its own write", got, err)
	}
	if _, err := qs.GetRaw(ctx, "undone"); !errors.Is(err, nova.ErrNotFound) {
		t.Errorf("GetRaw outside the open transaction = %v, want nova.ErrNotFound", err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if _, err := qs.GetRaw(ctx, "undone"); !errors.Is(err, nova.ErrNotFound) {
		t.Fatalf("after rollback: GetRaw = %v, want nova.ErrNotFound", err)
	}

	// Committed with an append.
	tx, err = s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := s.AppendTx(ctx, tx, "order-1", nova.NoStream, novatest.Events("placed", 1)...); err != nil {
		t.Fatal(err)
	}
	if err := qs.UpsertRaw(novamysql.WithTx(ctx, tx), "order-1", json.RawMessage(`{"status":"placed"}`)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, err := qs.GetRaw(ctx, "order-1"); err != nil || string(got) != `{"status":"placed"}` {
		t.Fatalf("after commit: GetRaw = %s, %v", got, err)
	}
}

// Under a rebuild's ctx the store reads and writes the shadow table.
func TestQueryStoreRebuildShadow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rebuild := projection.WithRebuild(ctx)
	s := open(t, novamysql.Config{})
	qs := newQueryStore(t, s, "views")

	if err := qs.UpsertRaw(rebuild, "k", json.RawMessage(`1`)); err == nil || !strings.Contains(err.Error(), "views"+projection.ShadowSuffix) {
		t.Fatalf("upsert with no shadow table: %v, want an error naming it", err)
	}
	newQueryStore(t, s, "views"+projection.ShadowSuffix)
	for _, w := range []struct {
		ctx        context.Context
		key, value string
	}{{ctx, "k", `"live"`}, {rebuild, "k", `"rebuilt"`}, {rebuild, "new", `"rebuilt"`}} {
		if err := qs.UpsertRaw(w.ctx, w.key, json.RawMessage(w.value)); err != nil {
			t.Fatal(err)
		}
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
}

func TestQueryStoreClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, novamysql.Config{})
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
	if _, err := novamysql.NewQueryStore(ctx, s, ""); !errors.Is(err, nova.ErrClosed) {
		t.Errorf("NewQueryStore after Close = %v, want nova.ErrClosed", err)
	}
}
