package bench

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novamysql"
)

// MySQL returns the backend of package novamysql, measured beside a
// hand-written database/sql baseline on the same driver, for a benchmark
// on the server dsn names (a go-sql-driver DSN or a mysql:// URL).
//
// Every run, Nova's and the baseline's alike, gets a scratch database of
// its own (nova_bench_ and random hex), created on the server and dropped
// after the run, so the benchmark never reads or writes the database the
// DSN names. The user must be allowed to create and drop databases. Both
// sides use the tables novamysql creates (cfg.TablePrefix, default
// "nova_"), the same driver settings and the session's default isolation
// level. cfg sets the store's tuning as for [novamysql.Open]; its DB and
// DSN are ignored.
//
// The baseline's append is what a careful engineer writes by hand for the
// same guarantees, one transaction per append on a pooled connection with
// prepared statements: BEGIN; take the counter row's lock and allocate
// positions (UPDATE counter SET position = LAST_INSERT_ID(position + n));
// move the stream's row with its version check (INSERT for a new stream,
// UPDATE ... WHERE version = ? otherwise); INSERT the events in one
// statement; COMMIT. Its appends serialize on the counter row exactly as
// the store's do, one commit each.
func MySQL(dsn string, cfg novamysql.Config) (Backend, error) {
	if dsn == "" {
		return Backend{}, nova.Invalidf("bench", "empty MySQL DSN")
	}
	if strings.HasPrefix(dsn, "mysql://") {
		d, err := novamysql.ParseURL(dsn)
		if err != nil {
			return Backend{}, fmt.Errorf("bench: %w", err)
		}
		dsn = d
	}
	base, err := mysql.ParseDSN(dsn)
	if err != nil {
		return Backend{}, nova.Invalidf("bench", "MySQL DSN: %v", err)
	}
	admin, err := sql.Open("mysql", dsn)
	if err != nil {
		return Backend{}, fmt.Errorf("bench: %w", err)
	}
	prefix := cfg.TablePrefix
	if prefix == "" {
		prefix = novamysql.DefaultTablePrefix
	}
	// scratch creates a database and returns a DSN for it and the
	// function that drops it.
	scratch := func(ctx context.Context) (string, func() error, error) {
		var b [8]byte
		rand.Read(b[:])
		name := "nova_bench_" + hex.EncodeToString(b[:])
		if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
			return "", nil, fmt.Errorf("bench: create scratch database: %w", err)
		}
		drop := func() error {
			if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name); err != nil {
				return fmt.Errorf("bench: drop scratch database %s: %w", name, err)
			}
			return nil
		}
		c := base.Clone()
		c.DBName = name
		return c.FormatDSN(), drop, nil
	}
	return Backend{
		Name: "mysql",
		NovaFunc: func(ctx context.Context) (nova.Store, func() error, error) {
			dsn, drop, err := scratch(ctx)
			if err != nil {
				return nil, nil, err
			}
			c := cfg
			c.DB, c.DSN = nil, dsn
			s, err := novamysql.Open(ctx, c)
			if err != nil {
				return nil, nil, errors.Join(fmt.Errorf("bench: %w", err), drop())
			}
			return s, func() error { return errors.Join(s.Close(), drop()) }, nil
		},
		RawFunc: func(ctx context.Context) (Raw, func() error, error) {
			dsn, drop, err := scratch(ctx)
			if err != nil {
				return nil, nil, err
			}
			r, err := newMySQLRaw(ctx, dsn, prefix)
			if err != nil {
				return nil, nil, errors.Join(err, drop())
			}
			return r, func() error { return errors.Join(r.Close(), drop()) }, nil
		},
		CloseFunc:    admin.Close,
		ServicesFunc: storeServices,
		workerSpecFunc: func(ctx context.Context, s nova.Store) (workerSpec, error) {
			ms := s.(*novamysql.Store)
			c := base.Clone()
			if err := ms.DB().QueryRowContext(ctx, `SELECT DATABASE()`).Scan(&c.DBName); err != nil {
				return workerSpec{}, fmt.Errorf("bench: read the scratch database's name: %w", err)
			}
			return workerSpec{Backend: "mysql", URL: c.FormatDSN(), TablePrefix: ms.TablePrefix()}, nil
		},
	}, nil
}

