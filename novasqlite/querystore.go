package novasqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/internal/projectiondriver"
	"github.com/nova-go/nova/internal/querystore"
	"github.com/nova-go/nova/internal/readmodel"
	"github.com/nova-go/nova/projection"
)

var _ cqrs.QueryStore = (*QueryStore)(nil)

// QueryStore is a [cqrs.QueryStore] in a table of a [Store]'s file, one
// row per key,
//
//	CREATE TABLE projections (
//		key        TEXT PRIMARY KEY NOT NULL,
//		value      TEXT NOT NULL,    -- the JSON document, as given
//		updated_at INTEGER NOT NULL  -- Unix nanoseconds of the last upsert
//	) WITHOUT ROWID
//
// Values come back byte for byte as they were upserted. Upserts go
// through the store's writer, so they share group commits with appends;
// reads use its reading connections.
//
// Inside a transaction of the store (a [TxFunc] whose ctx carries its
// connection by [WithTx], as a projection's checkpoint commit gives its
// handlers), GetRaw and UpsertRaw run on that connection, in that
// transaction: the read-model write commits or rolls back with it, and a
// read sees the transaction's own writes. Under a rebuild's ctx
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
	// get and upsert are the statements on the live table; the shadow's
	// are built per call.
	get, upsert string

	// stmts are the statements prepared on each connection the store has
	// used (the writer's and the readers'): preparing costs more than
	// running them. A schema change (a rebuild's swap) makes SQLite
	// prepare them again by itself.
	stmts preparedStmts
}

// NewQueryStore returns a query store keeping its projections in table
// ("" means "projections"), created in s's file if it does not exist. A
// table name is a lower-case SQL identifier (a-z or _, then a-z, 0-9 or
// _) of at most 54 bytes; a bad name fails with an error matching
// nova.ErrInvalid.
func NewQueryStore(ctx context.Context, s *Store, table string) (*QueryStore, error) {
	table, err := readmodel.CheckTable("novasqlite", table)
	if err != nil {
		return nil, err
	}
	q := &QueryStore{s: s, table: table}
	q.get, q.upsert = q.statements(table)
	create := `CREATE TABLE IF NOT EXISTS "` + table + `" (
	key        TEXT PRIMARY KEY NOT NULL,
	value      TEXT NOT NULL,
	updated_at INTEGER NOT NULL
) WITHOUT ROWID`
	if err := s.WriteTx(ctx, func(c *sqlite3.Conn) error { return c.Exec(create) }); err != nil {
		return nil, fmt.Errorf("novasqlite: create query store table %q: %w", table, err)
	}
	return q, nil
}

// Table returns the name of the store's live table.
func (q *QueryStore) Table() string { return q.table }

// statements returns the get and upsert statements on table.
func (q *QueryStore) statements(table string) (get, upsert string) {
	return `SELECT value FROM "` + table + `" WHERE key = ?`,
		`INSERT INTO "` + table + `" (key, value, updated_at) VALUES (?, ?, ?)
ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`
}

// sql returns the get and upsert statements for ctx's table: the live
// one, or its shadow during a rebuild.
func (q *QueryStore) sql(ctx context.Context) (table, get, upsert string) {
	table = projection.Table(ctx, q.table)
	if table == q.table {
		return table, q.get, q.upsert
	}
	get, upsert = q.statements(table)
	return table, get, upsert
}

