package novamysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/groupcommit"
	"github.com/nova-go/nova/internal/retry"
	"github.com/nova-go/nova/internal/validate"
)

// request is one append in a group commit. The leader of its group sets
// res and err.
type request struct {
	stream   string
	expected nova.ExpectedVersion
	events   []nova.EventData

	res nova.AppendResult
	err error
}

// Append implements nova.Store. The append joins the next group commit;
// see the package documentation.
func (s *Store) Append(ctx context.Context, stream string, expected nova.ExpectedVersion, events ...nova.EventData) (nova.AppendResult, error) {
	evs, err := validate.Append(stream, events)
	if err != nil {
		return nova.AppendResult{}, err
	}
	if err := s.checkSizes(stream, evs); err != nil {
		return nova.AppendResult{}, err
	}
	if s.closed.Load() {
		return nova.AppendResult{}, nova.ErrClosed
	}
	r := &request{stream: stream, expected: expected, events: evs}
	if err := s.group.Do(ctx, r); err != nil {
		if errors.Is(err, nova.ErrPanic) {
			// The writer's own bug: its transaction was rolled back.
			err = fmt.Errorf("novamysql: append: %w", err)
			s.cfg.Logger.ErrorContext(ctx, "novamysql: append failed", "stream", stream, "err", err)
		}
		return nova.AppendResult{}, err
	}
	return r.res, r.err
}

// AppendTx appends as [Store.Append] does, inside the caller's transaction
// tx on the store's database: the events commit or roll back with tx, and
// are visible to readers only once tx commits.
//
// It takes the lock on the position counter row in tx, and tx holds it
// until it ends: every other append to the store, through any Store or
// process, waits for tx to commit or roll back (or fails after the
// server's innodb_lock_wait_timeout). Keep such transactions short. An
// append that fails (a wrong expected version, a reused event ID) is
// undone within tx by a savepoint and leaves tx usable; the caller decides
// whether to commit the rest. tx keeps the counter's lock even then, as
// InnoDB keeps the locks taken after a savepoint rolled back to. Subscriptions of this Store learn of the
// events at their next poll, or at once if the caller calls
// [Store.Notify] after committing.
func (s *Store) AppendTx(ctx context.Context, tx *sql.Tx, stream string, expected nova.ExpectedVersion, events ...nova.EventData) (nova.AppendResult, error) {
	evs, err := validate.Append(stream, events)
	if err != nil {
		return nova.AppendResult{}, err
	}
	if err := s.checkSizes(stream, evs); err != nil {
		return nova.AppendResult{}, err
	}
	if s.closed.Load() {
		return nova.AppendResult{}, nova.ErrClosed
	}
	ex := txExec{tx}
	if _, err := ex.exec(ctx, `SAVEPOINT nova_append`); err != nil {
		return nova.AppendResult{}, fmt.Errorf("novamysql: append to stream %q: savepoint: %w", stream, err)
	}
	res, err := s.appendTx(ctx, ex, stream, expected, evs)
	if err != nil {
		if _, rerr := ex.exec(ctx, `ROLLBACK TO SAVEPOINT nova_append`); rerr != nil {
			return nova.AppendResult{}, errors.Join(err, fmt.Errorf("novamysql: roll back to savepoint: %w", rerr))
		}
		if errors.Is(err, errUniqueID) {
			return s.settle(ctx, ex, stream, expected, evs)
		}
		return nova.AppendResult{}, err
	}
	if _, err := ex.exec(ctx, `RELEASE SAVEPOINT nova_append`); err != nil {
		return nova.AppendResult{}, fmt.Errorf("novamysql: append to stream %q: release savepoint: %w", stream, err)
	}
	return res, nil
}

// appendTx is one append on ex after the savepoint: lock the counter,
// check, insert, move the counter.
func (s *Store) appendTx(ctx context.Context, ex execer, stream string, expected nova.ExpectedVersion, evs []nova.EventData) (nova.AppendResult, error) {
	var head uint64
	if err := queryRow(ctx, ex, s.q.lock, nil, &head); err != nil {
		return nova.AppendResult{}, fmt.Errorf("novamysql: append to stream %q: lock the position counter: %w", stream, err)
	}
	t := s.newTxn(ex, head)
	res, err := t.append(ctx, stream, expected, evs)
	if err == nil {
		err = t.flush(ctx)
	}
	if err == nil && t.next != head {
		if _, err = ex.exec(ctx, s.q.setCounter, t.next); err != nil {
			err = fmt.Errorf("novamysql: append to stream %q: move the position counter: %w", stream, err)
		}
	}
	return res, err
}

