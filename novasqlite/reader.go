package novasqlite

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/nova-go/nova"
)

// reader is one read-only connection with its prepared statements. The
// pool lends it to one goroutine at a time, for one page.
type reader struct {
	conn *sqlite3.Conn

	forwards, backwards, all, head, streams, snapshot *sqlite3.Stmt

	// types interns event type names, which repeat across events.
	types map[string]string
	// recent holds the last metadata strings read (correlation and
	// causation IDs), which consecutive events often share; metaString
	// returns them instead of new copies.
	recent     [2]string
	metaString func([]byte) string
}

const eventColumns = `position, id, type, version, data, metadata, recorded_at`

func newReader(ctx context.Context, cfg Config) (*reader, error) {
	conn, err := openConn(ctx, cfg)
	if err != nil {
		return nil, err
	}
	r := &reader{conn: conn, types: make(map[string]string)}
	r.metaString = r.shared
	if err := conn.Exec(`PRAGMA query_only = 1`); err != nil {
		r.close()
		return nil, openError(cfg.Path, err)
	}
	for _, p := range []struct {
		st  **sqlite3.Stmt
		sql string
	}{
		{&r.forwards, `SELECT ` + eventColumns + ` FROM events WHERE stream = ? AND version >= ? ORDER BY version LIMIT ?`},
		{&r.backwards, `SELECT ` + eventColumns + ` FROM events WHERE stream = ? AND version <= ? ORDER BY version DESC LIMIT ?`},
		{&r.all, `SELECT ` + eventColumns + `, stream FROM events WHERE position > ? AND position <= ? ORDER BY position LIMIT ?`},
		{&r.head, `SELECT COALESCE(MAX(position), 0) FROM events`},
		{&r.streams, `SELECT stream, version FROM streams WHERE stream > ? ORDER BY stream LIMIT ?`},
		{&r.snapshot, `SELECT version, schema, data, recorded_at FROM snapshots WHERE stream = ?`},
	} {
		st, _, err := conn.PrepareFlags(p.sql, sqlite3.PREPARE_PERSISTENT)
		if err != nil {
			r.close()
			return nil, fmt.Errorf("novasqlite: prepare reader: %w", err)
		}
		*p.st = st
	}
	return r, nil
}

func (r *reader) close() error {
	for _, st := range slices.Collect(r.conn.Stmts()) {
		st.Close()
	}
	return r.conn.Close()
}

// intern returns b as a string, shared with earlier equal names.
func (r *reader) intern(b []byte) string {
	if s, ok := r.types[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(r.types) < 1024 {
		r.types[s] = s
	}
	return s
}

// shared returns b as a string, reusing one of the last two returned.
func (r *reader) shared(b []byte) string {
	for _, s := range r.recent {
		if s == string(b) {
			return s
		}
	}
	s := string(b)
	r.recent[1], r.recent[0] = r.recent[0], s
	return s
}

// scan reads the event columns of the current row into e, leaving Stream.
func (r *reader) scan(st *sqlite3.Stmt, e *nova.Event) error {
	e.Position = nova.Position{Commit: uint64(st.ColumnInt64(0))}
	e.ID = string(st.ColumnRawText(1))
	e.Type = r.intern(st.ColumnRawText(2))
	e.Version = uint64(st.ColumnInt64(3))
	e.Data = cloneBytes(st.ColumnRawBlob(4))
	e.Metadata = nova.Metadata{}
	if raw := st.ColumnRawText(5); len(raw) > 0 {
		md, err := decodeMetadata(raw, r.metaString)
		if err != nil {
			return fmt.Errorf("novasqlite: decode metadata of event at position %d: %w", e.Position.Commit, err)
		}
		e.Metadata = md
	}
	e.RecordedAt = time.Unix(0, st.ColumnInt64(6)).UTC()
	return nil
}

// query lends a reader to fn, with ctx interrupting its queries. It maps
// an interrupted query to ctx.Err(), and marks a database busy or locked
// past BusyTimeout as transient (see [markTransient]), as appends do.
// Every read goes through it.
func (s *Store) query(ctx context.Context, fn func(r *reader) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r, err := s.readers.get(ctx)
	if err != nil {
		return markTransient(err)
	}
	r.conn.SetInterrupt(ctx)
	err = fn(r)
	r.conn.SetInterrupt(context.Background())
	s.readers.put(r)
	if err != nil && ctx.Err() != nil && errors.Is(err, sqlite3.INTERRUPT) {
		return ctx.Err()
	}
	return markTransient(err)
}

// rows steps st, bound by the caller, calling row for each result, and
// resets it.
func rows(st *sqlite3.Stmt, row func() error) error {
	var err error
	for st.Step() {
		if err = row(); err != nil {
			break
		}
	}
	if err == nil {
		err = st.Err()
	}
	if rerr := st.Reset(); err == nil {
		err = rerr
	}
	return err
}
