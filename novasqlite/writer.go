package novasqlite

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
	"unsafe"

	"github.com/ncruces/go-sqlite3"
	"github.com/nova-go/nova"
	"github.com/nova-go/nova/aggregate"
	"github.com/nova-go/nova/internal/groupcommit"
	"github.com/nova-go/nova/internal/retry"
	"github.com/nova-go/nova/internal/validate"
)

type requestKind uint8

const (
	kindAppend requestKind = iota
	kindSnapshot
	kindTx
)

// request is one write. The leader of its batch sets res and err.
type request struct {
	kind     requestKind
	stream   string
	expected nova.ExpectedVersion
	events   []nova.EventData
	snap     aggregate.Snapshot
	// fn, for kindTx, runs after the append (if any) in its transaction.
	fn func(*sqlite3.Conn) error

	res nova.AppendResult
	err error
}

// Append implements nova.Store. The append commits on the caller's
// goroutine, or joins the group of the next commit when one is in
// progress; see the package documentation.
func (s *Store) Append(ctx context.Context, stream string, expected nova.ExpectedVersion, events ...nova.EventData) (nova.AppendResult, error) {
	evs, err := validate.Append(stream, events)
	if err != nil {
		return nova.AppendResult{}, err
	}
	r := &request{kind: kindAppend, stream: stream, expected: expected, events: evs}
	if err := s.do(ctx, r); err != nil {
		return nova.AppendResult{}, err
	}
	return r.res, r.err
}

// do runs r in a group commit (see [Store.commit]). It returns ctx.Err()
// or nova.ErrClosed, without r having been written, when r is given up
// before its writes were made; otherwise r's result is set, unless the
// writer itself panicked.
func (s *Store) do(ctx context.Context, r *request) error {
	err := s.group.Do(ctx, r)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, groupcommit.ErrUnknownOutcome):
		return fmt.Errorf("novasqlite: gave up waiting for the commit of its group, which may still commit this write: %w", ctx.Err())
	case errors.Is(err, nova.ErrPanic):
		// User code runs under its own recover (see callTx): this is
		// the writer's own bug. Its transaction was rolled back, and
		// the writer stays usable.
		err = fmt.Errorf("novasqlite: write: %w", err)
		s.cfg.Logger.ErrorContext(ctx, "novasqlite: write failed", "stream", r.stream, "err", err)
	}
	return err
}

// errGone is the result the leader gives a request whose caller gave it
// up; nobody reads it.
var errGone = errors.New("novasqlite: write given up by its caller")

// commit is the store's group commit: it writes the batch b in one
// transaction. Requests are taken only once the write lock is held: a
// caller whose context ends while the leader waits for a lock that
// another process holds withdraws its write; the leader's own context
// interrupts that wait, and the others queue again for the next leader.
func (s *Store) commit(ctx context.Context, b *groupcommit.Batch[request]) {
	w := s.w
	s.groups.Add(1)
	interruptible := ctx.Done() != nil
	if interruptible {
		w.conn.SetInterrupt(ctx)
	}
	err := w.begin.Exec()
	if interruptible {
		w.conn.SetInterrupt(context.Background())
	}
	if err != nil && ctx.Err() != nil {
		return
	}
	// A panic below rolls the transaction back on its way out.
	defer func() {
		if !w.conn.GetAutocommit() {
			_ = w.rollback.Exec()
		}
	}()
	live := b.Take()
	s.taken.Add(uint64(len(live)))
	wrote := false
	switch {
	case err != nil:
		w.fail(live, fmt.Errorf("novasqlite: begin transaction: %w", err))
	case len(live) == 0:
		_ = w.rollback.Exec()
	default:
		wrote = w.commit(b, live, time.Now().UnixNano())
	}
	if wrote {
		s.broadcast()
	}
	for _, r := range live {
		if r.err != nil && !isCallerError(r.err) && r.err != errGone {
			r.err = markTransient(r.err)
			s.cfg.Logger.Error("novasqlite: write failed", "stream", r.stream, "err", r.err)
		}
	}
}

// markTransient marks err as transient (see [nova.IsTransient]) when the
// database was busy or locked: another process held the lock past
// BusyTimeout, and a later attempt may find it free.
func markTransient(err error) error {
	if (errors.Is(err, sqlite3.BUSY) || errors.Is(err, sqlite3.LOCKED)) && !nova.IsTransient(err) {
		return nova.Transient(err)
	}
	return err
}

