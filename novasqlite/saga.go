package novasqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/internal/sagarun"
	"github.com/nova-go/nova/saga"
)

var (
	_ saga.RunStore = (*RunStore)(nil)
	_ broker.Outbox = (*Outbox)(nil)
)

// RunStore keeps durable saga runs in the store's file: their streams as
// events, the saga_runs table and the outbox. A transition is one
// [Store.AppendTx]: the append, the lease check, the run's row and the
// outbox rows commit together or not at all, and may share a group commit
// with other appends. Claims, renewals and releases are write
// transactions ([Store.WriteTx]); reads run on the reading connections.
//
// Times are the clock of the processes sharing the file, which are on one
// machine; they are kept as Unix nanoseconds.
type RunStore struct {
	s     *Store
	box   *Outbox
	now   func() time.Time
	stmts *preparedStmts
}

// Outbox is the [broker.Outbox] of a [RunStore], the outbox table of the
// store's file.
type Outbox struct {
	s     *Store
	stmts *preparedStmts
	// wake is woken after a Record of this process that wrote outbox
	// rows has committed.
	wake sagarun.Waker
}

// NewRunStore returns the run store of s.
func NewRunStore(s *Store) *RunStore {
	p := &preparedStmts{}
	return &RunStore{s: s, box: &Outbox{s: s, stmts: p}, now: time.Now, stmts: p}
}

// Events returns the event store holding the runs' streams.
func (r *RunStore) Events() nova.Store { return r.s }

// Outbox returns the outbox Record writes to.
func (r *RunStore) Outbox() broker.Outbox { return r.box }

// Now returns the store's clock.
func (r *RunStore) Now(ctx context.Context) (time.Time, error) {
	return r.now().UTC(), nil
}

// runColumns are the columns scanRun reads, in its order.
const runColumns = `saga, run_id, status, version, step, attempt, error, due_at, deadline_at,
	lease_owner, lease_until, created_at, updated_at`

// Record writes t in one transaction; see [saga.RunStore.Record]. A
// retry of a transition already recorded (its events stored at their
// place) writes nothing and returns the run's row.
func (r *RunStore) Record(ctx context.Context, t saga.Transition) (saga.RunInfo, error) {
	if err := sagarun.CheckTransition(&t); err != nil {
		return saga.RunInfo{}, fmt.Errorf("novasqlite: record: %w", err)
	}
	var row saga.RunInfo
	res, err := r.s.AppendTx(ctx, t.Stream, t.Expected, t.Events, func(c *sqlite3.Conn) error {
		var err error
		row, err = r.write(c, &t)
		return err
	})
	if err != nil {
		return saga.RunInfo{}, fmt.Errorf("novasqlite: record run %q: %w", t.Run.RunID, err)
	}
	if res.Duplicate {
		return r.Get(ctx, t.Run.Saga, t.Run.RunID)
	}
	if len(t.Outbox) > 0 {
		r.box.wake.Wake()
	}
	return row, nil
}

