package novapg

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/internal/sagarun"
	"github.com/nova-go/nova/saga"
)

var (
	_ saga.RunStore = (*RunStore)(nil)
	_ broker.Outbox = (*Outbox)(nil)
)

// RunStore keeps durable saga runs in the store's schema: their streams
// as events, the saga_runs table and the outbox. A transition is one
// transaction: the append, the run's row locked and its lease checked, the
// row written and the outbox rows inserted. A transition at an exact
// expected version is one round trip: its statements raise an error
// when the append or the lease check fails, so they are sent with their
// commit in one pipeline; one that fails so, or expects another version,
// is decided in a transaction of its own ([Store.AppendTx]). Claim is
// one statement that picks due runs with FOR UPDATE SKIP LOCKED, so that
// workers on any number of connections and processes never claim one run
// twice.
//
// Every time is the database's (statement_timestamp()), so every worker
// agrees on leases and due times whatever its own clock says; times are
// kept to the microsecond, as PostgreSQL does. Calls that fail on a broken
// connection are retried, as the store's are: a transition whose commit
// was lost with its connection is found stored by its events' IDs.
type RunStore struct {
	s   *Store
	box *Outbox
	sql sagaStatements
}

// Outbox is the [broker.Outbox] of a [RunStore], the outbox table of the
// store's schema. Its Wake channel is closed by Records of this process
// only: a relay polls for the others'.
type Outbox struct {
	s    *Store
	sql  *sagaStatements
	wake sagarun.Waker
}

type sagaStatements struct {
	now, upsert, checked, outbox, claim, renew, release, get, list, count, pending, markSent string
}

// runColumns are the columns scanRun reads, in its order.
const runColumns = `saga, run_id, status, version, step, attempt, error, due_at, deadline_at,
	lease_owner, lease_until, created_at, updated_at`

func newSagaStatements(schema string) sagaStatements {
	runs, outbox := schema+".saga_runs", schema+".outbox"
	return sagaStatements{
		now: `SELECT statement_timestamp()`,
		// upsert writes a run's row after its stream's append: $1 to $9
		// the row, $10 the writer's lease owner, $11 the lease in
		// microseconds it creates a run with. A writer with an owner
		// keeps the lease as it is, and writes nothing (no row returned)
		// unless it holds the lease; one without an owner clears it. The
		// conflicting row is locked before the condition is checked.
		upsert: `INSERT INTO ` + runs + ` AS r (` + runColumns + `)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::text,
				CASE WHEN $10::text = '' THEN NULL ELSE statement_timestamp() + $11 * interval '1 microsecond' END,
				statement_timestamp(), statement_timestamp())
			ON CONFLICT (saga, run_id) DO UPDATE SET status = excluded.status, version = excluded.version,
				step = excluded.step, attempt = excluded.attempt, error = excluded.error,
				due_at = excluded.due_at, deadline_at = excluded.deadline_at,
				lease_owner = CASE WHEN $10::text = '' THEN '' ELSE r.lease_owner END,
				lease_until = CASE WHEN $10::text = '' THEN NULL ELSE r.lease_until END,
				updated_at = excluded.updated_at
			WHERE $10::text = '' OR (r.lease_owner = $10::text AND r.lease_until > statement_timestamp())
			RETURNING ` + runColumns,
		checked: checkedUpsert(schema, runs),
		outbox: `INSERT INTO ` + outbox + ` (id, topic, event_type, payload, key, headers, attempts, stamped_at)
			SELECT u.id, u.topic, u.type, u.payload, u.key, u.headers::jsonb, u.attempts, u.stamped
			FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::text[], $6::text[], $7::int[], $8::timestamptz[])
				WITH ORDINALITY AS u(id, topic, type, payload, key, headers, attempts, stamped, ord)
			ORDER BY u.ord`,
		claim: `WITH due AS (
				SELECT saga, run_id FROM ` + runs + `
				WHERE due_at <= statement_timestamp()
					AND (lease_until IS NULL OR lease_until <= statement_timestamp())
					AND saga = ANY($1::text[])
				ORDER BY due_at, saga, run_id
				LIMIT $2
				FOR UPDATE SKIP LOCKED)
			UPDATE ` + runs + ` r SET lease_owner = $3, lease_until = statement_timestamp() + $4 * interval '1 microsecond'
			FROM due WHERE r.saga = due.saga AND r.run_id = due.run_id
			RETURNING ` + prefixed("r.", runColumns),
		renew: `UPDATE ` + runs + ` SET lease_until = statement_timestamp() + $4 * interval '1 microsecond'
			WHERE saga = $1 AND run_id = $2 AND lease_owner = $3 AND lease_until > statement_timestamp()`,
		release: `UPDATE ` + runs + ` SET lease_owner = '', lease_until = NULL WHERE saga = $1 AND run_id = $2 AND lease_owner = $3`,
		get:     `SELECT ` + runColumns + ` FROM ` + runs + ` WHERE saga = $1 AND run_id = $2`,
		list: `SELECT ` + runColumns + ` FROM ` + runs + `
			WHERE ($1 = '' OR saga = $1) AND ($2 = '' OR status = $2) AND (saga, run_id) > ($3, $4)
			ORDER BY saga, run_id LIMIT $5`,
		count: `SELECT status, count(*) FROM ` + runs + ` WHERE $1 = '' OR saga = $1 GROUP BY status`,
		pending: `SELECT seq, id, topic, event_type, payload, key, headers::text, attempts, stamped_at
			FROM ` + outbox + ` ORDER BY seq LIMIT $1`,
		markSent: `DELETE FROM ` + outbox + ` WHERE seq = ANY($1::bigint[])`,
	}
}

