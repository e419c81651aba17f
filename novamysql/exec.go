package novamysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// execer runs the statements of an append: on the writer's connection, or
// in a caller's transaction.
type execer interface {
	exec(ctx context.Context, query string, args ...any) (sql.Result, error)
	query(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// connExec is the writer's connection with its prepared statements. Each
// statement is prepared once, so that running it is one round trip; the
// go-sql-driver otherwise prepares, runs and closes a statement for every
// call with arguments.
type connExec struct {
	conn  *sql.Conn
	stmts map[string]*sql.Stmt
}

// maxStmts bounds the statements a connection keeps prepared; others are
// prepared for one use.
const maxStmts = 64

func newConnExec(c *sql.Conn) *connExec {
	return &connExec{conn: c, stmts: make(map[string]*sql.Stmt)}
}

// stmt returns the prepared statement of query, or nil when the
// connection keeps as many as it may.
func (c *connExec) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := c.stmts[query]; ok {
		return st, nil
	}
	if len(c.stmts) >= maxStmts || strings.Contains(query, " IN (") {
		// Full, or a look-up by a list of IDs, whose length varies.
		return nil, nil
	}
	st, err := c.conn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.stmts[query] = st
	return st, nil
}

func (c *connExec) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return c.conn.ExecContext(ctx, query, args...)
	}
	return st.ExecContext(ctx, args...)
}

func (c *connExec) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return c.conn.QueryContext(ctx, query, args...)
	}
	return st.QueryContext(ctx, args...)
}

// close closes the statements and returns the connection to the pool.
func (c *connExec) close() {
	for _, st := range c.stmts {
		st.Close()
	}
	c.stmts = nil
	c.conn.Close()
}

// discard closes the connection for good, so that the pool does not hand
// it out again: it broke, or may be left inside a transaction.
func (c *connExec) discard() {
	for _, st := range c.stmts {
		st.Close()
	}
	c.stmts = nil
	_ = c.conn.Raw(func(any) error { return driver.ErrBadConn })
	c.conn.Close()
}

// txExec runs statements in a caller's transaction.
type txExec struct{ tx *sql.Tx }

func (t txExec) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, query, args...)
}

func (t txExec) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, query, args...)
}

// stmtTx runs statements in a transaction on the pool, those prepared on
// the pool beforehand (see [Store.prepared]) as prepared statements, one
// round trip each once database/sql has prepared them on the
// transaction's connection; go-sql-driver otherwise prepares, runs and
// closes a statement for every call with arguments. It never prepares a
// statement itself: that takes a connection of the pool while the
// transaction holds one, which would wait forever on a pool of one.
type stmtTx struct {
	s  *Store
	tx *sql.Tx
}

// stmt returns query prepared in the transaction, or nil when it was not
// prepared on the pool.
func (t stmtTx) stmt(ctx context.Context, query string) *sql.Stmt {
	st := t.s.prepared(query)
	if st == nil {
		return nil
	}
	return t.tx.StmtContext(ctx, st)
}

func (t stmtTx) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st := t.stmt(ctx, query)
	if st == nil {
		return t.tx.ExecContext(ctx, query, args...)
	}
	return st.ExecContext(ctx, args...)
}

func (t stmtTx) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st := t.stmt(ctx, query)
	if st == nil {
		return t.tx.QueryContext(ctx, query, args...)
	}
	return st.QueryContext(ctx, args...)
}

// queryRow scans the first row of query into dest, returning
// sql.ErrNoRows when there is none.
func queryRow(ctx context.Context, ex execer, query string, args []any, dest ...any) error {
	rows, err := ex.query(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	return rows.Close()
}

// isConnError reports an error of the connection rather than of a
// statement: the server is gone, the connection was killed or broke. Such
// errors are worth a retry on another connection.
func isConnError(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, sql.ErrConnDone) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	switch mysqlCode(err) {
	case 1053, // ER_SERVER_SHUTDOWN
		1077, // ER_NORMAL_SHUTDOWN
		1152, // ER_ABORTING_CONNECTION
		1317, // ER_QUERY_INTERRUPTED
		1927, // ER_CONNECTION_KILLED (MariaDB)
		2006, // CR_SERVER_GONE_ERROR
		2013, // CR_SERVER_LOST
		4031: // ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8)
		return true
	}
	return false
}