// write checks the lease and writes the run's row and the outbox rows of
// t, in the transaction of its append.
func (r *RunStore) write(c *sqlite3.Conn, t *saga.Transition) (saga.RunInfo, error) {
	now := r.now().UTC()
	w := &t.Run
	version := uint64(0)
	if v, exact := t.Expected.Version(); exact {
		// The append succeeded at exactly v: no need to ask.
		version = v + uint64(len(t.Events))
	} else {
		err := r.stmts.exec(c, `SELECT version FROM streams WHERE stream = ?`, []any{t.Stream}, func(st *sqlite3.Stmt) {
			version = uint64(st.ColumnInt64(0))
		})
		if err != nil {
			return saga.RunInfo{}, err
		}
	}
	var until time.Time
	if t.Owner != "" {
		until = now.Add(t.Lease)
	}
	var (
		row  saga.RunInfo
		held bool
	)
	args := []any{w.Saga, w.RunID, string(w.Status), int64(version), w.Step, int64(w.Attempt), w.Error,
		nanos(w.DueAt), nanos(w.DeadlineAt), t.Owner, nanos(until), nanos(now)}
	if t.Owner != "" {
		// Most transitions of a leased run leave its status and lease as
		// they are: this UPDATE, which sets neither, writes no index
		// entry (the due-time index leaves leased runs out, the status
		// and lease indexes are keyed on columns it does not set), only
		// the row. It writes nothing when the status changes, the run is
		// new or the lease is not held; the upsert decides those.
		err := r.stmts.exec(c, `UPDATE saga_runs SET version = ?4, step = ?5, attempt = ?6, error = ?7,
				due_at = ?8, deadline_at = ?9, updated_at = ?12
			WHERE saga = ?1 AND run_id = ?2 AND status = ?3 AND lease_owner = ?10 AND lease_until > ?12
			RETURNING `+runColumns, args, func(st *sqlite3.Stmt) { row, held = scanRun(st), true })
		if err != nil {
			return saga.RunInfo{}, err
		}
	}
	// One statement decides the lease (as [sagarun.Lease] does) and
	// writes the row: a writer with an owner keeps the lease as it is and
	// writes nothing, and gets no row back, unless it holds the lease; one
	// without clears it; a new run is leased to the owner.
	var err error
	if !held {
		err = r.stmts.exec(c, upsertRun[t.Owner != ""], args,
			func(st *sqlite3.Stmt) { row, held = scanRun(st), true })
	}
	if err != nil {
		return saga.RunInfo{}, err
	}
	if !held {
		old, _, err := r.getRun(c, w.Saga, w.RunID)
		if err != nil {
			return saga.RunInfo{}, err
		}
		return saga.RunInfo{}, sagarun.LeaseLost(w.Saga, w.RunID, t.Owner, old)
	}
	if len(t.Outbox) == 0 {
		return row, nil
	}
	// One statement for a transition's envelopes (one or two; at most
	// outboxRows a statement).
	for rest := t.Outbox; len(rest) > 0; {
		n := min(len(rest), outboxRows)
		args := make([]any, 0, outboxArgs*n)
		for _, e := range rest[:n] {
			h, err := sagarun.Headers(e.Headers)
			if err != nil {
				return saga.RunInfo{}, err
			}
			var hdr any
			if h != nil {
				hdr = string(h)
			}
			args = append(args, e.ID, e.Topic, e.EventType, []byte(e.Payload), e.Key, hdr, int64(e.Attempts), nanos(e.Timestamp), nanos(now))
		}
		if err := r.stmts.exec(c, outboxInsert(n), args, nil); err != nil {
			return saga.RunInfo{}, err
		}
		rest = rest[n:]
	}
	return row, nil
}

// upsertRun writes a run's row; see write. With an owner (true) it keeps
// the lease as it is and does not set its columns, so that the lease
// index is left alone; without one (false) it clears the lease.
var upsertRun = map[bool]string{
	true: `INSERT INTO saga_runs (` + runColumns + `) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)
		ON CONFLICT (saga, run_id) DO UPDATE SET status = excluded.status, version = excluded.version,
			step = excluded.step, attempt = excluded.attempt, error = excluded.error,
			due_at = excluded.due_at, deadline_at = excluded.deadline_at, updated_at = excluded.updated_at
		WHERE lease_owner = ?10 AND lease_until > ?12
		RETURNING ` + runColumns,
	false: `INSERT INTO saga_runs (` + runColumns + `) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, '', 0, ?12, ?12)
		ON CONFLICT (saga, run_id) DO UPDATE SET status = excluded.status, version = excluded.version,
			step = excluded.step, attempt = excluded.attempt, error = excluded.error,
			due_at = excluded.due_at, deadline_at = excluded.deadline_at,
			lease_owner = '', lease_until = 0, updated_at = excluded.updated_at
		RETURNING ` + runColumns,
}

// outboxArgs is the number of values of one outbox row; outboxRows is
// the most rows one statement inserts, well within SQLite's limit on
// bound values.
const (
	outboxArgs = 9
	outboxRows = 64
)

// outboxInserts are the statements inserting 1, 2, … outboxRows rows.
var outboxInserts sync.Map // int → string

// outboxInsert returns the statement inserting n outbox rows.
func outboxInsert(n int) string {
	if q, ok := outboxInserts.Load(n); ok {
		return q.(string)
	}
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", outboxArgs), ", ") + ")"
	q := `INSERT INTO outbox (id, topic, event_type, payload, key, headers, attempts, stamped_at, created_at) VALUES ` +
		strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
	outboxInserts.Store(n, q)
	return q
}

