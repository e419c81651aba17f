package novasqlite

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/projectiondriver"
	"github.com/nova-go/nova/projection"
)

// Checkpoints keeps projection checkpoints and leases in the store's
// checkpoints table. It is the store's [projection.TxCheckpoints]: a
// projection runner with it commits each batch's read-model writes and
// the checkpoint in one transaction of the store's file, so a read model
// kept in the same file gets each event's effect once. It is also the
// [projection.Leaser] (one instance of a projection across processes on
// the file) and the [projection.Rebuilder] (shadow tables swapped in).
// Lease times come from the clock of the processes sharing the file,
// which are on one machine.
type Checkpoints struct {
	s   *Store
	now func() time.Time
}

var (
	_ projection.Rebuilder        = (*Checkpoints)(nil)
	_ projection.Leaser           = (*Checkpoints)(nil)
	_ projection.CheckpointLister = (*Checkpoints)(nil)
)

// NewCheckpoints returns the checkpoint store of s.
func NewCheckpoints(s *Store) *Checkpoints {
	return &Checkpoints{s: s, now: time.Now}
}

func checkName(what, name string) error {
	if err := nova.ValidateStream(name); err != nil {
		return nova.Invalidf("novasqlite", "%s: projection name: %v", what, err)
	}
	return nil
}

func checkPosition(what string, p nova.Position) error {
	if p.Commit > math.MaxInt64 || p.Prepare != 0 {
		return nova.Invalidf("novasqlite", "%s: position %s is not one of this store's", what, p)
	}
	return nil
}

// Load returns name's checkpoint, or [nova.Start] when none is stored.
func (cp *Checkpoints) Load(ctx context.Context, name string) (nova.Position, error) {
	if err := checkName("load checkpoint", name); err != nil {
		return nova.Start, err
	}
	var pos nova.Position
	err := cp.s.ReadTx(ctx, func(c *sqlite3.Conn) error {
		return queryRows(c, `SELECT commit_pos FROM checkpoints WHERE name = ?`, []any{name}, func(st *sqlite3.Stmt) error {
			pos.Commit = uint64(st.ColumnInt64(0))
			return nil
		})
	})
	if err != nil {
		return nova.Start, fmt.Errorf("novasqlite: load checkpoint %q: %w", name, err)
	}
	return pos, nil
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
	now := cp.now().UnixNano()
	err := cp.s.WriteTx(ctx, func(c *sqlite3.Conn) error { return setPosition(c, name, pos, now) })
	if err != nil {
		return fmt.Errorf("novasqlite: save checkpoint %q: %w", name, err)
	}
	return nil
}

func setPosition(c *sqlite3.Conn, name string, pos nova.Position, now int64) error {
	return execSQL(c, `INSERT INTO checkpoints (name, commit_pos, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET commit_pos = excluded.commit_pos, updated_at = excluded.updated_at`,
		name, int64(pos.Commit), now)
}

// Commit runs apply in a write transaction of the store and moves name's
// checkpoint from from to to in it; see [projection.TxCheckpoints]. apply
// finds the transaction's connection with [TxFromContext] and must follow
// the rules of a [TxFunc]: it may run more than once, and must not keep
// the connection or block.
func (cp *Checkpoints) Commit(ctx context.Context, name, owner string, from, to nova.Position, apply func(ctx context.Context) error) error {
	if err := projectiondriver.ValidateCommit(name, owner, from, to); err != nil {
		return err
	}
	if err := errors.Join(checkPosition("commit checkpoint", from), checkPosition("commit checkpoint", to)); err != nil {
		return err
	}
	now := cp.now().UnixNano()
	err := cp.s.WriteTx(ctx, func(c *sqlite3.Conn) error {
		var at int64
		var leaseOwner string
		var leaseUntil int64
		err := queryRows(c, `SELECT commit_pos, lease_owner, lease_until FROM checkpoints WHERE name = ?`, []any{name}, func(st *sqlite3.Stmt) error {
			at, leaseOwner, leaseUntil = st.ColumnInt64(0), st.ColumnText(1), st.ColumnInt64(2)
			return nil
		})
		if err != nil {
			return err
		}
		if owner != "" && (leaseOwner != owner || leaseUntil <= now) {
			return fmt.Errorf("novasqlite: commit checkpoint %q: %q does not hold the lease: %w", name, owner, projection.ErrLeaseLost)
		}
		if at != int64(from.Commit) {
			return fmt.Errorf("novasqlite: commit checkpoint %q: it is at %d, not %s: %w", name, at, from, nova.ErrConcurrency)
		}
		if err := apply(WithTx(ctx, c)); err != nil {
			return err
		}
		return setPosition(c, name, to, now)
	})
	return err
}

