package novapg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/retry"
	"github.com/nova-go/nova/internal/uuidx"
	"github.com/nova-go/nova/internal/validate"
)

// querier is what a pool and a transaction both offer.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Append implements nova.Store. It is one round trip: the append's guard
// (a shared advisory lock on the clock's next value) and one statement
// that creates or updates the stream's row under the expected-version
// condition, drawing the label, and inserts the events from arrays, in
// one transaction. When the condition fails, or an event ID is already
// stored, a second query decides between an idempotent retry and an
// error. After the commit it wakes this store's subscriptions and asks
// the notifier to tell other processes.
//
// Appends that arrive while others commit share the next transaction
// (group commit, see the package documentation), each with its own
// check and result.
//
// An append that fails because its connection broke (the server
// restarted, the session was terminated) is retried with the same events,
// a few times: if the first attempt had committed, the retry finds the
// events stored and returns the original result with Duplicate set.
func (s *Store) Append(ctx context.Context, stream string, expected nova.ExpectedVersion, events ...nova.EventData) (nova.AppendResult, error) {
	evs, err := validate.Append(stream, events)
	if err != nil {
		return nova.AppendResult{}, err
	}
	if err := s.checkOpen(); err != nil {
		return nova.AppendResult{}, err
	}
	sql, args, err := s.appendStatement(stream, expected, evs)
	if err != nil {
		return nova.AppendResult{}, err
	}
	var res nova.AppendResult
	if s.group != nil {
		res, err = s.appendGrouped(ctx, &request{stream: stream, n: len(evs), sql: sql, args: args}, expected, evs)
	} else {
		res, err = s.appendAlone(ctx, sql, args, stream, expected, evs)
	}
	if err != nil {
		return nova.AppendResult{}, appendError(stream, err)
	}
	s.noteAppend(res.Position.Commit)
	if !res.Duplicate {
		s.Notify()
	}
	return res, nil
}

