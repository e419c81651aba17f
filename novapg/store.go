package novapg

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
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

// Store is an event store in one schema of a PostgreSQL database. It is
// safe for concurrent use. Open starts its listener and notifier
// goroutines; Close stops them.
type Store struct {
	cfg       Config
	pool      *pgxpool.Pool
	ownsPool  bool
	sql       statements
	channel   string // the notification channel
	closing   chan struct{}
	closed    atomic.Bool
	closeOnce sync.Once
	wg        sync.WaitGroup
	cancel    context.CancelFunc // ends the background work's queries

	// notify is closed and replaced whenever events may have committed:
	// after an append of this store, and on every notification the
	// listener receives.
	notifyMu sync.Mutex
	notify   chan struct{}

	// lastLabel is the label of the last append this store made, which
	// ReadAll waits to have below its horizon.
	lastLabel atomic.Uint64

	// send asks the notifier for a NOTIFY; it holds at most one request.
	send chan struct{}

	// group commits the appends of Append in groups; nil when
	// Config.MaxGroup is 1.
	group *groupcommit.Group[request]
}

// Open opens the store in cfg.Schema, creating and migrating the schema
// unless cfg.SkipMigrate is set. A schema of a newer version fails with an
// error matching [ErrSchemaTooNew]. A bad cfg fails with an error matching
// nova.ErrInvalid that names the field. ctx bounds the opening only; the
// store lives until Close.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	pool, owned, err := openPool(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if cfg.SkipMigrate {
		err = checkVersion(ctx, pool, cfg.Schema)
	} else {
		_, err = migrate(ctx, pool, cfg.Schema)
	}
	if err != nil {
		if owned {
			pool.Close()
		}
		return nil, err
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Store{
		cfg:      cfg,
		pool:     pool,
		ownsPool: owned,
		sql:      newStatements(quoteIdent(cfg.Schema), marker(cfg.Schema)),
		channel:  "novapg_" + cfg.Schema,
		closing:  make(chan struct{}),
		cancel:   cancel,
		notify:   make(chan struct{}),
		send:     make(chan struct{}, 1),
	}
	if cfg.MaxGroup > 1 {
		s.group = groupcommit.New(groupcommit.Config{MaxGroup: cfg.MaxGroup, Committers: cfg.Writers, GiveUp: true, ObserveFunc: instrument.GroupCommit("novapg")}, s.commitGroup)
	}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		s.runListener(bg)
	}()
	go func() {
		defer s.wg.Done()
		s.runNotifier(bg)
	}()
	return s, nil
}

// openPool returns cfg.Pool, or a new pool from cfg.URL that the caller
// must close (owned).
func openPool(ctx context.Context, cfg Config) (pool *pgxpool.Pool, owned bool, err error) {
	if cfg.Pool != nil {
		return cfg.Pool, false, nil
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, false, validate.InvalidFieldf("novapg", "Config.URL", "%w", err)
	}
	pool, err = pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, false, fmt.Errorf("novapg: connect: %w", err)
	}
	return pool, true, nil
}

// Pool returns the pool the store uses, for queries of the caller's own
// (in transactions given to [Store.AppendTx], for example). It is the
// caller's pool when Config.Pool was set; otherwise the store closes it on
// Close.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Schema returns the schema holding the store's tables.
func (s *Store) Schema() string { return s.cfg.Schema }

// Close stops the listener and notifier, sends the notification still due
// (so other processes' subscribers learn of the last appends), and closes
// the pool when the store created it. Reads and subscriptions still
// running end with nova.ErrClosed, after the query in flight, if any.
// Calls after Close fail with nova.ErrClosed; calling Close again returns
// nil.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.closing)
		if s.group != nil {
			// Appends already queued commit; new ones get
			// nova.ErrClosed.
			s.group.Close()
		}
		s.cancel()
		s.wg.Wait()
		if s.ownsPool {
			s.pool.Close()
		}
	})
	return nil
}

// checkOpen returns nova.ErrClosed after Close.
func (s *Store) checkOpen() error {
	if s.closed.Load() {
		return nova.ErrClosed
	}
	return nil
}

// broadcast wakes every subscription waiting for new events.
func (s *Store) broadcast() {
	s.notifyMu.Lock()
	close(s.notify)
	s.notify = make(chan struct{})
	s.notifyMu.Unlock()
}

