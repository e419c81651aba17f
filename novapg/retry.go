package novapg

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nova-go/nova"
)

// errRetry asks retry for another attempt.
var errRetry = errors.New("novapg: try again")

// Retries of a statement that failed on a broken connection: after a
// server restart the pool hands out its dead connections one by one, each
// failing at once, so the first retries do not wait long, and retrying
// goes on for retryFor.
const (
	retryFor     = 10 * time.Second
	firstBackoff = 500 * time.Microsecond
	maxBackoff   = 100 * time.Millisecond
)

// retry runs op until it succeeds, fails for good, ctx ends or the store
// closes. It runs op again after errRetry and after errors of a broken
// connection or of a transaction PostgreSQL rolled back to break a
// deadlock, for up to retryFor; op must be safe to repeat (reads, or
// appends, whose events' IDs make a repeat an idempotent retry). When
// retryFor has passed, the last such error is returned marked transient
// (see [nova.IsTransient]), for the long-running components that wait
// faults out.
func (s *Store) retry(ctx context.Context, op func() error) error {
	backoff := firstBackoff
	var deadline time.Time
	for {
		err := op()
		if err != nil && s.closed.Load() {
			return nova.ErrClosed
		}
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil || !(errors.Is(err, errRetry) || retryable(err)) {
			return err
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

// retryable reports whether err means the statement did not run to its
// end for a reason that a new attempt, on another connection, may not
// meet: the connection broke or was terminated, the server is starting or
// stopping, or the transaction was chosen to break a deadlock.
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if pgconn.SafeToRetry(err) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "40001", "40P01", "57P01", "57P02", "57P03":
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08")
	}
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}

// transient marks err as transient (see [nova.IsTransient]) when it is
// one [retryable] reports, or when broken says the connection it ran on
// is closed: a statement on a connection killed mid-transaction
// (pg_terminate_backend, a server restart) fails with whatever error the
// caller's code made of it, but the connection's state tells.
func transient(err error, broken bool) error {
	if err == nil || nova.IsTransient(err) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if broken || retryable(err) {
		return nova.Transient(err)
	}
	return err
}
