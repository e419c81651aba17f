package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novasqlite"
)

// ErrHoldsEvents is matched by the error [SQLite] returns for a path that
// already holds events: the benchmark never measures on, or beside, a
// store with data in it.
var ErrHoldsEvents = errors.New("bench: file already holds events")

// SQLite returns the backend of package novasqlite, measured beside the raw
// ncruces driver, for a benchmark at path.
//
// path names where to measure: the backend creates a scratch directory
// beside it (path + ".bench-*", on the same file system), gives every run
// a fresh database file in it, and removes it on [Backend.Close]. path
// itself is never written. It may be missing, an empty file, or an SQLite
// file without events; a file that holds events fails with an error
// matching [ErrHoldsEvents], and anything else that is not an SQLite
// database (a directory, another kind of file) is refused too.
//
// cfg sets the store's durability and tuning as for [novasqlite.Open]; its
// Path is ignored. The raw baseline opens its files with the same pragmas
// ([novasqlite.Pragmas]) and busy timeout.
func SQLite(path string, cfg novasqlite.Config) (Backend, error) {
	switch {
	case path == "":
		return Backend{}, nova.Invalidf("bench", "empty store path")
	case strings.IndexByte(path, 0) >= 0:
		return Backend{}, nova.Invalidf("bench", "store path %q contains a NUL byte", path)
	}
	// Absolute, so that no run file's path can read as a URI (file:...).
	path, err := filepath.Abs(path)
	if err != nil {
		return Backend{}, fmt.Errorf("bench: %w", err)
	}
	if err := checkEmpty(path); err != nil {
		return Backend{}, err
	}
	dir, err := os.MkdirTemp(filepath.Dir(path), filepath.Base(path)+".bench-")
	if err != nil {
		return Backend{}, fmt.Errorf("bench: create scratch directory beside %s: %w", path, err)
	}
	var seq atomic.Int64
	fresh := func() string {
		return filepath.Join(dir, "run-"+strconv.FormatInt(seq.Add(1), 10)+".db")
	}
	return Backend{
		Name: "sqlite",
		NovaFunc: func(ctx context.Context) (nova.Store, func() error, error) {
			c := cfg
			c.Path = fresh()
			s, err := novasqlite.Open(ctx, c)
			if err != nil {
				return nil, nil, errors.Join(fmt.Errorf("bench: %w", err), removeDB(c.Path))
			}
			return s, func() error { return errors.Join(s.Close(), removeDB(c.Path)) }, nil
		},
		RawFunc: func(ctx context.Context) (Raw, func() error, error) {
			c := cfg
			c.Path = fresh()
			r, err := newSQLiteRaw(ctx, c)
			if err != nil {
				return nil, nil, errors.Join(err, removeDB(c.Path))
			}
			return r, func() error { return errors.Join(r.Close(), removeDB(c.Path)) }, nil
		},
		ServicesFunc: storeServices,
		CloseFunc: func() error {
			if err := os.RemoveAll(dir); err != nil {
				return fmt.Errorf("bench: remove scratch directory: %w", err)
			}
			return nil
		},
	}, nil
}

// checkEmpty refuses a path that holds events or is not an SQLite file,
// reading it without writing.
func checkEmpty(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("bench: %w", err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("bench: %s is not a regular file; give the path of a new SQLite file", path)
	case fi.Size() == 0:
		return nil
	}
	// A write-ahead log beside it may hold events not yet in the file, and
	// means another process may be using it.
	if wal, err := os.Stat(path + "-wal"); err == nil && wal.Size() > 0 {
		return fmt.Errorf("%w: %s has a write-ahead log that may hold events; the benchmark needs a new path and never touches existing data", ErrHoldsEvents, path)
	}
	// immutable: read the file as it is, with no lock or shared-memory
	// file created beside it.
	uri := "file:" + (&url.URL{Path: path}).EscapedPath() + "?mode=ro&immutable=1"
	c, err := sqlite3.OpenFlags(uri, sqlite3.OPEN_READONLY|sqlite3.OPEN_URI)
	if err != nil {
		return fmt.Errorf("bench: open %s read-only: %w", path, err)
	}
	defer c.Close()
	st, _, err := c.Prepare(`SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'events'`)
	if err != nil {
		return fmt.Errorf("bench: %s is not an SQLite database, refusing to measure beside it: %w", path, err)
	}
	tables := 0
	if st.Step() {
		tables = st.ColumnInt(0)
	}
	err = errors.Join(st.Err(), st.Close())
	if err != nil {
		return fmt.Errorf("bench: %s is not an SQLite database, refusing to measure beside it: %w", path, err)
	}
	if tables == 0 {
		return nil
	}
	st, _, err = c.Prepare(`SELECT EXISTS (SELECT 1 FROM events)`)
	if err != nil {
		return fmt.Errorf("bench: read %s: %w", path, err)
	}
	defer st.Close()
	if st.Step() && st.ColumnBool(0) {
		return fmt.Errorf("%w: %s; the benchmark needs a new path and never touches existing data", ErrHoldsEvents, path)
	}
	if err := st.Err(); err != nil {
		return fmt.Errorf("bench: read %s: %w", path, err)
	}
	return nil
}

