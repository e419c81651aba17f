package novapg_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/novapg"
	"github.com/nova-go/nova/novatest"
)

func newQueryStore(t *testing.T, s *novapg.Store, table string) *novapg.QueryStore {
	t.Helper()
	qs, err := novapg.NewQueryStore(context.Background(), s, table)
	if err != nil {
		t.Fatalf("NewQueryStore(%q): %v", table, err)
	}
	return qs
}

func TestQueryStore(t *testing.T) {
	t.Parallel()
	s := open(t, newScratch(t).config())
	var n atomic.Int64
	novatest.RunQueryStore(t, func(t *testing.T) cqrs.QueryStore {
		return newQueryStore(t, s, fmt.Sprint("views_", n.Add(1)))
	})
}

func TestSQLQueryStore(t *testing.T) {
	t.Parallel()
	s := open(t, newScratch(t).config())
	cp := novapg.NewCheckpoints(s)
	novatest.RunSQLQueryStore(t, func(t *testing.T, table string) cqrs.QueryStore {
		return newQueryStore(t, s, table)
	}, novatest.WithTx(func(ctx context.Context, t *testing.T, fn func(ctx context.Context) error) error {
		return pgx.BeginFunc(ctx, s.Pool(), func(tx pgx.Tx) error { return fn(novapg.WithTx(ctx, tx)) })
	}), novatest.WithCheckpoints(cp), novatest.WithEventStore(s), novatest.WithRawSQL(novatest.RawSQL{
		Get: func(ctx context.Context, qs cqrs.QueryStore, key string) (string, error) {
			tx, ok := novapg.TxFromContext(ctx)
			if !ok {
				return "", errors.New("no transaction in the ctx")
			}
			var v string
			err := tx.QueryRow(ctx, `SELECT value::text FROM `+qs.(*novapg.QueryStore).Table()+` WHERE key = $1`, key).Scan(&v)
			return v, err
		},
		Put: func(ctx context.Context, qs cqrs.QueryStore, key, value string) error {
			tx, ok := novapg.TxFromContext(ctx)
			if !ok {
				return errors.New("no transaction in the ctx")
			}
			_, err := tx.Exec(ctx, `INSERT INTO `+qs.(*novapg.QueryStore).Table()+` (key, value) VALUES ($1, $2::jsonb)`, key, value)
			return err
		},
	}))
}

func TestNewQueryStoreBadInput(t *testing.T) {
	t.Parallel()
	sc := newScratch(t)
	s := open(t, sc.config())
	ctx := context.Background()
	const tables = `SELECT count(*) FROM pg_tables WHERE schemaname = $1`
	var before, after int
	if err := pgxQueryRow(ctx, sc, tables, &before, sc.schema); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		ctx   context.Context
		s     *novapg.Store
		table string
	}{
		{"upper case", context.Background(), s, "Views"},
		{"quote", context.Background(), s, `a"b`},
		{"dot", context.Background(), s, "public.x"},
		{"leading digit", context.Background(), s, "1x"},
		{"too long", context.Background(), s, strings.Repeat("x", 55)},
	}
	for _, tt := range tests {
		if _, err := novapg.NewQueryStore(tt.ctx, tt.s, tt.table); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("%s: NewQueryStore = %v, want nova.ErrInvalid", tt.name, err)
		}
	}
	if err := pgxQueryRow(ctx, sc, tables, &after, sc.schema); err != nil || after != before {
		t.Errorf("bad input created %d tables (%v)", after-before, err)
	}
	newQueryStore(t, s, strings.Repeat("x", 54)) // the longest name is fine
}

// jsonb cannot hold some valid JSON: those values are refused as bad
// input before the statement, so they abort no transaction; everything
// else is kept.
func TestQueryStoreJSONBLimits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, newScratch(t).config())
	qs := newQueryStore(t, s, "")
	refused := []string{
		`"a\u0000b"`, `{"k":"\u0000"}`, `"\ud800"`, `"\udc00"`, `"\ud800x"`, `"\ud800\n"`,
		`"\ud800\ud800"`, `"\uDBFF"`, `["ok", "\u0000"]`,
	}
	tx, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	inTx := novapg.WithTx(ctx, tx)
	for _, v := range refused {
		if err := qs.UpsertRaw(inTx, "k", json.RawMessage(v)); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("UpsertRaw(%s) = %v, want nova.ErrInvalid", v, err)
		}
	}
	kept := []string{`"\\u0000"`, `"\ud83d\ude80"`, `"\uD83D\uDE80"`, `"\u0001\u00e9\uffff"`, `"\\\ud83d\ude80\\"`, `{"\u0041":"\t"}`}
	for i, v := range kept {
		key := fmt.Sprint("kept-", i)
		if err := qs.UpsertRaw(inTx, key, json.RawMessage(v)); err != nil {
			t.Fatalf("UpsertRaw(%s) in a transaction after refused values: %v", v, err)
		}
		got, err := qs.GetRaw(inTx, key)
		if err != nil {
			t.Fatal(err)
		}
		var a, b any
		if json.Unmarshal(got, &a) != nil || json.Unmarshal([]byte(v), &b) != nil || fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("GetRaw = %s, want %s", got, v)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("commit after refused values: %v", err)
	}
	if _, err := qs.GetRaw(ctx, "k"); !errors.Is(err, nova.ErrNotFound) {
		t.Fatalf("refused values: GetRaw = %v, want nova.ErrNotFound", err)
	}
}

// A read-model write commits with an append.
func TestQueryStoreAppendTx(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, newScratch(t).config())
	qs := newQueryStore(t, s, "")
	if want := s.Schema() + ".projections"; qs.Table() != want {
		t.Fatalf("default table %q, want %q", qs.Table(), want)
	}
	tx, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := s.AppendTx(ctx, tx, "order-1", nova.NoStream, novatest.Events("placed", 1)...); err != nil {
		t.Fatal(err)
	}
	if err := qs.UpsertRaw(novapg.WithTx(ctx, tx), "order-1", json.RawMessage(`{"status":"placed"}`)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := qs.GetRaw(ctx, "order-1"); err != nil || string(got) != `{"status": "placed"}` {
		t.Fatalf("after commit: GetRaw = %s, %v", got, err)
	}
}

func TestQueryStoreClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, newScratch(t).config())
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
	if _, err := novapg.NewQueryStore(ctx, s, ""); !errors.Is(err, nova.ErrClosed) {
		t.Errorf("NewQueryStore after Close = %v, want nova.ErrClosed", err)
	}
}