// Claim leases due runs in one write transaction; see
// [saga.RunStore.Claim]. Runs due at the same time are taken in (saga,
// run ID) order.
func (r *RunStore) Claim(ctx context.Context, req saga.ClaimRequest) ([]saga.RunInfo, error) {
	if err := sagarun.CheckClaim(req); err != nil {
		return nil, fmt.Errorf("novasqlite: claim: %w", err)
	}
	sagas, err := json.Marshal(req.Sagas)
	if err != nil {
		return nil, fmt.Errorf("novasqlite: claim: %w", err)
	}
	var out []saga.RunInfo
	err = r.s.WriteTx(ctx, func(c *sqlite3.Conn) error {
		out = out[:0]
		now := r.now().UTC()
		// Free runs are found by the due-time index, which holds them
		// only, in due order; runs whose lease has expired by the lease
		// index. A free run's lease_until is 0, a leased one's is set.
		// (Left to itself, the planner scans the saga's primary-key
		// range, finished runs included.)
		return r.stmts.exec(c, `UPDATE saga_runs SET lease_owner = ?1, lease_until = ?2
			WHERE (saga, run_id) IN (
				SELECT saga, run_id FROM (
					SELECT saga, run_id, due_at FROM (
						SELECT saga, run_id, due_at FROM saga_runs INDEXED BY saga_runs_due
						WHERE due_at > 0 AND lease_owner = '' AND due_at <= ?3
							AND saga IN (SELECT value FROM json_each(?4))
						ORDER BY due_at, saga, run_id LIMIT ?5)
					UNION ALL
					SELECT saga, run_id, due_at FROM (
						SELECT saga, run_id, due_at FROM saga_runs INDEXED BY saga_runs_leased
						WHERE lease_owner <> '' AND lease_until <= ?3 AND due_at > 0 AND due_at <= ?3
							AND saga IN (SELECT value FROM json_each(?4))
						ORDER BY due_at, saga, run_id LIMIT ?5))
				ORDER BY due_at, saga, run_id LIMIT ?5)
			RETURNING `+runColumns,
			[]any{req.Owner, nanos(now.Add(req.Lease)), nanos(now), string(sagas), int64(req.Limit)},
			func(st *sqlite3.Stmt) { out = append(out, scanRun(st)) })
	})
	if err != nil {
		return nil, fmt.Errorf("novasqlite: claim: %w", err)
	}
	sagarun.SortDue(out)
	return out, nil
}

// Renew extends owner's lease; see [saga.RunStore.Renew].
func (r *RunStore) Renew(ctx context.Context, sagaName, runID, owner string, lease time.Duration) error {
	if err := sagarun.CheckRenew(sagaName, runID, owner, lease); err != nil {
		return fmt.Errorf("novasqlite: renew: %w", err)
	}
	err := r.s.WriteTx(ctx, func(c *sqlite3.Conn) error {
		now := r.now().UTC()
		err := r.stmts.exec(c, `UPDATE saga_runs SET lease_until = ? WHERE saga = ? AND run_id = ? AND lease_owner = ? AND lease_until > ?`,
			[]any{nanos(now.Add(lease)), sagaName, runID, owner, nanos(now)}, nil)
		if err != nil || c.Changes() == 1 {
			return err
		}
		row, _, err := r.getRun(c, sagaName, runID)
		if err != nil {
			return err
		}
		return sagarun.LeaseLost(sagaName, runID, owner, row)
	})
	if err != nil {
		return fmt.Errorf("novasqlite: renew: %w", err)
	}
	return nil
}

// Release frees owner's lease; see [saga.RunStore.Release]. A missing run
// is not an error.
func (r *RunStore) Release(ctx context.Context, sagaName, runID, owner string) error {
	if err := sagarun.CheckRelease(sagaName, runID, owner); err != nil {
		return fmt.Errorf("novasqlite: release: %w", err)
	}
	err := r.s.WriteTx(ctx, func(c *sqlite3.Conn) error {
		return r.stmts.exec(c, `UPDATE saga_runs SET lease_owner = '', lease_until = 0 WHERE saga = ? AND run_id = ? AND lease_owner = ?`,
			[]any{sagaName, runID, owner}, nil)
	})
	if err != nil {
		return fmt.Errorf("novasqlite: release run %q: %w", runID, err)
	}
	return nil
}

