package novamysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/projectiondriver"
	"github.com/nova-go/nova/projection"
)

// Checkpoints keeps projection checkpoints and leases in the store's
// PREFIXcheckpoints table. It is the store's [projection.TxCheckpoints]: a
// projection runner with it commits each batch's read-model writes and
// the checkpoint in one transaction of the store's database, so a read
// model in that database (a [QueryStore], or tables of the handlers' own
// written through [TxFromContext]) gets each event's effect once. It is
// also the [projection.Leaser] (one instance of a projection across
// processes; lease times by the server's clock) and the
// [projection.Rebuilder] (shadow tables swapped in).
//
// Read-model tables are named as the handlers' SQL names them: a plain
// name is found in the connection's database, "db.table" in that
// database. Prepare makes a table's shadow with CREATE TABLE ... LIKE,
// which copies columns, indexes and CHECK constraints but not foreign
// keys or triggers.
//
// MySQL commits every DDL statement at once, so Swap cannot rename the
// tables in the transaction that moves the checkpoint, as PostgreSQL
// does. It does what comes to the same: one transaction records on the
// live checkpoint's row the swap about to happen (the checkpoint it
// moves to and the tables), one RENAME TABLE statement, atomic and crash
// safe, puts every shadow in its live table's place (the old ones become
// table__retired), and a second transaction moves the checkpoint and
// clears the record. A swap cut short between the two, by a crash or a
// broken connection, is finished (the tables were renamed) or undone
// (they were not) by the next Commit, Save or Swap of the projection,
// before it does anything else; until then Load and List show the
// checkpoint the tables hold. Commits of the projection wait for a swap
// under way, which holds a named lock (GET_LOCK) for the projection. The
// rename waits at most 10 seconds for readers holding the tables (a
// metadata lock) and then fails with an error [nova.IsTransient]
// reports, changing nothing, so that a long transaction reading the read
// model holds up neither the rebuild nor other readers for long.
//
// Positions are kept whole, both parts, up to math.MaxUint64.
type Checkpoints struct {
	s *Store
	q cpQueries
}

var (
	_ projection.Rebuilder        = (*Checkpoints)(nil)
	_ projection.Leaser           = (*Checkpoints)(nil)
	_ projection.CheckpointLister = (*Checkpoints)(nil)
)

// Limits of a swap: how long a swap, or a writer finishing one, waits for
// the projection's named lock, and how long the rename waits for readers
// of the tables.
const (
	swapLockWait   = 30 // seconds
	renameLockWait = 10 // seconds
)

// retiredSuffix is appended to the name of a live table a swap replaced,
// until it is dropped.
const retiredSuffix = "__retired"

type cpQueries struct {
	load, save, ensure, lock, advance, acquire, insertLease, held, release, list,
	intent, positions, setIntent, clearIntent, finish, deleteRow string
}

