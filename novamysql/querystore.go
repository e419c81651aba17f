package novamysql

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/internal/projectiondriver"
	"github.com/nova-go/nova/internal/querystore"
	"github.com/nova-go/nova/internal/readmodel"
	"github.com/nova-go/nova/projection"
)

var _ cqrs.QueryStore = (*QueryStore)(nil)

// maxUpsertAttempts bounds the tries of an upsert outside a transaction
// that InnoDB rolls back to break a deadlock or a lock wait.
const maxUpsertAttempts = 5

// QueryStore is a [cqrs.QueryStore] in a table of a [Store]'s database,
// one row per key,
//
//	CREATE TABLE nova_projections (
//		`key`      VARBINARY(256) NOT NULL PRIMARY KEY,
//		value      LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL
//		           CHECK (JSON_VALID(value)),
//		updated_at DATETIME(6) NOT NULL  -- UTC, of the last upsert
//	)
//
// The key is binary so that keys compare byte for byte: no collation
// folds case or accents, or ignores trailing spaces, making two keys one.
// The value is the JSON text as given (MariaDB's JSON type is this
// LONGTEXT with the check; MySQL's would re-encode it), so GetRaw returns
// it byte for byte; the check keeps other writers of the table honest and
// lets the server's JSON functions read every row. The server's JSON_VALID
// is stricter than Go's in places: MariaDB refuses documents nested more
// than 32 levels deep and \u escapes of lone UTF-16 surrogates. UpsertRaw
// fails on such values with an error matching nova.ErrInvalid, writing
// nothing.
//
// Inside a transaction (a ctx from [WithTx]) GetRaw and UpsertRaw run in
// that transaction: the read-model write commits or rolls back with it,
// and a read sees the transaction's own writes. Otherwise each call is one
// prepared statement on the store's pool. Under a rebuild's ctx
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
}