// mysqlRaw is the MySQL baseline: database/sql with prepared statements on
// the tables novamysql created.
type mysqlRaw struct {
	db *sql.DB

	lockAdd, insertStream, updateStream, stream, log *sql.Stmt

	mu      sync.Mutex
	inserts map[int]*sql.Stmt // INSERT of n events
	insertQ string
}

const mysqlRawColumns = `position, id, stream, version, type, data, metadata, correlation_id, causation_id, recorded_at`

func newMySQLRaw(ctx context.Context, dsn, prefix string) (*mysqlRaw, error) {
	// The schema is the store's own.
	if _, err := novamysql.Migrate(ctx, novamysql.Config{DSN: dsn, TablePrefix: prefix}); err != nil {
		return nil, fmt.Errorf("bench: create schema: %w", err)
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	db.SetMaxIdleConns(16) // as the store's own pool
	r := &mysqlRaw{db: db, inserts: make(map[int]*sql.Stmt)}
	t := func(q string) string { return strings.ReplaceAll(q, "{p}", prefix) }
	r.insertQ = t(`INSERT INTO {p}events (position, id, stream, version, type, data, metadata, correlation_id, causation_id, recorded_at) VALUES `)
	for _, p := range []struct {
		st **sql.Stmt
		q  string
	}{
		{&r.lockAdd, t(`UPDATE {p}counter SET position = LAST_INSERT_ID(position + ?) WHERE id = 1`)},
		{&r.insertStream, t(`INSERT INTO {p}streams (stream, version) VALUES (?, ?)`)},
		{&r.updateStream, t(`UPDATE {p}streams SET version = ? WHERE stream = ? AND version = ?`)},
		{&r.stream, t(`SELECT ` + mysqlRawColumns + ` FROM {p}events WHERE stream = ? ORDER BY version`)},
		{&r.log, t(`SELECT ` + mysqlRawColumns + ` FROM {p}events ORDER BY position`)},
	} {
		if *p.st, err = db.PrepareContext(ctx, p.q); err != nil {
			r.Close()
			return nil, fmt.Errorf("bench: prepare: %w", err)
		}
	}
	return r, nil
}

// Close closes the statements and the pool.
func (r *mysqlRaw) Close() error {
	var errs []error
	for _, st := range []*sql.Stmt{r.lockAdd, r.insertStream, r.updateStream, r.stream, r.log} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	r.mu.Lock()
	for _, st := range r.inserts {
		errs = append(errs, st.Close())
	}
	r.inserts = nil
	r.mu.Unlock()
	errs = append(errs, r.db.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bench: close: %w", err)
	}
	return nil
}

// insert returns the prepared INSERT of n events.
func (r *mysqlRaw) insert(ctx context.Context, n int) (*sql.Stmt, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if st, ok := r.inserts[n]; ok {
		return st, nil
	}
	q := r.insertQ + "(?,?,?,?,?,?,?,?,?,?)" + strings.Repeat(",(?,?,?,?,?,?,?,?,?,?)", n-1)
	st, err := r.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	r.inserts[n] = st
	return st, nil
}

// Append is one transaction: lock the counter and allocate, check and move
// the stream's version, insert the events, commit.
func (r *mysqlRaw) Append(ctx context.Context, stream string, version uint64, events []nova.EventData) (err error) {
	n := len(events)
	ins, err := r.insert(ctx, n)
	if err != nil {
		return fmt.Errorf("bench: prepare insert: %w", err)
	}
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("bench: begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	res, err := tx.StmtContext(ctx, r.lockAdd).ExecContext(ctx, n)
	if err != nil {
		return fmt.Errorf("bench: lock counter: %w", err)
	}
	last, err := res.LastInsertId()
	if err != nil {
		return fmt.Errorf("bench: lock counter: %w", err)
	}
	first := uint64(last) - uint64(n) + 1
	if version == 0 {
		_, err = tx.StmtContext(ctx, r.insertStream).ExecContext(ctx, stream, n)
	} else {
		res, err = tx.StmtContext(ctx, r.updateStream).ExecContext(ctx, version+uint64(n), stream, version)
		if err == nil {
			var k int64
			if k, err = res.RowsAffected(); err == nil && k != 1 {
				err = fmt.Errorf("stream %q is not at version %d", stream, version)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("bench: set stream version: %w", err)
	}
	now := time.Now().UTC().Format("2006-01-02 15:04:05.000000")
	args := make([]any, 0, 10*n)
	for i, e := range events {
		var md, corr, caus any
		if e.Metadata.CorrelationID != "" {
			corr = e.Metadata.CorrelationID
		}
		if e.Metadata.CausationID != "" {
			caus = e.Metadata.CausationID
		}
		if e.Metadata.Schema != 0 || len(e.Metadata.Extra) > 0 {
			b, err := json.Marshal(struct {
				Schema int               `json:"schema,omitempty"`
				Extra  map[string]string `json:"extra,omitempty"`
			}{e.Metadata.Schema, e.Metadata.Extra})
			if err != nil {
				return fmt.Errorf("bench: encode metadata: %w", err)
			}
			md = string(b)
		}
		data := e.Data
		if data == nil {
			data = []byte{}
		}
		args = append(args, first+uint64(i), e.ID, stream, version+uint64(i)+1, e.Type, data, md, corr, caus, now)
	}
	if _, err = tx.StmtContext(ctx, ins).ExecContext(ctx, args...); err != nil {
		return fmt.Errorf("bench: insert events: %w", err)
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("bench: commit: %w", err)
	}
	return nil
}

func (r *mysqlRaw) ReadStream(ctx context.Context, stream string) (int, error) {
	rows, err := r.stream.QueryContext(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("bench: read: %w", err)
	}
	return scanMySQLEvents(rows)
}

func (r *mysqlRaw) ReadAll(ctx context.Context) (int, error) {
	rows, err := r.log.QueryContext(ctx)
	if err != nil {
		return 0, fmt.Errorf("bench: read: %w", err)
	}
	return scanMySQLEvents(rows)
}

// scanMySQLEvents reads every row into a nova.Event as a store does, and
// closes rows.
func scanMySQLEvents(rows *sql.Rows) (int, error) {
	defer rows.Close()
	n := 0
	for rows.Next() {
		var (
			e          nova.Event
			md         []byte
			corr, caus sql.NullString
			at         any
		)
		if err := rows.Scan(&e.Position.Commit, &e.ID, &e.Stream, &e.Version, &e.Type, &e.Data, &md, &corr, &caus, &at); err != nil {
			return n, fmt.Errorf("bench: read: %w", err)
		}
		e.Metadata.CorrelationID, e.Metadata.CausationID = corr.String, caus.String
		if len(md) > 0 {
			if err := json.Unmarshal(md, &e.Metadata); err != nil {
				return n, fmt.Errorf("bench: decode metadata: %w", err)
			}
		}
		switch at := at.(type) {
		case time.Time: // parseTime=true
			e.RecordedAt = at.UTC()
		case []byte:
			t, err := time.ParseInLocation("2006-01-02 15:04:05.999999", string(at), time.UTC)
			if err != nil {
				return n, fmt.Errorf("bench: read time: %w", err)
			}
			e.RecordedAt = t
		}
		if e.Version > 0 {
			n++
		}
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("bench: read: %w", err)
	}
	return n, nil
}