// wakeup returns the channel the next broadcast closes.
func (s *Store) wakeup() <-chan struct{} {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	return s.notify
}

// Notify tells the subscribers of every store on this schema, in this
// process and others, that events have committed. Append calls it; call
// it after committing a transaction given to [Store.AppendTx], or
// subscribers find those events only when they next poll
// ([Config.PollInterval]). It does not wait: the notification is sent by
// the store's notifier, at most one per [Config.NotifyCoalesce].
func (s *Store) Notify() {
	s.broadcast()
	select {
	case s.send <- struct{}{}:
	default: // one is already due, and will cover this commit
	}
}

// runNotifier sends one NOTIFY per request, at most one per
// NotifyCoalesce, outside every append's transaction: a NOTIFY in the
// transaction would serialize the commits of all writers on the lock
// PostgreSQL takes to queue notifications.
func (s *Store) runNotifier(ctx context.Context) {
	timer := time.NewTimer(s.cfg.NotifyCoalesce)
	defer timer.Stop()
	for {
		select {
		case <-s.send:
		case <-s.closing:
			s.flushNotify()
			return
		}
		s.sendNotify(ctx)
		timer.Reset(s.cfg.NotifyCoalesce)
		select {
		case <-timer.C:
		case <-s.closing:
			s.flushNotify()
			return
		}
	}
}

// flushNotify sends the notification still due when the store closes, so
// other processes hear of the last appends.
func (s *Store) flushNotify() {
	select {
	case <-s.send:
		s.sendNotify(context.Background())
	default:
	}
}

// sendNotify sends one NOTIFY on the store's channel, giving up after a
// second: a notification is a hint, and subscribers poll.
func (s *Store) sendNotify(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	// The notification's transaction need not wait for its commit to
	// reach the disk: a notification lost in a crash costs a poll.
	if _, err := s.pool.Exec(ctx, `SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, '')`, s.channel); err != nil && ctx.Err() == nil {
		s.cfg.Logger.Warn("novapg: notify subscribers", "schema", s.cfg.Schema, "error", err)
	}
}

// runListener holds one connection, outside the pool, that LISTENs on the
// store's channel and wakes the store's subscriptions on every
// notification: one listener for all of them. When the connection drops
// it wakes them (a notification may have been lost) and reconnects, with
// backoff, until Close.
func (s *Store) runListener(ctx context.Context) {
	backoff := 10 * time.Millisecond
	for {
		err := s.listen(ctx, func() { backoff = 10 * time.Millisecond })
		if s.closed.Load() {
			return
		}
		s.broadcast()
		s.cfg.Logger.Warn("novapg: listener connection lost, reconnecting", "schema", s.cfg.Schema, "error", err, "backoff", backoff)
		select {
		case <-time.After(backoff):
		case <-s.closing:
			return
		}
		backoff = min(2*backoff, time.Second)
	}
}

// listen connects, LISTENs and waits for notifications until the
// connection fails or the store closes. It calls listening once the
// LISTEN is in place.
func (s *Store) listen(ctx context.Context, listening func()) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer func() {
		cctx, ccancel := context.WithTimeout(context.Background(), time.Second)
		defer ccancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, `LISTEN `+quoteIdent(s.channel)); err != nil {
		return err
	}
	listening()
	// Events may have committed while no one listened.
	s.broadcast()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			if errors.Is(err, context.Canceled) && s.closed.Load() {
				return nil
			}
			return err
		}
		s.broadcast()
	}
}

// marker returns the 15 bits, never 0, that the keys of a schema's
// append guards carry above the guarded value (the low 48 bits), so that
// readers count only their store's appends among the server's advisory
// locks. Two schemas of one database that share a marker only hold each
// other's readers a little longer, never lose an event.
func marker(schema string) int64 {
	h := fnv.New32a()
	h.Write([]byte(schema))
	return int64(h.Sum32()%0x7fff) + 1
}

// noteAppend records the label of an append this store made, for ReadAll
// to wait for.
func (s *Store) noteAppend(label uint64) {
	for {
		last := s.lastLabel.Load()
		if label <= last || s.lastLabel.CompareAndSwap(last, label) {
			return
		}
	}
}