// reserve takes the position counter's lock in ex's transaction and
// reserves n positions in one statement, as a group commit does, and
// returns the position before them.
func (s *Store) reserve(ctx context.Context, ex execer, n int) (uint64, error) {
	res, err := ex.exec(ctx, s.q.lockAdd, n)
	if err != nil {
		return 0, fmt.Errorf("novamysql: lock the position counter: %w", err)
	}
	k, err := res.RowsAffected()
	if err == nil && k != 1 {
		err = fmt.Errorf("the position counter row of %scounter is missing", s.cfg.TablePrefix)
	}
	var v int64
	if err == nil {
		v, err = res.LastInsertId()
	}
	if err != nil {
		return 0, fmt.Errorf("novamysql: lock the position counter: %w", err)
	}
	return uint64(v) - uint64(n), nil
}

// writer is the state of one slot of the group commit: one connection of
// the pool, kept between groups, with its prepared statements.
type writer struct {
	s    *Store
	conn *connExec
}

// release returns the connection to the pool, or discards it when it
// failed.
func (w *writer) release() {
	if w.conn != nil {
		w.conn.close()
		w.conn = nil
	}
}

// connect returns the writer's connection, opening one if needed.
func (w *writer) connect(ctx context.Context) (*connExec, error) {
	if w.conn == nil {
		c, err := w.s.db.Conn(ctx)
		if err != nil {
			return nil, err
		}
		w.conn = newConnExec(c)
	}
	return w.conn, nil
}

// begin starts a transaction on the writer's connection. A connection
// that turns out to be dead before anything was sent on it is replaced
// once.
func (w *writer) begin(ctx context.Context) (*connExec, error) {
	for attempt := 0; ; attempt++ {
		c, err := w.connect(ctx)
		if err == nil {
			if _, err = c.conn.ExecContext(ctx, `START TRANSACTION`); err == nil {
				return c, nil
			}
			w.discard()
		}
		if attempt > 0 || !isConnError(err) {
			return nil, err
		}
	}
}

// discard closes the writer's connection after an error that may have
// left it unusable or in a transaction; the next group opens another.
func (w *writer) discard() {
	if w.conn != nil {
		w.conn.discard()
		w.conn = nil
	}
}

// commitGroup is the store's group commit: it writes the batch b in one
// transaction on the writer of b's slot and sets each append's result.
// Appends are taken only once the counter's lock is held: a caller whose
// context ends while the leader waits for the lock (held by a
// transaction of AppendTx or another process) withdraws its append; the
// leader's own context ends its wait, and the others queue again for the
// next leader.
func (s *Store) commitGroup(ctx context.Context, b *groupcommit.Batch[request]) {
	w := s.writers[b.Slot()]
	total := 0
	for _, r := range b.Requests() {
		total += len(r.events)
	}
	s.groups.Add(1)
	c, err := w.begin(ctx)
	var head uint64
	if err == nil {
		// Take the counter row's lock and reserve positions for every
		// event of the group in one statement; LAST_INSERT_ID(expr) hands
		// the new value back in the statement's result. Positions
		// reserved for appends withdrawn meanwhile are given back by
		// finish.
		var res sql.Result
		if res, err = c.exec(ctx, s.q.lockAdd, total); err == nil {
			var v, k int64
			if k, err = res.RowsAffected(); err == nil && k != 1 {
				err = fmt.Errorf("the position counter row of %scounter is missing", s.cfg.TablePrefix)
			}
			if err == nil {
				if v, err = res.LastInsertId(); err == nil {
					head = uint64(v) - uint64(total)
				}
			}
		}
		if err != nil {
			w.discard()
		}
	}
	if err != nil && ctx.Err() != nil {
		return
	}
	// A panic below leaves the connection in a transaction: it is
	// discarded on the way out.
	defer func() {
		if v := recover(); v != nil {
			w.discard()
			panic(v)
		}
	}()
	ctx = context.Background()
	live := b.Take()
	s.taken.Add(uint64(len(live)))
	wrote := false
	switch {
	case err != nil:
		fail(live, fmt.Errorf("novamysql: begin transaction: %w", err))
	case len(live) == 0:
		w.rollback(ctx)
	default:
		wrote = w.commit(ctx, c, live, head, head+uint64(total))
	}
	for _, r := range live {
		if r.err != nil && !isCallerError(r.err) {
			r.err = markTransient(r.err)
			s.cfg.Logger.Error("novamysql: append failed", "stream", r.stream, "err", r.err)
		}
	}
	if wrote {
		s.broadcast()
	}
}

