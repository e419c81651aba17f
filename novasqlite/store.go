package novasqlite

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"

	"github.com/ncruces/go-sqlite3"
	"github.com/nova-go/nova"
	"github.com/nova-go/nova/aggregate"
	"github.com/nova-go/nova/internal/groupcommit"
	"github.com/nova-go/nova/internal/instrument"
)

var (
	_ nova.Store              = (*Store)(nil)
	_ aggregate.SnapshotStore = (*Store)(nil)
)

// Store is an event store in one SQLite file. It is safe for concurrent
// use. It starts no goroutine: appends commit on their callers'
// goroutines, one leader at a time (see the package documentation).
type Store struct {
	cfg Config

	// w is the writing connection. Only the leader of a batch uses it;
	// Close closes it once the last batch is committed.
	w *writer
	// group commits writes in batches, on the callers' goroutines, one
	// batch at a time.
	group *groupcommit.Group[request]

	// closing is closed by Close.
	closing   chan struct{}
	closeOnce sync.Once
	closeErr  error

	// notify is closed and replaced after every commit that wrote events,
	// waking live subscriptions.
	notifyMu sync.Mutex
	notify   chan struct{}

	readers readerPool

	// groups counts the transactions begun, taken the requests claimed
	// by them; tests read them.
	groups, taken atomic.Uint64
}

// Open opens or creates the store file cfg.Path, creating or migrating its
// schema, and prepares its writing connection. With cfg.SkipMigrate it
// only opens an existing store at [SchemaVersion], and fails with an error
// matching [ErrSchemaOutdated] otherwise. Opening a file of a newer schema
// fails with an error matching [ErrSchemaTooNew]; a file that is not a
// Nova store (not an SQLite database, or another application's) with one
// matching [ErrNotDatabase], and Open leaves such files as they were. A
// bad cfg fails with an error matching nova.ErrInvalid that names the
// field. ctx bounds the opening only; the store lives until Close.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()

	conn, err := openWriterConn(ctx, cfg)
	if err != nil {
		return nil, err
	}
	w, err := newWriter(conn, cfg)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("novasqlite: open %s: prepare writer: %w", cfg.Path, err)
	}
	s := &Store{
		cfg:     cfg,
		w:       w,
		closing: make(chan struct{}),
		notify:  make(chan struct{}),
	}
	s.group = groupcommit.New(groupcommit.Config{MaxGroup: cfg.MaxGroup, GiveUp: true, ObserveFunc: instrument.GroupCommit("novasqlite")}, s.commit)
	s.readers.init(cfg, s.closing)
	return s, nil
}

// Migrate creates the store file cfg.Path when it is missing, or brings
// its schema up to [SchemaVersion], and returns that version; it is what
// nova migrate runs. cfg.SkipMigrate is ignored. Errors are Open's.
func Migrate(ctx context.Context, cfg Config) (int, error) {
	cfg.SkipMigrate = false
	s, err := Open(ctx, cfg)
	if err != nil {
		return 0, err
	}
	return SchemaVersion, s.Close()
}