// isCallerError reports errors that are the caller's business, not the
// store's health.
func isCallerError(err error) bool {
	return errors.Is(err, nova.ErrConcurrency) || errors.Is(err, nova.ErrDuplicateEvent)
}

// errUniqueID marks an insert that hit the unique index on event IDs: the
// append may be an idempotent retry, decided once its writes are undone.
var errUniqueID = errors.New("novasqlite: event ID already stored")

// writer is the store's one writing connection and its prepared
// statements. Only the leader uses it.
type writer struct {
	conn *sqlite3.Conn

	begin, commitTx, rollback       *sqlite3.Stmt
	savepoint, release, rollbackTo  *sqlite3.Stmt
	version, insert, upsert, lookup *sqlite3.Stmt
	create, advance                 *sqlite3.Stmt
	saveSnap                        *sqlite3.Stmt

	meta []byte // metadata encoding buffer
	// dirty is set by a request that has executed a write.
	dirty bool
}

func newWriter(conn *sqlite3.Conn, cfg Config) (*writer, error) {
	w := &writer{conn: conn}
	// Savepoint journals stay in memory.
	if err := conn.Exec(`PRAGMA temp_store = MEMORY`); err != nil {
		return nil, err
	}
	for _, p := range []struct {
		st  **sqlite3.Stmt
		sql string
	}{
		{&w.begin, `BEGIN IMMEDIATE`},
		{&w.commitTx, `COMMIT`},
		{&w.rollback, `ROLLBACK`},
		{&w.savepoint, `SAVEPOINT nova_append`},
		{&w.release, `RELEASE nova_append`},
		{&w.rollbackTo, `ROLLBACK TO nova_append`},
		{&w.version, `SELECT version FROM streams WHERE stream = ?`},
		{&w.insert, `INSERT INTO events (id, stream, version, type, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)`},
		{&w.create, `INSERT INTO streams (stream, version) VALUES (?, ?)`},
		{&w.advance, `UPDATE streams SET version = ? WHERE stream = ? AND version = ?`},
		{&w.upsert, `INSERT INTO streams (stream, version) VALUES (?, ?) ON CONFLICT (stream) DO UPDATE SET version = excluded.version`},
		{&w.lookup, `SELECT position, stream, version, type, data, metadata, recorded_at FROM events WHERE id = ?`},
		{&w.saveSnap, `INSERT INTO snapshots (stream, version, schema, data, recorded_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (stream) DO UPDATE SET version = excluded.version, schema = excluded.schema,
				data = excluded.data, recorded_at = excluded.recorded_at
			WHERE excluded.version >= snapshots.version`},
	} {
		st, _, err := conn.PrepareFlags(p.sql, sqlite3.PREPARE_PERSISTENT)
		if err != nil {
			w.close()
			return nil, err
		}
		*p.st = st
	}
	return w, nil
}

// close closes the statements and the connection.
func (w *writer) close() {
	for _, st := range slices.Collect(w.conn.Stmts()) {
		st.Close()
	}
	w.conn.Close()
}

