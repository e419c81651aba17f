package novapg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nova-go/nova"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/internal/projectiondriver"
	"github.com/nova-go/nova/internal/querystore"
	"github.com/nova-go/nova/internal/readmodel"
	"github.com/nova-go/nova/projection"
)

var _ cqrs.QueryStore = (*QueryStore)(nil)

// QueryStore is a [cqrs.QueryStore] in a table of a [Store]'s schema, one
// row per key:
//
//	CREATE TABLE projections (
//		key        text COLLATE "C" PRIMARY KEY,
//		value      jsonb NOT NULL,
//		updated_at timestamptz NOT NULL DEFAULT now()  -- of the last upsert
//	)
//
// The value is jsonb rather than json because read models are there to be
// read: jsonb can be queried by field (value->>'status'), indexed (GIN, or
// an expression index on one field) and compared without parsing the text
// on every read, at the cost of one parse per upsert. jsonb does not keep
// the text as given: GetRaw returns PostgreSQL's encoding of the value
// (keys sorted by length then bytes, duplicate keys reduced to the last,
// its own spacing), which has the same meaning, as [cqrs.QueryStore]
// allows. Two kinds of JSON that other stores keep are refused by jsonb,
// and UpsertRaw fails on them with an error matching nova.ErrInvalid:
// strings with the escape \u0000, and \u escapes of lone UTF-16
// surrogates (as "\ud800").
//
// Inside a transaction (a ctx from [WithTx], as a projection's checkpoint
// commit gives its handlers) GetRaw and UpsertRaw run in that
// transaction: the read-model write commits or rolls back with it, and a
// read sees the transaction's own writes. Otherwise each call is one
// statement on the store's pool, retried on a broken connection (an
// upsert is safe to repeat). Under a rebuild's ctx
// (projection.Rebuilding) both use the table's shadow,
// projection.Table(ctx, table), which the rebuild creates.
//
// Inside a projection runner's commit, whose ctx carries the batch's
// unit of work besides the transaction, upserts are buffered and written
// out at the end of the batch, one multi-row upsert per table, in the
// transaction; reads look in the buffer first and read each key from the
// database at most once per batch (see package projection, "Batched
// read-model writes", and [QueryStore.Prefetch]). [TxFromContext] writes
// out the buffer before it hands the transaction to a handler's own SQL.
//
// A QueryStore is safe for concurrent use and lives as long as its
// store: after the store's Close its calls fail with nova.ErrClosed.
type QueryStore struct {
	s     *Store
	table string
	// live and shadow are the batch buffers' names and flushes of the
	// table and of its rebuild's shadow, made once rather than per call.
	live, shadow bufferTable
}

// bufferTable names a table's buffer in a projection's batch.
type bufferTable struct {
	table string // unquoted, as projection.Table gives it
	id    string // the buffer's id in the batch
	flush projectiondriver.FlushFunc
}