func newCPQueries(p string) cpQueries {
	t := func(q string) string { return tables(p, q) }
	return cpQueries{
		load: t(`SELECT commit_pos, prepare_pos, swap_commit, swap_prepare, swap_tables FROM {p}checkpoints WHERE name = ?`),
		save: t(`INSERT INTO {p}checkpoints (name, commit_pos, prepare_pos, lease_owner, updated_at) VALUES (?, ?, ?, '', UTC_TIMESTAMP(6))
			ON DUPLICATE KEY UPDATE commit_pos = VALUES(commit_pos), prepare_pos = VALUES(prepare_pos), updated_at = VALUES(updated_at)`),
		// ensure creates a name's row at the start, or takes the lock of
		// the row there is, so that commits of a fresh name take turns.
		ensure: t(`INSERT INTO {p}checkpoints (name, commit_pos, prepare_pos, lease_owner, updated_at) VALUES (?, 0, 0, '', UTC_TIMESTAMP(6))
			ON DUPLICATE KEY UPDATE name = name`),
		lock: t(`SELECT commit_pos, prepare_pos, lease_owner, COALESCE(lease_until > UTC_TIMESTAMP(6), FALSE), swap_commit IS NOT NULL
			FROM {p}checkpoints WHERE name = ? FOR UPDATE`),
		advance: t(`UPDATE {p}checkpoints SET commit_pos = ?, prepare_pos = ?, updated_at = UTC_TIMESTAMP(6) WHERE name = ?`),
		// acquire takes or renews a lease that is free, expired or the
		// owner's own; both columns are set unconditionally, so that the
		// order in which the server applies them does not matter.
		acquire: t(`UPDATE {p}checkpoints SET lease_owner = ?, lease_until = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND
			WHERE name = ? AND (lease_owner = ? OR lease_until IS NULL OR lease_until <= UTC_TIMESTAMP(6))`),
		insertLease: t(`INSERT INTO {p}checkpoints (name, commit_pos, prepare_pos, lease_owner, lease_until, updated_at)
			VALUES (?, 0, 0, ?, UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND, UTC_TIMESTAMP(6))`),
		held:    t(`SELECT COALESCE(lease_owner = ? AND lease_until > UTC_TIMESTAMP(6), FALSE) FROM {p}checkpoints WHERE name = ?`),
		release: t(`UPDATE {p}checkpoints SET lease_owner = '', lease_until = NULL WHERE name = ? AND lease_owner = ?`),
		list: t(`SELECT name, commit_pos, prepare_pos, lease_owner, lease_until, updated_at, swap_commit, swap_prepare, swap_tables
			FROM {p}checkpoints ORDER BY name`),
		intent:      t(`SELECT swap_commit, swap_prepare, swap_shadow, swap_tables FROM {p}checkpoints WHERE name = ?`),
		positions:   t(`SELECT name = ?, commit_pos, prepare_pos FROM {p}checkpoints WHERE name IN (?, ?) FOR UPDATE`),
		setIntent:   t(`UPDATE {p}checkpoints SET swap_commit = ?, swap_prepare = ?, swap_shadow = ?, swap_tables = ? WHERE name = ?`),
		clearIntent: t(`UPDATE {p}checkpoints SET swap_commit = NULL, swap_prepare = NULL, swap_shadow = NULL, swap_tables = NULL WHERE name = ?`),
		finish: t(`UPDATE {p}checkpoints SET commit_pos = ?, prepare_pos = ?, updated_at = UTC_TIMESTAMP(6),
			swap_commit = NULL, swap_prepare = NULL, swap_shadow = NULL, swap_tables = NULL WHERE name = ?`),
		deleteRow: t(`DELETE FROM {p}checkpoints WHERE name = ?`),
	}
}

// NewCheckpoints returns the checkpoint store of s.
func NewCheckpoints(s *Store) *Checkpoints {
	return &Checkpoints{s: s, q: newCPQueries(s.cfg.TablePrefix)}
}

func checkName(what, name string) error {
	if err := nova.ValidateStream(name); err != nil {
		return nova.Invalidf("novamysql", "%s: projection name: %v", what, err)
	}
	return nil
}

// cpError wraps a checkpoint store's error, leaving context errors and
// nova.ErrClosed as they are.
func cpError(what, name string, err error) error {
	if err == nil {
		return nil
	}
	return readError(fmt.Sprintf("%s %q", what, name), err)
}

// Load returns name's checkpoint, or [nova.Start] when none is stored.
// While a swap of name's tables is cut short (see [Checkpoints]), it is
// the checkpoint the live tables hold.
func (cp *Checkpoints) Load(ctx context.Context, name string) (nova.Position, error) {
	if err := checkName("load checkpoint", name); err != nil {
		return nova.Start, err
	}
	var pos nova.Position
	err := cp.s.retry(ctx, func() error {
		var sc, sp sql.Null[uint64]
		var tables sql.NullString
		err := cp.s.queryRowPool(ctx, cp.q.load, []any{name}, &pos.Commit, &pos.Prepare, &sc, &sp, &tables)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			pos = nova.Start
			return nil
		case err != nil || !sc.Valid:
			return err
		}
		renamed, err := cp.renamed(ctx, cp.s.db, tables.String)
		if renamed {
			pos = nova.Position{Commit: sc.V, Prepare: sp.V}
		}
		return err
	})
	if err != nil {
		return nova.Start, cpError("load checkpoint", name, err)
	}
	return pos, nil
}

