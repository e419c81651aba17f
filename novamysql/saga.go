package novamysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/internal/sagarun"
	"github.com/nova-go/nova/internal/validate"
	"github.com/nova-go/nova/saga"
)

var (
	_ saga.RunStore = (*RunStore)(nil)
	_ broker.Outbox = (*Outbox)(nil)
)

// RunStore keeps durable saga runs in the store's database: their
// streams as events, the PREFIXsaga_runs table and the PREFIXoutbox
// table. A transition is one transaction: the run's row read under its
// lock and its lease checked, the stream's version checked and moved,
// the row written, the outbox rows inserted, and last the events
// appended at positions taken from the store's counter; a transition
// whose writer lost its lease is rolled back whole and fails with an
// error matching [saga.ErrLeaseLost]. A claim is one short transaction
// that picks due runs with SELECT ... FOR UPDATE SKIP LOCKED and leases
// them, so that workers on any number of connections and processes never
// claim one run twice.
//
// Every time is the server's (UTC_TIMESTAMP(6), the time its statement
// began), so every worker agrees on leases and due times whatever its own
// clock says; times are kept to the microsecond. A call that fails on a
// broken connection, or whose transaction InnoDB rolled back to break a
// deadlock, is tried again for up to 10 seconds: a transition whose
// commit was lost with its connection is found stored by its events' IDs.
// After that, and after a lock wait timeout, the error is one
// [nova.IsTransient] reports, for the worker to wait out.
//
// Transitions take the run's row lock, then the stream's row lock, and
// the store's position counter lock (which every append waits for) only
// for their last statements: reserving the positions, inserting the
// events and committing. Claims take run rows only, skipping locked ones,
// so the two never wait on each other for long. An [Store.Append] to a
// run's stream while a transition writes it takes the two locks the
// other way round: one of them may then lose a deadlock, a transient
// error (the transition retries). The runs' streams are the run store's
// to write.
type RunStore struct {
	s   *Store
	box *Outbox
	q   sagaQueries
}

// Outbox is the [broker.Outbox] of a [RunStore], the PREFIXoutbox table.
// Its Wake channel is closed by Records of this process only: a relay
// polls for the others'.
type Outbox struct {
	s    *Store
	q    *sagaQueries
	wake sagarun.Waker
}

type sagaQueries struct {
	now, lock, insert, update, claim, lease, renew, release, get, count, countSaga, list, outbox, pending, markSent string
}

// runColumns are the columns scanRun reads, in its order.
const runColumns = `saga, run_id, status, version, step, attempt, error, due_at, deadline_at,
	lease_owner, lease_until, created_at, updated_at`

