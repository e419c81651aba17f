package novasqlite

import (
	"context"

	"github.com/ncruces/go-sqlite3"
	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/projectiondriver"
	"github.com/nova-go/nova/internal/validate"
)

// TxFunc runs inside a write transaction of the store, on its one writing
// connection. It may run any statement on c but must not begin, commit or
// roll back a transaction, keep c after it returns, or block: every other
// writer of the store waits for it. It may run more than once for one
// call (when the group it commits with is written again after another
// member failed), so it must do the same thing each time and touch nothing
// but c. An error from it undoes its writes and the call's append, and is
// returned to the caller as is; so does a panic, recovered as a
// *nova.PanicError. A TxFunc that blocks holds up the calls in its group,
// but those whose context ends give up their place and return (see the
// package documentation).
type TxFunc func(c *sqlite3.Conn) error

// txError marks an error returned by a TxFunc.
type txError struct{ err error }

func (e *txError) Error() string { return e.err.Error() }
func (e *txError) Unwrap() error { return e.err }

// AppendTx appends events to stream as [Store.Append] does and runs fn in
// the same transaction, after the append: both commit or neither does.
// This is how the packages built on the store (saga runs and their outbox,
// projection checkpoints and SQL read models) keep their rows in step with
// the events. The append may share a group commit with others.
//
// The append is checked first; a version conflict or bad input returns its
// error without running fn. An append that turns out to be an idempotent
// retry (every event ID already stored, in place) returns a result with
// Duplicate set and fn's writes undone: the earlier call that stored the
// events is the one whose fn counted.
func (s *Store) AppendTx(ctx context.Context, stream string, expected nova.ExpectedVersion, events []nova.EventData, fn TxFunc) (nova.AppendResult, error) {
	evs, err := validate.Append(stream, events)
	if err != nil {
		return nova.AppendResult{}, err
	}
	r := &request{kind: kindTx, stream: stream, expected: expected, events: evs, fn: fn}
	if err := s.do(ctx, r); err != nil {
		return nova.AppendResult{}, err
	}
	return r.res, r.err
}

// WriteTx runs fn in a write transaction of the store, with no append. It
// may share a group commit with appends.
func (s *Store) WriteTx(ctx context.Context, fn TxFunc) error {
	r := &request{kind: kindTx, fn: fn}
	if err := s.do(ctx, r); err != nil {
		return err
	}
	return r.err
}

// ReadTx runs fn on one of the store's reading connections, inside a read
// transaction, so that everything fn reads is one consistent snapshot.
// fn must not write or keep c, and must close the statements it prepares.
// A panic in fn is its call's error, a *nova.PanicError; the connection
// ends its transaction and goes back to the pool.
func (s *Store) ReadTx(ctx context.Context, fn func(c *sqlite3.Conn) error) error {
	return s.query(ctx, func(r *reader) error {
		if err := r.conn.Exec(`BEGIN`); err != nil {
			return err
		}
		err := callRead(fn, r.conn)
		// COMMIT runs even when ctx is done: interrupted, it would leave
		// the connection inside the transaction, on a stale snapshot.
		r.conn.SetInterrupt(context.Background())
		if cerr := r.conn.Exec(`COMMIT`); err == nil {
			err = cerr
		}
		return err
	})
}

// callRead runs fn under recover. After a panic, the statements fn left
// stepping are reset, so that the transaction can end.
func callRead(fn func(c *sqlite3.Conn) error, c *sqlite3.Conn) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = nova.NewPanicError(v)
			resetStmts(c)
		}
	}()
	return fn(c)
}

// resetStmts resets every statement of c still stepping.
func resetStmts(c *sqlite3.Conn) {
	for st := range c.Stmts() {
		if st.Busy() {
			_ = st.Reset()
		}
	}
}

type txKey struct{}

// WithTx returns a ctx carrying c, the connection of a write transaction
// of the store, for read-model code running inside a [TxFunc]: the
// package's read-model helpers (the query store, the checkpoints) write
// through it instead of starting a transaction of their own.
func WithTx(ctx context.Context, c *sqlite3.Conn) context.Context {
	return context.WithValue(ctx, txKey{}, c)
}

// TxFromContext returns the connection [WithTx] put in ctx, if any.
//
// Inside a projection's checkpoint commit, the query store buffers its
// writes and writes them out at the end of the batch of events; a
// handler that runs SQL of its own calls TxFromContext for each use, and
// TxFromContext first writes out what the query store holds, so that
// the handler's statements see (and come after) the writes before them.
// A write that fails then fails the commit.
func TxFromContext(ctx context.Context) (*sqlite3.Conn, bool) {
	c, ok := txFrom(ctx)
	if ok {
		if b := projectiondriver.BatchFrom(ctx); b != nil {
			_ = b.Flush(ctx) // a failure is kept: the batch's commit fails with it
		}
	}
	return c, ok
}

// txFrom returns the connection [WithTx] put in ctx, if any, leaving a
// projection's buffered writes buffered.
func txFrom(ctx context.Context) (*sqlite3.Conn, bool) {
	c, ok := ctx.Value(txKey{}).(*sqlite3.Conn)
	return c, ok && c != nil
}