// IsStore reports whether the file at path is a Nova store: an SQLite
// database that carries Nova's application ID, which Open sets in the
// transaction that creates a store's tables. It opens the file read-only
// and changes nothing. A missing file, a file that is not an SQLite
// database, another application's database and an empty one are not
// stores (false and no error). Tools that delete a store check it first.
func IsStore(ctx context.Context, path string) (bool, error) {
	if err := (Config{Path: path}).validate(); err != nil {
		return false, err
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	c, err := sqlite3.OpenFlags(path, sqlite3.OPEN_READONLY)
	if err != nil {
		return false, openError(path, err)
	}
	defer c.Close()
	id, err := pragmaInt(c, "application_id")
	if errors.Is(err, sqlite3.NOTADB) {
		return false, nil
	}
	if err != nil {
		return false, openError(path, err)
	}
	return id == applicationID, nil
}

// openWriterConn opens the writing connection: it checks the file's marks
// before anything writes to it (the WAL pragma rewrites a file's header),
// then sets the pragmas and creates or migrates the schema.
func openWriterConn(ctx context.Context, cfg Config) (*sqlite3.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("novasqlite: open %s: %w", cfg.Path, err)
	}
	flags := sqlite3.OPEN_READWRITE | sqlite3.OPEN_CREATE
	if cfg.SkipMigrate {
		if _, err := os.Stat(cfg.Path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s does not exist", ErrSchemaOutdated, cfg.Path)
		}
		flags = sqlite3.OPEN_READWRITE
	}
	c, err := sqlite3.OpenFlags(cfg.Path, flags)
	if err != nil {
		return nil, openError(cfg.Path, err)
	}
	fail := func(err error) (*sqlite3.Conn, error) {
		c.Close()
		return nil, err
	}
	if err := c.BusyTimeout(cfg.BusyTimeout); err != nil {
		return fail(openError(cfg.Path, err))
	}
	m, err := readMarks(c, cfg.Path)
	if err != nil {
		return fail(err)
	}
	needsMigrate, err := m.check(cfg.Path, cfg.SkipMigrate)
	if err != nil {
		return fail(err)
	}
	if err := setPragmas(c, cfg); err != nil {
		return fail(err)
	}
	if needsMigrate {
		if err := migrate(c, cfg.Path); err != nil {
			return fail(err)
		}
	}
	return c, nil
}

// openConn opens one connection to cfg.Path, an existing store, with the
// store's pragmas.
func openConn(ctx context.Context, cfg Config) (*sqlite3.Conn, error) {
	c, err := sqlite3.OpenContext(ctx, cfg.Path)
	if err != nil {
		return nil, openError(cfg.Path, err)
	}
	if err := c.BusyTimeout(cfg.BusyTimeout); err != nil {
		c.Close()
		return nil, openError(cfg.Path, err)
	}
	if err := setPragmas(c, cfg); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// setPragmas runs [Pragmas](cfg) on c.
func setPragmas(c *sqlite3.Conn, cfg Config) error {
	for _, p := range Pragmas(cfg) {
		if err := c.Exec("PRAGMA " + p); err != nil {
			return openError(cfg.Path, err)
		}
	}
	return nil
}

// Close closes every connection. Appends already received are committed
// first and get their results; appends made during or after Close fail
// with nova.ErrClosed, as do later reads. Running reads and subscriptions
// end with nova.ErrClosed. Close waits for reads that are fetching a page
// to finish it. Calling Close again returns the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		// The leaders commit what was queued first.
		s.group.Close()
		s.w.close()
		s.closeErr = s.readers.close()
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

// readerPool hands out reader connections, opening up to max of them on
// demand. A connection is held only while a page is fetched.
type readerPool struct {
	cfg     Config
	closing <-chan struct{}
	sem     chan struct{}
	mu      sync.Mutex
	idle    []*reader
	closed  bool
}

func (p *readerPool) init(cfg Config, closing <-chan struct{}) {
	p.cfg = cfg
	p.closing = closing
	p.sem = make(chan struct{}, cfg.MaxReaders)
}

// get returns a reader connection, waiting while all are busy.
func (p *readerPool) get(ctx context.Context) (*reader, error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.closing:
		return nil, nova.ErrClosed
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.sem
		return nil, nova.ErrClosed
	}
	if n := len(p.idle); n > 0 {
		r := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return r, nil
	}
	p.mu.Unlock()
	r, err := newReader(ctx, p.cfg)
	if err != nil {
		<-p.sem
		return nil, err
	}
	return r, nil
}

// put returns r to the pool, or closes it when the pool is closed.
func (p *readerPool) put(r *reader) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		r.close()
	} else {
		p.idle = append(p.idle, r)
		p.mu.Unlock()
	}
	<-p.sem
}

// close closes idle connections after waiting for busy ones to come back.
func (p *readerPool) close() error {
	for range cap(p.sem) {
		p.sem <- struct{}{}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	var errs []error
	for _, r := range p.idle {
		errs = append(errs, r.close())
	}
	p.idle = nil
	return errors.Join(errs...)
}