func newSagaQueries(p string) sagaQueries {
	t := func(q string) string { return tables(p, q) }
	return sagaQueries{
		now: `SELECT UTC_TIMESTAMP(6)`,
		// lock reads a run's row under its exclusive lock, held until
		// the transition commits, with the time the check is made at.
		lock: t(`SELECT UTC_TIMESTAMP(6), ` + runColumns + ` FROM {p}saga_runs WHERE saga = ? AND run_id = ? FOR UPDATE`),
		insert: t(`INSERT INTO {p}saga_runs (` + runColumns + `)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		update: t(`UPDATE {p}saga_runs SET status = ?, version = ?, step = ?, attempt = ?, error = ?,
			due_at = ?, deadline_at = ?, lease_owner = ?, lease_until = ?, updated_at = ?
			WHERE saga = ? AND run_id = ?`),
		// claim picks due runs that no live lease holds, in the order of
		// the due index, skipping the rows other transactions hold (a
		// claim or a transition in progress); the saga names follow.
		claim: t(`SELECT UTC_TIMESTAMP(6), ` + runColumns + ` FROM {p}saga_runs
			WHERE due_at <= UTC_TIMESTAMP(6) AND (lease_until IS NULL OR lease_until <= UTC_TIMESTAMP(6))
				AND saga IN `),
		lease:     t(`UPDATE {p}saga_runs SET lease_owner = ?, lease_until = ? WHERE `),
		renew:     t(`UPDATE {p}saga_runs SET lease_until = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND WHERE saga = ? AND run_id = ? AND lease_owner = ? AND lease_until > UTC_TIMESTAMP(6)`),
		release:   t(`UPDATE {p}saga_runs SET lease_owner = '', lease_until = NULL WHERE saga = ? AND run_id = ? AND lease_owner = ?`),
		get:       t(`SELECT UTC_TIMESTAMP(6), ` + runColumns + ` FROM {p}saga_runs WHERE saga = ? AND run_id = ?`),
		count:     t(`SELECT status, COUNT(*) FROM {p}saga_runs GROUP BY status`),
		countSaga: t(`SELECT status, COUNT(*) FROM {p}saga_runs WHERE saga = ? GROUP BY status`),
		list:      t(`SELECT UTC_TIMESTAMP(6), ` + runColumns + ` FROM {p}saga_runs`),
		outbox:    t("INSERT INTO {p}outbox (id, topic, event_type, payload, `key`, headers, attempts, stamped_at, created_at) VALUES "),
		pending:   t("SELECT seq, id, topic, event_type, payload, `key`, headers, attempts, stamped_at FROM {p}outbox ORDER BY seq LIMIT ?"),
		markSent:  t(`DELETE FROM {p}outbox WHERE seq IN `),
	}
}

// NewRunStore returns the run store of s, on s's pool and tables.
func NewRunStore(s *Store) *RunStore {
	r := &RunStore{s: s, q: newSagaQueries(s.cfg.TablePrefix)}
	r.box = &Outbox{s: s, q: &r.q}
	return r
}

// Events returns the event store holding the runs' streams.
func (r *RunStore) Events() nova.Store { return r.s }

// Outbox returns the outbox Record writes to.
func (r *RunStore) Outbox() broker.Outbox { return r.box }

// Now returns the server's clock, UTC_TIMESTAMP(6).
func (r *RunStore) Now(ctx context.Context) (time.Time, error) {
	var now timeValue
	err := r.s.retry(ctx, func() error {
		return r.s.queryRowPool(ctx, r.q.now, nil, &now)
	})
	if err != nil {
		return time.Time{}, sagaError("now", err)
	}
	return now.t, nil
}

// errDuplicate ends the transaction of a transition found stored.
var errDuplicate = errors.New("novamysql: transition already recorded")

// Record writes t in one transaction; see [saga.RunStore.Record]. A
// retry of a transition already recorded (its events stored at their
// place) writes nothing and returns the run's row.
func (r *RunStore) Record(ctx context.Context, t saga.Transition) (saga.RunInfo, error) {
	if err := sagarun.CheckTransition(&t); err != nil {
		return saga.RunInfo{}, fmt.Errorf("novamysql: record: %w", err)
	}
	// The events as an append writes them, their IDs given once: a
	// retry after a commit lost with its connection finds them stored.
	evs, err := validate.Append(t.Stream, t.Events)
	if err == nil {
		err = r.s.checkSizes(t.Stream, evs)
	}
	if err != nil {
		return saga.RunInfo{}, fmt.Errorf("novamysql: record: %w", err)
	}
	t.Events = evs
	outbox, err := r.box.rows(t.Outbox)
	if err != nil {
		return saga.RunInfo{}, fmt.Errorf("novamysql: record run %q: %w", t.Run.RunID, err)
	}
	var row saga.RunInfo
	err = r.s.retry(ctx, func() error {
		var err error
		row, err = r.record(ctx, &t, outbox)
		return err
	})
	switch {
	case errors.Is(err, errDuplicate):
		return r.Get(ctx, t.Run.Saga, t.Run.RunID)
	case err != nil:
		return saga.RunInfo{}, sagaError(fmt.Sprintf("record run %q", t.Run.RunID), err)
	}
	// As after an append: subscribers are woken.
	r.s.Notify()
	if len(t.Outbox) > 0 {
		r.box.wake.Wake()
	}
	return row, nil
}

// record is one attempt at t's transaction, every statement prepared on
// its connection (one round trip each). The position counter's lock,
// which every append of the store waits for, is taken last: the run's
// row is read under its lock and the lease decided, the stream's version
// moved under its row's lock, the run's row and the outbox rows written,
// and only then are positions reserved on the counter, the events
// inserted and the transaction committed. No savepoint is needed: any
// failure rolls the whole transaction back. An event ID already stored
// is decided after the rollback: an exact retry is errDuplicate, anything
// else a *nova.DuplicateEventError.
func (r *RunStore) record(ctx context.Context, t *saga.Transition, outbox []outboxRow) (saga.RunInfo, error) {
	if err := r.prepare(ctx, len(t.Events), outbox); err != nil {
		return saga.RunInfo{}, err
	}
	tx, err := r.s.db.BeginTx(ctx, nil)
	if err != nil {
		return saga.RunInfo{}, err
	}
	ex := stmtTx{s: r.s, tx: tx}
	row, err := func() (row saga.RunInfo, err error) {
		defer func() {
			if v := recover(); v != nil {
				_ = tx.Rollback()
				panic(v)
			}
		}()
		// The run's row under its lock, and the lease's verdict, given
		// once the append is known not to be a retry of a recorded
		// transition (whose row may no longer carry the lease).
		old, now, exists, err := r.lockRun(ctx, ex, &t.Run)
		if err != nil {
			return saga.RunInfo{}, err
		}
		owner, until, leaseErr := sagarun.Lease(t, exists, old, now)
		// Positions are relative to 0 until the counter is locked.
		a := r.s.newTxn(ex, 0)
		res, err := a.append(ctx, t.Stream, t.Expected, t.Events)
		switch {
		case err != nil:
			return saga.RunInfo{}, err
		case res.Duplicate:
			return saga.RunInfo{}, errDuplicate
		case leaseErr != nil:
			return saga.RunInfo{}, leaseErr
		}
		row, err = r.write(ctx, ex, t, res.LastVersion, exists, old, now, owner, until)
		if err != nil {
			return saga.RunInfo{}, err
		}
		if err := r.box.insert(ctx, ex, outbox); err != nil {
			return saga.RunInfo{}, err
		}
		head, err := r.s.reserve(ctx, ex, len(t.Events))
		if err != nil {
			return saga.RunInfo{}, err
		}
		for i := range a.rows {
			a.rows[i].position += head
		}
		return row, a.flush(ctx)
	}()
	if err != nil {
		// A rollback that fails leaves the connection to database/sql,
		// which discards a broken one.
		_ = tx.Rollback()
		if errors.Is(err, errUniqueID) {
			return saga.RunInfo{}, r.settle(ctx, t)
		}
		return saga.RunInfo{}, err
	}
	return row, tx.Commit()
}

// maxPreparedRows bounds the rows of the multi-row inserts a transition
// runs prepared, and so the statements the pool keeps prepared for them:
// a transition has a few events and outbox envelopes.
const maxPreparedRows = 8

// prepare prepares on the pool, before the transaction takes a
// connection, the statements of a transition of events events and these
// outbox rows; after the first transition only their look-up is left.
func (r *RunStore) prepare(ctx context.Context, events int, outbox []outboxRow) error {
	qs := []string{r.q.lock, r.q.now, r.q.update, r.q.insert,
		r.s.q.stream, r.s.q.insertStream, r.s.q.updateStream, r.s.q.lockAdd}
	if events <= maxPreparedRows {
		qs = append(qs, r.s.q.insertEvents+valuesFor(events))
	}
	if n := len(outbox); n > 0 && n <= maxPreparedRows {
		qs = append(qs, r.box.insertQuery(n))
	}
	for _, q := range qs {
		if r.s.prepared(q) == nil {
			if _, err := r.s.stmt(ctx, q); err != nil {
				return err
			}
		}
	}
	return nil
}

// settle decides a transition whose events' insert met a stored event
// ID, after its transaction was rolled back: errDuplicate for a retry of
// the transition, else the append's error.
func (r *RunStore) settle(ctx context.Context, t *saga.Transition) error {
	tx, err := r.s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := r.s.settle(ctx, txExec{tx}, t.Stream, t.Expected, t.Events); err != nil {
		return err
	}
	return errDuplicate
}

// lockRun reads w's row under its lock, held until the transition ends,
// with the server's time; exists is false when the run has no row yet.
func (r *RunStore) lockRun(ctx context.Context, ex execer, w *saga.RunInfo) (old saga.RunInfo, now time.Time, exists bool, err error) {
	rows, err := ex.query(ctx, r.q.lock, w.Saga, w.RunID)
	if err != nil {
		return old, now, false, err
	}
	defer rows.Close()
	if rows.Next() {
		if err := scanRun(rows, &old, &now); err != nil {
			return old, now, false, err
		}
		return old, now, true, rows.Close()
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return old, now, false, err
	}
	var v timeValue
	err = queryRow(ctx, ex, r.q.now, nil, &v)
	return old, v.t, false, err
}

// write writes the row of t in ex, after its append to version, with the
// lease decided on old (the row it replaces, if exists) at now, and
// returns it.
func (r *RunStore) write(ctx context.Context, ex execer, t *saga.Transition, version uint64, exists bool, old saga.RunInfo,
	now time.Time, owner string, until time.Time) (saga.RunInfo, error) {
	w := &t.Run
	row := saga.RunInfo{
		Saga: w.Saga, RunID: w.RunID, Status: w.Status, Version: version,
		Step: w.Step, Attempt: w.Attempt, Error: w.Error,
		DueAt: micro(w.DueAt), DeadlineAt: micro(w.DeadlineAt),
		LeaseOwner: owner, LeaseUntil: micro(until),
		CreatedAt: now, UpdatedAt: now,
	}
	var err error
	if exists {
		row.CreatedAt = old.CreatedAt
		_, err = ex.exec(ctx, r.q.update, string(row.Status), row.Version, row.Step, row.Attempt, row.Error,
			sqlTime(row.DueAt), sqlTime(row.DeadlineAt), row.LeaseOwner, sqlTime(row.LeaseUntil), sqlTime(row.UpdatedAt),
			row.Saga, row.RunID)
	} else {
		_, err = ex.exec(ctx, r.q.insert, row.Saga, row.RunID, string(row.Status), row.Version, row.Step, row.Attempt, row.Error,
			sqlTime(row.DueAt), sqlTime(row.DeadlineAt), row.LeaseOwner, sqlTime(row.LeaseUntil), sqlTime(row.CreatedAt), sqlTime(row.UpdatedAt))
	}
	if err != nil {
		return saga.RunInfo{}, err
	}
	return row, nil
}

// Claim leases due runs in one short transaction; see
// [saga.RunStore.Claim]. Runs due at the same time are taken in (saga,
// run ID) order.
func (r *RunStore) Claim(ctx context.Context, req saga.ClaimRequest) ([]saga.RunInfo, error) {
	if err := sagarun.CheckClaim(req); err != nil {
		return nil, fmt.Errorf("novamysql: claim: %w", err)
	}
	var out []saga.RunInfo
	err := r.s.retry(ctx, func() error {
		out = out[:0]
		return r.s.inTx(ctx, func(tx *sql.Tx) error {
			args := make([]any, 0, len(req.Sagas)+1)
			for _, s := range req.Sagas {
				args = append(args, s)
			}
			args = append(args, req.Limit)
			q := r.q.claim + placeholders(len(req.Sagas)) + ` ORDER BY due_at, saga, run_id LIMIT ? FOR UPDATE SKIP LOCKED`
			var now time.Time
			rows, err := tx.QueryContext(ctx, q, args...)
			if err != nil {
				return err
			}
			for rows.Next() {
				var row saga.RunInfo
				if err := scanRun(rows, &row, &now); err != nil {
					rows.Close()
					return err
				}
				out = append(out, row)
			}
			if err := errors.Join(rows.Err(), rows.Close()); err != nil || len(out) == 0 {
				return err
			}
			until := micro(now.Add(req.Lease))
			args = append(args[:0], req.Owner, sqlTime(until))
			where := make([]string, len(out))
			for i := range out {
				out[i].LeaseOwner, out[i].LeaseUntil = req.Owner, until
				where[i] = `(saga = ? AND run_id = ?)`
				args = append(args, out[i].Saga, out[i].RunID)
			}
			_, err = tx.ExecContext(ctx, r.q.lease+strings.Join(where, " OR "), args...)
			return err
		})
	})
	if err != nil {
		return nil, sagaError("claim", err)
	}
	sagarun.SortDue(out)
	return out, nil
}

// Renew extends owner's lease; see [saga.RunStore.Renew].
func (r *RunStore) Renew(ctx context.Context, sagaName, runID, owner string, lease time.Duration) error {
	if err := sagarun.CheckRenew(sagaName, runID, owner, lease); err != nil {
		return fmt.Errorf("novamysql: renew: %w", err)
	}
	n, err := r.s.execPool(ctx, r.q.renew, micros(lease), sagaName, runID, owner)
	if err != nil {
		return sagaError(fmt.Sprintf("renew run %q", runID), err)
	}
	if n == 1 {
		return nil
	}
	// No row changed: the lease is not owner's, or it was renewed to the
	// time it already had (the same microsecond).
	row, now, err := r.get(ctx, sagaName, runID)
	if err != nil && !errors.Is(err, nova.ErrNotFound) {
		return err
	}
	if err == nil && sagarun.Held(row, owner, now) {
		return nil
	}
	return fmt.Errorf("novamysql: renew: %w", sagarun.LeaseLost(sagaName, runID, owner, row))
}

// Release frees owner's lease; see [saga.RunStore.Release]. A missing run
// is not an error.
func (r *RunStore) Release(ctx context.Context, sagaName, runID, owner string) error {
	if err := sagarun.CheckRelease(sagaName, runID, owner); err != nil {
		return fmt.Errorf("novamysql: release: %w", err)
	}
	if _, err := r.s.execPool(ctx, r.q.release, sagaName, runID, owner); err != nil {
		return sagaError(fmt.Sprintf("release run %q", runID), err)
	}
	return nil
}

// Get returns a run's row, or an error matching [nova.ErrNotFound].
func (r *RunStore) Get(ctx context.Context, sagaName, runID string) (saga.RunInfo, error) {
	if err := sagarun.CheckKey(sagaName, runID); err != nil {
		return saga.RunInfo{}, fmt.Errorf("novamysql: get run: %w", err)
	}
	row, _, err := r.get(ctx, sagaName, runID)
	return row, err
}

// get returns a run's row and the server's time it was read at.
func (r *RunStore) get(ctx context.Context, sagaName, runID string) (saga.RunInfo, time.Time, error) {
	rows, now, err := r.query(ctx, r.q.get, sagaName, runID)
	if err != nil {
		return saga.RunInfo{}, now, sagaError(fmt.Sprintf("get run %q", runID), err)
	}
	if len(rows) == 0 {
		return saga.RunInfo{}, now, fmt.Errorf("novamysql: run %q of saga %q: %w", runID, sagaName, nova.ErrNotFound)
	}
	return rows[0], now, nil
}

// List returns runs ordered by (saga, run ID); see [saga.RunStore.List].
func (r *RunStore) List(ctx context.Context, f saga.RunFilter) ([]saga.RunInfo, error) {
	limit, err := sagarun.ListLimit(f)
	if err != nil {
		return nil, fmt.Errorf("novamysql: list runs: %w", err)
	}
	var where []string
	var args []any
	if f.Saga != "" {
		where, args = append(where, `saga = ?`), append(args, f.Saga)
	}
	if f.Status != "" {
		where, args = append(where, `status = ?`), append(args, string(f.Status))
	}
	if f.AfterSaga != "" || f.AfterRun != "" {
		where, args = append(where, `(saga > ? OR saga = ? AND run_id > ?)`), append(args, f.AfterSaga, f.AfterSaga, f.AfterRun)
	}
	q := r.q.list
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	out, _, err := r.query(ctx, q+` ORDER BY saga, run_id LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, sagaError("list runs", err)
	}
	return out, nil
}

// Count returns the number of runs of sagaName per status, of every saga
// when sagaName is empty. Statuses with no run are left out.
func (r *RunStore) Count(ctx context.Context, sagaName string) (map[saga.Status]int, error) {
	q, args := r.q.count, []any(nil)
	if sagaName != "" {
		q, args = r.q.countSaga, []any{sagaName}
	}
	var out map[saga.Status]int
	err := r.s.retry(ctx, func() error {
		out = make(map[saga.Status]int)
		return r.s.queryPool(ctx, q, args, func(rows *sql.Rows) error {
			var (
				st string
				n  int
			)
			if err := rows.Scan(&st, &n); err != nil {
				return err
			}
			out[saga.Status(st)] = n
			return nil
		})
	})
	if err != nil {
		return nil, sagaError("count runs", err)
	}
	return out, nil
}

// query runs a statement returning the server's time and runColumns on
// the pool.
func (r *RunStore) query(ctx context.Context, q string, args ...any) ([]saga.RunInfo, time.Time, error) {
	var (
		out []saga.RunInfo
		now time.Time
	)
	err := r.s.retry(ctx, func() error {
		out = out[:0]
		return r.s.queryPool(ctx, q, args, func(rows *sql.Rows) error {
			var row saga.RunInfo
			if err := scanRun(rows, &row, &now); err != nil {
				return err
			}
			out = append(out, row)
			return nil
		})
	})
	return out, now, err
}

// Pending returns up to limit messages, lowest Seq first.
func (o *Outbox) Pending(ctx context.Context, limit int) ([]broker.OutboxMessage, error) {
	if err := sagarun.CheckPending(limit); err != nil {
		return nil, fmt.Errorf("novamysql: outbox: %w", err)
	}
	var out []broker.OutboxMessage
	err := o.s.retry(ctx, func() error {
		out = out[:0]
		return o.s.queryPool(ctx, o.q.pending, []any{limit}, func(rows *sql.Rows) error {
			var (
				m       broker.OutboxMessage
				e       = &m.Envelope
				headers sql.NullString
				stamp   sql.NullInt64
			)
			if err := rows.Scan(&m.Seq, &e.ID, &e.Topic, &e.EventType, &e.Payload, &e.Key, &headers, &e.Attempts, &stamp); err != nil {
				return err
			}
			var h []byte
			if headers.Valid {
				h = []byte(headers.String)
			}
			if err := sagarun.SetHeaders(e, h); err != nil {
				return err
			}
			if stamp.Valid {
				e.Timestamp = time.UnixMicro(stamp.Int64).UTC()
			}
			out = append(out, m)
			return nil
		})
	})
	if err != nil {
		return nil, sagaError("outbox", err)
	}
	return out, nil
}

// MarkSent removes the messages with these Seqs.
func (o *Outbox) MarkSent(ctx context.Context, seqs []int64) error {
	for len(seqs) > 0 {
		part := seqs[:min(len(seqs), maxInsertRows)]
		seqs = seqs[len(part):]
		args := make([]any, len(part))
		for i, s := range part {
			args[i] = s
		}
		if _, err := o.s.execPool(ctx, o.q.markSent+placeholders(len(part)), args...); err != nil {
			return sagaError("outbox: mark sent", err)
		}
	}
	return nil
}

// Wake returns a channel closed when a Record of this process next writes
// outbox rows.
func (o *Outbox) Wake() <-chan struct{} { return o.wake.C() }

// outboxRow is the column values of one envelope, and its size.
type outboxRow struct {
	args []any
	size int
}

// rows returns the column values of envs, refusing an envelope whose row
// the server cannot take (see [Store.checkSizes]).
func (o *Outbox) rows(envs []broker.Envelope) ([]outboxRow, error) {
	out := make([]outboxRow, len(envs))
	for i, e := range envs {
		h, err := sagarun.Headers(e.Headers)
		if err != nil {
			return nil, err
		}
		var headers, stamp any
		if h != nil {
			headers = string(h)
		}
		if !e.Timestamp.IsZero() {
			stamp = e.Timestamp.UnixMicro()
		}
		size := len(e.ID) + len(e.Topic) + len(e.EventType) + len(e.Payload) + len(e.Key) + len(h) + rowFraming
		if int64(size+packetOverhead) > o.s.maxPacket {
			return nil, nova.Invalidf("novamysql",
				"outbox envelope %q takes %d bytes as a row, more than the server's max_allowed_packet of %d bytes allows: raise max_allowed_packet to 16 MiB",
				e.ID, size, o.s.maxPacket)
		}
		payload := []byte(e.Payload)
		if payload == nil {
			payload = []byte{}
		}
		out[i] = outboxRow{args: []any{e.ID, e.Topic, e.EventType, payload, e.Key, headers, e.Attempts, stamp}, size: size}
	}
	return out, nil
}

// insert inserts the outbox rows in tx, in order, in as few statements as
// the limits of one INSERT allow.
func (o *Outbox) insert(ctx context.Context, ex execer, rows []outboxRow) error {
	for len(rows) > 0 {
		n, size := 0, 0
		for n < len(rows) && n < maxInsertRows && (n == 0 || size+rows[n].size <= maxInsertBytes) {
			size += rows[n].size
			n++
		}
		args := make([]any, 0, 8*n)
		for _, r := range rows[:n] {
			args = append(args, r.args...)
		}
		if _, err := ex.exec(ctx, o.insertQuery(n), args...); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

// insertQuery is the INSERT of n outbox rows.
func (o *Outbox) insertQuery(n int) string {
	return o.q.outbox + "(?, ?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6))" + strings.Repeat(", (?, ?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6))", n-1)
}

// scanRun reads a row of the server's time and runColumns.
func scanRun(row interface{ Scan(...any) error }, r *saga.RunInfo, now *time.Time) error {
	var (
		status                                     string
		at, due, deadline, until, created, updated timeValue
	)
	err := row.Scan(&at, &r.Saga, &r.RunID, &status, &r.Version, &r.Step, &r.Attempt, &r.Error,
		&due, &deadline, &r.LeaseOwner, &until, &created, &updated)
	if err != nil {
		return err
	}
	r.Status = saga.Status(status)
	r.DueAt, r.DeadlineAt, r.LeaseUntil = due.t, deadline.t, until.t
	r.CreatedAt, r.UpdatedAt = created.t, updated.t
	*now = at.t
	return nil
}

// queryRowPool scans the one row of q into dest, on the pool's prepared
// statement.
func (s *Store) queryRowPool(ctx context.Context, q string, args []any, dest ...any) error {
	st, err := s.stmt(ctx, q)
	if err != nil {
		return err
	}
	return st.QueryRowContext(ctx, args...).Scan(dest...)
}

// queryPool runs q on the pool (prepared once when it takes no list of
// values) and calls row for each row.
func (s *Store) queryPool(ctx context.Context, q string, args []any, row func(*sql.Rows) error) error {
	var rows *sql.Rows
	var err error
	if strings.Contains(q, " IN (") {
		rows, err = s.db.QueryContext(ctx, q, args...)
	} else {
		var st *sql.Stmt
		if st, err = s.stmt(ctx, q); err == nil {
			rows, err = st.QueryContext(ctx, args...)
		}
	}
	if err != nil {
		return err
	}
	for rows.Next() {
		if err := row(rows); err != nil {
			rows.Close()
			return err
		}
	}
	return errors.Join(rows.Err(), rows.Close())
}

// execPool runs q on the pool with retries (see [Store.retry]) and
// returns the rows it changed.
func (s *Store) execPool(ctx context.Context, q string, args ...any) (int64, error) {
	var n int64
	err := s.retry(ctx, func() error {
		var err error
		n, err = s.execRaw(ctx, q, args...)
		return err
	})
	return n, err
}

// execRaw runs q on the pool (prepared once when it takes no list of
// values) and returns the rows it changed.
func (s *Store) execRaw(ctx context.Context, q string, args ...any) (int64, error) {
	var res sql.Result
	var err error
	if strings.Contains(q, " IN (") {
		res, err = s.db.ExecContext(ctx, q, args...)
	} else {
		var st *sql.Stmt
		if st, err = s.stmt(ctx, q); err == nil {
			res, err = st.ExecContext(ctx, args...)
		}
	}
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// placeholders returns "(?, ?, ...)" with n marks.
func placeholders(n int) string {
	return "(?" + strings.Repeat(", ?", n-1) + ")"
}

// sqlTime is t as the store writes a DATETIME(6) column: UTC, to the
// microsecond, NULL for the zero time. The text, rather than a
// time.Time, keeps the value independent of the connection's loc.
func sqlTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(timeLayout)
}

// micro is t as a DATETIME(6) column gives it back: UTC, cut to the
// microsecond.
func micro(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Microsecond)
}

// micros is d in whole microseconds, at least 1.
func micros(d time.Duration) int64 { return max(1, d.Microseconds()) }

// sagaError wraps a run store's error, leaving as they are the errors
// callers compare with.
func sagaError(what string, err error) error {
	var ce *nova.ConcurrencyError
	var de *nova.DuplicateEventError
	if errors.As(err, &ce) || errors.As(err, &de) || errors.Is(err, saga.ErrLeaseLost) || errors.Is(err, nova.ErrInvalid) ||
		errors.Is(err, nova.ErrNotFound) {
		return fmt.Errorf("novamysql: %s: %w", what, err)
	}
	return readError(what, err)
}