// Acquire takes name's lease for owner, or renews it, until ttl from now;
// see [projection.Leaser].
func (cp *Checkpoints) Acquire(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	if err := projectiondriver.ValidateLease(name, owner, &ttl); err != nil {
		return false, err
	}
	now := cp.now()
	held := false
	err := cp.s.WriteTx(ctx, func(c *sqlite3.Conn) error {
		held = false
		err := execSQL(c, `INSERT INTO checkpoints (name, lease_owner, lease_until, updated_at) VALUES (?1, ?2, ?3, ?4)
			ON CONFLICT (name) DO UPDATE SET lease_owner = excluded.lease_owner, lease_until = excluded.lease_until
			WHERE checkpoints.lease_owner = excluded.lease_owner OR checkpoints.lease_until <= ?4`,
			name, owner, now.Add(ttl).UnixNano(), now.UnixNano())
		held = c.Changes() == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("novasqlite: acquire lease on %q: %w", name, err)
	}
	return held, nil
}

// Release gives up owner's lease on name.
func (cp *Checkpoints) Release(ctx context.Context, name, owner string) error {
	if err := projectiondriver.ValidateLease(name, owner, nil); err != nil {
		return err
	}
	err := cp.s.WriteTx(ctx, func(c *sqlite3.Conn) error {
		return execSQL(c, `UPDATE checkpoints SET lease_owner = '', lease_until = 0 WHERE name = ? AND lease_owner = ?`, name, owner)
	})
	if err != nil {
		return fmt.Errorf("novasqlite: release lease on %q: %w", name, err)
	}
	return nil
}

// List returns every stored checkpoint, by name.
func (cp *Checkpoints) List(ctx context.Context) ([]projection.CheckpointInfo, error) {
	var list []projection.CheckpointInfo
	err := cp.s.ReadTx(ctx, func(c *sqlite3.Conn) error {
		list = list[:0]
		return queryRows(c, `SELECT name, commit_pos, lease_owner, lease_until, updated_at FROM checkpoints ORDER BY name`, nil, func(st *sqlite3.Stmt) error {
			i := projection.CheckpointInfo{
				Name: st.ColumnText(0), Position: nova.Position{Commit: uint64(st.ColumnInt64(1))},
				LeaseOwner: st.ColumnText(2), UpdatedAt: unixTime(st.ColumnInt64(4)),
			}
			if i.LeaseOwner != "" {
				i.LeaseUntil = unixTime(st.ColumnInt64(3))
			}
			list = append(list, i)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("novasqlite: list checkpoints: %w", err)
	}
	return list, nil
}

func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// Prepare creates an empty shadow of each table (see [projection.Table]),
// dropping an old shadow first: the live table's CREATE TABLE statement
// under the shadow's name, and its indexes. An index's shadow is named
// with [projectiondriver.ShadowSuffix] added, or taken off when the live index
// has it from the last swap. Triggers are not copied.
func (cp *Checkpoints) Prepare(ctx context.Context, tables []string) error {
	if err := checkTables(ctx, "prepare shadow tables", tables); err != nil {
		return err
	}
	rctx := projectiondriver.WithRebuild(ctx)
	err := cp.s.WriteTx(ctx, func(c *sqlite3.Conn) error {
		for _, t := range tables {
			shadow := projection.Table(rctx, t)
			if err := c.Exec(`DROP TABLE IF EXISTS ` + quote(shadow)); err != nil {
				return err
			}
			var ddl []string
			err := queryRows(c, `SELECT type, name, sql FROM sqlite_master WHERE tbl_name = ? COLLATE NOCASE AND type IN ('table', 'index') AND sql IS NOT NULL ORDER BY type = 'index'`, []any{t}, func(st *sqlite3.Stmt) error {
				s, err := shadowDDL(st.ColumnText(0), st.ColumnText(1), st.ColumnText(2), shadow)
				ddl = append(ddl, s)
				return err
			})
			if err != nil {
				return fmt.Errorf("table %q: %w", t, err)
			}
			if len(ddl) == 0 {
				return nova.Invalidf("novasqlite", "prepare shadow tables: no table %q", t)
			}
			for _, s := range ddl {
				if err := c.Exec(s); err != nil {
					return fmt.Errorf("table %q: %s: %w", t, s, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("novasqlite: prepare shadow tables: %w", err)
	}
	return nil
}

// Swap replaces each live table by its shadow and moves shadow's
// checkpoint to name, in one transaction; see [projection.Rebuilder].
func (cp *Checkpoints) Swap(ctx context.Context, name, shadow string, tables []string) error {
	if err := projectiondriver.ValidateSwap(name, shadow, tables); err != nil {
		return err
	}
	if err := checkTables(ctx, "swap shadow tables", tables); err != nil {
		return err
	}
	rctx := projectiondriver.WithRebuild(ctx)
	now := cp.now().UnixNano()
	err := cp.s.WriteTx(ctx, func(c *sqlite3.Conn) error {
		for _, t := range tables {
			s := projection.Table(rctx, t)
			n := 0
			if err := queryRows(c, `SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`, []any{s}, func(*sqlite3.Stmt) error { n++; return nil }); err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("no shadow table %q: Prepare first", s)
			}
		}
		var pos, live int64
		err := queryRows(c, `SELECT name = ?1, commit_pos FROM checkpoints WHERE name IN (?1, ?2)`, []any{shadow, name}, func(st *sqlite3.Stmt) error {
			if st.ColumnBool(0) {
				pos = st.ColumnInt64(1)
			} else {
				live = st.ColumnInt64(1)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if live > pos {
			return fmt.Errorf("the live checkpoint %d is ahead of the rebuild's %d: %w", live, pos, nova.ErrConcurrency)
		}
		for _, t := range tables {
			if err := c.Exec(`DROP TABLE IF EXISTS ` + quote(t) + `; ALTER TABLE ` + quote(projection.Table(rctx, t)) + ` RENAME TO ` + quote(t)); err != nil {
				return fmt.Errorf("table %q: %w", t, err)
			}
		}
		if err := setPosition(c, name, nova.Position{Commit: uint64(pos)}, now); err != nil {
			return err
		}
		return execSQL(c, `DELETE FROM checkpoints WHERE name = ?`, shadow)
	})
	if err != nil {
		return fmt.Errorf("novasqlite: swap shadow tables of %q: %w", name, err)
	}
	return nil
}

func checkTables(ctx context.Context, what string, tables []string) error {
	if err := projectiondriver.ValidateTables(tables); err != nil {
		return err
	}
	for _, t := range tables {
		if strings.Contains(t, ".") {
			return nova.Invalidf("novasqlite", "%s: table %q: no schema-qualified names in SQLite", what, t)
		}
	}
	return nil
}

// shadowDDL rewrites the CREATE statement of a table or index on a live
// table to create its counterpart on the table shadow. SQLite keeps the
// statement as written, after CREATE and TABLE or INDEX.
func shadowDDL(typ, name, sql, shadow string) (string, error) {
	p := &ddlParser{s: sql}
	if !p.keyword("CREATE") {
		return "", fmt.Errorf("unexpected definition of %s %q: %q", typ, name, sql)
	}
	var b strings.Builder
	if typ == "table" {
		if !p.keyword("TABLE") {
			return "", fmt.Errorf("unexpected definition of table %q: %q", name, sql)
		}
		p.keyword("IF")
		p.keyword("NOT")
		p.keyword("EXISTS")
		if _, ok := p.name(); !ok {
			return "", fmt.Errorf("unexpected definition of table %q: %q", name, sql)
		}
		b.WriteString("CREATE TABLE " + quote(shadow) + " " + p.rest())
		return b.String(), nil
	}
	unique := p.keyword("UNIQUE")
	if !p.keyword("INDEX") {
		return "", fmt.Errorf("unexpected definition of index %q: %q", name, sql)
	}
	p.keyword("IF")
	p.keyword("NOT")
	p.keyword("EXISTS")
	idx, ok := p.name()
	if !ok || !p.keyword("ON") {
		return "", fmt.Errorf("unexpected definition of index %q: %q", name, sql)
	}
	if _, ok := p.name(); !ok {
		return "", fmt.Errorf("unexpected definition of index %q: %q", name, sql)
	}
	if s, cut := strings.CutSuffix(idx, projectiondriver.ShadowSuffix); cut {
		idx = s
	} else {
		idx += projectiondriver.ShadowSuffix
	}
	b.WriteString("CREATE ")
	if unique {
		b.WriteString("UNIQUE ")
	}
	b.WriteString("INDEX " + quote(idx) + " ON " + quote(shadow) + " " + p.rest())
	return b.String(), nil
}

// ddlParser reads the head of a CREATE statement.
type ddlParser struct {
	s string
	i int
}

func (p *ddlParser) space() {
	for p.i < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.i]) >= 0 {
		p.i++
	}
}

// keyword consumes kw (any case) when it comes next, as a whole word.
func (p *ddlParser) keyword(kw string) bool {
	p.space()
	end := p.i + len(kw)
	if end > len(p.s) || !strings.EqualFold(p.s[p.i:end], kw) {
		return false
	}
	if end < len(p.s) && isWordByte(p.s[end]) {
		return false
	}
	p.i = end
	return true
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// name consumes a name, bare or quoted (in double quotes, backquotes,
// square brackets or single quotes), and returns it unquoted.
func (p *ddlParser) name() (string, bool) {
	p.space()
	if p.i >= len(p.s) {
		return "", false
	}
	closing := map[byte]byte{'"': '"', '`': '`', '[': ']', '\'': '\''}[p.s[p.i]]
	if closing == 0 {
		start := p.i
		for p.i < len(p.s) && isWordByte(p.s[p.i]) {
			p.i++
		}
		return p.s[start:p.i], p.i > start
	}
	var b strings.Builder
	for p.i++; p.i < len(p.s); p.i++ {
		c := p.s[p.i]
		if c == closing {
			if closing != ']' && p.i+1 < len(p.s) && p.s[p.i+1] == closing {
				b.WriteByte(c)
				p.i++
				continue
			}
			p.i++
			return b.String(), true
		}
		b.WriteByte(c)
	}
	return "", false
}

func (p *ddlParser) rest() string {
	p.space()
	return p.s[p.i:]
}

// quote quotes an SQL identifier.
func quote(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// execSQL runs one statement with args bound.
func execSQL(c *sqlite3.Conn, sql string, args ...any) error {
	return queryRows(c, sql, args, nil)
}

// queryRows runs one statement with args bound (int64 or string), calling
// row, if not nil, for each result row.
func queryRows(c *sqlite3.Conn, sql string, args []any, row func(st *sqlite3.Stmt) error) error {
	st, _, err := c.Prepare(sql)
	if err != nil {
		return err
	}
	defer st.Close()
	for i, a := range args {
		switch v := a.(type) {
		case int64:
			err = st.BindInt64(i+1, v)
		case string:
			err = st.BindText(i+1, v)
		default:
			err = fmt.Errorf("novasqlite: cannot bind %T", a)
		}
		if err != nil {
			return err
		}
	}
	for st.Step() {
		if row != nil {
			if err := row(st); err != nil {
				return err
			}
		}
	}
	return st.Err()
}