// commit writes live in the transaction begun by the caller, commits it
// and sets every request's result.
// It reports whether any event was written.
//
// A group is first written straight through: an append that fails its
// expected-version check fails before writing anything, so the others
// need no protection from it. Only when an append fails after writing (an
// event ID already stored, a disk error) is the transaction rolled back
// and the group written again with each request in its own savepoint, so
// that the failing one is undone alone. Savepoints are not free: SQLite
// copies every page a savepoint changes first.
func (w *writer) commit(b *groupcommit.Batch[request], live []*request, now int64) (wrote bool) {
	if len(live) > 1 {
		if wrote, ok := w.applyAll(b, live, now); ok {
			return w.finish(live, wrote)
		}
		_ = w.rollback.Exec()
		for _, r := range live {
			r.res, r.err = nova.AppendResult{}, nil
		}
		if err := w.begin.Exec(); err != nil {
			w.fail(live, fmt.Errorf("novasqlite: begin transaction: %w", err))
			return false
		}
	}
	single := len(live) == 1
	for i, r := range live {
		if !single {
			if err := w.savepoint.Exec(); err != nil {
				w.abort(live, fmt.Errorf("novasqlite: savepoint: %w", err))
				return false
			}
		}
		ok, err := w.applyTaken(b, i, r, now)
		if !ok {
			r.res, r.err = nova.AppendResult{}, errGone
			if !single {
				if err := w.release.Exec(); err != nil {
					w.abort(live, fmt.Errorf("novasqlite: release savepoint: %w", err))
					return false
				}
			}
			continue
		}
		if err == nil {
			if !single {
				if err := w.release.Exec(); err != nil {
					w.abort(live, fmt.Errorf("novasqlite: release savepoint: %w", err))
					return false
				}
			}
			wrote = wrote || (r.kind != kindSnapshot && r.stream != "" && !r.res.Duplicate)
			continue
		}
		if single {
			_ = w.rollback.Exec()
			r.res, r.err = w.settle(r, err)
			return false
		}
		if e1, e2 := w.rollbackTo.Exec(), w.release.Exec(); e1 != nil || e2 != nil {
			w.abort(live, fmt.Errorf("novasqlite: roll back savepoint: %w", errors.Join(e1, e2)))
			return false
		}
		r.res, r.err = w.settle(r, err)
	}
	return w.finish(live, wrote)
}

// applyAll writes the requests of live without savepoints. It reports
// false, leaving the transaction to be rolled back, as soon as one fails
// after having written.
func (w *writer) applyAll(b *groupcommit.Batch[request], live []*request, now int64) (wrote, ok bool) {
	for i, r := range live {
		w.dirty = false
		ok, err := w.applyTaken(b, i, r, now)
		if !ok {
			r.res, r.err = nova.AppendResult{}, errGone
			continue
		}
		switch {
		case err == nil:
			wrote = wrote || (r.kind != kindSnapshot && r.stream != "" && !r.res.Duplicate)
		case w.dirty:
			return false, false
		default:
			r.res, r.err = nova.AppendResult{}, err
		}
	}
	return wrote, true
}

// finish commits the transaction.
func (w *writer) finish(live []*request, wrote bool) bool {
	if err := w.commitTx.Exec(); err != nil {
		w.abort(live, fmt.Errorf("novasqlite: commit: %w", err))
		return false
	}
	return wrote
}

// settle turns the error of a request whose writes are undone into its
// result: an insert that met a stored ID is decided by retry.Check.
func (w *writer) settle(r *request, err error) (nova.AppendResult, error) {
	if te, ok := err.(*txError); ok {
		return nova.AppendResult{}, te.err
	}
	if !errors.Is(err, errUniqueID) {
		return nova.AppendResult{}, err
	}
	found, lerr := w.lookupIDs(r.events)
	if lerr != nil {
		return nova.AppendResult{}, fmt.Errorf("novasqlite: append to stream %q: look up event IDs: %w", r.stream, lerr)
	}
	return retry.Check(r.stream, r.expected, r.events, found)
}

// fail gives every request err.
func (w *writer) fail(live []*request, err error) {
	for _, r := range live {
		r.res, r.err = nova.AppendResult{}, err
	}
}

// abort rolls the transaction back and gives err to every request that
// had succeeded so far.
func (w *writer) abort(live []*request, err error) {
	if !w.conn.GetAutocommit() {
		_ = w.rollback.Exec()
	}
	for _, r := range live {
		if r.err == nil {
			r.res, r.err = nova.AppendResult{}, err
		}
	}
}

// applyTaken applies r, the i-th request of b, unless its caller gave it
// up (see groupcommit.Config.GiveUp): then it reports false.
func (w *writer) applyTaken(b *groupcommit.Batch[request], i int, r *request, now int64) (ok bool, err error) {
	ok = b.Apply(i, func() { err = w.apply(r, now) })
	return ok, err
}

// apply performs one request inside the open transaction.
func (w *writer) apply(r *request, now int64) error {
	switch r.kind {
	case kindSnapshot:
		return w.saveSnapshot(r.snap, now)
	case kindTx:
		if r.stream != "" {
			res, err := w.append(r.stream, r.expected, r.events, now)
			r.res = res
			if err != nil || res.Duplicate {
				// An idempotent retry wrote nothing, and its fn does not
				// run: the call that stored the events ran it.
				return err
			}
		}
		// fn's statements are not tracked: assume it wrote.
		w.dirty = true
		if err := w.callTx(r.fn); err != nil {
			return &txError{err: err}
		}
		return nil
	default:
		res, err := w.append(r.stream, r.expected, r.events, now)
		r.res = res
		return err
	}
}

