package novamysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/go-sql-driver/mysql"
	"github.com/nova-go/nova"
	"github.com/nova-go/nova/aggregate"
	"github.com/nova-go/nova/internal/groupcommit"
	"github.com/nova-go/nova/internal/instrument"
	"github.com/nova-go/nova/internal/validate"
)

var (
	_ nova.Store              = (*Store)(nil)
	_ aggregate.SnapshotStore = (*Store)(nil)
)

// Store is an event store in MySQL or MariaDB tables. It is safe for
// concurrent use. It starts no goroutine: appends commit on their
// callers' goroutines, in groups (see the package documentation).
type Store struct {
	cfg   Config
	db    *sql.DB
	owned bool // db was opened by Open and is closed by Close

	// group commits appends in groups, up to Config.Writers at a time,
	// each group on the writer of its slot.
	group   *groupcommit.Group[request]
	writers []*writer
	// closing is closed by Close.
	closing   chan struct{}
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	// notify is closed and replaced after every commit that wrote events,
	// waking live subscriptions.
	notifyMu sync.Mutex
	notify   chan struct{}

	// readMu is held shared by every query outside the writer; Close
	// takes it exclusively to wait for them and set readsClosed.
	readMu      sync.RWMutex
	readsClosed bool

	// stmts are the statements prepared on the pool.
	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt

	q queries

	// groups counts the transactions the writer committed or tried, taken
	// the appends it took; tests read them.
	groups, taken atomic.Uint64

	// maxPacket is the server's max_allowed_packet, read by Open: no
	// event's row may be larger.
	maxPacket int64
}

// queries are the statements the store runs, with the table prefix in
// place.
type queries struct {
	lockAdd, lock, setCounter          string
	insertStream, updateStream, stream string
	lookup                             string
	forwards, backwards, all, head     string
	streams, loadSnap, saveSnap        string
	insertEvents                       string // without the VALUES rows
}

const eventColumns = `position, id, type, version, data, metadata, correlation_id, causation_id, recorded_at`

func newQueries(p string) queries {
	t := func(q string) string { return tables(p, q) }
	return queries{
		lockAdd:      t(`UPDATE {p}counter SET position = LAST_INSERT_ID(position + ?) WHERE id = 1`),
		lock:         t(`SELECT position FROM {p}counter WHERE id = 1 FOR UPDATE`),
		setCounter:   t(`UPDATE {p}counter SET position = ? WHERE id = 1`),
		insertStream: t(`INSERT INTO {p}streams (stream, version) VALUES (?, ?)`),
		updateStream: t(`UPDATE {p}streams SET version = ? WHERE stream = ? AND version = ?`),
		stream:       t(`SELECT version FROM {p}streams WHERE stream = ? FOR UPDATE`),
		lookup:       t(`SELECT ` + eventColumns + `, stream FROM {p}events WHERE id = ? FOR UPDATE`),
		forwards:     t(`SELECT ` + eventColumns + ` FROM {p}events WHERE stream = ? AND version >= ? ORDER BY version LIMIT ?`),
		backwards:    t(`SELECT ` + eventColumns + ` FROM {p}events WHERE stream = ? AND version <= ? ORDER BY version DESC LIMIT ?`),
		all:          t(`SELECT ` + eventColumns + `, stream FROM {p}events WHERE position > ? AND position <= ? ORDER BY position LIMIT ?`),
		head:         t(`SELECT COALESCE(MAX(position), 0) FROM {p}events`),
		streams:      t(`SELECT stream, version FROM {p}streams WHERE stream > ? ORDER BY stream LIMIT ?`),
		loadSnap:     t(`SELECT version, schema_version, data, recorded_at FROM {p}snapshots WHERE stream = ?`),
		saveSnap: t(`INSERT INTO {p}snapshots (stream, version, schema_version, data, recorded_at) VALUES (?, ?, ?, ?, ?)
			ON DUPLICATE KEY UPDATE
				schema_version = IF(VALUES(version) >= version, VALUES(schema_version), schema_version),
				data = IF(VALUES(version) >= version, VALUES(data), data),
				recorded_at = IF(VALUES(version) >= version, VALUES(recorded_at), recorded_at),
				version = IF(VALUES(version) >= version, VALUES(version), version)`),
		insertEvents: t(`INSERT INTO {p}events (position, id, stream, version, type, data, metadata, correlation_id, causation_id, recorded_at) VALUES `),
	}
}