// Get returns a run's row, or an error matching [nova.ErrNotFound].
func (r *RunStore) Get(ctx context.Context, sagaName, runID string) (saga.RunInfo, error) {
	if err := sagarun.CheckKey(sagaName, runID); err != nil {
		return saga.RunInfo{}, fmt.Errorf("novasqlite: get run: %w", err)
	}
	var (
		row    saga.RunInfo
		exists bool
	)
	err := r.s.ReadTx(ctx, func(c *sqlite3.Conn) error {
		var err error
		row, exists, err = r.getRun(c, sagaName, runID)
		return err
	})
	if err != nil {
		return saga.RunInfo{}, fmt.Errorf("novasqlite: get run %q: %w", runID, err)
	}
	if !exists {
		return saga.RunInfo{}, fmt.Errorf("novasqlite: run %q of saga %q: %w", runID, sagaName, nova.ErrNotFound)
	}
	return row, nil
}

// List returns runs ordered by (saga, run ID); see [saga.RunStore.List].
func (r *RunStore) List(ctx context.Context, f saga.RunFilter) ([]saga.RunInfo, error) {
	limit, err := sagarun.ListLimit(f)
	if err != nil {
		return nil, fmt.Errorf("novasqlite: list runs: %w", err)
	}
	var out []saga.RunInfo
	err = r.s.ReadTx(ctx, func(c *sqlite3.Conn) error {
		return r.stmts.exec(c, `SELECT `+runColumns+` FROM saga_runs
			WHERE (?1 = '' OR saga = ?1) AND (?2 = '' OR status = ?2) AND (saga > ?3 OR (saga = ?3 AND run_id > ?4))
			ORDER BY saga, run_id LIMIT ?5`,
			[]any{f.Saga, string(f.Status), f.AfterSaga, f.AfterRun, int64(limit)},
			func(st *sqlite3.Stmt) { out = append(out, scanRun(st)) })
	})
	if err != nil {
		return nil, fmt.Errorf("novasqlite: list runs: %w", err)
	}
	return out, nil
}

// Count returns the number of runs of sagaName per status, of every saga
// when sagaName is empty. Statuses with no run are left out.
func (r *RunStore) Count(ctx context.Context, sagaName string) (map[saga.Status]int, error) {
	out := make(map[saga.Status]int)
	err := r.s.ReadTx(ctx, func(c *sqlite3.Conn) error {
		return r.stmts.exec(c, `SELECT status, count(*) FROM saga_runs WHERE ?1 = '' OR saga = ?1 GROUP BY status`,
			[]any{sagaName}, func(st *sqlite3.Stmt) { out[saga.Status(st.ColumnText(0))] = st.ColumnInt(1) })
	})
	if err != nil {
		return nil, fmt.Errorf("novasqlite: count runs: %w", err)
	}
	return out, nil
}

// Pending returns up to limit messages, lowest Seq first.
func (o *Outbox) Pending(ctx context.Context, limit int) ([]broker.OutboxMessage, error) {
	if err := sagarun.CheckPending(limit); err != nil {
		return nil, fmt.Errorf("novasqlite: outbox: %w", err)
	}
	var out []broker.OutboxMessage
	err := o.s.ReadTx(ctx, func(c *sqlite3.Conn) error {
		out = out[:0]
		var serr error
		err := o.stmts.exec(c, `SELECT seq, id, topic, event_type, payload, key, headers, attempts, stamped_at
			FROM outbox ORDER BY seq LIMIT ?`, []any{int64(limit)}, func(st *sqlite3.Stmt) {
			m := broker.OutboxMessage{Seq: st.ColumnInt64(0), Envelope: broker.Envelope{
				ID: st.ColumnText(1), Topic: st.ColumnText(2), EventType: st.ColumnText(3),
				Payload: st.ColumnBlob(4, nil), Key: st.ColumnText(5), Attempts: st.ColumnInt(7),
				Timestamp: fromNanos(st.ColumnInt64(8)),
			}}
			var h []byte
			if st.ColumnType(6) != sqlite3.NULL {
				h = st.ColumnBlob(6, []byte{})
			}
			if err := sagarun.SetHeaders(&m.Envelope, h); err != nil && serr == nil {
				serr = err
			}
			out = append(out, m)
		})
		if err != nil {
			return err
		}
		return serr
	})
	if err != nil {
		return nil, fmt.Errorf("novasqlite: outbox: %w", err)
	}
	return out, nil
}