// prefixed returns the comma-separated columns each prefixed with p.
func prefixed(p, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

// NewRunStore returns the run store of s, on s's pool and schema.
func NewRunStore(s *Store) *RunStore {
	r := &RunStore{s: s, sql: newSagaStatements(quoteIdent(s.cfg.Schema))}
	r.box = &Outbox{s: s, sql: &r.sql}
	return r
}

// Events returns the event store holding the runs' streams.
func (r *RunStore) Events() nova.Store { return r.s }

// Outbox returns the outbox Record writes to.
func (r *RunStore) Outbox() broker.Outbox { return r.box }

// Now returns the database's clock.
func (r *RunStore) Now(ctx context.Context) (time.Time, error) {
	var now time.Time
	err := r.s.retry(ctx, func() error {
		if err := r.s.checkOpen(); err != nil {
			return err
		}
		return r.s.pool.QueryRow(ctx, r.sql.now).Scan(&now)
	})
	if err != nil {
		return time.Time{}, sagaError("now", err)
	}
	return now.UTC(), nil
}

// errDuplicate ends the transaction of a transition found stored.
var errDuplicate = errors.New("novapg: transition already recorded")

// Record writes t in one transaction; see [saga.RunStore.Record]. A
// retry of a transition already recorded (its events stored at their
// place) writes nothing and returns the run's row.
func (r *RunStore) Record(ctx context.Context, t saga.Transition) (saga.RunInfo, error) {
	if err := sagarun.CheckTransition(&t); err != nil {
		return saga.RunInfo{}, fmt.Errorf("novapg: record: %w", err)
	}
	outbox, err := outboxArgs(t.Outbox)
	if err != nil {
		return saga.RunInfo{}, fmt.Errorf("novapg: record run %q: %w", t.Run.RunID, err)
	}
	if err := r.s.checkOpen(); err != nil {
		return saga.RunInfo{}, sagaError(fmt.Sprintf("record run %q", t.Run.RunID), err)
	}
	q, err := r.fastRequest(&t, outbox)
	if err != nil {
		return saga.RunInfo{}, sagaError(fmt.Sprintf("record run %q", t.Run.RunID), err)
	}
	var (
		row saga.RunInfo
		res nova.AppendResult
		// fast says the next attempt starts with recordFast.
		fast = q != nil
		done bool
	)
	if q != nil && r.s.group != nil {
		// In a group with the transitions and appends that arrive while
		// others commit; alone, as recordFast.
		if err := r.s.group.Do(ctx, q); err != nil {
			return saga.RunInfo{}, sagaError(fmt.Sprintf("record run %q", t.Run.RunID), err)
		}
		switch {
		case q.err == nil && q.tr.done:
			done, row, res = true, q.tr.row, q.res
		case q.shared:
			// The group wrote nothing: the transition runs again alone,
			// and gets its own result.
		case q.err == nil:
			// Alone, it wrote nothing: Record's transaction decides.
			fast = false
		case !retryable(q.err):
			return saga.RunInfo{}, sagaError(fmt.Sprintf("record run %q", t.Run.RunID), q.err)
		}
		if !done {
			if err := ctx.Err(); err != nil {
				return saga.RunInfo{}, sagaError(fmt.Sprintf("record run %q", t.Run.RunID), err)
			}
		}
	}
	if !done {
		err = r.record(ctx, &t, q, fast, outbox, &row, &res)
	}
	switch {
	case errors.Is(err, errDuplicate):
		return r.Get(ctx, t.Run.Saga, t.Run.RunID)
	case err != nil:
		return saga.RunInfo{}, sagaError(fmt.Sprintf("record run %q", t.Run.RunID), err)
	}
	// As after Append: ReadAll in this process waits for the horizon to
	// pass this append, and subscribers are woken.
	r.s.noteAppend(res.Position.Commit)
	r.s.Notify()
	if len(t.Outbox) > 0 {
		r.box.wake.Wake()
	}
	return row, nil
}

// record writes t alone, under the retry rules: first with recordFast
// (q, when fast), then, unless that wrote it, in a transaction of its
// own, which decides an idempotent retry (errDuplicate) or a conflict.
func (r *RunStore) record(ctx context.Context, t *saga.Transition, q *request, fast bool, outbox []any, row *saga.RunInfo, res *nova.AppendResult) error {
	return r.s.retry(ctx, func() error {
		if err := r.s.checkOpen(); err != nil {
			return err
		}
		if fast {
			done, err := r.recordFast(ctx, q)
			if err != nil || done {
				*row, *res = q.tr.row, q.res
				return err
			}
		}
		fast = q != nil
		return pgx.BeginFunc(ctx, r.s.pool, func(tx pgx.Tx) error {
			var err error
			*res, err = r.s.AppendTx(ctx, tx, t.Stream, t.Expected, t.Events...)
			if err != nil {
				return err
			}
			if res.Duplicate {
				return errDuplicate
			}
			*row, err = r.write(ctx, tx, t, res.LastVersion, outbox)
			return err
		})
	})
}

// write writes the row and the outbox rows of t, in tx after its append
// to version, in one round trip. The upsert decides the lease; when the
// writer does not hold it, write returns the error matching
// [saga.ErrLeaseLost] and the caller rolls tx back.
func (r *RunStore) write(ctx context.Context, tx pgx.Tx, t *saga.Transition, version uint64, outbox []any) (saga.RunInfo, error) {
	w := &t.Run
	var (
		row  saga.RunInfo
		lost bool
	)
	b := &pgx.Batch{}
	b.Queue(r.sql.upsert, w.Saga, w.RunID, string(w.Status), int64(version), w.Step, w.Attempt, w.Error,
		timestamp(w.DueAt), timestamp(w.DeadlineAt), t.Owner, micros(t.Lease)).
		QueryRow(func(pr pgx.Row) error {
			err := scanRun(pr, &row)
			if errors.Is(err, pgx.ErrNoRows) {
				lost, err = true, nil
			}
			return err
		})
	if len(t.Outbox) > 0 {
		b.Queue(r.sql.outbox, outbox...)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return saga.RunInfo{}, err
	}
	if lost {
		var old saga.RunInfo
		if err := scanRun(tx.QueryRow(ctx, r.sql.get, w.Saga, w.RunID), &old); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return saga.RunInfo{}, err
		}
		return saga.RunInfo{}, sagarun.LeaseLost(w.Saga, w.RunID, t.Owner, old)
	}
	return row, nil
}

