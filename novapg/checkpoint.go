package novapg

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/projectiondriver"
	"github.com/nova-go/nova/projection"
)

// Checkpoints keeps projection checkpoints and leases in the store
// schema's checkpoints table. It is the store's
// [projection.TxCheckpoints]: a projection runner with it commits each
// batch's read-model writes and the checkpoint in one transaction of the
// store's database, so a read model in that database gets each event's
// effect once. It is also the [projection.Leaser] (one instance of a
// projection across processes; lease times by the database's clock) and
// the [projection.Rebuilder] (shadow tables swapped in).
//
// Read-model tables are named as the handlers' SQL names them: a plain
// name is found by the search_path, "schema.table" in that schema. The
// shadow of a table is CREATE TABLE ... (LIKE table INCLUDING ALL), so a
// table whose column defaults draw on a sequence it owns (serial) cannot
// be swapped: use identity columns.
type Checkpoints struct {
	s     *Store
	table string // the checkpoints table, schema-qualified and quoted
}

var (
	_ projection.Rebuilder        = (*Checkpoints)(nil)
	_ projection.Leaser           = (*Checkpoints)(nil)
	_ projection.CheckpointLister = (*Checkpoints)(nil)
)

// NewCheckpoints returns the checkpoint store of s.
func NewCheckpoints(s *Store) *Checkpoints {
	return &Checkpoints{s: s, table: quoteIdent(s.Schema()) + ".checkpoints"}
}

func checkName(what, name string) error {
	if err := nova.ValidateStream(name); err != nil {
		return nova.Invalidf("novapg", "%s: projection name: %v", what, err)
	}
	return nil
}

func checkPosition(what string, p nova.Position) error {
	if p.Commit > math.MaxInt64 || p.Prepare > math.MaxInt64 {
		return nova.Invalidf("novapg", "%s: position %s is out of range", what, p)
	}
	return nil
}

// Load returns name's checkpoint, or [nova.Start] when none is stored.
func (cp *Checkpoints) Load(ctx context.Context, name string) (nova.Position, error) {
	if err := checkName("load checkpoint", name); err != nil {
		return nova.Start, err
	}
	var c, p int64
	err := cp.s.retry(ctx, func() error {
		err := cp.s.pool.QueryRow(ctx, `SELECT commit_pos, prepare_pos FROM `+cp.table+` WHERE name = $1`, name).Scan(&c, &p)
		if errors.Is(err, pgx.ErrNoRows) {
			c, p = 0, 0
			return nil
		}
		return err
	})
	if err != nil {
		return nova.Start, fmt.Errorf("novapg: load checkpoint %q: %w", name, err)
	}
	return nova.Position{Commit: uint64(c), Prepare: uint64(p)}, nil
}

// Save sets name's checkpoint, whatever it was and whoever holds its
// lease.
func (cp *Checkpoints) Save(ctx context.Context, name string, pos nova.Position) error {
	if err := checkName("save checkpoint", name); err != nil {
		return err
	}
	if err := checkPosition("save checkpoint", pos); err != nil {
		return err
	}
	err := cp.s.retry(ctx, func() error {
		_, err := cp.s.pool.Exec(ctx, cp.setPosition(), name, int64(pos.Commit), int64(pos.Prepare))
		return err
	})
	if err != nil {
		return fmt.Errorf("novapg: save checkpoint %q: %w", name, err)
	}
	return nil
}

func (cp *Checkpoints) setPosition() string {
	return `INSERT INTO ` + cp.table + ` AS t (name, commit_pos, prepare_pos) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET commit_pos = excluded.commit_pos, prepare_pos = excluded.prepare_pos,
			updated_at = statement_timestamp()`
}

// Commit runs apply in a transaction and moves name's checkpoint from
// from to to in it; see [projection.TxCheckpoints]. apply finds the
// transaction with [TxFromContext]. One statement, before apply, checks
// the lease and the position and moves the checkpoint; the move shows to
// others only at the commit, and the checkpoint's row stays locked until
// then, so concurrent commits of one projection take turns.
func (cp *Checkpoints) Commit(ctx context.Context, name, owner string, from, to nova.Position, apply func(ctx context.Context) error) error {
	if err := projectiondriver.ValidateCommit(name, owner, from, to); err != nil {
		return err
	}
	if err := errors.Join(checkPosition("commit checkpoint", from), checkPosition("commit checkpoint", to)); err != nil {
		return err
	}
	broken := false
	err := pgx.BeginFunc(ctx, cp.s.pool, func(tx pgx.Tx) error {
		defer func() { broken = tx.Conn().IsClosed() }()
		if err := cp.move(ctx, tx, name, owner, from, to); err != nil {
			return err
		}
		return apply(WithTx(ctx, tx))
	})
	return transient(err, broken)
}

