package novasqlite

import (
	"errors"
	"fmt"

	"github.com/ncruces/go-sqlite3"
)

// SchemaVersion is the version of the file layout this package writes and
// reads, kept in the file's PRAGMA user_version. Open migrates an older
// file forward and refuses a newer one with [ErrSchemaTooNew]. A Nova
// store also carries Nova's PRAGMA application_id, set in the transaction
// that creates its tables: a file without it is Nova's only while it has
// no table at all.
const SchemaVersion = 4

// applicationID marks a file as a Nova store (PRAGMA application_id,
// "NOVA" in ASCII).
const applicationID = 0x4e4f5641

var (
	// ErrSchemaTooNew is matched by the error Open returns for a file
	// written by a newer version of novasqlite, whose schema this version
	// does not know. The file is left untouched.
	ErrSchemaTooNew = errors.New("novasqlite: file has a newer schema than this version supports")

	// ErrNotDatabase is matched by the error Open returns for a file that
	// is not an SQLite database, or is an SQLite database of another
	// application: one with another application ID, or without Nova's
	// but with tables in it. The file is left untouched.
	ErrNotDatabase = errors.New("novasqlite: not a nova SQLite database")

	// ErrSchemaOutdated is matched by the error Open with
	// [Config.SkipMigrate] returns when the file is missing, holds no
	// store yet or has migrations pending. The file is left untouched.
	ErrSchemaOutdated = errors.New("novasqlite: store missing or not migrated")
)

// migrations[i] takes a file from schema version i to i+1.
//
// The events table's INTEGER PRIMARY KEY is the global position. With
// AUTOINCREMENT SQLite never reuses a position, and since one writer at a
// time allocates positions inside its transaction, positions are gap-free
// and in commit order. Data is the payload as a BLOB (empty, never NULL),
// metadata is JSON text (NULL when empty), recorded_at is Unix time in
// nanoseconds (UTC).
var migrations = []string{
	`CREATE TABLE streams (
		stream  TEXT PRIMARY KEY,
		version INTEGER NOT NULL
	) WITHOUT ROWID;
	CREATE TABLE events (
		position    INTEGER PRIMARY KEY AUTOINCREMENT,
		id          TEXT NOT NULL UNIQUE,
		stream      TEXT NOT NULL,
		version     INTEGER NOT NULL,
		type        TEXT NOT NULL,
		data        BLOB NOT NULL,
		metadata    TEXT,
		recorded_at INTEGER NOT NULL,
		UNIQUE (stream, version)
	);
	CREATE TABLE snapshots (
		stream      TEXT PRIMARY KEY,
		version     INTEGER NOT NULL,
		schema      INTEGER NOT NULL,
		data        BLOB NOT NULL,
		recorded_at INTEGER NOT NULL
	) WITHOUT ROWID;`,

	// 2: durable saga runs and the outbox of their lifecycle events.
	// saga_runs is a projection of each run's stream, written in the
	// transaction of the stream's append. Times are Unix nanoseconds, 0
	// for none. The outbox keeps each envelope field by field, so that it
	// comes back exactly as written: the payload's bytes, headers as a
	// JSON object (NULL for none, apart from an empty object).
	`CREATE TABLE saga_runs (
		saga        TEXT NOT NULL,
		run_id      TEXT NOT NULL,
		status      TEXT NOT NULL,
		version     INTEGER NOT NULL,
		step        TEXT NOT NULL DEFAULT '',
		attempt     INTEGER NOT NULL DEFAULT 0,
		error       TEXT NOT NULL DEFAULT '',
		due_at      INTEGER NOT NULL DEFAULT 0,
		deadline_at INTEGER NOT NULL DEFAULT 0,
		lease_owner TEXT NOT NULL DEFAULT '',
		lease_until INTEGER NOT NULL DEFAULT 0,
		created_at  INTEGER NOT NULL,
		updated_at  INTEGER NOT NULL,
		PRIMARY KEY (saga, run_id)
	) WITHOUT ROWID;
	CREATE INDEX saga_runs_due ON saga_runs (due_at) WHERE due_at > 0;
	CREATE INDEX saga_runs_status ON saga_runs (status, saga, run_id);
	CREATE TABLE outbox (
		seq        INTEGER PRIMARY KEY AUTOINCREMENT,
		id         TEXT NOT NULL,
		topic      TEXT NOT NULL,
		event_type TEXT NOT NULL,
		payload    BLOB NOT NULL,
		key        TEXT NOT NULL DEFAULT '',
		headers    TEXT,
		attempts   INTEGER NOT NULL DEFAULT 0,
		stamped_at INTEGER NOT NULL DEFAULT 0,
		created_at INTEGER NOT NULL
	);`,

	// 3: projection checkpoints and the leases that keep one instance of
	// a projection running across processes.
	`CREATE TABLE checkpoints (
		name        TEXT PRIMARY KEY,
		commit_pos  INTEGER NOT NULL DEFAULT 0,
		prepare_pos INTEGER NOT NULL DEFAULT 0,
		lease_owner TEXT NOT NULL DEFAULT '',
		lease_until INTEGER NOT NULL DEFAULT 0,
		updated_at  INTEGER NOT NULL DEFAULT 0
	) WITHOUT ROWID;`,

	// 4: saga_runs indexes that a leased run's transitions do not write.
	// The due-time index holds free runs only (a free run has no lease
	// owner and lease_until 0), so a transition moving a leased run's
	// due_at leaves it alone; runs whose lease has expired are found by
	// the lease index. The outbox keeps AUTOINCREMENT: a Seq is never
	// reused, so a relay's MarkSent cannot remove a newer message with
	// the Seq of one another relay had removed; the sqlite_sequence page
	// it updates is written by the events' append in the same commit.
	`DROP INDEX IF EXISTS saga_runs_due;
	DROP INDEX IF EXISTS saga_runs_leased;
	CREATE INDEX saga_runs_due ON saga_runs (due_at) WHERE due_at > 0 AND lease_owner = '';
	CREATE INDEX saga_runs_leased ON saga_runs (lease_until) WHERE lease_owner <> '';`,
}