// removeDB removes an SQLite file and its WAL and shared-memory files.
func removeDB(path string) error {
	var errs []error
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("bench: %w", err))
		}
	}
	return errors.Join(errs...)
}

// sqliteRaw is the SQLite baseline: the ncruces driver used directly on a
// file whose schema novasqlite created, with novasqlite's pragmas. Every
// caller gets a connection of its own from a pool, so concurrent appends
// are concurrent transactions that take turns on SQLite's write lock.
type sqliteRaw struct {
	cfg  novasqlite.Config
	mu   sync.Mutex
	idle []*rawConn
	all  []*rawConn
}

func newSQLiteRaw(ctx context.Context, cfg novasqlite.Config) (*sqliteRaw, error) {
	// The schema, indexes and file settings are the store's own.
	s, err := novasqlite.Open(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("bench: create schema: %w", err)
	}
	if err := s.Close(); err != nil {
		return nil, fmt.Errorf("bench: create schema: %w", err)
	}
	r := &sqliteRaw{cfg: cfg}
	// Open the first connection now so open errors surface here.
	c, err := r.get(ctx)
	if err != nil {
		return nil, err
	}
	r.put(c)
	return r, nil
}

// rawConn is one connection with its prepared statements.
type rawConn struct {
	conn                                 *sqlite3.Conn
	begin, commit, rollback              *sqlite3.Stmt
	version, insert, upsert, stream, log *sqlite3.Stmt
}

const rawColumns = `position, id, stream, version, type, data, metadata, recorded_at`

func (r *sqliteRaw) get(ctx context.Context) (*rawConn, error) {
	r.mu.Lock()
	if n := len(r.idle); n > 0 {
		c := r.idle[n-1]
		r.idle = r.idle[:n-1]
		r.mu.Unlock()
		return c, nil
	}
	r.mu.Unlock()
	conn, err := sqlite3.OpenContext(ctx, r.cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("bench: open %s: %w", r.cfg.Path, err)
	}
	c := &rawConn{conn: conn}
	busy := r.cfg.BusyTimeout
	if busy == 0 {
		busy = novasqlite.DefaultBusyTimeout
	}
	err = conn.BusyTimeout(busy)
	for _, p := range novasqlite.Pragmas(r.cfg) {
		if err == nil {
			err = conn.Exec("PRAGMA " + p)
		}
	}
	for _, p := range []struct {
		st  **sqlite3.Stmt
		sql string
	}{
		{&c.begin, `BEGIN IMMEDIATE`},
		{&c.commit, `COMMIT`},
		{&c.rollback, `ROLLBACK`},
		{&c.version, `SELECT version FROM streams WHERE stream = ?`},
		{&c.insert, `INSERT INTO events (id, stream, version, type, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)`},
		{&c.upsert, `INSERT INTO streams (stream, version) VALUES (?, ?) ON CONFLICT (stream) DO UPDATE SET version = excluded.version`},
		{&c.stream, `SELECT ` + rawColumns + ` FROM events WHERE stream = ? ORDER BY version`},
		{&c.log, `SELECT ` + rawColumns + ` FROM events ORDER BY position`},
	} {
		if err == nil {
			*p.st, _, err = conn.PrepareFlags(p.sql, sqlite3.PREPARE_PERSISTENT)
		}
	}
	if err != nil {
		c.close()
		return nil, fmt.Errorf("bench: open %s: %w", r.cfg.Path, err)
	}
	r.mu.Lock()
	r.all = append(r.all, c)
	r.mu.Unlock()
	return c, nil
}

func (r *sqliteRaw) put(c *rawConn) {
	r.mu.Lock()
	r.idle = append(r.idle, c)
	r.mu.Unlock()
}

func (c *rawConn) close() error {
	// Collect first: closing a statement while iterating would skip some.
	for _, st := range slices.Collect(c.conn.Stmts()) {
		st.Close()
	}
	return c.conn.Close()
}

