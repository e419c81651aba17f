package novamysql

import (
	"context"
	"database/sql"

	"github.com/nova-go/nova/internal/projectiondriver"
)

type txKey struct{}

// WithTx returns a ctx carrying tx, for read-model code that runs inside
// a transaction the caller opened: the package's read-model helpers (the
// query store) write through it instead of starting a transaction of
// their own.
func WithTx(ctx context.Context, tx *sql.Tx) context.Context {
	return context.WithValue(ctx, txKey{}, tx)
}

// TxFromContext returns the transaction [WithTx] put in ctx, if any.
//
// Inside a projection's checkpoint commit, the query store buffers its
// writes and writes them out at the end of the batch of events; a
// handler that runs SQL of its own calls TxFromContext for each use, and
// TxFromContext first writes out what the query store holds, so that
// the handler's statements see (and come after) the writes before them.
// A write that fails then fails the commit.
func TxFromContext(ctx context.Context) (*sql.Tx, bool) {
	tx, ok := txFrom(ctx)
	if ok {
		if b := projectiondriver.BatchFrom(ctx); b != nil {
			_ = b.Flush(ctx) // a failure is kept: the batch's commit fails with it
		}
	}
	return tx, ok
}

// txFrom returns the transaction [WithTx] put in ctx, if any, leaving a
// projection's buffered writes buffered.
func txFrom(ctx context.Context) (*sql.Tx, bool) {
	tx, ok := ctx.Value(txKey{}).(*sql.Tx)
	return tx, ok && tx != nil
}