// marks are what a file says about its owner: its application ID, its
// schema version and how many tables, indexes, views and triggers it has.
type marks struct {
	appID, version, objects int64
}

// readMarks reads the marks of the file on c. It only reads.
func readMarks(c *sqlite3.Conn, path string) (marks, error) {
	var m marks
	var err error
	if m.appID, err = pragmaInt(c, "application_id"); err != nil {
		return m, openError(path, err)
	}
	if m.version, err = pragmaInt(c, "user_version"); err != nil {
		return m, openError(path, err)
	}
	if m.objects, err = queryInt(c, `SELECT count(*) FROM sqlite_schema`); err != nil {
		return m, openError(path, err)
	}
	return m, nil
}

// check says whether the file with marks m needs migrating, or why it must
// be left alone. A Nova store carries [applicationID], set in the
// transaction that creates its tables; a file without it is Nova's to
// create in only if it is empty. With skipMigrate, a file that needs
// creating or migrating fails with ErrSchemaOutdated.
func (m marks) check(path string, skipMigrate bool) (needsMigrate bool, err error) {
	switch {
	case m.appID != 0 && m.appID != applicationID:
		return false, fmt.Errorf("%w: %s belongs to another application (application ID %#x; a Nova store's is %#x)",
			ErrNotDatabase, path, m.appID, applicationID)
	case m.appID == 0 && (m.objects > 0 || m.version != 0):
		return false, fmt.Errorf("%w: %s belongs to another application: it is not empty (schema version %d) "+
			"and lacks the application ID %#x that marks a Nova store", ErrNotDatabase, path, m.version, applicationID)
	case m.version > SchemaVersion:
		return false, fmt.Errorf("%w: %s has schema version %d, this version of novasqlite supports up to %d",
			ErrSchemaTooNew, path, m.version, SchemaVersion)
	case m.version < 0:
		return false, fmt.Errorf("%w: %s has schema version %d", ErrNotDatabase, path, m.version)
	case m.appID == 0:
		if skipMigrate {
			return false, fmt.Errorf("%w: %s is an empty database, with no store yet: create one with Migrate (nova migrate)",
				ErrSchemaOutdated, path)
		}
		return true, nil
	case m.version < SchemaVersion:
		if skipMigrate {
			return false, fmt.Errorf("%w: %s has schema version %d, this version of novasqlite needs %d: "+
				"run Migrate (nova migrate), or open without SkipMigrate", ErrSchemaOutdated, path, m.version, SchemaVersion)
		}
		return true, nil
	}
	return false, nil
}

// migrate brings the file on c to [SchemaVersion] in one transaction,
// checking its marks again under the write lock.
func migrate(c *sqlite3.Conn, path string) (err error) {
	if err := c.Exec(`BEGIN IMMEDIATE`); err != nil {
		return openError(path, err)
	}
	defer func() {
		if err != nil {
			_ = c.Exec(`ROLLBACK`)
		}
	}()
	m, err := readMarks(c, path)
	if err != nil {
		return err
	}
	needed, err := m.check(path, false)
	if err != nil {
		return err
	}
	if !needed {
		return c.Exec(`COMMIT`)
	}
	for v := m.version; v < SchemaVersion; v++ {
		if err := c.Exec(migrations[v]); err != nil {
			return fmt.Errorf("novasqlite: migrate %s from schema version %d: %w", path, v, err)
		}
	}
	if err := c.Exec(fmt.Sprintf(`PRAGMA user_version = %d; PRAGMA application_id = %d`, SchemaVersion, applicationID)); err != nil {
		return fmt.Errorf("novasqlite: migrate %s: %w", path, err)
	}
	if err := c.Exec(`COMMIT`); err != nil {
		return fmt.Errorf("novasqlite: migrate %s: %w", path, err)
	}
	return nil
}

func pragmaInt(c *sqlite3.Conn, name string) (int64, error) {
	return queryInt(c, `PRAGMA `+name)
}

// queryInt returns the first column of the first row of query, 0 for none.
func queryInt(c *sqlite3.Conn, query string) (int64, error) {
	st, _, err := c.Prepare(query)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	var v int64
	if st.Step() {
		v = st.ColumnInt64(0)
	}
	return v, st.Err()
}

// openError wraps an error met while opening path, matching ErrNotDatabase
// when SQLite says the file is not a database.
func openError(path string, err error) error {
	if errors.Is(err, sqlite3.NOTADB) {
		return fmt.Errorf("%w: %s: %w", ErrNotDatabase, path, err)
	}
	return fmt.Errorf("novasqlite: open %s: %w", path, err)
}
