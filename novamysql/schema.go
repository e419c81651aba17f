package novamysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// SchemaVersion is the version of the table layout this package writes and
// reads, kept in the table PREFIXschema. [Open] and [Migrate] bring older
// tables forward and refuse newer ones with [ErrSchemaTooNew].
const SchemaVersion = 3

// ErrSchemaTooNew is matched by the error Open and Migrate return for
// tables written by a newer version of novamysql, whose layout this version
// does not know. Nothing is changed.
var ErrSchemaTooNew = errors.New("novamysql: tables have a newer schema than this version supports")

// ErrSchemaOutdated is matched by the error Open with [Config.SkipMigrate]
// returns when the store's tables are missing or have migrations pending.
// Nothing is created or changed.
var ErrSchemaOutdated = errors.New("novamysql: tables need migrating")

// migrations[i] takes the tables from schema version i to i+1. MySQL
// commits every DDL statement at once, so each statement can be run again
// after a failure part of the way through: the version is recorded only
// once all of them have run.
//
// Stream IDs are VARBINARY: compared and ordered byte by byte, with no
// collation folding case or ignoring trailing spaces, so "a" and "a " are
// two streams and Streams lists them in byte order. Event IDs are the
// canonical lower-case UUID text. Positions are allocated from the counter
// row, never by AUTO_INCREMENT (see the package documentation).
var migrations = [][]string{
	{
		`CREATE TABLE IF NOT EXISTS {p}counter (
			id       TINYINT UNSIGNED NOT NULL PRIMARY KEY,
			position BIGINT UNSIGNED NOT NULL
		) ENGINE=InnoDB`,
		`INSERT IGNORE INTO {p}counter (id, position) VALUES (1, 0)`,
		`CREATE TABLE IF NOT EXISTS {p}streams (
			stream  VARBINARY(256) NOT NULL PRIMARY KEY,
			version BIGINT UNSIGNED NOT NULL
		) ENGINE=InnoDB`,
		`CREATE TABLE IF NOT EXISTS {p}events (
			position       BIGINT UNSIGNED NOT NULL PRIMARY KEY,
			id             CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
			stream         VARBINARY(256) NOT NULL,
			version        BIGINT UNSIGNED NOT NULL,
			type           VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
			data           LONGBLOB NOT NULL,
			metadata       LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
			correlation_id VARCHAR(4096) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
			causation_id   VARCHAR(4096) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
			recorded_at    DATETIME(6) NOT NULL,
			UNIQUE KEY {p}events_id (id),
			UNIQUE KEY {p}events_stream_version (stream, version)
		) ENGINE=InnoDB`,
		`CREATE TABLE IF NOT EXISTS {p}snapshots (
			stream         VARBINARY(256) NOT NULL PRIMARY KEY,
			version        BIGINT UNSIGNED NOT NULL,
			schema_version INT NOT NULL,
			data           LONGBLOB NOT NULL,
			recorded_at    DATETIME(6) NOT NULL
		) ENGINE=InnoDB`,
	},
	// Saga runs and the outbox of their lifecycle events (see
	// [RunStore]). A run's row is a projection of its stream, written in
	// the transaction of each transition. Names compared or ordered
	// (saga, run ID, lease owner) are binary, compared byte by byte with
	// no collation's padding or folding; the texts only kept (step,
	// error, topics) are utf8mb4. Times are UTC.
	{
		`CREATE TABLE IF NOT EXISTS {p}saga_runs (
			saga        VARBINARY(256) NOT NULL,
			run_id      VARBINARY(256) NOT NULL,
			status      VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
			version     BIGINT UNSIGNED NOT NULL,
			step        MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
			attempt     INT NOT NULL,
			error       MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
			due_at      DATETIME(6) NULL,
			deadline_at DATETIME(6) NULL,
			lease_owner MEDIUMBLOB NOT NULL,
			lease_until DATETIME(6) NULL,
			created_at  DATETIME(6) NOT NULL,
			updated_at  DATETIME(6) NOT NULL,
			PRIMARY KEY (saga, run_id),
			KEY {p}saga_runs_due (due_at, saga, run_id),
			KEY {p}saga_runs_status (status, saga, run_id)
		) ENGINE=InnoDB`,
		// The outbox keeps each envelope field by field, so that it
		// comes back exactly as written: the payload's bytes, the
		// headers as JSON (NULL for none, apart from an empty object),
		// stamped_at the envelope's timestamp in Unix microseconds (NULL
		// for none). Seq orders it; concurrent transactions may commit
		// their messages out of Seq order.
		`CREATE TABLE IF NOT EXISTS {p}outbox (
			seq        BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
			id         VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
			topic      TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
			event_type TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
			payload    LONGBLOB NOT NULL,
			` + "`key`" + `      TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
			headers    MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
			attempts   INT NOT NULL,
			stamped_at BIGINT NULL,
			created_at DATETIME(6) NOT NULL
		) ENGINE=InnoDB`,
	},
	// Projection checkpoints and leases (see [Checkpoints]). Names and
	// lease owners are binary, compared byte by byte. swap_* hold the
	// intent of a rebuild's swap while its tables are renamed: the
	// checkpoint it moves to, the rebuild's checkpoint it takes that
	// from and the tables, so that a swap cut short is finished or
	// undone by the next writer.
	{
		`CREATE TABLE IF NOT EXISTS {p}checkpoints (
			name         VARBINARY(256) NOT NULL PRIMARY KEY,
			commit_pos   BIGINT UNSIGNED NOT NULL,
			prepare_pos  BIGINT UNSIGNED NOT NULL,
			lease_owner  VARBINARY(256) NOT NULL,
			lease_until  DATETIME(6) NULL,
			updated_at   DATETIME(6) NOT NULL,
			swap_commit  BIGINT UNSIGNED NULL,
			swap_prepare BIGINT UNSIGNED NULL,
			swap_shadow  VARBINARY(256) NULL,
			swap_tables  TEXT CHARACTER SET ascii COLLATE ascii_bin NULL
		) ENGINE=InnoDB`,
	},
}