// rollback ends the writer's transaction, discarding the connection if
// that fails.
func (w *writer) rollback(ctx context.Context) {
	if w.conn == nil {
		return
	}
	if _, err := w.conn.conn.ExecContext(ctx, `ROLLBACK`); err != nil {
		w.discard()
	}
}

// commit writes live in the transaction begun by the caller, whose
// counter already reserves positions head+1 to reserved, commits it and
// sets every request's result. It reports whether any event was written.
//
// The group is first written straight through, every event in as few
// INSERT statements as possible: an append that fails its version check
// writes nothing, so the others need no protection from it. Only when an
// insert fails (an event ID already stored) is the transaction rolled
// back and the group written again with each append in its own
// SAVEPOINT, so that the failing one is undone alone.
func (w *writer) commit(ctx context.Context, c *connExec, live []*request, head, reserved uint64) bool {
	s := w.s
	t := s.newTxn(c, head)
	err := func() error {
		for _, r := range live {
			r.res, r.err = t.append(ctx, r.stream, r.expected, r.events)
			if r.err != nil && !isCallerError(r.err) {
				return r.err
			}
		}
		return t.flush(ctx)
	}()
	if err == nil {
		return w.finish(ctx, c, live, t, reserved)
	}
	w.rollback(ctx)
	if !errors.Is(err, errUniqueID) {
		fail(live, err)
		if isConnError(err) {
			w.discard()
		}
		return false
	}
	for _, r := range live {
		r.res, r.err = nova.AppendResult{}, nil
	}
	return w.commitSafely(ctx, live)
}

// commitSafely writes live with a savepoint around each append.
func (w *writer) commitSafely(ctx context.Context, live []*request) bool {
	s := w.s
	c, err := w.begin(ctx)
	var head uint64
	if err == nil {
		if err = queryRow(ctx, c, s.q.lock, nil, &head); err != nil {
			w.discard()
		}
	}
	if err != nil {
		fail(live, fmt.Errorf("novamysql: begin transaction: %w", err))
		return false
	}
	t := s.newTxn(c, head)
	for _, r := range live {
		if _, err := c.exec(ctx, `SAVEPOINT nova_append`); err != nil {
			w.abort(ctx, live, fmt.Errorf("novamysql: savepoint: %w", err))
			return false
		}
		next := t.next
		r.res, r.err = t.append(ctx, r.stream, r.expected, r.events)
		if r.err == nil {
			r.err = t.flush(ctx)
		}
		if r.err == nil || isCallerError(r.err) {
			continue
		}
		if !errors.Is(r.err, errUniqueID) {
			w.abort(ctx, live, r.err)
			return false
		}
		if _, err := c.exec(ctx, `ROLLBACK TO SAVEPOINT nova_append`); err != nil {
			w.abort(ctx, live, fmt.Errorf("novamysql: roll back to savepoint: %w", err))
			return false
		}
		t.next, t.rows = next, t.rows[:0]
		r.res, r.err = s.settle(ctx, c, r.stream, r.expected, r.events)
		if r.err != nil && !isCallerError(r.err) {
			w.abort(ctx, live, r.err)
			return false
		}
	}
	return w.finish(ctx, c, live, t, head)
}

// finish moves the counter to the last position used, when that is not
// where it already is, and commits.
func (w *writer) finish(ctx context.Context, c *connExec, live []*request, t *txn, counter uint64) bool {
	if t.next != counter {
		if _, err := c.exec(ctx, w.s.q.setCounter, t.next); err != nil {
			w.abort(ctx, live, fmt.Errorf("novamysql: move the position counter: %w", err))
			return false
		}
	}
	if _, err := c.conn.ExecContext(ctx, `COMMIT`); err != nil {
		// The outcome is unknown when the connection broke: a retry
		// with the same event IDs finds out.
		w.discard()
		failAll(live, fmt.Errorf("novamysql: commit: %w", err))
		return false
	}
	return t.wrote
}

// abort rolls the transaction back and gives err to every request that
// had succeeded so far.
func (w *writer) abort(ctx context.Context, live []*request, err error) {
	w.rollback(ctx)
	if isConnError(err) {
		w.discard()
	}
	for _, r := range live {
		if r.err == nil {
			r.res, r.err = nova.AppendResult{}, err
		}
	}
}

// fail gives every request err.
func fail(live []*request, err error) {
	for _, r := range live {
		r.res, r.err = nova.AppendResult{}, err
	}
}

// failAll gives err to every request that had succeeded: a failed commit
// undoes them all.
func failAll(live []*request, err error) {
	for _, r := range live {
		if r.err == nil {
			r.res, r.err = nova.AppendResult{}, err
		}
	}
}