// Save sets name's checkpoint, whatever it was and whoever holds its
// lease.
func (cp *Checkpoints) Save(ctx context.Context, name string, pos nova.Position) error {
	if err := checkName("save checkpoint", name); err != nil {
		return err
	}
	if err := cp.settleIfPending(ctx, name); err != nil {
		return cpError("save checkpoint", name, err)
	}
	if _, err := cp.s.execPool(ctx, cp.q.save, name, pos.Commit, pos.Prepare); err != nil {
		return cpError("save checkpoint", name, err)
	}
	return nil
}

// errSwapPending ends a commit that found a swap's record on the row.
var errSwapPending = errors.New("novamysql: a swap of the projection's tables is under way")

// Limits of a Commit's attempts: after a deadlock InnoDB broke by
// rolling the transaction back, and after finding a swap under way.
const (
	maxCommitAttempts = 5
	maxSwapWaits      = 3
)

// Commit runs apply in a transaction and moves name's checkpoint from
// from to to in it; see [projection.TxCheckpoints]. apply finds the
// transaction with [TxFromContext] (the [QueryStore] does). The
// checkpoint's row stays locked until the commit, so concurrent commits
// of one projection take turns. A transaction InnoDB rolls back to break
// a deadlock is run again, apply with it; a commit that finds a swap of
// the projection's tables under way waits for it, or finishes one cut
// short, and then decides.
func (cp *Checkpoints) Commit(ctx context.Context, name, owner string, from, to nova.Position, apply func(ctx context.Context) error) error {
	if err := projectiondriver.ValidateCommit(name, owner, from, to); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		if cp.s.closed.Load() {
			return nova.ErrClosed
		}
		pending := false
		err := cp.s.inTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, cp.q.ensure, name); err != nil {
				return err
			}
			var at nova.Position
			var leaseOwner string
			var held, swap bool
			if err := tx.QueryRowContext(ctx, cp.q.lock, name).Scan(&at.Commit, &at.Prepare, &leaseOwner, &held, &swap); err != nil {
				return err
			}
			if swap {
				pending = true
				return errSwapPending
			}
			if owner != "" && (leaseOwner != owner || !held) {
				return fmt.Errorf("novamysql: commit checkpoint %q: %q does not hold the lease: %w", name, owner, projection.ErrLeaseLost)
			}
			if at != from {
				return fmt.Errorf("novamysql: commit checkpoint %q: it is at %s, not %s: %w", name, at, from, nova.ErrConcurrency)
			}
			if err := apply(WithTx(ctx, tx)); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, cp.q.advance, to.Commit, to.Prepare, name)
			return err
		})
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case pending && attempt <= maxSwapWaits:
			if err := cp.settle(ctx, name); err != nil {
				return cpError("commit checkpoint", name, err)
			}
			continue
		case mysqlCode(err) == errLockDeadlock && attempt < maxCommitAttempts:
			continue
		}
		return markTransient(err)
	}
}

// Acquire takes name's lease for owner, or renews it, until ttl from now
// by the server's clock; see [projection.Leaser].
func (cp *Checkpoints) Acquire(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	if err := projectiondriver.ValidateLease(name, owner, &ttl); err != nil {
		return false, err
	}
	held := false
	err := cp.s.retry(ctx, func() error {
		n, err := cp.s.execRaw(ctx, cp.q.acquire, owner, micros(ttl), name, owner)
		if err != nil || n == 1 {
			held = err == nil
			return err
		}
		// No row changed: the name has no row yet, another holds the
		// lease, or the owner renewed it to the time it had.
		if _, err = cp.s.execRaw(ctx, cp.q.insertLease, name, owner, micros(ttl)); err == nil {
			held = true
			return nil
		}
		if mysqlCode(err) != errDupKey {
			return err
		}
		return cp.s.queryRowPool(ctx, cp.q.held, []any{owner, name}, &held)
	})
	if err != nil {
		return false, cpError("acquire lease on", name, err)
	}
	return held, nil
}

