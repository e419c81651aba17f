package projcrash_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/nova-go/nova/internal/mysqltest"
	"github.com/nova-go/nova/novamysql"
)

// TestKilledRunnerOnMySQL is TestKilledRunnerAppliesEachEventOnce on
// MySQL/MariaDB, in a scratch database, the read model in tables the
// handler writes through [novamysql.TxFromContext]. Its size is
// NOVA_PROJCRASH_MYSQL_EVENTS, 2,500 events by default and 1,000 under
// the race detector, whatever NOVA_PROJCRASH_EVENTS says: CI runs the
// other halves at their acceptance size.
func TestKilledRunnerOnMySQL(t *testing.T) {
	t.Parallel()
	mc := mysqltest.Scratch(t, "projcrash_")
	events := 2_500
	if raceEnabled {
		events = 1_000
	}
	crashSized(t, target{MySQLDSN: mc.FormatDSN()}, envInt(t, "NOVA_PROJCRASH_MYSQL_EVENTS", events))
}

func openMySQL(ctx context.Context, tg target, child bool) (*backend, error) {
	cfg := novamysql.Config{DSN: tg.MySQLDSN}
	if child {
		cfg.PollInterval = 10 * time.Millisecond // the writers are the parent
	}
	s, err := novamysql.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	db := s.DB()
	b := &backend{store: s, cps: novamysql.NewCheckpoints(s), tables: []string{"totals", "applied"}, mysql: true, close: func() { s.Close() }}
	b.exec = func(ctx context.Context, sql string, args ...any) error {
		tx, ok := novamysql.TxFromContext(ctx)
		if !ok {
			return errors.New("no transaction in the handler's ctx")
		}
		_, err := tx.ExecContext(ctx, sql, args...)
		return err
	}
	b.applied = func(ctx context.Context) (n int, err error) {
		err = db.QueryRowContext(ctx, "SELECT COUNT(*) FROM applied").Scan(&n)
		return n, err
	}
	b.model = func(ctx context.Context) (map[string][2]int64, int, error) {
		got := map[string][2]int64{}
		tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
		if err != nil {
			return nil, 0, err
		}
		defer tx.Rollback()
		rows, err := tx.QueryContext(ctx, "SELECT `key`, n, sum FROM totals")
		if err != nil {
			return nil, 0, err
		}
		for rows.Next() {
			var k string
			var n, sum int64
			if err := rows.Scan(&k, &n, &sum); err != nil {
				rows.Close()
				return nil, 0, err
			}
			got[k] = [2]int64{n, sum}
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return nil, 0, err
		}
		var applied int
		err = tx.QueryRowContext(ctx, "SELECT COUNT(DISTINCT event_id) FROM applied").Scan(&applied)
		return got, applied, err
	}
	return b, nil
}

// createMySQLModel creates the read model's tables, totals and applied.
func createMySQLModel(ctx context.Context, db *sql.DB, tables []string) error {
	for _, ddl := range []string{
		"CREATE TABLE `" + tables[0] + "` (`key` VARCHAR(64) PRIMARY KEY, n BIGINT NOT NULL, sum BIGINT NOT NULL)",
		"CREATE TABLE `" + tables[1] + "` (event_id CHAR(36) PRIMARY KEY, `key` VARCHAR(64) NOT NULL, INDEX applied_key (`key`))",
	} {
		if _, err := db.ExecContext(ctx, ddl); err != nil {
			return err
		}
	}
	return nil
}
