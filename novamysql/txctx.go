package novamysql

import (
	"context"
	"database/sql"
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
func TxFromContext(ctx context.Context) (*sql.Tx, bool) {
	tx, ok := ctx.Value(txKey{}).(*sql.Tx)
	return tx, ok && tx != nil
}
