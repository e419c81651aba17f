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

func TestSQLQueryStore(t *testing.T) {
	t.Parallel()
	s := open(t, novamysql.Config{})
	novatest.RunSQLQueryStore(t, func(t *testing.T, table string) cqrs.QueryStore {
		return newQueryStore(t, s, table)
	}, novatest.WithTx(func(ctx context.Context, t *testing.T, fn func(ctx context.Context) error) error {
		tx, err := s.DB().BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err := fn(novamysql.WithTx(ctx, tx)); err != nil {
			return errors.Join(err, tx.Rollback())
		}
		return tx.Commit()
	}), novatest.WithCheckpoints(novamysql.NewCheckpoints(s)), novatest.WithEventStore(s), novatest.WithRawSQL(novatest.RawSQL{
		Get: func(ctx context.Context, qs cqrs.QueryStore, key string) (string, error) {
			tx, ok := novamysql.TxFromContext(ctx)
			if !ok {
				return "", errors.New("no transaction in the ctx")
			}
			var v string
			err := tx.QueryRowContext(ctx, "SELECT value FROM `"+qs.(*novamysql.QueryStore).Table()+"` WHERE `key` = ?", key).Scan(&v)
			return v, err
		},
		Put: func(ctx context.Context, qs cqrs.QueryStore, key, value string) error {
			tx, ok := novamysql.TxFromContext(ctx)
			if !ok {
				return errors.New("no transaction in the ctx")
			}
			_, err := tx.ExecContext(ctx, "INSERT INTO `"+qs.(*novamysql.QueryStore).Table()+"` (`key`, value, updated_at) VALUES (?, ?, UTC_TIMESTAMP(6))", key, value)
			return err
		},
	}))
}

// The default table carries the store's prefix.
func TestQueryStoreDefaultTable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, novamysql.Config{TablePrefix: "app_"})
	qs := newQueryStore(t, s, "")
	if qs.Table() != "app_projections" {
		t.Fatalf("default table %q, want app_projections", qs.Table())
	}
	if err := qs.UpsertRaw(ctx, "k", json.RawMessage(`1`)); err != nil {
		t.Fatal(err)
	}
	if got, err := newQueryStore(t, s, "app_projections").GetRaw(ctx, "k"); err != nil || string(got) != `1` {
		t.Fatalf("same table by name: GetRaw = %s, %v; want 1", got, err)
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
	tests := []struct {
		name  string
		ctx   context.Context
		s     *novamysql.Store
		table string
	}{
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

// A read-model write commits with an append.
func TestQueryStoreAppendTx(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, novamysql.Config{})
	qs := newQueryStore(t, s, "")
	tx, err := s.DB().BeginTx(ctx, nil)
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