// NewQueryStore returns a query store keeping its projections in table
// of s's database, created if it does not exist. "" means the store's
// table prefix followed by "projections" ("nova_projections" by
// default); any other table is used as named, a lower-case SQL
// identifier (a-z or _, then a-z, 0-9 or _) of at most 54 bytes. A bad
// name fails with an error matching nova.ErrInvalid.
func NewQueryStore(ctx context.Context, s *Store, table string) (*QueryStore, error) {
	if table == "" {
		table = s.cfg.TablePrefix + readmodel.DefaultTable
	} else if _, err := readmodel.CheckTable("novamysql", table); err != nil {
		return nil, err
	}
	q := &QueryStore{s: s, table: table}
	err := q.onPool(ctx, func() error {
		_, err := s.db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS `"+table+"`"+` (
	`+"`key`"+`   VARBINARY(256) NOT NULL PRIMARY KEY,
	value      LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL CHECK (JSON_VALID(value)),
	updated_at DATETIME(6) NOT NULL
) ENGINE=InnoDB`)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("novamysql: create query store table %s: %w", table, err)
	}
	return q, nil
}

// Table returns the name of the store's live table.
func (q *QueryStore) Table() string { return q.table }

// onPool runs op, which uses the store's pool, unless the store is
// closed. An error a later attempt may cure is marked transient (see
// [markTransient]).
func (q *QueryStore) onPool(ctx context.Context, op func() error) error {
	q.s.readMu.RLock()
	defer q.s.readMu.RUnlock()
	if q.s.readsClosed {
		return nova.ErrClosed
	}
	if err := op(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return markTransient(err)
	}
	return nil
}

// GetRaw implements [cqrs.QueryStore]. Inside a transaction (see
// [QueryStore]) it reads in it.
func (q *QueryStore) GetRaw(ctx context.Context, key string) (json.RawMessage, error) {
	if err := querystore.ValidateKey(key); err != nil {
		return nil, fmt.Errorf("novamysql: get projection: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	table := projection.Table(ctx, q.table)
	buf := q.buffer(ctx, table)
	if buf != nil {
		if v, found, known := buf.Get(key); known {
			if !found {
				return nil, readmodel.NotFound("novamysql", key)
			}
			return json.RawMessage(v), nil
		}
	}
	query := "SELECT value FROM `" + table + "` WHERE `key` = ?"
	var value []byte
	var err error
	if tx, ok := txFrom(ctx); ok {
		err = tx.QueryRowContext(ctx, query, key).Scan(&value)
	} else {
		err = q.onPool(ctx, func() error {
			st, err := q.s.stmt(ctx, query)
			if err != nil {
				return err
			}
			return st.QueryRowContext(ctx, key).Scan(&value)
		})
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if buf != nil {
			buf.Loaded(key, "", false)
		}
		return nil, readmodel.NotFound("novamysql", key)
	case err != nil:
		return nil, readmodel.Error("novamysql", "get", key, err)
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
	return b.Table("novamysql:"+table, func(ctx context.Context, rows []projectiondriver.Row) error {
		return q.flush(ctx, table, rows)
	})
}

// Prefetch reads the documents under keys into the batch of ctx, in one
// query per chunk of keys within the protocol's 65,535 parameters, when
// ctx is a projection's batch on a transaction of this package;
// otherwise it does nothing. The runner calls it for
// projection.Prefetch. Keys that are not valid are left out.
func (q *QueryStore) Prefetch(ctx context.Context, keys []string) error {
	table := projection.Table(ctx, q.table)
	buf := q.buffer(ctx, table)
	if buf == nil {
		return nil
	}
	keys = slices.DeleteFunc(buf.Unknown(keys), func(k string) bool { return querystore.ValidateKey(k) != nil })
	tx, _ := txFrom(ctx)
	for chunk := range slices.Chunk(keys, 65535) {
		if err := prefetchChunk(ctx, tx, table, buf, chunk); err != nil {
			return fmt.Errorf("novamysql: prefetch %d projections from %s: %w", len(chunk), table, err)
		}
	}
	for _, k := range keys {
		buf.Loaded(k, "", false) // those not found
	}
	return nil
}

func prefetchChunk(ctx context.Context, tx *sql.Tx, table string, buf *projectiondriver.BatchTable, keys []string) error {
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k
	}
	rows, err := tx.QueryContext(ctx, "SELECT `key`, value FROM `"+table+"` WHERE `key` IN (?"+strings.Repeat(", ?", len(keys)-1)+")", args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var key, value string
		if err := rows.Scan(&key, &value); err != nil {
			return err
		}
		buf.Loaded(key, value, true)
	}
	return rows.Err()
}

// Limits of one statement of a batch's flush: the protocol's 65,535
// parameters (two a row), and a size well within the server's
// max_allowed_packet (16 MiB by default on MariaDB).
var (
	flushMaxRows  = 65535 / 2
	flushMaxBytes = 4 << 20
)

// flush upserts rows into table in the transaction of ctx: one
// multi-row statement per chunk of rows.
func (q *QueryStore) flush(ctx context.Context, table string, rows []projectiondriver.Row) error {
	tx, ok := txFrom(ctx)
	if !ok {
		return errors.New("novamysql: flush projection rows: no transaction")
	}
	for _, chunk := range projectiondriver.Chunks(rows, flushMaxRows, flushMaxBytes) {
		var b strings.Builder
		b.WriteString("INSERT INTO `" + table + "` (`key`, value, updated_at) VALUES ")
		args := make([]any, 0, 2*len(chunk))
		for i, r := range chunk {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, UTC_TIMESTAMP(6))")
			args = append(args, r.Key, r.Value)
		}
		b.WriteString(" ON DUPLICATE KEY UPDATE value = VALUES(value), updated_at = VALUES(updated_at)")
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("novamysql: upsert %d projections into %s: %w", len(chunk), table, err)
		}
	}
	return nil
}

// UpsertRaw implements [cqrs.QueryStore]. Inside a transaction (see
// [QueryStore]) it writes in it and commits with it.
func (q *QueryStore) UpsertRaw(ctx context.Context, key string, value json.RawMessage) error {
	if err := querystore.ValidateUpsert(key, value); err != nil {
		return fmt.Errorf("novamysql: upsert projection: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	table := projection.Table(ctx, q.table)
	v := string(value)
	if buf := q.buffer(ctx, table); buf != nil {
		buf.Put(key, v)
		return nil
	}
	query := "INSERT INTO `" + table + "` (`key`, value, updated_at) VALUES (?, ?, UTC_TIMESTAMP(6))" +
		" ON DUPLICATE KEY UPDATE value = VALUES(value), updated_at = VALUES(updated_at)"
	var err error
	if tx, ok := txFrom(ctx); ok {
		_, err = tx.ExecContext(ctx, query, key, v)
	} else {
		err = q.onPool(ctx, func() error {
			st, err := q.s.stmt(ctx, query)
			if err != nil {
				return err
			}
			// InnoDB may pick concurrent upserts of one key as deadlock
			// victims; the statement is its own transaction and safe to
			// repeat.
			for attempt := 1; ; attempt++ {
				_, err = st.ExecContext(ctx, key, v)
				if code := mysqlCode(err); code != 1213 && code != 1205 || attempt == maxUpsertAttempts || ctx.Err() != nil {
					return err
				}
			}
		})
	}
	switch code := mysqlCode(err); {
	case err == nil:
		return nil
	case code == 4025 || code == 3819: // a CHECK constraint failed (MariaDB, MySQL)
		return nova.Invalidf("novamysql", "upsert projection %q: the server's JSON_VALID refuses the value (too deeply nested, or a lone surrogate escape?)", key)
	default:
		return readmodel.Error("novamysql", "upsert", key, err)
	}
}