// Close closes every connection; none may be in use.
func (r *sqliteRaw) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for _, c := range r.all {
		errs = append(errs, c.close())
	}
	r.all, r.idle = nil, nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bench: close: %w", err)
	}
	return nil
}

// Append is one transaction: check the stream's version, insert the
// events, set the stream's version, commit.
func (r *sqliteRaw) Append(ctx context.Context, stream string, version uint64, events []nova.EventData) error {
	c, err := r.get(ctx)
	if err != nil {
		return err
	}
	defer r.put(c)
	if err := c.begin.Exec(); err != nil {
		return fmt.Errorf("bench: begin: %w", err)
	}
	if err := c.append(stream, version, events); err != nil {
		_ = c.rollback.Exec()
		return err
	}
	if err := c.commit.Exec(); err != nil {
		_ = c.rollback.Exec()
		return fmt.Errorf("bench: commit: %w", err)
	}
	return nil
}

func (c *rawConn) append(stream string, version uint64, events []nova.EventData) error {
	if err := c.version.BindText(1, stream); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	var current int64
	if c.version.Step() {
		current = c.version.ColumnInt64(0)
	}
	if err := errors.Join(c.version.Err(), c.version.Reset()); err != nil {
		return fmt.Errorf("bench: read version: %w", err)
	}
	if uint64(current) != version {
		return fmt.Errorf("bench: stream %q is at version %d, not %d", stream, current, version)
	}
	now := time.Now().UnixNano()
	var md []byte
	var lastMD nova.Metadata
	for i, e := range events {
		if i == 0 || !e.Metadata.Equal(lastMD) {
			md = nil
			if e.Metadata.CorrelationID != "" || e.Metadata.CausationID != "" || e.Metadata.Schema != 0 || len(e.Metadata.Extra) > 0 {
				b, err := json.Marshal(e.Metadata)
				if err != nil {
					return fmt.Errorf("bench: encode metadata: %w", err)
				}
				md = b
			}
			lastMD = e.Metadata
		}
		ins := c.insert
		err := errors.Join(
			ins.BindText(1, e.ID),
			ins.BindText(2, stream),
			ins.BindInt64(3, int64(version)+int64(i)+1),
			ins.BindText(4, e.Type),
			ins.BindBlob(5, e.Data),
			ins.BindInt64(7, now),
		)
		if md == nil {
			err = errors.Join(err, ins.BindNull(6))
		} else {
			err = errors.Join(err, ins.BindRawText(6, md))
		}
		if err == nil {
			err = ins.Exec()
		}
		if err != nil {
			return fmt.Errorf("bench: insert event: %w", err)
		}
	}
	err := errors.Join(c.upsert.BindText(1, stream), c.upsert.BindInt64(2, int64(version)+int64(len(events))))
	if err == nil {
		err = c.upsert.Exec()
	}
	if err != nil {
		return fmt.Errorf("bench: set stream version: %w", err)
	}
	return nil
}

func (r *sqliteRaw) ReadStream(ctx context.Context, stream string) (int, error) {
	c, err := r.get(ctx)
	if err != nil {
		return 0, err
	}
	defer r.put(c)
	if err := c.stream.BindText(1, stream); err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	return scanEvents(c.stream)
}

func (r *sqliteRaw) ReadAll(ctx context.Context) (int, error) {
	c, err := r.get(ctx)
	if err != nil {
		return 0, err
	}
	defer r.put(c)
	return scanEvents(c.log)
}

// scanEvents steps st, scanning every row into a nova.Event as a store
// does, and resets it.
func scanEvents(st *sqlite3.Stmt) (int, error) {
	n := 0
	var err error
	for st.Step() {
		e := nova.Event{
			Position:   nova.Position{Commit: uint64(st.ColumnInt64(0))},
			ID:         st.ColumnText(1),
			Stream:     st.ColumnText(2),
			Version:    uint64(st.ColumnInt64(3)),
			Type:       st.ColumnText(4),
			Data:       st.ColumnBlob(5, nil),
			RecordedAt: time.Unix(0, st.ColumnInt64(7)).UTC(),
		}
		if raw := st.ColumnRawText(6); len(raw) > 0 {
			if err = json.Unmarshal(raw, &e.Metadata); err != nil {
				err = fmt.Errorf("bench: decode metadata: %w", err)
				break
			}
		}
		if e.Version > 0 {
			n++
		}
	}
	if err == nil {
		err = st.Err()
	}
	if rerr := st.Reset(); err == nil {
		err = rerr
	}
	if err != nil {
		return n, fmt.Errorf("bench: read: %w", err)
	}
	return n, nil
}
