package novapg

import (
	"context"

	"github.com/jackc/pgx/v5"
)

type txKey struct{}

// WithTx returns a ctx carrying tx, for read-model code that runs inside
// a transaction the caller or a projection's checkpoint commit opened: the
// package's read-model helpers (the query store, the checkpoints) write
// through it instead of starting a transaction of their own.
func WithTx(ctx context.Context, tx pgx.Tx) context.Context {
	return context.WithValue(ctx, txKey{}, tx)
}

// TxFromContext returns the transaction [WithTx] put in ctx, if any.
func TxFromContext(ctx context.Context) (pgx.Tx, bool) {
	tx, ok := ctx.Value(txKey{}).(pgx.Tx)
	return tx, ok && tx != nil
}