// move moves name's checkpoint from from to to in tx, in one statement
// that also checks that owner ("" for none) holds the lease and that the
// checkpoint is at from; it fails, having changed nothing, when either
// does not hold. The row stays locked until tx ends.
func (cp *Checkpoints) move(ctx context.Context, tx pgx.Tx, name, owner string, from, to nova.Position) error {
	var sql string
	args := []any{name, int64(from.Commit), int64(from.Prepare), int64(to.Commit), int64(to.Prepare)}
	if from == nova.Start && owner == "" {
		// The only commit that may find no row: it makes it.
		sql = `INSERT INTO ` + cp.table + ` AS t (name, commit_pos, prepare_pos) VALUES ($1, $4, $5)
			ON CONFLICT (name) DO UPDATE SET commit_pos = excluded.commit_pos, prepare_pos = excluded.prepare_pos,
				updated_at = statement_timestamp()
			WHERE t.commit_pos = $2 AND t.prepare_pos = $3`
	} else {
		sql = `UPDATE ` + cp.table + ` SET commit_pos = $4, prepare_pos = $5, updated_at = statement_timestamp()
			WHERE name = $1 AND commit_pos = $2 AND prepare_pos = $3
				AND ($6 = '' OR lease_owner = $6 AND lease_until > clock_timestamp())`
		args = append(args, owner)
	}
	tag, err := tx.Exec(ctx, sql, args...)
	if err != nil || tag.RowsAffected() == 1 {
		return err
	}
	// Fenced, or the UPDATE passed over the row as its snapshot had it
	// while another transaction (a lease renewal) changed it: lock the
	// row as it is now and say why, or move it now that it is locked.
	var c, p int64
	var leaseOwner string
	var held bool
	err = tx.QueryRow(ctx, `SELECT commit_pos, prepare_pos, lease_owner, coalesce(lease_until > clock_timestamp(), false)
		FROM `+cp.table+` WHERE name = $1 FOR UPDATE`, name).Scan(&c, &p, &leaseOwner, &held)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	if owner != "" && (leaseOwner != owner || !held) {
		return fmt.Errorf("novapg: commit checkpoint %q: %q does not hold the lease: %w", name, owner, projection.ErrLeaseLost)
	}
	at := nova.Position{Commit: uint64(c), Prepare: uint64(p)}
	if at == from && err == nil {
		if tag, err = tx.Exec(ctx, sql, args...); err != nil || tag.RowsAffected() == 1 {
			return err
		}
	}
	return fmt.Errorf("novapg: commit checkpoint %q: it is at %s, not %s: %w", name, at, from, nova.ErrConcurrency)
}