// outboxArgs returns the arguments of the outbox insert for envelopes.
func outboxArgs(envs []broker.Envelope) ([]any, error) {
	n := len(envs)
	ids, topics, types, keys := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	payloads := make([][]byte, n)
	headers := make([]pgtype.Text, n)
	attempts := make([]int32, n)
	stamps := make([]pgtype.Timestamptz, n)
	for i, e := range envs {
		ids[i], topics[i], types[i], keys[i], payloads[i] = e.ID, e.Topic, e.EventType, e.Key, e.Payload
		h, err := sagarun.Headers(e.Headers)
		if err != nil {
			return nil, err
		}
		headers[i] = pgtype.Text{String: string(h), Valid: h != nil}
		attempts[i] = int32(e.Attempts) // at most MaxInt32, as CheckTransition saw
		stamps[i] = pgtype.Timestamptz{Time: e.Timestamp, Valid: !e.Timestamp.IsZero()}
	}
	return []any{ids, topics, types, payloads, keys, headers, attempts, stamps}, nil
}

// Claim leases due runs in one statement; see [saga.RunStore.Claim]. Runs
// due at the same time are taken in (saga, run ID) order.
func (r *RunStore) Claim(ctx context.Context, req saga.ClaimRequest) ([]saga.RunInfo, error) {
	if err := sagarun.CheckClaim(req); err != nil {
		return nil, fmt.Errorf("novapg: claim: %w", err)
	}
	out, err := r.query(ctx, r.sql.claim, req.Sagas, req.Limit, req.Owner, micros(req.Lease))
	if err != nil {
		return nil, sagaError("claim", err)
	}
	sagarun.SortDue(out)
	return out, nil
}