// NewQueryStore returns a query store keeping its projections in table
// ("" means "projections") of s's schema, created if it does not exist
// (processes creating it at once take turns). A table name is a
// lower-case SQL identifier (a-z or _, then a-z, 0-9 or _) of at most 54
// bytes; a bad name fails with an error matching nova.ErrInvalid.
func NewQueryStore(ctx context.Context, s *Store, table string) (*QueryStore, error) {
	table, err := readmodel.CheckTable("novapg", table)
	if err != nil {
		return nil, err
	}
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	q := &QueryStore{s: s, table: table}
	q.live = q.bufferTable(table)
	q.shadow = q.bufferTable(projection.Table(projectiondriver.WithRebuild(context.Background()), table))
	err = s.retry(ctx, func() error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('novapg.querystore.' || $1 || '.' || $2))`, s.cfg.Schema, table); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+q.name(table)+` (
	key        text COLLATE "C" PRIMARY KEY,
	value      jsonb NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now()
)`)
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("novapg: create query store table %s: %w", table, err)
	}
	return q, nil
}

// Table returns the store's live table qualified by the store's schema
// ("nova.projections"), the name a projection lists among its read-model
// tables for a rebuild (Checkpoints.Prepare and Swap resolve unqualified
// names by the search path).
func (q *QueryStore) Table() string { return q.s.cfg.Schema + "." + q.table }

// name returns table, quoted and qualified by the store's schema.
func (q *QueryStore) name(table string) string {
	return quoteIdent(q.s.cfg.Schema) + "." + quoteIdent(table)
}

// execQuerier is what GetRaw and UpsertRaw run statements on: the pool
// or the caller's transaction.
type execQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// run runs op on the transaction in ctx, or on the pool with retries.
func (q *QueryStore) run(ctx context.Context, op func(execQuerier) error) error {
	if err := q.s.checkOpen(); err != nil {
		return err
	}
	if tx, ok := txFrom(ctx); ok {
		return op(tx)
	}
	return q.s.retry(ctx, func() error { return op(q.s.pool) })
}

// GetRaw implements [cqrs.QueryStore]. Inside a transaction (see
// [QueryStore]) it reads in it.
func (q *QueryStore) GetRaw(ctx context.Context, key string) (json.RawMessage, error) {
	if err := querystore.ValidateKey(key); err != nil {
		return nil, fmt.Errorf("novapg: get projection: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	table := projection.Table(ctx, q.table)
	buf := q.buffer(ctx, table)
	if buf != nil {
		if v, found, known := buf.Get(key); known {
			if !found {
				return nil, readmodel.NotFound("novapg", key)
			}
			return json.RawMessage(v), nil
		}
	}
	sql := `SELECT value FROM ` + q.name(table) + ` WHERE key = $1`
	var value []byte
	err := q.run(ctx, func(db execQuerier) error { return db.QueryRow(ctx, sql, key).Scan(&value) })
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		if buf != nil {
			buf.Loaded(key, "", false)
		}
		return nil, readmodel.NotFound("novapg", key)
	case err != nil:
		return nil, readmodel.Error("novapg", "get", key, err)
	}
	if buf != nil {
		buf.Loaded(key, string(value), true)
	}
	return value, nil
}

// buffer returns the batch buffer of table when ctx is a projection's
// commit on a transaction of this package (see [QueryStore]), or nil.
func (q *QueryStore) buffer(ctx context.Context, table string) *projectiondriver.BatchTable {
	b := projectiondriver.BatchFrom(ctx)
	if b == nil {
		return nil
	}
	if _, ok := txFrom(ctx); !ok {
		return nil
	}
	bt := q.live
	switch table {
	case q.live.table:
	case q.shadow.table:
		bt = q.shadow
	default:
		bt = q.bufferTable(table)
	}
	return b.Table(bt.id, bt.flush)
}

// bufferTable returns the batch buffer's name and flush of table.
func (q *QueryStore) bufferTable(table string) bufferTable {
	name := q.name(table)
	return bufferTable{table: table, id: "novapg:" + name, flush: func(ctx context.Context, rows []projectiondriver.Row) error {
		return q.flush(ctx, name, rows)
	}}
}

// Prefetch reads the documents under keys into the batch of ctx, in one
// query, when ctx is a projection's batch on a transaction of this
// package; otherwise it does nothing. The runner calls it for
// projection.Prefetch. Keys that are not valid are left out.
func (q *QueryStore) Prefetch(ctx context.Context, keys []string) error {
	buf := q.buffer(ctx, projection.Table(ctx, q.table))
	if buf == nil {
		return nil
	}
	keys = slices.DeleteFunc(buf.Unknown(keys), func(k string) bool { return querystore.ValidateKey(k) != nil })
	if len(keys) == 0 {
		return nil
	}
	tx, _ := txFrom(ctx)
	table := q.name(projection.Table(ctx, q.table))
	rows, err := tx.Query(ctx, `SELECT key, value FROM `+table+` WHERE key = ANY($1::text[])`, keys)
	if err != nil {
		return fmt.Errorf("novapg: prefetch %d projections from %s: %w", len(keys), table, err)
	}
	var key, value string
	_, err = pgx.ForEachRow(rows, []any{&key, &value}, func() error {
		buf.Loaded(key, value, true)
		return nil
	})
	if err != nil {
		return fmt.Errorf("novapg: prefetch %d projections from %s: %w", len(keys), table, err)
	}
	for _, k := range keys {
		buf.Loaded(k, "", false) // those not found
	}
	return nil
}

// Limits of one statement of a batch's flush: pgx sends the keys and
// values as two array parameters, so only the message size counts.
var (
	flushMaxRows  = 32767
	flushMaxBytes = 16 << 20
)

// flush upserts rows into table (quoted and qualified) in the
// transaction of ctx: one statement per chunk of rows, their keys and
// values sent as two arrays.
func (q *QueryStore) flush(ctx context.Context, table string, rows []projectiondriver.Row) error {
	tx, ok := txFrom(ctx)
	if !ok {
		return errors.New("novapg: flush projection rows: no transaction")
	}
	sql := `INSERT INTO ` + table + ` (key, value)
SELECT k, v::jsonb FROM unnest($1::text[], $2::text[]) AS r(k, v)
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()`
	for _, chunk := range projectiondriver.Chunks(rows, flushMaxRows, flushMaxBytes) {
		keys := make([]string, len(chunk))
		values := make([]string, len(chunk))
		for i, r := range chunk {
			keys[i], values[i] = r.Key, r.Value
		}
		if _, err := tx.Exec(ctx, sql, keys, values); err != nil {
			return fmt.Errorf("novapg: upsert %d projections into %s: %w", len(chunk), table, err)
		}
	}
	return nil
}

// UpsertRaw implements [cqrs.QueryStore]. Inside a transaction (see
// [QueryStore]) it writes in it and commits with it.
func (q *QueryStore) UpsertRaw(ctx context.Context, key string, value json.RawMessage) error {
	if err := querystore.ValidateUpsert(key, value); err != nil {
		return fmt.Errorf("novapg: upsert projection: %w", err)
	}
	// Checked before the statement, so that a refused value does not
	// abort the caller's transaction.
	if nul, lone := readmodel.Escapes(value); nul || lone {
		return nova.Invalidf("novapg", "upsert projection %q: jsonb cannot hold a string with \\u0000 or a \\u escape of a lone surrogate", key)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := q.s.checkOpen(); err != nil {
		return err
	}
	table := projection.Table(ctx, q.table)
	if buf := q.buffer(ctx, table); buf != nil {
		buf.Put(key, string(value))
		return nil
	}
	sql := `INSERT INTO ` + q.name(table) + ` (key, value) VALUES ($1, $2::text::jsonb)
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()`
	v := string(value)
	err := q.run(ctx, func(db execQuerier) error {
		_, err := db.Exec(ctx, sql, key, v)
		return err
	})
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "22") { // data exception
			return nova.Invalidf("novapg", "upsert projection %q: jsonb cannot hold the value: %s", key, pgErr.Message)
		}
		return readmodel.Error("novapg", "upsert", key, err)
	}
	return nil
}