// tables returns q with {p} replaced by the table prefix.
func tables(prefix, q string) string {
	return strings.ReplaceAll(q, "{p}", prefix)
}

// Migrate creates or migrates the tables of cfg (cfg.TablePrefix in the
// database of cfg.DB or cfg.DSN) to [SchemaVersion] and returns the
// version they are at. Tables of a newer version fail with an error
// matching [ErrSchemaTooNew] and are left alone, as is a server older
// than MariaDB 10.6 or MySQL 8.0.1 ([ErrServerTooOld]). Concurrent
// calls, from any process, take turns on a named lock. cfg.SkipMigrate
// is ignored.
func Migrate(ctx context.Context, cfg Config) (int, error) {
	if err := cfg.validate(); err != nil {
		return 0, err
	}
	cfg = cfg.withDefaults()
	db, owned, err := openDB(cfg)
	if err != nil {
		return 0, err
	}
	if owned {
		defer db.Close()
	}
	if err := checkServer(ctx, db); err != nil {
		return 0, err
	}
	return migrate(ctx, db, cfg.TablePrefix)
}

// migrate is Migrate on an open pool.
func migrate(ctx context.Context, db *sql.DB, prefix string) (version int, err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("novamysql: migrate: connect: %w", err)
	}
	defer conn.Close()
	// One migration at a time per database and prefix, across processes.
	var got sql.NullInt64
	err = conn.QueryRowContext(ctx, `SELECT GET_LOCK(CONCAT('novamysql:', SHA1(CONCAT(DATABASE(), '.', ?))), 60)`, prefix).Scan(&got)
	if err != nil {
		return 0, fmt.Errorf("novamysql: migrate: take the migration lock: %w", err)
	}
	if got.Int64 != 1 {
		return 0, fmt.Errorf("novamysql: migrate: another migration held the lock for 60s")
	}
	defer func() {
		_, rerr := conn.ExecContext(context.WithoutCancel(ctx), `SELECT RELEASE_LOCK(CONCAT('novamysql:', SHA1(CONCAT(DATABASE(), '.', ?))))`, prefix)
		if err == nil && rerr != nil {
			err = fmt.Errorf("novamysql: migrate: release the migration lock: %w", rerr)
		}
	}()
	if _, err := conn.ExecContext(ctx, tables(prefix, `CREATE TABLE IF NOT EXISTS {p}schema (
		id      TINYINT UNSIGNED NOT NULL PRIMARY KEY,
		version INT NOT NULL
	) ENGINE=InnoDB`)); err != nil {
		return 0, fmt.Errorf("novamysql: migrate: create %sschema: %w", prefix, err)
	}
	version, err = readVersion(ctx, conn, prefix)
	if err != nil {
		return 0, err
	}
	if version > SchemaVersion {
		return version, fmt.Errorf("%w: tables %s* are at schema version %d, this version of novamysql supports up to %d",
			ErrSchemaTooNew, prefix, version, SchemaVersion)
	}
	for v := version; v < SchemaVersion; v++ {
		for _, q := range migrations[v] {
			if _, err := conn.ExecContext(ctx, tables(prefix, q)); err != nil {
				return v, fmt.Errorf("novamysql: migrate %s* from schema version %d: %w", prefix, v, err)
			}
		}
		if _, err := conn.ExecContext(ctx, tables(prefix, `INSERT INTO {p}schema (id, version) VALUES (1, ?) ON DUPLICATE KEY UPDATE version = VALUES(version)`), v+1); err != nil {
			return v, fmt.Errorf("novamysql: migrate %s*: record schema version %d: %w", prefix, v+1, err)
		}
	}
	return SchemaVersion, nil
}

// readVersion returns the recorded schema version, 0 when none is.
func readVersion(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, prefix string) (int, error) {
	var v int
	err := q.QueryRowContext(ctx, tables(prefix, `SELECT version FROM {p}schema WHERE id = 1`)).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows), mysqlCode(err) == 1146: // ER_NO_SUCH_TABLE
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("novamysql: read schema version of %s*: %w", prefix, err)
	}
	return v, nil
}

// checkVersion fails unless the tables are at SchemaVersion; Open uses it
// with SkipMigrate.
func checkVersion(ctx context.Context, db *sql.DB, prefix string) error {
	v, err := readVersion(ctx, db, prefix)
	switch {
	case err != nil:
		return err
	case v > SchemaVersion:
		return fmt.Errorf("%w: tables %s* are at schema version %d, this version of novamysql supports up to %d",
			ErrSchemaTooNew, prefix, v, SchemaVersion)
	case v == 0:
		return fmt.Errorf("%w: the database holds no nova store (no table %sschema): create one with Migrate (nova migrate)",
			ErrSchemaOutdated, prefix)
	case v < SchemaVersion:
		return fmt.Errorf("%w: tables %s* are at schema version %d, want %d: run Migrate (nova migrate) or open without SkipMigrate",
			ErrSchemaOutdated, prefix, v, SchemaVersion)
	}
	return nil
}