// Open connects to the database of cfg, creates or migrates the store's
// tables unless cfg.SkipMigrate is set (see [Migrate]), and starts the
// writer. A bad cfg fails with an error matching nova.ErrInvalid that
// names the field; tables of a newer schema with one matching
// [ErrSchemaTooNew]; a server older than MariaDB 10.6 or MySQL 8.0.1
// with one matching [ErrServerTooOld]. ctx bounds the opening only; the store lives until
// Close.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	db, owned, err := openDB(cfg)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Store, error) {
		if owned {
			db.Close()
		}
		return nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		return fail(fmt.Errorf("novamysql: connect: %w", err))
	}
	var maxPacket int64
	if err := db.QueryRowContext(ctx, `SELECT @@max_allowed_packet`).Scan(&maxPacket); err != nil {
		return fail(fmt.Errorf("novamysql: read max_allowed_packet: %w", err))
	}
	if err := checkServer(ctx, db); err != nil {
		return fail(err)
	}
	if cfg.SkipMigrate {
		err = checkVersion(ctx, db, cfg.TablePrefix)
	} else {
		_, err = migrate(ctx, db, cfg.TablePrefix)
	}
	if err != nil {
		return fail(err)
	}
	s := &Store{
		cfg:       cfg,
		db:        db,
		owned:     owned,
		closing:   make(chan struct{}),
		notify:    make(chan struct{}),
		q:         newQueries(cfg.TablePrefix),
		stmts:     make(map[string]*sql.Stmt),
		maxPacket: maxPacket,
	}
	for range cfg.Writers {
		s.writers = append(s.writers, &writer{s: s})
	}
	s.group = groupcommit.New(groupcommit.Config{MaxGroup: cfg.MaxGroup, Committers: cfg.Writers, ObserveFunc: instrument.GroupCommit("novamysql")}, s.commitGroup)
	return s, nil
}

// openDB returns cfg.DB, or a pool opened from cfg.DSN that the caller
// must close (owned).
func openDB(cfg Config) (db *sql.DB, owned bool, err error) {
	if cfg.DB != nil {
		return cfg.DB, false, nil
	}
	dsn, err := driverDSN(cfg.DSN)
	if err != nil {
		return nil, false, validate.InvalidFieldf("novamysql", "Config.DSN", "%w", err)
	}
	mc, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, false, validate.InvalidFieldf("novamysql", "Config.DSN", "%w", err)
	}
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, false, fmt.Errorf("novamysql: %w", err)
	}
	db = sql.OpenDB(conn)
	// Keep connections for the readers rather than reopening one per
	// page; database/sql keeps only 2 idle by default.
	db.SetMaxIdleConns(16)
	return db, true, nil
}

// DB returns the pool the store uses: cfg.DB, or the one Open opened from
// cfg.DSN, which Close closes.
func (s *Store) DB() *sql.DB { return s.db }

// TablePrefix returns the prefix of the store's tables.
func (s *Store) TablePrefix() string { return s.cfg.TablePrefix }

// Close releases the store's connections. Appends already queued are
// committed first and get their results;
// appends made during or after Close fail with nova.ErrClosed, as do later
// reads. Running subscriptions end with nova.ErrClosed; Close waits for
// reads that are fetching a page. A pool opened from Config.DSN is closed;
// Config.DB is left open. A writer waiting for the counter row's lock,
// held by a transaction of AppendTx, waits for it to end (or for the
// server's innodb_lock_wait_timeout) before Close returns. Calling Close
// again returns the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.closing)
		// The appends already queued commit first.
		s.group.Close()
		for _, w := range s.writers {
			w.release()
		}
		s.readMu.Lock()
		s.readsClosed = true
		s.readMu.Unlock()
		err := s.closeStmts()
		if s.owned {
			err = errors.Join(err, s.db.Close())
		}
		if err != nil {
			s.closeErr = fmt.Errorf("novamysql: close: %w", err)
		}
	})
	return s.closeErr
}

// broadcast wakes every subscription waiting for new events.
func (s *Store) broadcast() {
	s.notifyMu.Lock()
	close(s.notify)
	s.notify = make(chan struct{})
	s.notifyMu.Unlock()
}

// wakeup returns the channel the next commit closes.
func (s *Store) wakeup() <-chan struct{} {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	return s.notify
}

// Notify wakes the store's live subscriptions at once, as an append
// through the store does. Call it after committing a transaction that
// appended with [Store.AppendTx], so subscribers need not wait for their
// next poll. It is only a hint: subscriptions read what is committed.
func (s *Store) Notify() { s.broadcast() }

// mysqlCode returns the server's error number of err, 0 when err is not
// an error from the server.
func mysqlCode(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// Error numbers the store handles.
const (
	errDupKey = 1062 // ER_DUP_ENTRY
)
