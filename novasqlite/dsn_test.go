package novasqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	_ "github.com/ncruces/go-sqlite3/driver"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novasqlite"
	"github.com/nova-go/nova/novatest"
)

func TestDSNOpensTheStoreFileWithItsSettings(t *testing.T) {
	t.Parallel()
	cfg := novasqlite.Config{Path: filepath.Join(t.TempDir(), "with space.db"), Synchronous: novasqlite.SyncNormal}
	s := open(t, cfg)
	novatest.MustAppend(t, s, "a", nova.NoStream, novatest.Events("e", 2)...)

	db, err := sql.Open("sqlite3", novasqlite.DSN(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	var mode string
	var sync, n int
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM events").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" || sync != 1 || n != 2 {
		t.Errorf("through DSN: journal_mode %s, synchronous %d, %d events; want wal, 1 (NORMAL), 2", mode, sync, n)
	}
}