// Acquire takes name's lease for owner, or renews it, until ttl from now
// by the database's clock; see [projection.Leaser].
func (cp *Checkpoints) Acquire(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	if err := projectiondriver.ValidateLease(name, owner, &ttl); err != nil {
		return false, err
	}
	var held bool
	err := cp.s.retry(ctx, func() error {
		tag, err := cp.s.pool.Exec(ctx, `INSERT INTO `+cp.table+` AS t (name, lease_owner, lease_until)
			VALUES ($1, $2, clock_timestamp() + $3::bigint * interval '1 microsecond')
			ON CONFLICT (name) DO UPDATE SET lease_owner = excluded.lease_owner, lease_until = excluded.lease_until
			WHERE t.lease_owner = excluded.lease_owner OR t.lease_until IS NULL OR t.lease_until <= clock_timestamp()`,
			name, owner, ttl.Microseconds())
		held = err == nil && tag.RowsAffected() == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("novapg: acquire lease on %q: %w", name, err)
	}
	return held, nil
}

// Release gives up owner's lease on name.
func (cp *Checkpoints) Release(ctx context.Context, name, owner string) error {
	if err := projectiondriver.ValidateLease(name, owner, nil); err != nil {
		return err
	}
	err := cp.s.retry(ctx, func() error {
		_, err := cp.s.pool.Exec(ctx, `UPDATE `+cp.table+` SET lease_owner = '', lease_until = NULL WHERE name = $1 AND lease_owner = $2`, name, owner)
		return err
	})
	if err != nil {
		return fmt.Errorf("novapg: release lease on %q: %w", name, err)
	}
	return nil
}

// List returns every stored checkpoint, by name.
func (cp *Checkpoints) List(ctx context.Context) ([]projection.CheckpointInfo, error) {
	var list []projection.CheckpointInfo
	err := cp.s.retry(ctx, func() error {
		rows, err := cp.s.pool.Query(ctx, `SELECT name, commit_pos, prepare_pos, lease_owner, lease_until, updated_at FROM `+cp.table+` ORDER BY name`)
		if err != nil {
			return err
		}
		list = list[:0]
		for rows.Next() {
			var i projection.CheckpointInfo
			var c, p int64
			var until *time.Time
			if err := rows.Scan(&i.Name, &c, &p, &i.LeaseOwner, &until, &i.UpdatedAt); err != nil {
				rows.Close()
				return err
			}
			i.Position = nova.Position{Commit: uint64(c), Prepare: uint64(p)}
			if until != nil && i.LeaseOwner != "" {
				i.LeaseUntil = until.UTC()
			}
			i.UpdatedAt = i.UpdatedAt.UTC()
			list = append(list, i)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("novapg: list checkpoints: %w", err)
	}
	return list, nil
}

// Prepare creates an empty shadow of each table (see [projection.Table]),
// dropping an old shadow first: CREATE TABLE shadow (LIKE table
// INCLUDING ALL), which copies columns, defaults, constraints and
// indexes. Triggers and foreign keys pointing at the table are not
// copied.
func (cp *Checkpoints) Prepare(ctx context.Context, tables []string) error {
	if err := projectiondriver.ValidateTables(tables); err != nil {
		return err
	}
	rctx := projectiondriver.WithRebuild(ctx)
	err := pgx.BeginFunc(ctx, cp.s.pool, func(tx pgx.Tx) error {
		for _, t := range tables {
			if err := cp.exists(ctx, tx, t); err != nil {
				return err
			}
			shadow := projection.Table(rctx, t)
			if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS `+shadow); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `CREATE TABLE `+shadow+` (LIKE `+t+` INCLUDING ALL)`); err != nil {
				return fmt.Errorf("table %s: %w", t, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("novapg: prepare shadow tables: %w", err)
	}
	return nil
}

// exists fails with an error matching nova.ErrInvalid when table t does
// not exist.
func (cp *Checkpoints) exists(ctx context.Context, tx pgx.Tx, t string) error {
	var ok bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, t).Scan(&ok); err != nil {
		return err
	}
	if !ok {
		return nova.Invalidf("novapg", "no table %s", t)
	}
	return nil
}

// Swap replaces each live table by its shadow and moves shadow's
// checkpoint to name, in one transaction; see [projection.Rebuilder].
// Readers of the live tables wait for the swap's commit (it locks them)
// and then see the new ones.
func (cp *Checkpoints) Swap(ctx context.Context, name, shadow string, tables []string) error {
	if err := projectiondriver.ValidateSwap(name, shadow, tables); err != nil {
		return err
	}
	rctx := projectiondriver.WithRebuild(ctx)
	err := pgx.BeginFunc(ctx, cp.s.pool, func(tx pgx.Tx) error {
		for _, t := range tables {
			if s := projection.Table(rctx, t); cp.exists(ctx, tx, s) != nil {
				return fmt.Errorf("no shadow table %s: Prepare first", s)
			}
		}
		var pos, live nova.Position
		rows, err := tx.Query(ctx, `SELECT name = $1, commit_pos, prepare_pos FROM `+cp.table+` WHERE name IN ($1, $2) FOR UPDATE`, shadow, name)
		if err != nil {
			return err
		}
		for rows.Next() {
			var isShadow bool
			var c, p int64
			if err := rows.Scan(&isShadow, &c, &p); err != nil {
				rows.Close()
				return err
			}
			if isShadow {
				pos = nova.Position{Commit: uint64(c), Prepare: uint64(p)}
			} else {
				live = nova.Position{Commit: uint64(c), Prepare: uint64(p)}
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if pos.Less(live) {
			return fmt.Errorf("the live checkpoint %s is ahead of the rebuild's %s: %w", live, pos, nova.ErrConcurrency)
		}
		for _, t := range tables {
			bare := t[strings.LastIndexByte(t, '.')+1:]
			if _, err := tx.Exec(ctx, `DROP TABLE `+t); err != nil {
				return fmt.Errorf("table %s: %w", t, err)
			}
			if _, err := tx.Exec(ctx, `ALTER TABLE `+projection.Table(rctx, t)+` RENAME TO `+bare); err != nil {
				return fmt.Errorf("table %s: %w", t, err)
			}
		}
		if _, err := tx.Exec(ctx, cp.setPosition(), name, int64(pos.Commit), int64(pos.Prepare)); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM `+cp.table+` WHERE name = $1`, shadow)
		return err
	})
	if err != nil {
		return fmt.Errorf("novapg: swap shadow tables of %q: %w", name, err)
	}
	return nil
}
