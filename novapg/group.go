package novapg

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/groupcommit"
	"github.com/nova-go/nova/saga"
)

// request is one [Store.Append] in a group commit. The leader of its
// group sets the fields after args.
type request struct {
	stream string
	n      int    // events
	sql    string // the append's statement, as it runs alone
	args   []any

	res nova.AppendResult
	// conflict reports that the append wrote nothing: the expected
	// version did not hold or an event ID is stored.
	conflict bool
	// err is the error of the append's transaction, which then wrote
	// nothing (or, when the connection broke at the commit, may have
	// committed); shared says the transaction held other appends too, so
	// err need not be the append's own.
	err    error
	shared bool

	// tr is set when the request is a saga transition
	// ([RunStore.Record]): its run's row and outbox rows are written
	// after its append, in the same transaction.
	tr *transition
}

// transition is the saga part of a request: what [RunStore.recordFast]
// writes after the append, and what it read back.
type transition struct {
	rs     *RunStore
	t      *saga.Transition
	outbox []any // the outbox insert's arguments; nil when none
	args   []any // the checked upsert's arguments

	row saga.RunInfo
	// done reports that the transition was written. Alone, a transition
	// not done and with no error wrote nothing for Record's transaction
	// to decide (see recordFast); in a group, any failure is the group's
	// error.
	done bool
}

// errAlone is the result of a transition left out of its group, to run
// alone.
var errAlone = errors.New("transition of a stream written earlier in its group")

// appendGrouped commits r in a group with the appends that arrive while
// another group commits, then settles its result as an append alone
// would: a conflict is resolved, and an append whose group failed, or
// that failed on a broken connection, runs again alone, under the retry
// rules.
func (s *Store) appendGrouped(ctx context.Context, r *request, expected nova.ExpectedVersion, evs []nova.EventData) (nova.AppendResult, error) {
	if err := s.group.Do(ctx, r); err != nil {
		if errors.Is(err, nova.ErrPanic) {
			// The store's own bug: the group's transaction was rolled
			// back.
			s.cfg.Logger.Error("novapg: append failed", "stream", r.stream, "error", err)
		}
		return nova.AppendResult{}, err
	}
	switch {
	case r.err == nil && !r.conflict:
		return r.res, nil
	case r.err == nil:
		res, err := s.resolve(ctx, s.pool, r.stream, expected, evs)
		if err == nil || !(errors.Is(err, errRetry) || retryable(err)) {
			return res, err
		}
	case !r.shared && !retryable(r.err):
		return nova.AppendResult{}, r.err
	}
	if err := ctx.Err(); err != nil {
		return nova.AppendResult{}, err
	}
	return s.appendAlone(ctx, r.sql, r.args, r.stream, expected, evs)
}

// appendAlone runs one append in a transaction of its own, under the
// retry rules, and resolves a conflict.
func (s *Store) appendAlone(ctx context.Context, sql string, args []any, stream string, expected nova.ExpectedVersion, evs []nova.EventData) (nova.AppendResult, error) {
	var res nova.AppendResult
	err := s.retry(ctx, func() error {
		var conflict bool
		var err error
		res, conflict, err = s.appendOnce(ctx, sql, args, len(evs))
		if err != nil || !conflict {
			return err
		}
		res, err = s.resolve(ctx, s.pool, stream, expected, evs)
		return err
	})
	return res, err
}

// commitGroup is the store's group commit: it writes the appends of b in
// one transaction and one round trip, the guard first, then each append's
// statement, and sets each append's result. A group of one append runs as
// an append alone does.
//
// The appends run in the order of their streams (appends to one stream in
// the order they came), so that two groups committing at once lock the
// streams' rows in the same order and never deadlock. Each statement
// checks its expected version against the stream's row as the earlier
// statements of the group left it: appends to one stream in one group
// behave as if they ran one after the other. One guard, taken before any
// label is drawn and held to the commit, guards every label of the group.
//
// A statement that fails aborts the transaction: then nothing of the
// group is written, and every append of it gets the error, to run again
// alone (see appendGrouped).
func (s *Store) commitGroup(ctx context.Context, b *groupcommit.Batch[request]) {
	reqs := b.Take()
	if len(reqs) == 1 {
		r := reqs[0]
		if r.tr != nil {
			b.Apply(0, func() { r.tr.done, r.err = r.tr.rs.recordFast(ctx, r) })
			return
		}
		b.Apply(0, func() { r.res, r.conflict, r.err = s.appendOnce(ctx, r.sql, r.args, r.n) })
		return
	}
	order := make([]int, len(reqs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int { return cmp.Compare(reqs[i].stream, reqs[j].stream) })
	batch := &pgx.Batch{}
	batch.Queue(s.sql.guard)
	live := make([]*request, 0, len(reqs))
	for _, i := range order {
		r := reqs[i]
		b.Apply(i, func() {
			if r.tr != nil && len(live) > 0 && live[len(live)-1].stream == r.stream {
				// Its checked upsert would find the stream's row
				// written by this transaction whether or not its own
				// append wrote: it runs alone after the group.
				r.err, r.shared = errAlone, true
				return
			}
			if r.tr == nil {
				batch.Queue(s.sql.grouped[r.sql], r.args...)
			} else {
				// A transition's statements raise an error unless the
				// append and the lease check hold, which aborts the
				// group: see recordFast.
				batch.Queue(r.sql, r.args...)
				batch.Queue(r.tr.rs.sql.checked, r.tr.args...)
				if r.tr.outbox != nil {
					batch.Queue(r.tr.rs.sql.outbox, r.tr.outbox...)
				}
			}
			live = append(live, r)
		})
	}
	if len(live) == 0 {
		return
	}
	type result struct {
		res      nova.AppendResult
		conflict bool
		row      saga.RunInfo
	}
	results := make([]result, len(live))
	br := s.pool.SendBatch(ctx, batch)
	_, err := br.Exec()
	for i, r := range live {
		if err != nil {
			break
		}
		results[i].res, results[i].conflict, err = scanRow(br.QueryRow(), r.n)
		if err != nil || r.tr == nil {
			continue
		}
		var flag int
		if err = scanRun(br.QueryRow(), &results[i].row, &flag); err == nil && r.tr.outbox != nil {
			_, err = br.Exec()
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		err = fmt.Errorf("group commit of %d writes: %w", len(live), err)
	}
	for i, r := range live {
		if err != nil {
			r.err, r.shared = err, true
			continue
		}
		r.res, r.conflict = results[i].res, results[i].conflict
		if r.tr != nil {
			r.tr.row, r.tr.done = results[i].row, true
		}
	}
}
