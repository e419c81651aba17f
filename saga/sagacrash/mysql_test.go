package sagacrash_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"github.com/nova-go/nova/internal/mysqltest"
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
	mc := mysqltest.Scratch(t, "sagacrash_")
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