// Release gives up owner's lease on name.
func (cp *Checkpoints) Release(ctx context.Context, name, owner string) error {
	if err := projectiondriver.ValidateLease(name, owner, nil); err != nil {
		return err
	}
	if _, err := cp.s.execPool(ctx, cp.q.release, name, owner); err != nil {
		return cpError("release lease on", name, err)
	}
	return nil
}

// List returns every stored checkpoint, by name (in byte order). A
// checkpoint whose swap was cut short shows the position its live tables
// hold, as Load does.
func (cp *Checkpoints) List(ctx context.Context) ([]projection.CheckpointInfo, error) {
	var list []projection.CheckpointInfo
	err := cp.s.retry(ctx, func() error {
		list = list[:0]
		var pending []int
		var swaps []struct {
			pos    nova.Position
			tables string
		}
		err := cp.s.queryPool(ctx, cp.q.list, nil, func(rows *sql.Rows) error {
			var i projection.CheckpointInfo
			var until, updated timeValue
			var sc, sp sql.Null[uint64]
			var tables sql.NullString
			if err := rows.Scan(&i.Name, &i.Position.Commit, &i.Position.Prepare, &i.LeaseOwner, &until, &updated, &sc, &sp, &tables); err != nil {
				return err
			}
			if i.LeaseOwner != "" {
				i.LeaseUntil = until.t
			}
			i.UpdatedAt = updated.t
			if sc.Valid {
				pending = append(pending, len(list))
				swaps = append(swaps, struct {
					pos    nova.Position
					tables string
				}{nova.Position{Commit: sc.V, Prepare: sp.V}, tables.String})
			}
			list = append(list, i)
			return nil
		})
		if err != nil {
			return err
		}
		for k, i := range pending {
			renamed, err := cp.renamed(ctx, cp.s.db, swaps[k].tables)
			if err != nil {
				return err
			}
			if renamed {
				list[i].Position = swaps[k].pos
			}
		}
		return nil
	})
	if err != nil {
		return nil, readError("list checkpoints", err)
	}
	return list, nil
}

// Prepare creates an empty shadow of each table (see [projection.Table]),
// dropping an old shadow first: CREATE TABLE shadow LIKE table, which
// copies columns, indexes and CHECK constraints. A table that does not
// exist fails with an error matching nova.ErrInvalid before any shadow is
// made.
func (cp *Checkpoints) Prepare(ctx context.Context, tables []string) error {
	if err := projectiondriver.ValidateTables(tables); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	rctx := projectiondriver.WithRebuild(ctx)
	err := cp.s.retry(ctx, func() error {
		for _, t := range tables {
			ok, err := tableExists(ctx, cp.s.db, t)
			if err != nil {
				return err
			}
			if !ok {
				return nova.Invalidf("novamysql", "no table %s", t)
			}
		}
		for _, t := range tables {
			shadow := quoteTable(projection.Table(rctx, t))
			if _, err := cp.s.db.ExecContext(ctx, `DROP TABLE IF EXISTS `+shadow); err != nil {
				return err
			}
			if _, err := cp.s.db.ExecContext(ctx, `CREATE TABLE `+shadow+` LIKE `+quoteTable(t)); err != nil {
				return fmt.Errorf("table %s: %w", t, err)
			}
		}
		return nil
	})
	if err != nil {
		return readError("prepare shadow tables", err)
	}
	return nil
}