// callTx runs fn on the writing connection under recover. A panic is
// fn's error, a [*nova.PanicError]: the request fails and its writes are
// rolled back like those of a TxFunc that returned an error. Statements
// fn left stepping are reset first, so that they hold nothing back.
func (w *writer) callTx(fn TxFunc) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = nova.NewPanicError(v)
			resetStmts(w.conn)
		}
	}()
	return fn(w.conn)
}

// append writes one append's events after checking its expected version.
func (w *writer) append(stream string, expected nova.ExpectedVersion, events []nova.EventData, now int64) (nova.AppendResult, error) {
	// An exact expected version is checked by the write that moves the
	// stream's version on, in one statement; other expectations read the
	// version first. A statement that fails or matches nothing leaves
	// nothing written.
	n := uint64(len(events))
	want, exact := expected.Version()
	var current uint64
	switch {
	case exact && want == 0:
		err := errors.Join(w.create.BindText(1, stream), w.create.BindInt64(2, int64(n)))
		if err == nil {
			err = w.create.Exec()
		}
		if errors.Is(err, sqlite3.CONSTRAINT) {
			return w.conflict(stream, expected, events)
		}
		if err != nil {
			return nova.AppendResult{}, fmt.Errorf("novasqlite: append to stream %q: create stream: %w", stream, err)
		}
	case exact:
		err := errors.Join(w.advance.BindInt64(1, int64(want+n)), w.advance.BindText(2, stream), w.advance.BindInt64(3, int64(want)))
		if err == nil {
			err = w.advance.Exec()
		}
		if err != nil {
			return nova.AppendResult{}, fmt.Errorf("novasqlite: append to stream %q: update version: %w", stream, err)
		}
		if w.conn.Changes() == 0 {
			return w.conflict(stream, expected, events)
		}
		current = want
	default:
		var err error
		if current, err = w.streamVersion(stream); err != nil {
			return nova.AppendResult{}, fmt.Errorf("novasqlite: append to stream %q: read version: %w", stream, err)
		}
		if !expected.Check(current) {
			return w.conflict(stream, expected, events)
		}
	}
	w.dirty = w.dirty || exact
	ins := w.insert
	if err := errors.Join(ins.BindText(2, stream), ins.BindInt64(7, now)); err != nil {
		return nova.AppendResult{}, fmt.Errorf("novasqlite: append to stream %q: %w", stream, err)
	}
	// Bindings survive each execution: parameters equal to the previous
	// event's are not bound again.
	for i := range events {
		e := &events[i]
		err := errors.Join(ins.BindText(1, e.ID), ins.BindInt64(3, int64(current)+int64(i)+1))
		var prev *nova.EventData
		if i > 0 {
			prev = &events[i-1]
		}
		if prev == nil || e.Type != prev.Type {
			err = errors.Join(err, ins.BindText(4, e.Type))
		}
		if prev == nil || !sameBytes(e.Data, prev.Data) {
			if len(e.Data) == 0 {
				err = errors.Join(err, ins.BindZeroBlob(5, 0))
			} else {
				err = errors.Join(err, ins.BindBlob(5, e.Data))
			}
		}
		if prev == nil || !sameMetadata(e.Metadata, prev.Metadata) {
			if metadataEmpty(e.Metadata) {
				err = errors.Join(err, ins.BindNull(6))
			} else {
				w.meta = appendMetadata(w.meta[:0], e.Metadata)
				err = errors.Join(err, ins.BindText(6, unsafe.String(unsafe.SliceData(w.meta), len(w.meta))))
			}
		}
		if err == nil {
			w.dirty = true
			err = ins.Exec()
		}
		if err != nil {
			if errors.Is(err, sqlite3.CONSTRAINT_UNIQUE) {
				return nova.AppendResult{}, errUniqueID
			}
			return nova.AppendResult{}, fmt.Errorf("novasqlite: append to stream %q: insert event %d: %w", stream, i, err)
		}
	}
	last := current + n
	position := w.conn.LastInsertRowID()
	if !exact {
		if err := errors.Join(w.upsert.BindText(1, stream), w.upsert.BindInt64(2, int64(last))); err != nil {
			return nova.AppendResult{}, fmt.Errorf("novasqlite: append to stream %q: %w", stream, err)
		}
		if err := w.upsert.Exec(); err != nil {
			return nova.AppendResult{}, fmt.Errorf("novasqlite: append to stream %q: update version: %w", stream, err)
		}
	}
	return nova.AppendResult{
		FirstVersion: current + 1,
		LastVersion:  last,
		Position:     nova.Position{Commit: uint64(position)},
	}, nil
}