// Renew extends owner's lease; see [saga.RunStore.Renew].
func (r *RunStore) Renew(ctx context.Context, sagaName, runID, owner string, lease time.Duration) error {
	if err := sagarun.CheckRenew(sagaName, runID, owner, lease); err != nil {
		return fmt.Errorf("novapg: renew: %w", err)
	}
	n, err := r.exec(ctx, r.sql.renew, sagaName, runID, owner, micros(lease))
	if err != nil {
		return sagaError(fmt.Sprintf("renew run %q", runID), err)
	}
	if n == 1 {
		return nil
	}
	row, err := r.Get(ctx, sagaName, runID)
	if err != nil && !errors.Is(err, nova.ErrNotFound) {
		return err
	}
	return fmt.Errorf("novapg: renew: %w", sagarun.LeaseLost(sagaName, runID, owner, row))
}

// Release frees owner's lease; see [saga.RunStore.Release]. A missing run
// is not an error.
func (r *RunStore) Release(ctx context.Context, sagaName, runID, owner string) error {
	if err := sagarun.CheckRelease(sagaName, runID, owner); err != nil {
		return fmt.Errorf("novapg: release: %w", err)
	}
	if _, err := r.exec(ctx, r.sql.release, sagaName, runID, owner); err != nil {
		return sagaError(fmt.Sprintf("release run %q", runID), err)
	}
	return nil
}

// Get returns a run's row, or an error matching [nova.ErrNotFound].
func (r *RunStore) Get(ctx context.Context, sagaName, runID string) (saga.RunInfo, error) {
	if err := sagarun.CheckKey(sagaName, runID); err != nil {
		return saga.RunInfo{}, fmt.Errorf("novapg: get run: %w", err)
	}
	rows, err := r.query(ctx, r.sql.get, sagaName, runID)
	if err != nil {
		return saga.RunInfo{}, sagaError(fmt.Sprintf("get run %q", runID), err)
	}
	if len(rows) == 0 {
		return saga.RunInfo{}, fmt.Errorf("novapg: run %q of saga %q: %w", runID, sagaName, nova.ErrNotFound)
	}
	return rows[0], nil
}

// List returns runs ordered by (saga, run ID); see [saga.RunStore.List].
func (r *RunStore) List(ctx context.Context, f saga.RunFilter) ([]saga.RunInfo, error) {
	limit, err := sagarun.ListLimit(f)
	if err != nil {
		return nil, fmt.Errorf("novapg: list runs: %w", err)
	}
	out, err := r.query(ctx, r.sql.list, f.Saga, string(f.Status), f.AfterSaga, f.AfterRun, limit)
	if err != nil {
		return nil, sagaError("list runs", err)
	}
	return out, nil
}

// Count returns the number of runs of sagaName per status, of every saga
// when sagaName is empty. Statuses with no run are left out.
func (r *RunStore) Count(ctx context.Context, sagaName string) (map[saga.Status]int, error) {
	var out map[saga.Status]int
	err := r.s.retry(ctx, func() error {
		if err := r.s.checkOpen(); err != nil {
			return err
		}
		out = make(map[saga.Status]int)
		rows, err := r.s.pool.Query(ctx, r.sql.count, sagaName)
		if err != nil {
			return err
		}
		var (
			st string
			n  int
		)
		_, err = pgx.ForEachRow(rows, []any{&st, &n}, func() error { out[saga.Status(st)] = n; return nil })
		return err
	})
	if err != nil {
		return nil, sagaError("count runs", err)
	}
	return out, nil
}