// markTransient marks err as transient (see [nova.IsTransient]) when a
// later attempt may succeed: the connection broke or the server is going
// away, or the transaction lost a deadlock or waited too long for a lock.
func markTransient(err error) error {
	if nova.IsTransient(err) {
		return err
	}
	if code := mysqlCode(err); code == 1213 || code == 1205 || isConnError(err) { // ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT
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
var errUniqueID = errors.New("novamysql: event ID already stored")

// txn is the state of appends inside one transaction: the next position
// to allocate and the event rows waiting to be inserted.
type txn struct {
	s     *Store
	ex    execer
	next  uint64 // last position allocated so far
	now   string // recorded_at of every event, UTC, microseconds
	rows  []row
	wrote bool
}

// row is one event to insert.
type row struct {
	position, version uint64
	stream            string
	e                 *nova.EventData
}

func (s *Store) newTxn(ex execer, head uint64) *txn {
	return &txn{s: s, ex: ex, next: head, now: time.Now().UTC().Format(timeLayout)}
}

// timeLayout is how recorded times are written to DATETIME(6) columns.
const timeLayout = "2006-01-02 15:04:05.000000"

// append checks the stream's version and queues the events' rows. A
// failed check writes nothing and returns a *nova.ConcurrencyError, or
// the result of an idempotent retry.
func (t *txn) append(ctx context.Context, stream string, expected nova.ExpectedVersion, events []nova.EventData) (nova.AppendResult, error) {
	n := uint64(len(events))
	current, ok, err := t.check(ctx, stream, expected, n)
	if err != nil {
		return nova.AppendResult{}, fmt.Errorf("novamysql: append to stream %q: check version: %w", stream, err)
	}
	if !ok {
		// A retry of an append that did commit finds the stream moved
		// on: decide by the stored IDs, including those this
		// transaction is about to insert.
		if err := t.flush(ctx); err != nil {
			return nova.AppendResult{}, err
		}
		found, err := t.s.lookupIDs(ctx, t.ex, events)
		if err != nil {
			return nova.AppendResult{}, fmt.Errorf("novamysql: append to stream %q: look up event IDs: %w", stream, err)
		}
		if len(found) > 0 {
			return retry.Check(stream, expected, events, found)
		}
		return nova.AppendResult{}, &nova.ConcurrencyError{Stream: stream, Expected: expected, Actual: current}
	}
	for i := range events {
		t.next++
		t.rows = append(t.rows, row{position: t.next, version: current + uint64(i) + 1, stream: stream, e: &events[i]})
	}
	return nova.AppendResult{
		FirstVersion: current + 1,
		LastVersion:  current + n,
		Position:     nova.Position{Commit: t.next},
	}, nil
}

// check moves the stream's row from its current version to current+n when
// expected allows it, in one conditional statement where the expected
// version is exact, and reports the version found.
func (t *txn) check(ctx context.Context, stream string, expected nova.ExpectedVersion, n uint64) (current uint64, ok bool, err error) {
	q := &t.s.q
	v, exact := expected.Version()
	if !exact {
		// Any or StreamExists: read the version under a lock, then
		// move it as an exact append would. The counter's lock makes
		// the two statements one step.
		if err := queryRow(ctx, t.ex, q.stream, []any{stream}, &v); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return 0, false, err
		}
		if !expected.Check(v) {
			return v, false, nil
		}
	}
	if v == 0 {
		if _, err := t.ex.exec(ctx, q.insertStream, stream, n); err != nil {
			if mysqlCode(err) == errDupKey {
				current, err := t.version(ctx, stream)
				return current, false, err
			}
			return 0, false, err
		}
		return 0, true, nil
	}
	res, err := t.ex.exec(ctx, q.updateStream, v+n, stream, v)
	if err != nil {
		return 0, false, err
	}
	if k, err := res.RowsAffected(); err != nil || k != 1 {
		if err != nil {
			return 0, false, err
		}
		current, err := t.version(ctx, stream)
		return current, false, err
	}
	return v, true, nil
}

// version reads the stream's version, 0 when it has none.
func (t *txn) version(ctx context.Context, stream string) (uint64, error) {
	var v uint64
	err := queryRow(ctx, t.ex, t.s.q.stream, []any{stream}, &v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, err
}

// Limits of one INSERT statement: rows, and bytes of events (data, type
// and metadata), well under the server's max_allowed_packet (16 MB by
// default on MariaDB, 64 MB on MySQL 8). A larger event goes alone in its
// statement.
const (
	maxInsertRows  = 500
	maxInsertBytes = 4 << 20
)

// rowFraming bounds what a row of the events table adds to its event's
// size (ID, version, position, time, the protocol's framing), and
// packetOverhead what a packet adds to the values it carries.
const (
	rowFraming     = 256
	packetOverhead = 1024
)

// checkSizes refuses, before any I/O, an event whose row the server
// cannot take or send back: one larger than its max_allowed_packet, read
// when the store was opened.
func (s *Store) checkSizes(stream string, evs []nova.EventData) error {
	for i, d := range evs {
		// d.Size counts the metadata as JSON with the IDs in it: at least
		// what the metadata and ID columns hold.
		row := int64(d.Size() + len(stream) + rowFraming)
		if row+packetOverhead > s.maxPacket {
			return nova.Invalidf("novamysql",
				"event %d of %d bytes (data, type and metadata) takes %d bytes as a row of stream %q, more than the server's max_allowed_packet of %d bytes allows: "+
					"raise max_allowed_packet in the server's configuration (or SET GLOBAL max_allowed_packet) to 16 MiB, the default of MariaDB 10.2 and later, to hold every event Nova allows (up to %d bytes)",
				i, d.Size(), row, stream, s.maxPacket, nova.MaxEventLen)
		}
	}
	return nil
}

// flush inserts the queued rows.
func (t *txn) flush(ctx context.Context) error {
	rows := t.rows
	for len(rows) > 0 {
		n, size := 0, 0
		for n < len(rows) && n < maxInsertRows && (n == 0 || size+rows[n].e.Size() <= maxInsertBytes) {
			size += rows[n].e.Size()
			n++
		}
		if err := t.insert(ctx, rows[:n]); err != nil {
			t.rows = t.rows[:0]
			return err
		}
		rows = rows[n:]
	}
	if len(t.rows) > 0 {
		t.wrote = true
	}
	t.rows = t.rows[:0]
	return nil
}

// insertValues caches the VALUES rows of an INSERT for each row count.
var insertValues sync.Map // int -> string

func valuesFor(n int) string {
	if v, ok := insertValues.Load(n); ok {
		return v.(string)
	}
	v := "(?,?,?,?,?,?,?,?,?,?)" + strings.Repeat(",(?,?,?,?,?,?,?,?,?,?)", n-1)
	insertValues.Store(n, v)
	return v
}

func (t *txn) insert(ctx context.Context, rows []row) error {
	args := make([]any, 0, len(rows)*10)
	for _, r := range rows {
		e := r.e
		data := e.Data
		if data == nil {
			data = []byte{} // NOT NULL: nil would be sent as NULL
		}
		md, corr, caus := encodeMetadata(e.Metadata)
		args = append(args, r.position, e.ID, r.stream, r.version, e.Type, data, md, corr, caus, t.now)
	}
	if _, err := t.ex.exec(ctx, t.s.q.insertEvents+valuesFor(len(rows)), args...); err != nil {
		if mysqlCode(err) == errDupKey {
			return errUniqueID
		}
		return fmt.Errorf("novamysql: append to stream %q: insert events: %w", rows[0].stream, err)
	}
	return nil
}

// settle decides an append whose insert met a stored event ID, after its
// writes were undone: an exact retry succeeds with Duplicate set, anything
// else is a *nova.DuplicateEventError.
func (s *Store) settle(ctx context.Context, ex execer, stream string, expected nova.ExpectedVersion, events []nova.EventData) (nova.AppendResult, error) {
	found, err := s.lookupIDs(ctx, ex, events)
	if err != nil {
		return nova.AppendResult{}, fmt.Errorf("novamysql: append to stream %q: look up event IDs: %w", stream, err)
	}
	return retry.Check(stream, expected, events, found)
}

// lookupIDs returns the stored events among the IDs of events, read with
// locking reads so that they see the latest committed rows whatever the
// transaction's isolation level.
func (s *Store) lookupIDs(ctx context.Context, ex execer, events []nova.EventData) (map[string]nova.Event, error) {
	found := make(map[string]nova.Event)
	const chunk = 500
	base, _, _ := strings.Cut(s.q.lookup, "WHERE id = ?")
	for i := 0; i < len(events); i += chunk {
		part := events[i:min(i+chunk, len(events))]
		args := make([]any, len(part))
		for j := range part {
			args[j] = part[j].ID
		}
		q := base + "WHERE id IN (?" + strings.Repeat(",?", len(part)-1) + ") FOR UPDATE"
		rows, err := ex.query(ctx, q, args...)
		if err != nil {
			return nil, err
		}
		var sc scanner
		for rows.Next() {
			var e nova.Event
			if err := sc.scan(rows, &e, true); err != nil {
				rows.Close()
				return nil, err
			}
			found[e.ID] = e
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return nil, err
		}
	}
	return found, nil
}
