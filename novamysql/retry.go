package novamysql

import (
	"context"
	"database/sql"
	"time"

	"github.com/nova-go/nova"
)

// Retries of a run store's or checkpoint store's call that failed on a
// broken connection or lost a deadlock: after a server restart the pool
// hands out its dead connections one by one, each failing at once, so
// the first retries do not wait long, and retrying goes on for retryFor.
const (
	retryFor     = 10 * time.Second
	firstBackoff = time.Millisecond
	maxBackoff   = 100 * time.Millisecond
)

// errLockDeadlock is ER_LOCK_DEADLOCK: InnoDB rolled the whole
// transaction back to break a deadlock.
const errLockDeadlock = 1213

// retry runs op on the pool until it succeeds, fails for good, ctx ends
// or the store closes. op runs again after an error of a broken
// connection, or of a transaction InnoDB rolled back to break a
// deadlock, for up to retryFor; it must be safe to repeat (reads, and
// writes that find out on a repeat what the first attempt did). An error
// still retryable after retryFor, and any other a later call may cure,
// is returned marked transient (see [markTransient]).
//
// op runs holding the store's read lock, which Close waits for: it must
// not call anything that takes the lock again.
func (s *Store) retry(ctx context.Context, op func() error) error {
	backoff := firstBackoff
	var deadline time.Time
	for {
		err := s.use(op)
		switch {
		case err == nil:
			return nil
		case s.closed.Load():
			return nova.ErrClosed
		case ctx.Err() != nil:
			return ctx.Err()
		case !isConnError(err) && mysqlCode(err) != errLockDeadlock:
			return markTransient(err)
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(retryFor)
		} else if time.Now().After(deadline) {
			return nova.Transient(err)
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closing:
			return nova.ErrClosed
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// use runs op, which uses the store's pool, unless the store is closed;
// Close waits for it to return.
func (s *Store) use(op func() error) error {
	s.readMu.RLock()
	defer s.readMu.RUnlock()
	if s.readsClosed || s.closed.Load() {
		return nova.ErrClosed
	}
	return op()
}

// inTx runs f in a transaction on the pool and commits it, or rolls it
// back when f fails or panics.
func (s *Store) inTx(ctx context.Context, f func(tx *sql.Tx) error) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if v := recover(); v != nil {
			_ = tx.Rollback()
			panic(v)
		}
	}()
	if err := f(tx); err != nil {
		// A rollback that fails leaves the connection to database/sql,
		// which discards a broken one.
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}