// query runs a statement returning runColumns on the pool.
func (r *RunStore) query(ctx context.Context, sql string, args ...any) ([]saga.RunInfo, error) {
	var out []saga.RunInfo
	err := r.s.retry(ctx, func() error {
		if err := r.s.checkOpen(); err != nil {
			return err
		}
		out = out[:0]
		rows, err := r.s.pool.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var row saga.RunInfo
			if err := scanRun(rows, &row); err != nil {
				return err
			}
			out = append(out, row)
		}
		return rows.Err()
	})
	return out, err
}

// exec runs a statement on the pool and returns the rows it changed.
func (r *RunStore) exec(ctx context.Context, sql string, args ...any) (int64, error) {
	var n int64
	err := r.s.retry(ctx, func() error {
		if err := r.s.checkOpen(); err != nil {
			return err
		}
		tag, err := r.s.pool.Exec(ctx, sql, args...)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

// Pending returns up to limit messages, lowest Seq first.
func (o *Outbox) Pending(ctx context.Context, limit int) ([]broker.OutboxMessage, error) {
	if err := sagarun.CheckPending(limit); err != nil {
		return nil, fmt.Errorf("novapg: outbox: %w", err)
	}
	var out []broker.OutboxMessage
	err := o.s.retry(ctx, func() error {
		if err := o.s.checkOpen(); err != nil {
			return err
		}
		out = out[:0]
		rows, err := o.s.pool.Query(ctx, o.sql.pending, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				m       broker.OutboxMessage
				e       = &m.Envelope
				headers pgtype.Text
				stamp   pgtype.Timestamptz
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
				e.Timestamp = stamp.Time.UTC()
			}
			out = append(out, m)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, sagaError("outbox", err)
	}
	return out, nil
}

// MarkSent removes the messages with these Seqs.
func (o *Outbox) MarkSent(ctx context.Context, seqs []int64) error {
	if len(seqs) == 0 {
		return nil
	}
	err := o.s.retry(ctx, func() error {
		if err := o.s.checkOpen(); err != nil {
			return err
		}
		_, err := o.s.pool.Exec(ctx, o.sql.markSent, seqs)
		return err
	})
	if err != nil {
		return sagaError("outbox: mark sent", err)
	}
	return nil
}

// Wake returns a channel closed when a Record of this process next writes
// outbox rows.
func (o *Outbox) Wake() <-chan struct{} { return o.wake.C() }

// scanRun reads a row of runColumns, followed by the extra destinations.
func scanRun(row pgx.Row, r *saga.RunInfo, extra ...any) error {
	var (
		status               string
		version              int64
		due, deadline, until pgtype.Timestamptz
		created, updated     time.Time
	)
	dest := append([]any{&r.Saga, &r.RunID, &status, &version, &r.Step, &r.Attempt, &r.Error,
		&due, &deadline, &r.LeaseOwner, &until, &created, &updated}, extra...)
	if err := row.Scan(dest...); err != nil {
		return err
	}
	r.Status, r.Version = saga.Status(status), uint64(version)
	r.DueAt, r.DeadlineAt, r.LeaseUntil = fromTimestamp(due), fromTimestamp(deadline), fromTimestamp(until)
	r.CreatedAt, r.UpdatedAt = created.UTC(), updated.UTC()
	return nil
}

// timestamp is t as a nullable timestamptz, NULL for the zero time.
func timestamp(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

func fromTimestamp(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

// micros is d in whole microseconds, at least 1.
func micros(d time.Duration) int64 { return max(1, d.Microseconds()) }

// sagaError wraps a run store's error, leaving as they are the errors
// callers compare with.
func sagaError(what string, err error) error {
	var ce *nova.ConcurrencyError
	var de *nova.DuplicateEventError
	if errors.As(err, &ce) || errors.As(err, &de) || errors.Is(err, saga.ErrLeaseLost) || errors.Is(err, nova.ErrInvalid) {
		return fmt.Errorf("novapg: %s: %w", what, err)
	}
	return readError(what, err)
}