// GetRaw implements [cqrs.QueryStore]. Inside a transaction (see
// [QueryStore]) it reads on the transaction's connection.
func (q *QueryStore) GetRaw(ctx context.Context, key string) (json.RawMessage, error) {
	if err := querystore.ValidateKey(key); err != nil {
		return nil, fmt.Errorf("novasqlite: get projection: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	table, get, _ := q.sql(ctx)
	buf := q.buffer(ctx, table)
	if buf != nil {
		if v, found, known := buf.Get(key); known {
			if !found {
				return nil, readmodel.NotFound("novasqlite", key)
			}
			return json.RawMessage(v), nil
		}
	}
	var value []byte
	found := false
	read := func(c *sqlite3.Conn) error {
		st, err := q.stmts.get(c, get)
		if err != nil {
			return err
		}
		if err := st.BindText(1, key); err != nil {
			return err
		}
		if st.Step() {
			found = true
			value = append([]byte{}, st.ColumnRawText(0)...)
		}
		err = st.Err()
		if rerr := st.Reset(); err == nil {
			err = rerr
		}
		return err
	}
	var err error
	if c, ok := txFrom(ctx); ok {
		err = read(c)
	} else {
		err = q.s.query(ctx, func(r *reader) error { return read(r.conn) })
	}
	if err != nil {
		return nil, readmodel.Error("novasqlite", "get", key, err)
	}
	if buf != nil {
		buf.Loaded(key, string(value), found)
	}
	if !found {
		return nil, readmodel.NotFound("novasqlite", key)
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
	return b.Table("novasqlite:"+table, func(ctx context.Context, rows []projectiondriver.Row) error {
		return q.flush(ctx, table, rows)
	})
}

// Prefetch reads the documents under keys into the batch of ctx, in one
// query per chunk of keys within the connection's limit on parameters,
// when ctx is a projection's batch on a transaction of this package;
// otherwise it does nothing. The runner calls it for
// projection.Prefetch. Keys that are not valid are left out.
func (q *QueryStore) Prefetch(ctx context.Context, keys []string) error {
	table := projection.Table(ctx, q.table)
	buf := q.buffer(ctx, table)
	if buf == nil {
		return nil
	}
	keys = slices.DeleteFunc(buf.Unknown(keys), func(k string) bool { return querystore.ValidateKey(k) != nil })
	c, _ := txFrom(ctx)
	maxKeys := c.Limit(sqlite3.LIMIT_VARIABLE_NUMBER, -1)
	for chunk := range slices.Chunk(keys, maxKeys) {
		if err := prefetchChunk(c, table, buf, chunk); err != nil {
			return fmt.Errorf("novasqlite: prefetch %d projections from %q: %w", len(chunk), table, err)
		}
	}
	for _, k := range keys {
		buf.Loaded(k, "", false) // those not found
	}
	return nil
}

func prefetchChunk(c *sqlite3.Conn, table string, buf *projectiondriver.BatchTable, keys []string) (err error) {
	sql := `SELECT key, value FROM "` + table + `" WHERE key IN (?` + strings.Repeat(", ?", len(keys)-1) + `)`
	st, _, err := c.Prepare(sql)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := st.Close(); err == nil {
			err = cerr
		}
	}()
	for i, k := range keys {
		if err := st.BindText(i+1, k); err != nil {
			return err
		}
	}
	for st.Step() {
		buf.Loaded(st.ColumnText(0), st.ColumnText(1), true)
	}
	return st.Err()
}

// flushMaxBytes bounds the keys and values one statement of a flush
// binds; the connection's limit on parameters bounds its rows.
var flushMaxBytes = 64 << 20

// flush upserts rows into table on the connection of ctx, in its
// transaction: one multi-row statement per chunk of rows, within the
// connection's limit on parameters (32,766 by default: 16,382 rows of
// two parameters and the shared time).
func (q *QueryStore) flush(ctx context.Context, table string, rows []projectiondriver.Row) error {
	c, ok := txFrom(ctx)
	if !ok {
		return errors.New("novasqlite: flush projection rows: no transaction")
	}
	maxRows := (c.Limit(sqlite3.LIMIT_VARIABLE_NUMBER, -1) - 1) / 2
	now := time.Now().UnixNano()
	for _, chunk := range projectiondriver.Chunks(rows, maxRows, flushMaxBytes) {
		if err := q.flushChunk(c, table, now, chunk); err != nil {
			return fmt.Errorf("novasqlite: upsert %d projections into %q: %w", len(chunk), table, err)
		}
	}
	return nil
}

func (q *QueryStore) flushChunk(c *sqlite3.Conn, table string, now int64, rows []projectiondriver.Row) (err error) {
	var b strings.Builder
	b.WriteString(`INSERT INTO "` + table + `" (key, value, updated_at) VALUES `)
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "(?%d, ?%d, ?1)", 2*i+2, 2*i+3)
	}
	b.WriteString(` ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`)
	st, _, err := c.Prepare(b.String())
	if err != nil {
		return err
	}
	defer func() {
		if cerr := st.Close(); err == nil {
			err = cerr
		}
	}()
	if err := st.BindInt64(1, now); err != nil {
		return err
	}
	for i, r := range rows {
		if err := st.BindText(2*i+2, r.Key); err != nil {
			return err
		}
		if err := st.BindText(2*i+3, r.Value); err != nil {
			return err
		}
	}
	return st.Exec()
}

// UpsertRaw implements [cqrs.QueryStore]. Inside a transaction (see
// [QueryStore]) it writes on the transaction's connection and commits
// with it; otherwise it commits a transaction of its own, which may
// share a group commit with appends.
func (q *QueryStore) UpsertRaw(ctx context.Context, key string, value json.RawMessage) error {
	if err := querystore.ValidateUpsert(key, value); err != nil {
		return fmt.Errorf("novasqlite: upsert projection: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	table, _, upsert := q.sql(ctx)
	v := string(value) // a copy: the caller may change value once we return
	if buf := q.buffer(ctx, table); buf != nil {
		buf.Put(key, v)
		return nil
	}
	write := func(c *sqlite3.Conn) error {
		st, err := q.stmts.get(c, upsert)
		if err != nil {
			return err
		}
		if err := st.BindText(1, key); err != nil {
			return err
		}
		if err := st.BindText(2, v); err != nil {
			return err
		}
		if err := st.BindInt64(3, time.Now().UnixNano()); err != nil {
			return err
		}
		return st.Exec()
	}
	var err error
	if c, ok := txFrom(ctx); ok {
		err = write(c)
	} else {
		err = q.s.WriteTx(ctx, write)
	}
	if err != nil {
		return readmodel.Error("novasqlite", "upsert", key, err)
	}
	return nil
}