// Swap replaces each live table by its shadow and moves shadow's
// checkpoint to name; see [projection.Rebuilder] and, for how it is done
// on MySQL, [Checkpoints]. Readers of the live tables see either the old
// tables or the new ones.
func (cp *Checkpoints) Swap(ctx context.Context, name, shadow string, tables []string) error {
	if err := projectiondriver.ValidateSwap(name, shadow, tables); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	rctx := projectiondriver.WithRebuild(ctx)
	err := cp.withSwapLock(ctx, name, func(c *sql.Conn) error {
		if err := cp.settleLocked(ctx, c, name); err != nil {
			return err
		}
		for _, t := range tables {
			s := projection.Table(rctx, t)
			ok, err := tableExists(ctx, c, s)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("no shadow table %s: Prepare first", s)
			}
		}
		// No table__retired may be left before the record is written:
		// one there after it means the rename happened.
		if err := dropRetired(ctx, c, tables); err != nil {
			return err
		}
		err := inTxConn(ctx, c, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, cp.q.ensure, name); err != nil {
				return err
			}
			var pos, live nova.Position
			rows, err := tx.QueryContext(ctx, cp.q.positions, shadow, shadow, name)
			if err != nil {
				return err
			}
			for rows.Next() {
				var isShadow bool
				var p nova.Position
				if err := rows.Scan(&isShadow, &p.Commit, &p.Prepare); err != nil {
					rows.Close()
					return err
				}
				if isShadow {
					pos = p
				} else {
					live = p
				}
			}
			if err := errors.Join(rows.Err(), rows.Close()); err != nil {
				return err
			}
			if pos.Less(live) {
				return fmt.Errorf("the live checkpoint %s is ahead of the rebuild's %s: %w", live, pos, nova.ErrConcurrency)
			}
			_, err = tx.ExecContext(ctx, cp.q.setIntent, pos.Commit, pos.Prepare, shadow, strings.Join(tables, ","), name)
			return err
		})
		if err != nil {
			return err
		}
		renames := make([]string, 0, 2*len(tables))
		for _, t := range tables {
			renames = append(renames, quoteTable(t)+` TO `+quoteTable(t+retiredSuffix),
				quoteTable(projection.Table(rctx, t))+` TO `+quoteTable(t))
		}
		_, err = c.ExecContext(ctx, fmt.Sprintf(`SET SESSION lock_wait_timeout = %d`, renameLockWait))
		if err == nil {
			_, err = c.ExecContext(ctx, `RENAME TABLE `+strings.Join(renames, `, `))
		}
		if err != nil {
			if mysqlCode(err) != 0 && !isConnError(err) {
				// The server refused the rename, which is atomic:
				// nothing was renamed.
				if _, cerr := c.ExecContext(context.WithoutCancel(ctx), cp.q.clearIntent, name); cerr != nil {
					err = errors.Join(err, cerr)
				}
			}
			// Otherwise whether it happened is not known: the next
			// writer of the projection finds out.
			return fmt.Errorf("rename the tables: %w", err)
		}
		return cp.settleLocked(ctx, c, name)
	})
	if err != nil {
		return readError(fmt.Sprintf("swap shadow tables of %q", name), markTransient(err))
	}
	return nil
}

// settleIfPending finishes or undoes a swap of name's tables cut short,
// if there is one.
func (cp *Checkpoints) settleIfPending(ctx context.Context, name string) error {
	var sc sql.Null[uint64]
	err := cp.s.retry(ctx, func() error {
		var sp sql.Null[uint64]
		var shadow, tables sql.NullString
		err := cp.s.queryRowPool(ctx, cp.q.intent, []any{name}, &sc, &sp, &shadow, &tables)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		return err
	})
	if err != nil || !sc.Valid {
		return err
	}
	return cp.settle(ctx, name)
}

// settle finishes or undoes a swap of name's tables cut short, under the
// projection's swap lock: once a swap under way ends, there is none.
func (cp *Checkpoints) settle(ctx context.Context, name string) error {
	return cp.withSwapLock(ctx, name, func(c *sql.Conn) error { return cp.settleLocked(ctx, c, name) })
}