// AppendTx appends as [Store.Append] does, in the caller's transaction
// tx, so the events commit, or roll back, with the caller's other writes
// (a read model, an outbox row). tx must be on this store's database;
// it may come from any pool or connection.
//
// The append runs under a savepoint, sent with it and its guard in one
// round trip, so that an idempotent retry or a conflict leaves tx usable: a
// *nova.ConcurrencyError, a *nova.DuplicateEventError or a Duplicate
// result write nothing, and the caller may go on or roll back. Any other
// error leaves tx in whatever state PostgreSQL put it in: roll it back.
//
// The events are visible to readers once tx commits, and no sooner; while
// tx is open, readers of this schema do not get past the place of its
// first append, whoever commits after it: keep such transactions short
// ([Store.Holder] names the oldest one). Subscribers are not woken by the
// commit: call [Store.Notify] after committing, or they find the events
// when they next poll ([Config.PollInterval]).
func (s *Store) AppendTx(ctx context.Context, tx pgx.Tx, stream string, expected nova.ExpectedVersion, events ...nova.EventData) (nova.AppendResult, error) {
	evs, err := validate.Append(stream, events)
	if err != nil {
		return nova.AppendResult{}, err
	}
	if err := s.checkOpen(); err != nil {
		return nova.AppendResult{}, err
	}
	sql, args, err := s.appendStatement(stream, expected, evs)
	if err != nil {
		return nova.AppendResult{}, err
	}
	b := &pgx.Batch{}
	b.Queue(`SAVEPOINT novapg_append`)
	b.Queue(s.sql.guard)
	var (
		res      nova.AppendResult
		conflict bool
	)
	b.Queue(sql, args...).QueryRow(func(row pgx.Row) error {
		var err error
		res, conflict, err = scanAppend(row, len(evs))
		return err
	})
	b.Queue(`RELEASE SAVEPOINT novapg_append`)
	err = tx.SendBatch(ctx, b).Close()
	switch {
	case err == nil && !conflict:
		return res, nil
	case err != nil && (!conflict || ctx.Err() != nil):
		return nova.AppendResult{}, appendError(stream, err)
	case err != nil:
		// The statement failed on a stored event ID, aborting tx: undo it
		// to the savepoint, which keeps tx usable.
		if _, err := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT novapg_append; RELEASE SAVEPOINT novapg_append`); err != nil {
			return nova.AppendResult{}, appendError(stream, err)
		}
	}
	// Nothing was written: decide in tx, which sees its own earlier
	// appends.
	res, err = s.resolve(ctx, tx, stream, expected, evs)
	if err != nil {
		return nova.AppendResult{}, appendError(stream, err)
	}
	return res, nil
}

// appendStatement returns the statement for expected and its arguments.
func (s *Store) appendStatement(stream string, expected nova.ExpectedVersion, evs []nova.EventData) (string, []any, error) {
	n := len(evs)
	kind := expectExact
	var exact uint64
	switch {
	case expected.IsAny():
		kind = expectAny
	case expected.IsStreamExists():
		kind = expectExists
	default:
		exact, _ = expected.Version()
		if exact == 0 {
			kind = expectNoStream
		} else if exact > maxVersion {
			// No stream can be at that version: let the statement find
			// no row, so the conflict reports the actual version.
			exact = 0
		}
	}
	var args []any
	var sql string
	if n == 1 {
		e := evs[0]
		var id pgtype.UUID
		if err := parseUUID(&id, e.ID, 0); err != nil {
			return "", nil, err
		}
		md, err := encodeMetadata(e.Metadata, 0)
		if err != nil {
			return "", nil, err
		}
		data := e.Data
		if data == nil {
			data = []byte{}
		}
		sql = s.sql.appendOne[kind]
		args = []any{stream, int64(1), id, e.Type, data, md, e.Metadata.CorrelationID, e.Metadata.CausationID}
	} else {
		ids := make([]pgtype.UUID, n)
		types := make([]string, n)
		data := make([][]byte, n)
		md := make([]string, n)
		corr := make([]string, n)
		caus := make([]string, n)
		for i, e := range evs {
			if err := parseUUID(&ids[i], e.ID, i); err != nil {
				return "", nil, err
			}
			types[i] = e.Type
			data[i] = e.Data
			if data[i] == nil {
				data[i] = []byte{}
			}
			corr[i] = e.Metadata.CorrelationID
			caus[i] = e.Metadata.CausationID
			if i > 0 && e.Metadata.Schema == evs[i-1].Metadata.Schema && mapsEqual(e.Metadata.Extra, evs[i-1].Metadata.Extra) {
				md[i] = md[i-1]
				continue
			}
			var err error
			if md[i], err = encodeMetadata(e.Metadata, i); err != nil {
				return "", nil, err
			}
		}
		sql = s.sql.appendBatch[kind]
		args = []any{stream, int64(n), ids, types, data, md, corr, caus}
	}
	if kind == expectExact {
		args = append(args, int64(exact))
	}
	return sql, args, nil
}

// parseUUID sets id from a canonical UUID, the ID of event i.
func parseUUID(id *pgtype.UUID, s string, i int) error {
	u, ok := uuidx.Parse(s)
	if !ok {
		return nova.Invalidf("novapg", "event %d: ID %q is not a UUID", i, s)
	}
	id.Bytes, id.Valid = u, true
	return nil
}

// encodeMetadata returns the metadata column's JSON for md, or "" for
// NULL when md has nothing beyond its correlation and causation IDs.
func encodeMetadata(md nova.Metadata, i int) (string, error) {
	if md.Schema == 0 && len(md.Extra) == 0 {
		return "", nil
	}
	b, err := json.Marshal(storedMetadata{Schema: md.Schema, Extra: md.Extra})
	if err != nil {
		return "", fmt.Errorf("novapg: encode metadata of event %d: %w", i, err)
	}
	return string(b), nil
}

// maxVersion is the largest version a bigint column holds.
const maxVersion = 1<<63 - 1

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// appendOnce runs an append statement after its guard, in one
// transaction of their own. conflict reports that it wrote nothing
// because the expected version did not hold or an event ID is already
// stored.
func (s *Store) appendOnce(ctx context.Context, sql string, args []any, n int) (res nova.AppendResult, conflict bool, err error) {
	b := &pgx.Batch{}
	b.Queue(s.sql.guard)
	b.Queue(sql, args...).QueryRow(func(row pgx.Row) error {
		res, conflict, err = scanAppend(row, n)
		return err
	})
	// A batch is one implicit transaction: the guard is held until the
	// append commits.
	if berr := s.pool.SendBatch(ctx, b).Close(); berr != nil && err == nil && !conflict {
		return res, false, berr
	}
	return res, conflict, err
}

// scanAppend reads an append statement's result. conflict reports that
// it wrote nothing because the expected version did not hold or an event
// ID is already stored (a unique violation, which aborted its
// transaction).
func scanAppend(row pgx.Row, n int) (res nova.AppendResult, conflict bool, err error) {
	res, conflict, err = scanRow(row, n)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" && (pgErr.ConstraintName == "events_id" || pgErr.ConstraintName == "events_stream_version") {
		return res, true, nil
	}
	return res, conflict, err
}

// scanRow is scanAppend without the unique violations: they are errors.
func scanRow(row pgx.Row, n int) (res nova.AppendResult, conflict bool, err error) {
	var version, label, seq *int64
	if err := row.Scan(&version, &label, &seq); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return res, true, nil
		}
		return res, false, err
	}
	if version == nil || label == nil || seq == nil {
		return res, true, nil
	}
	return nova.AppendResult{
		FirstVersion: uint64(*version) - uint64(n) + 1,
		LastVersion:  uint64(*version),
		Position:     nova.Position{Commit: uint64(*label), Prepare: uint64(*seq)},
	}, false, nil
}

// resolve decides an append that wrote nothing: an idempotent retry when
// its events are stored (retry.Check decides), otherwise a
// *nova.ConcurrencyError with the stream's actual version.
func (s *Store) resolve(ctx context.Context, q querier, stream string, expected nova.ExpectedVersion, evs []nova.EventData) (nova.AppendResult, error) {
	ids := make([]pgtype.UUID, len(evs))
	for i, e := range evs {
		if err := parseUUID(&ids[i], e.ID, i); err != nil {
			return nova.AppendResult{}, err
		}
	}
	rows, err := q.Query(ctx, s.sql.lookup, ids)
	if err != nil {
		return nova.AppendResult{}, err
	}
	found := make(map[string]nova.Event)
	var sc scanner
	for rows.Next() {
		var e nova.Event
		if err := sc.scan(rows, &e); err != nil {
			rows.Close()
			return nova.AppendResult{}, err
		}
		found[e.ID] = e
	}
	if err := rows.Err(); err != nil {
		return nova.AppendResult{}, err
	}
	if len(found) > 0 {
		return retry.Check(stream, expected, evs, found)
	}
	var actual uint64
	if !expected.IsStreamExists() {
		// The stream existed when the statement failed (for StreamExists
		// it did not, so 0 is what it held).
		var v int64
		if err := q.QueryRow(ctx, s.sql.version, stream).Scan(&v); err != nil {
			return nova.AppendResult{}, err
		}
		actual = uint64(v)
	}
	if expected.Check(actual) {
		// Only writes that bypass the store (a unique (stream, version)
		// violation) get here: the next attempt will do.
		return nova.AppendResult{}, errRetry
	}
	return nova.AppendResult{}, &nova.ConcurrencyError{Stream: stream, Expected: expected, Actual: actual}
}

// storedMetadata is what the metadata column holds: the metadata that has
// no column of its own.
type storedMetadata struct {
	Schema int               `json:"schema,omitempty"`
	Extra  map[string]string `json:"extra,omitempty"`
}

// appendError wraps an append's error, leaving the errors callers compare
// with (the store's typed errors, context errors, nova.ErrClosed) as they
// are.
func appendError(stream string, err error) error {
	var ce *nova.ConcurrencyError
	var de *nova.DuplicateEventError
	if errors.As(err, &ce) || errors.As(err, &de) || errors.Is(err, nova.ErrInvalid) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nova.ErrClosed) {
		return err
	}
	return fmt.Errorf("novapg: append to stream %q: %w", stream, err)
}
