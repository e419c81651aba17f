package sagacrash_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/novamysql"
)

// TestKilledWorkersMySQL is TestKilledWorkersSQLite on MySQL/MariaDB, in
// a scratch database, with fewer kills by default (see mysqlKillRounds).
func TestKilledWorkersMySQL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := mysqlSetup(t)
	s, err := novamysql.Open(ctx, novamysql.Config{DSN: cfg.MySQLDSN})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	runs := novamysql.NewRunStore(s)
	fx, err := openMySQLEffects(cfg.MySQLDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fx.close)
	kills := mysqlKillRounds(t)
	total := crashRounds(t, ctx, cfg, runs, kills, runsPerRound)
	if cut := check(t, ctx, runs, fx, cfg.Published, total); kills >= 10 && cut == 0 {
		t.Errorf("no kill of %d cut an attempt short: the test does not test crashes", kills)
	}
}

// mysqlKillRounds is how many times TestKilledWorkersMySQL kills a
// worker: 30 by default (310 runs, about 12 s), 15 under the race
// detector, 10 under -short, or NOVA_TEST_CRASH_MYSQL_KILLS. The other
// backends' 100 would add half a minute to CI, which runs the package
// at its default size, for the same code paths.
func mysqlKillRounds(t *testing.T) int { return size(t, "NOVA_TEST_CRASH_MYSQL_KILLS", 30, 15, 10) }

// mysqlSetup creates a scratch database, dropped when t ends, and returns
// the setup of a worker on it.
func mysqlSetup(t *testing.T) setup {
	t.Helper()
	addr := testenv.Need(t, testenv.MySQL)
	dsn := addr
	if strings.HasPrefix(addr, "mysql://") {
		var err error
		if dsn, err = novamysql.ParseURL(addr); err != nil {
			t.Fatal(err)
		}
	}
	mc, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("%s: %v", testenv.MySQL.Env, err)
	}
	admin, err := sql.Open("mysql", mc.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "sagacrash_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		t.Fatalf("create scratch database: %v", err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Errorf("drop scratch database %s: %v", name, err)
		}
	})
	mc.DBName = name
	return setup{MySQLDSN: mc.FormatDSN(), Published: filepath.Join(t.TempDir(), "published"), Lease: killLease}
}

// mysqlEffects keeps side effects in a table of the store's database.
type mysqlEffects struct{ db *sql.DB }

func openMySQLEffects(dsn string) (*mysqlEffects, error) {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return nil, err
	}
	_, err = db.Exec("CREATE TABLE IF NOT EXISTS effects (`key` VARCHAR(255) PRIMARY KEY, run VARCHAR(64) NOT NULL, step VARCHAR(64) NOT NULL, kind VARCHAR(16) NOT NULL)")
	if err != nil {
		db.Close()
		return nil, err
	}
	return &mysqlEffects{db: db}, nil
}

func (e *mysqlEffects) do(ctx context.Context, key, run, step, kind string) error {
	_, err := e.db.ExecContext(ctx, "INSERT IGNORE INTO effects (`key`, run, step, kind) VALUES (?, ?, ?, ?)", key, run, step, kind)
	return err
}

func (e *mysqlEffects) enter(context.Context, string, string) error {
	return errors.New("sagacrash: exclusivity is checked on PostgreSQL only")
}

func (e *mysqlEffects) exit(context.Context, string, string) error { return nil }

func (e *mysqlEffects) read(ctx context.Context) (map[string]bool, error) {
	rows, err := e.db.QueryContext(ctx, "SELECT `key` FROM effects")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		out[k] = true
	}
	return out, rows.Err()
}

func (e *mysqlEffects) overlaps(context.Context) ([]string, error) { return nil, nil }

func (e *mysqlEffects) close() { e.db.Close() }