// settleLocked reads the record of a swap of name's tables and, when
// there is one, moves the checkpoint and drops the retired tables if the
// rename happened, or clears the record if it did not. The caller holds
// the projection's swap lock on c.
func (cp *Checkpoints) settleLocked(ctx context.Context, c *sql.Conn, name string) error {
	var sc, sp sql.Null[uint64]
	var shadow, list sql.NullString
	err := c.QueryRowContext(ctx, cp.q.intent, name).Scan(&sc, &sp, &shadow, &list)
	if errors.Is(err, sql.ErrNoRows) || err == nil && !sc.Valid {
		return nil
	}
	if err != nil {
		return err
	}
	renamed, err := cp.renamed(ctx, c, list.String)
	if err != nil {
		return err
	}
	if !renamed {
		_, err := c.ExecContext(ctx, cp.q.clearIntent, name)
		return err
	}
	err = inTxConn(ctx, c, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, cp.q.finish, sc.V, sp.V, name); err != nil {
			return err
		}
		if shadow.Valid && shadow.String != name {
			_, err = tx.ExecContext(ctx, cp.q.deleteRow, shadow.String)
		}
		return err
	})
	if err != nil {
		return err
	}
	return dropRetired(ctx, c, strings.Split(list.String, ","))
}

// renamed reports whether the rename of a swap recorded with list (its
// tables, comma-separated) happened: a swap drops every table__retired
// before it records itself, and the rename makes them all at once.
func (cp *Checkpoints) renamed(ctx context.Context, q queryer, list string) (bool, error) {
	first, _, _ := strings.Cut(list, ",")
	return tableExists(ctx, q, first+retiredSuffix)
}

// withSwapLock runs f on a connection of its own holding the projection's
// named lock, which a swap holds until it has ended. The connection is
// closed afterwards, for good: the lock and any session setting go with
// it, even when releasing them would fail.
func (cp *Checkpoints) withSwapLock(ctx context.Context, name string, f func(c *sql.Conn) error) error {
	if cp.s.closed.Load() {
		return nova.ErrClosed
	}
	c, err := cp.s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer func() {
		_ = c.Raw(func(any) error { return driver.ErrBadConn })
		c.Close()
	}()
	var got sql.NullInt64
	err = c.QueryRowContext(ctx, `SELECT GET_LOCK(CONCAT('novamysql:swap:', SHA1(CONCAT(DATABASE(), '.', ?, '.', ?))), ?)`,
		cp.s.cfg.TablePrefix, name, swapLockWait).Scan(&got)
	if err != nil {
		return err
	}
	if got.Int64 != 1 {
		return nova.Transient(fmt.Errorf("a swap of %q held its lock for %ds", name, swapLockWait))
	}
	return f(c)
}

// queryer is a pool, a connection or a transaction.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// tableExists reports whether table exists, as the server resolves its
// name: a query of none of its rows does not fail.
func tableExists(ctx context.Context, q queryer, table string) (bool, error) {
	rows, err := q.QueryContext(ctx, `SELECT 1 FROM `+quoteTable(table)+` LIMIT 0`)
	switch mysqlCode(err) {
	case 1146, 1049: // ER_NO_SUCH_TABLE, ER_BAD_DB_ERROR
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, rows.Close()
}

// dropRetired drops table__retired of each table, where there is one.
func dropRetired(ctx context.Context, c *sql.Conn, tables []string) error {
	for _, t := range tables {
		if _, err := c.ExecContext(ctx, `DROP TABLE IF EXISTS `+quoteTable(t+retiredSuffix)); err != nil {
			return err
		}
	}
	return nil
}

// quoteTable quotes a table name valid by projectiondriver.ValidateTable,
// "table" or "db.table", whose parts hold no backquote.
func quoteTable(t string) string {
	return "`" + strings.ReplaceAll(t, ".", "`.`") + "`"
}

// inTxConn runs f in a transaction on c and commits it, or rolls it back
// when f fails.
func inTxConn(ctx context.Context, c *sql.Conn, f func(tx *sql.Tx) error) error {
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}