// conflict decides an append whose expected version does not match,
// having written nothing: a retry of an append that did commit finds the
// stream moved on, so the stored IDs decide between an idempotent retry
// and a concurrency error.
func (w *writer) conflict(stream string, expected nova.ExpectedVersion, events []nova.EventData) (nova.AppendResult, error) {
	current, err := w.streamVersion(stream)
	if err != nil {
		return nova.AppendResult{}, fmt.Errorf("novasqlite: append to stream %q: read version: %w", stream, err)
	}
	found, err := w.lookupIDs(events)
	if err != nil {
		return nova.AppendResult{}, fmt.Errorf("novasqlite: append to stream %q: look up event IDs: %w", stream, err)
	}
	if len(found) > 0 {
		return retry.Check(stream, expected, events, found)
	}
	return nova.AppendResult{}, &nova.ConcurrencyError{Stream: stream, Expected: expected, Actual: current}
}

// streamVersion returns the stream's last version, 0 when it has none.
func (w *writer) streamVersion(stream string) (uint64, error) {
	st := w.version
	if err := st.BindText(1, stream); err != nil {
		return 0, err
	}
	var v int64
	if st.Step() {
		v = st.ColumnInt64(0)
	}
	err := st.Err()
	if rerr := st.Reset(); err == nil {
		err = rerr
	}
	return uint64(v), err
}

// lookupIDs returns the stored events among the IDs of events.
func (w *writer) lookupIDs(events []nova.EventData) (map[string]nova.Event, error) {
	found := make(map[string]nova.Event)
	st := w.lookup
	for _, d := range events {
		if err := st.BindText(1, d.ID); err != nil {
			return nil, err
		}
		if st.Step() {
			e := nova.Event{
				ID:         d.ID,
				Position:   nova.Position{Commit: uint64(st.ColumnInt64(0))},
				Stream:     st.ColumnText(1),
				Version:    uint64(st.ColumnInt64(2)),
				Type:       st.ColumnText(3),
				Data:       cloneBytes(st.ColumnRawBlob(4)),
				RecordedAt: time.Unix(0, st.ColumnInt64(6)).UTC(),
			}
			md, err := decodeMetadata(st.ColumnRawText(5), nil)
			if err != nil {
				st.Reset()
				return nil, fmt.Errorf("decode metadata of event %s: %w", d.ID, err)
			}
			e.Metadata = md
			found[d.ID] = e
		}
		err := st.Err()
		if rerr := st.Reset(); err == nil {
			err = rerr
		}
		if err != nil {
			return nil, err
		}
	}
	return found, nil
}

// saveSnapshot stores s unless a higher version is stored.
func (w *writer) saveSnapshot(s aggregate.Snapshot, now int64) error {
	st := w.saveSnap
	err := errors.Join(st.BindText(1, s.Stream), st.BindInt64(2, int64(s.Version)), st.BindInt64(3, int64(s.Schema)))
	if len(s.Data) == 0 {
		err = errors.Join(err, st.BindZeroBlob(4, 0))
	} else {
		err = errors.Join(err, st.BindBlob(4, s.Data))
	}
	err = errors.Join(err, st.BindInt64(5, now))
	if err == nil {
		w.dirty = true
		err = st.Exec()
	}
	if err != nil {
		return fmt.Errorf("novasqlite: save snapshot of stream %q: %w", s.Stream, err)
	}
	return nil
}

// sameBytes reports whether a and b are the same slice of memory.
func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || unsafe.SliceData(a) == unsafe.SliceData(b))
}

// sameMetadata reports whether a and b encode alike.
func sameMetadata(a, b nova.Metadata) bool {
	return a.CorrelationID == b.CorrelationID && a.CausationID == b.CausationID &&
		a.Schema == b.Schema && maps.Equal(a.Extra, b.Extra)
}

func cloneBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}