// MarkSent removes the messages with these Seqs.
func (o *Outbox) MarkSent(ctx context.Context, seqs []int64) error {
	if len(seqs) == 0 {
		return nil
	}
	list, err := json.Marshal(seqs)
	if err != nil {
		return fmt.Errorf("novasqlite: outbox: %w", err)
	}
	err = o.s.WriteTx(ctx, func(c *sqlite3.Conn) error {
		return o.stmts.exec(c, `DELETE FROM outbox WHERE seq IN (SELECT value FROM json_each(?))`, []any{string(list)}, nil)
	})
	if err != nil {
		return fmt.Errorf("novasqlite: outbox: mark sent: %w", err)
	}
	return nil
}

// Wake returns a channel closed when a Record of this process next writes
// outbox rows. Records of other processes on the file do not close it: a
// relay polls as well.
func (o *Outbox) Wake() <-chan struct{} { return o.wake.C() }

// getRun reads one run's row on c.
func (r *RunStore) getRun(c *sqlite3.Conn, sagaName, runID string) (row saga.RunInfo, exists bool, err error) {
	err = r.stmts.exec(c, `SELECT `+runColumns+` FROM saga_runs WHERE saga = ? AND run_id = ?`, []any{sagaName, runID},
		func(st *sqlite3.Stmt) { row, exists = scanRun(st), true })
	return row, exists, err
}

// scanRun reads a row of runColumns.
func scanRun(st *sqlite3.Stmt) saga.RunInfo {
	return saga.RunInfo{
		Saga: st.ColumnText(0), RunID: st.ColumnText(1), Status: saga.Status(st.ColumnText(2)),
		Version: uint64(st.ColumnInt64(3)), Step: st.ColumnText(4), Attempt: st.ColumnInt(5), Error: st.ColumnText(6),
		DueAt: fromNanos(st.ColumnInt64(7)), DeadlineAt: fromNanos(st.ColumnInt64(8)),
		LeaseOwner: st.ColumnText(9), LeaseUntil: fromNanos(st.ColumnInt64(10)),
		CreatedAt: fromNanos(st.ColumnInt64(11)), UpdatedAt: fromNanos(st.ColumnInt64(12)),
	}
}

// preparedStmts keeps the statements of a run store prepared on each
// connection it has used (the writer's and the readers'): preparing one
// costs more than running it. A statement is used only by the goroutine
// holding its connection, and closed by the store's Close with every
// other statement of the connection.
type preparedStmts struct {
	mu sync.Mutex
	m  map[preparedKey]*sqlite3.Stmt
}

type preparedKey struct {
	conn *sqlite3.Conn
	sql  string
}

// get returns sql prepared on c, preparing it the first time.
func (p *preparedStmts) get(c *sqlite3.Conn, sql string) (*sqlite3.Stmt, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := preparedKey{c, sql}
	if st, ok := p.m[k]; ok {
		return st, nil
	}
	st, _, err := c.PrepareFlags(sql, sqlite3.PREPARE_PERSISTENT)
	if err != nil {
		return nil, err
	}
	if p.m == nil {
		p.m = make(map[preparedKey]*sqlite3.Stmt)
	}
	p.m[k] = st
	return st, nil
}

// exec runs one statement on c with args bound, calling row, if not nil,
// for each result row, and resets the statement for its next use.
func (p *preparedStmts) exec(c *sqlite3.Conn, sql string, args []any, row func(st *sqlite3.Stmt)) (err error) {
	st, err := p.get(c, sql)
	if err != nil {
		return err
	}
	defer func() {
		if rerr := st.Reset(); err == nil {
			err = rerr
		}
	}()
	if err := bind(st, args...); err != nil {
		return err
	}
	for st.Step() {
		if row != nil {
			row(st)
		}
	}
	return st.Err()
}

// bind binds args (string, int64, []byte or nil for NULL) to st's
// parameters in order.
func bind(st *sqlite3.Stmt, args ...any) error {
	for i, a := range args {
		var err error
		switch v := a.(type) {
		case string:
			err = st.BindText(i+1, v)
		case int64:
			err = st.BindInt64(i+1, v)
		case []byte:
			err = st.BindBlob(i+1, v)
		case nil:
			err = st.BindNull(i + 1)
		default:
			err = fmt.Errorf("novasqlite: cannot bind %T", a)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// nanos is t as Unix nanoseconds, 0 for the zero time.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNanos is the time nanos wrote, in UTC.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
