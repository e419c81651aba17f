package novamysql_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/go-sql-driver/mysql"
	"go.uber.org/goleak"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/aggregate"
	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/novamysql"
	"github.com/nova-go/nova/novatest"
)

func TestMain(m *testing.M) {
	// The driver logs broken connections to stderr; the tests break
	// them on purpose.
	mysql.SetLogger(log.New(io.Discard, "", 0))
	adminJobs = make(chan func())
	adminDone := make(chan struct{})
	go func() {
		defer close(adminDone)
		for f := range adminJobs {
			f()
		}
	}()
	code := testenv.Main(m).Run()
	close(adminJobs)
	<-adminDone
	closeAdmin()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// adminJobs carries work on the admin pool to one goroutine that
// TestMain starts: connections of the pool are opened there, so their
// goroutines are not counted as the stores' by the suite's Release case.
var adminJobs chan func()

// adminDo runs f on the admin goroutine.
func adminDo(f func()) {
	done := make(chan struct{})
	adminJobs <- func() { defer close(done); f() }
	<-done
}

var (
	adminOnce sync.Once
	adminDB   *sql.DB
	adminErr  error
	adminCfg  *mysql.Config
)

// admin returns a pool on the test server for creating, dropping and
// inspecting scratch databases, skipping t when there is no server.
func admin(t testing.TB) (*sql.DB, *mysql.Config) {
	t.Helper()
	addr := testenv.Need(t, testenv.MySQL)
	adminOnce.Do(func() {
		dsn, err := novamysql.DriverDSN(addr)
		if err != nil {
			adminErr = err
			return
		}
		adminCfg, adminErr = mysql.ParseDSN(dsn)
		if adminErr != nil {
			return
		}
		adminDB, adminErr = sql.Open("mysql", dsn)
	})
	if adminErr != nil {
		t.Fatalf("admin connection: %v", adminErr)
	}
	return adminDB, adminCfg.Clone()
}

func closeAdmin() {
	if adminDB != nil {
		adminDB.Close()
	}
}

// scratchDB creates an empty database, dropped when t ends, and returns
// its name and a DSN for it.
func scratchDB(t testing.TB) (name, dsn string) {
	t.Helper()
	db, cfg := admin(t)
	var b [6]byte
	rand.Read(b[:])
	name = "nova_test_" + hex.EncodeToString(b[:])
	var err error
	adminDo(func() { _, err = db.Exec("CREATE DATABASE " + name) })
	if err != nil {
		t.Fatalf("create scratch database: %v", err)
	}
	t.Cleanup(func() {
		var err error
		adminDo(func() { _, err = db.Exec("DROP DATABASE IF EXISTS " + name) })
		if err != nil {
			t.Errorf("drop scratch database %s: %v", name, err)
		}
	})
	cfg.DBName = name
	return name, cfg.FormatDSN()
}

// open opens a store in a fresh scratch database, closed when t ends.
// cfg.DSN and cfg.DB are filled in when both are empty.
func open(t testing.TB, cfg novamysql.Config) *novamysql.Store {
	t.Helper()
	var name string
	if cfg.DSN == "" && cfg.DB == nil {
		name, cfg.DSN = scratchDB(t)
	}
	s, err := novamysql.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	dbNames.Store(s, name)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// dbNames maps each store open made to the name of its scratch database.
var dbNames sync.Map

// killConns kills every connection to the store's scratch database.
func killConns(ctx context.Context, st nova.Store) (err error) {
	adminDo(func() { err = kill(ctx, st) })
	return err
}

func kill(ctx context.Context, st nova.Store) error {
	s := st.(*novamysql.Store)
	db := adminDB
	name, _ := dbNames.Load(s)
	rows, err := db.QueryContext(ctx, "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()", name)
	if err != nil {
		return err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rows.Close()
	for _, id := range ids {
		if _, err := db.ExecContext(ctx, fmt.Sprintf("KILL %d", id)); err != nil && !strings.Contains(err.Error(), "1094") {
			return err
		}
	}
	return nil
}

// openTx appends in a transaction of the caller's own and leaves it open.
func openTx(ctx context.Context, t *testing.T, st nova.Store, stream string, events []nova.EventData) (func() error, error) {
	s := st.(*novamysql.Store)
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = tx.Rollback() })
	if _, err := s.AppendTx(ctx, tx, stream, nova.NoStream, events...); err != nil {
		return nil, err
	}
	return func() error {
		if err := tx.Commit(); err != nil {
			return err
		}
		s.Notify()
		return nil
	}, nil
}

func TestStore(t *testing.T) {
	t.Parallel()
	admin(t)
	opts := append(serverOptions(),
		// Every append crosses the network and commits with a flush of
		// the redo log: NOVA_TEST_SCALE=1 runs the full sizes.
		novatest.WithScale(testenv.ServerScale()),
	)
	novatest.RunStore(t, func(t *testing.T) nova.Store {
		return open(t, novamysql.Config{})
	}, opts...)
}

func TestStoreWithoutGroupCommit(t *testing.T) {
	t.Parallel()
	admin(t)
	novatest.RunStore(t, func(t *testing.T) nova.Store {
		return open(t, novamysql.Config{MaxGroup: 1, PageSize: 7})
	}, novatest.WithScale(testenv.ServerScale()/10))
}

func TestSnapshotStore(t *testing.T) {
	t.Parallel()
	admin(t)
	novatest.RunSnapshotStore(t, func(t *testing.T) aggregate.SnapshotStore {
		return open(t, novamysql.Config{})
	})
}
