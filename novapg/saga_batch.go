package novapg

import (
	"context"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/sagarun"
	"github.com/nova-go/nova/internal/validate"
	"github.com/nova-go/nova/saga"
)

// Markers of the errors the checked upsert raises: each is cast to an
// integer, which fails with SQLSTATE 22P02 and a message quoting it.
const (
	markConflict  = "novapg_saga_append_conflict"
	markLeaseLost = "novapg_saga_lease_lost"
)

// checkedUpsert returns the statement that writes a run's row after its
// stream's append in the same transaction, and fails unless both hold:
//
//   - the append wrote: the stream's row ($12) is at the run's version
//     ($4) and was written by this transaction (its xmin is this
//     transaction's ID), which no earlier or concurrent writer's row can
//     be; otherwise it raises markConflict;
//   - the writer holds the run's lease, as for the plain upsert ($10 the
//     owner, $11 the lease in microseconds for a new run); otherwise it
//     raises markLeaseLost.
//
// The error is raised by casting a text holding the marker and a count
// the statement computes to an integer: PostgreSQL cannot fold it at
// planning, so it fails only when reached, and it needs no function in
// the schema. A statement that fails aborts its transaction, so the
// transition's statements can be sent with their commit in one pipeline.
func checkedUpsert(schema, runs string) string {
	return `WITH ok AS (
	SELECT FROM ` + schema + `.streams WHERE stream = $12::text AND version = $4::bigint AND xmin = pg_current_xact_id()::xid),
u AS (
	INSERT INTO ` + runs + ` AS r (` + runColumns + `)
	SELECT $1::text, $2::text, $3::text, $4::bigint, $5::text, $6::integer, $7::text, $8::timestamptz, $9::timestamptz, $10::text,
		CASE WHEN $10::text = '' THEN NULL ELSE statement_timestamp() + $11::bigint * interval '1 microsecond' END,
		statement_timestamp(), statement_timestamp()
	FROM ok
	ON CONFLICT (saga, run_id) DO UPDATE SET status = excluded.status, version = excluded.version,
		step = excluded.step, attempt = excluded.attempt, error = excluded.error,
		due_at = excluded.due_at, deadline_at = excluded.deadline_at,
		lease_owner = CASE WHEN $10::text = '' THEN '' ELSE r.lease_owner END,
		lease_until = CASE WHEN $10::text = '' THEN NULL ELSE r.lease_until END,
		updated_at = excluded.updated_at
	WHERE $10::text = '' OR (r.lease_owner = $10::text AND r.lease_until > statement_timestamp())
	RETURNING ` + runColumns + `)
SELECT ` + prefixed("u.", runColumns) + `,
	CASE WHEN u.saga IS NOT NULL THEN 0
		WHEN c.n = 0 THEN (c.n || ' ` + markConflict + `')::int
		ELSE (c.n || ' ` + markLeaseLost + `')::int END
FROM (SELECT count(*) AS n FROM ok) c LEFT JOIN u ON true`
}

// raised reports whether err is the checked upsert's error marked mark.
func raised(err error, mark string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "22P02" && strings.Contains(pgErr.Message, mark)
}

// recordFast writes t in one round trip: the append's guard, the append,
// the checked upsert of the run's row and the outbox insert go in one
// pipeline ending in a single Sync, which PostgreSQL runs as one implicit
// transaction and commits, with its WAL flush, at the Sync. Any failure
// aborts it whole: nothing is written.
//
// It handles the common case, a transition at an exact expected version
// that appends and holds its lease. A lost lease is reported as
// [saga.ErrLeaseLost] (one more round trip reads the run's row for the
// error). Anything else that wrote nothing (another expectation, a
// version conflict, a stored event ID) is reported not done, for
// Record's transaction to decide: an idempotent retry or a
// *nova.ConcurrencyError.
//
// The guard is its own statement, which completes before the append's
// statement draws the label, as the store's design requires.
func (r *RunStore) recordFast(ctx context.Context, q *request) (done bool, err error) {
	t, row, res := q.tr.t, &q.tr.row, &q.res
	w := &t.Run
	b := &pgx.Batch{}
	b.Queue(r.s.sql.guard)
	b.Queue(q.sql, q.args...).QueryRow(func(pr pgx.Row) error {
		var (
			conflict bool
			err      error
		)
		*res, conflict, err = scanAppend(pr, q.n)
		if err == nil && conflict {
			// No row: the checked upsert raises the conflict.
			*res = nova.AppendResult{}
		}
		return err
	})
	var flag int
	b.Queue(r.sql.checked, q.tr.args...).QueryRow(func(pr pgx.Row) error { return scanRun(pr, row, &flag) })
	if q.tr.outbox != nil {
		b.Queue(r.sql.outbox, q.tr.outbox...)
	}
	err = r.s.pool.SendBatch(ctx, b).Close()
	switch {
	case err == nil:
		return true, nil
	case raised(err, markLeaseLost):
		*row, *res = saga.RunInfo{}, nova.AppendResult{}
		var old saga.RunInfo
		if err := scanRun(r.s.pool.QueryRow(ctx, r.sql.get, w.Saga, w.RunID), &old); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return false, err
		}
		return false, sagarun.LeaseLost(w.Saga, w.RunID, t.Owner, old)
	case raised(err, markConflict), isStoredID(err):
		*row, *res = saga.RunInfo{}, nova.AppendResult{}
		return false, nil
	}
	return false, err
}

// fastRequest returns the request recordFast writes t with, alone or in
// a group; nil when t does not expect an exact version.
func (r *RunStore) fastRequest(t *saga.Transition, outbox []any) (*request, error) {
	exact, ok := t.Expected.Version()
	if !ok {
		return nil, nil
	}
	evs, err := validate.Append(t.Stream, t.Events)
	if err != nil {
		return nil, err
	}
	sql, args, err := r.s.appendStatement(t.Stream, t.Expected, evs)
	if err != nil {
		return nil, err
	}
	w := &t.Run
	tr := &transition{rs: r, t: t,
		args: []any{w.Saga, w.RunID, string(w.Status), int64(exact) + int64(len(evs)), w.Step, w.Attempt, w.Error,
			timestamp(w.DueAt), timestamp(w.DeadlineAt), t.Owner, micros(t.Lease), t.Stream}}
	if len(t.Outbox) > 0 {
		tr.outbox = outbox
	}
	return &request{stream: t.Stream, n: len(evs), sql: sql, args: args, tr: tr}, nil
}

// isStoredID reports whether err is the append's failure on an event ID,
// or a (stream, version), already stored.
func isStoredID(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && (pgErr.ConstraintName == "events_id" || pgErr.ConstraintName == "events_stream_version")
}
