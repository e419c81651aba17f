package novamysql

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"math"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/paging"
)

// Page sizes: a read's first page holds up to firstPage rows; later
// pages as many as fit in pageBytes at the average event size seen so
// far, at most Config.PageSize. A page is also cut as soon as its events
// hold pageBytes of data, so that a read of large events never buffers
// much more than that.
const (
	firstPage = 500
	pageBytes = 16 << 20
	// rowOverhead is what an event costs besides its data, roughly.
	rowOverhead = 200
)

// pager sizes the pages of one read.
type pager struct {
	max         int // Config.PageSize
	rows, bytes int // seen so far
}

func (s *Store) newPager() pager { return pager{max: s.cfg.PageSize} }

// limit returns the size of the next page of a read that wants want more
// rows (0: any number).
func (p *pager) limit(want int) int {
	n := min(firstPage, p.max)
	if p.rows > 0 {
		n = max(1, min(p.max, pageBytes/max(1, p.bytes/p.rows)))
	}
	if want > 0 && want < n {
		n = want
	}
	return n
}

// add counts an event of size bytes and reports whether the page being
// read is full, holding pageBytes (size is added to page).
func (p *pager) add(page *int, size int) bool {
	size += rowOverhead
	p.rows++
	p.bytes += size
	*page += size
	return *page >= pageBytes
}

// errPageFull stops the reading of a page that holds pageBytes.
var errPageFull = errors.New("novamysql: page full")

// stmt returns query prepared on the pool. database/sql prepares it on
// each connection the first time it runs there, so that later runs are one
// round trip each.
func (s *Store) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if st, ok := s.stmts[query]; ok {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	s.stmts[query] = st
	return st, nil
}

// prepared returns query prepared on the pool by [Store.stmt], or nil
// when it was not.
func (s *Store) prepared(query string) *sql.Stmt {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	return s.stmts[query]
}

// closeStmts closes the statements prepared by stmt.
func (s *Store) closeStmts() error {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	var errs []error
	for _, st := range s.stmts {
		errs = append(errs, st.Close())
	}
	s.stmts = nil
	return errors.Join(errs...)
}

// query runs one page's query and calls row for each row; the rows are
// closed, and the connection returned to the pool, before it returns.
func (s *Store) query(ctx context.Context, query string, args []any, row func(*sql.Rows) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.readMu.RLock()
	defer s.readMu.RUnlock()
	if s.readsClosed {
		return nova.ErrClosed
	}
	st, err := s.stmt(ctx, query)
	if err != nil {
		return s.queryError(ctx, err)
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return s.queryError(ctx, err)
	}
	full := false
	for rows.Next() {
		if err = row(rows); err != nil {
			full = err == errPageFull
			break
		}
	}
	if full {
		// The rest of the page is read past by Close: the next page
		// starts after the last event kept.
		err = nil
	} else if err == nil {
		err = rows.Err()
	}
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return s.queryError(ctx, err)
	}
	return nil
}

// queryError maps an error of a query interrupted by ctx to ctx.Err(),
// and marks one a later attempt may cure (a broken connection, a lock
// wait timeout) as transient, as appends do (see [markTransient]).
func (s *Store) queryError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return markTransient(err)
}

// ReadStream implements nova.Store. It fetches pages of up to
// Config.PageSize events, each in one short query on a pooled connection,
// returned before the events are yielded; a loop that stops early
// releases everything. An error (bad options, ctx done, store closed) is
// yielded once and ends the loop.
func (s *Store) ReadStream(ctx context.Context, stream string, opts nova.ReadStreamOptions) iter.Seq2[nova.Event, error] {
	return func(yield func(nova.Event, error) bool) {
		if err := paging.Check(opts.Validate(), nova.ValidateStream(stream)); err != nil {
			yield(nova.Event{}, err)
			return
		}
		backwards := opts.Direction == nova.Backwards
		next, ok := paging.StreamStart(opts, math.MaxUint64) // version of the next event wanted
		if !ok {
			return
		}
		query := s.q.forwards
		if backwards {
			query = s.q.backwards
		}
		left := opts.Limit
		p := s.newPager()
		buf := make([]nova.Event, 0, min(p.limit(left), 64)) // grows to a page if needed
		var sc scanner
		for {
			n := p.limit(left)
			buf = buf[:0]
			size, full := 0, false
			err := s.query(ctx, query, []any{stream, next, n}, func(rows *sql.Rows) error {
				buf = append(buf, nova.Event{Stream: stream})
				e := &buf[len(buf)-1]
				if err := sc.scan(rows, e, false); err != nil {
					return err
				}
				if full = p.add(&size, len(e.Data)); full {
					return errPageFull
				}
				return nil
			})
			if err != nil {
				yield(nova.Event{}, readError(fmt.Sprintf("read stream %q", stream), err))
				return
			}
			if !paging.Yield(buf, len(buf) < n && !full, &left, yield) {
				return
			}
			if next, ok = paging.StreamNext(buf[len(buf)-1].Version, backwards, math.MaxUint64); !ok {
				return
			}
		}
	}
}

// ReadAll implements nova.Store. It pages as ReadStream does, in position
// order, up to the last event committed when it started.
func (s *Store) ReadAll(ctx context.Context, opts nova.ReadAllOptions) iter.Seq2[nova.Event, error] {
	return func(yield func(nova.Event, error) bool) {
		if err := opts.Validate(); err != nil {
			yield(nova.Event{}, err)
			return
		}
		after := opts.From.Commit // positions here have Prepare 0
		// Read up to the head of the log as it is now, so that a read
		// ends even while writers keep appending.
		var head uint64
		if err := s.query(ctx, s.q.head, nil, func(rows *sql.Rows) error { return rows.Scan(&head) }); err != nil {
			yield(nova.Event{}, readError("read all", err))
			return
		}
		left := opts.Limit
		p := s.newPager()
		buf := make([]nova.Event, 0, min(p.limit(left), 64))
		var sc scanner
		holes := holeWaiter{s: s}
		for after < head {
			n := p.limit(left)
			var full, hole bool
			var err error
			buf, full, hole, err = s.readAllPage(ctx, &sc, &p, after, head, n, buf[:0])
			if err != nil {
				yield(nova.Event{}, readError("read all", err))
				return
			}
			if hole {
				// Every position up to head is taken by a committed
				// event, so the page ends at head unless cut by the hole.
				if !paging.Yield(buf, false, &left, yield) {
					return
				}
				if len(buf) > 0 {
					after = buf[len(buf)-1].Position.Commit
				}
				if err := holes.wait(ctx, after); err != nil {
					yield(nova.Event{}, err)
					return
				}
				continue
			}
			holes.done()
			if !paging.Yield(buf, len(buf) < n && !full, &left, yield) {
				return
			}
			after = buf[len(buf)-1].Position.Commit
		}
	}
}

// readAllPage appends up to n events after position after and up to
// position upto to buf. full reports a page cut short by its size.
//
// Positions are dense (see the package documentation), so the page must
// hold after+1, after+2, ... without a hole. A hole means an event that
// has committed, and so holds the counter's lock no longer, is not yet in
// the reader's snapshot while a later one is: InnoDB builds a read view
// by walking its table of active transactions without stopping commits,
// so on a busy server a view can miss one commit and include the next.
// The page is cut before the hole and hole is true; the caller waits a
// moment and reads again from there. Nothing is ever skipped.
func (s *Store) readAllPage(ctx context.Context, sc *scanner, p *pager, after, upto uint64, n int, buf []nova.Event) (_ []nova.Event, full, hole bool, _ error) {
	start, size := len(buf), 0
	err := s.query(ctx, s.q.all, []any{after, upto, n}, func(rows *sql.Rows) error {
		buf = append(buf, nova.Event{})
		e := &buf[len(buf)-1]
		if err := sc.scan(rows, e, true); err != nil {
			return err
		}
		if full = p.add(&size, len(e.Data)); full {
			return errPageFull
		}
		return nil
	})
	if err != nil {
		return buf, full, false, err
	}
	for i := start; i < len(buf); i++ {
		if buf[i].Position.Commit != after+uint64(i-start)+1 {
			return buf[:i], false, true, nil
		}
	}
	return buf, full, false, nil
}

// holeWaiter paces the re-reads of a reader that found a hole (see
// readAllPage): a millisecond at first, doubling up to PollInterval, and
// a warning while the same hole stays open for longer than holeWarnAfter,
// which a correct store never shows.
type holeWaiter struct {
	s     *Store
	at    uint64 // the position after which the hole is
	since time.Time
	pause time.Duration
	timer *time.Timer
}

// holeWarnAfter is how long a hole stays open before a reader warns.
const holeWarnAfter = 5 * time.Second

// wait sleeps before the next read of a hole after position after.
func (h *holeWaiter) wait(ctx context.Context, after uint64) error {
	now := time.Now()
	if h.since.IsZero() || h.at != after {
		h.at, h.since, h.pause = after, now, 0
	}
	h.pause = min(max(2*h.pause, time.Millisecond), h.s.cfg.PollInterval)
	if open := now.Sub(h.since); open > holeWarnAfter {
		h.s.cfg.Logger.Warn("novamysql: a position after the last one read stays missing; waiting for it, skipping nothing", "after", after, "for", open.Round(time.Second))
		h.since = now
	}
	if h.timer == nil {
		h.timer = time.NewTimer(h.pause)
	} else {
		h.timer.Reset(h.pause)
	}
	defer h.timer.Stop()
	return paging.Wait(ctx, h.timer, nil, h.s.closing)
}

// done resets h after a read that found no hole.
func (h *holeWaiter) done() { h.since = time.Time{} }

// Subscribe implements nova.Store. It reads pages from opts.From until it
// has caught up, then waits for the writer's signal after a commit, or
// PollInterval for appends of other processes, and reads again.
//
// Commit order is position order and positions are dense (see the
// package documentation), so reading what is committed after the last
// position delivered, and stopping at a position not yet visible, never
// skips an event. A query that fails because its connection broke or the server
// went away is retried, with a growing pause up to PollInterval, from the
// last position delivered: the subscription outlives a dropped connection
// or a restart of the server. It yields ctx.Err() when ctx is done,
// nova.ErrClosed when the store closes, and any other error once.
func (s *Store) Subscribe(ctx context.Context, opts nova.SubscribeOptions) iter.Seq2[nova.Event, error] {
	return func(yield func(nova.Event, error) bool) {
		after := opts.From.Commit
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		defer timer.Stop()
		wait := func(d time.Duration, wake <-chan struct{}) error {
			timer.Reset(d)
			defer timer.Stop()
			return paging.Wait(ctx, timer, wake, s.closing)
		}
		buf := make([]nova.Event, 0, 64)
		var sc scanner
		p := s.newPager()
		holes := holeWaiter{s: s}
		backoff := time.Duration(0)
		for {
			wake := s.wakeup() // before reading, so no commit is missed
			var err error
			var full, hole bool
			n := p.limit(0)
			buf, full, hole, err = s.readAllPage(ctx, &sc, &p, after, math.MaxUint64, n, buf[:0])
			if err != nil && isConnError(err) && ctx.Err() == nil && !s.closed.Load() {
				backoff = min(max(2*backoff, 10*time.Millisecond), s.cfg.PollInterval)
				s.cfg.Logger.Warn("novamysql: subscription read failed, retrying", "after", after, "in", backoff, "err", err)
				if err := wait(backoff, nil); err != nil {
					yield(nova.Event{}, err)
					return
				}
				continue
			}
			if err != nil {
				yield(nova.Event{}, readError("subscribe", err))
				return
			}
			backoff = 0
			for i := range buf {
				if !yield(buf[i], nil) {
					return
				}
			}
			if len(buf) > 0 {
				after = buf[len(buf)-1].Position.Commit
			}
			if hole {
				if err := holes.wait(ctx, after); err != nil {
					yield(nova.Event{}, err)
					return
				}
				continue
			}
			holes.done()
			if len(buf) == n || full {
				continue
			}
			if err := wait(s.cfg.PollInterval, wake); err != nil {
				yield(nova.Event{}, err)
				return
			}
		}
	}
}

// Streams implements nova.Store, paging by stream name in byte order.
func (s *Store) Streams(ctx context.Context, opts nova.StreamsOptions) iter.Seq2[nova.StreamInfo, error] {
	return func(yield func(nova.StreamInfo, error) bool) {
		if err := opts.Validate(); err != nil {
			yield(nova.StreamInfo{}, err)
			return
		}
		after := opts.After
		left := opts.Limit
		p := s.newPager()
		buf := make([]nova.StreamInfo, 0, min(p.limit(left), 64))
		for {
			n := p.limit(left)
			buf = buf[:0]
			err := s.query(ctx, s.q.streams, []any{after, n}, func(rows *sql.Rows) error {
				var name sql.RawBytes
				var info nova.StreamInfo
				if err := rows.Scan(&name, &info.Version); err != nil {
					return err
				}
				info.Stream = string(name)
				buf = append(buf, info)
				p.add(new(int), len(name))
				return nil
			})
			if err != nil {
				yield(nova.StreamInfo{}, readError("list streams", err))
				return
			}
			if !paging.Yield(buf, len(buf) < n, &left, yield) {
				return
			}
			after = buf[len(buf)-1].Stream
		}
	}
}

// scanner reads event rows, sharing the strings that repeat from row to
// row (types, streams) instead of allocating them again.
type scanner struct {
	pos, version                            uint64
	id, typ, data, meta, corr, caus, stream sql.RawBytes
	at                                      timeValue
	dest                                    []any
	types                                   map[string]string
	prevStream                              string
}

// scan reads the columns of eventColumns (and stream, when withStream) of
// the current row into e.
func (sc *scanner) scan(rows *sql.Rows, e *nova.Event, withStream bool) error {
	if sc.dest == nil {
		sc.dest = []any{&sc.pos, &sc.id, &sc.typ, &sc.version, &sc.data, &sc.meta, &sc.corr, &sc.caus, &sc.at, &sc.stream}
	}
	dest := sc.dest[:9]
	if withStream {
		dest = sc.dest
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	e.Position = nova.Position{Commit: sc.pos}
	e.Version = sc.version
	e.Data = nil
	if len(sc.data) > 0 {
		e.Data = bytes.Clone(sc.data)
	}
	e.ID = string(sc.id)
	e.Type = sc.intern(sc.typ)
	e.Metadata = nova.Metadata{}
	if len(sc.corr) > 0 {
		e.Metadata.CorrelationID = string(sc.corr)
	}
	if len(sc.caus) > 0 {
		e.Metadata.CausationID = string(sc.caus)
	}
	if err := decodeMetadata(sc.meta, &e.Metadata); err != nil {
		return fmt.Errorf("novamysql: decode metadata of event at position %d: %w", e.Position.Commit, err)
	}
	e.RecordedAt = sc.at.t
	if withStream {
		if string(sc.stream) != sc.prevStream {
			sc.prevStream = string(sc.stream)
		}
		e.Stream = sc.prevStream
	}
	return nil
}

// intern returns b as a string, shared with earlier equal names.
func (sc *scanner) intern(b []byte) string {
	if s, ok := sc.types[string(b)]; ok {
		return s
	}
	s := string(b)
	if sc.types == nil {
		sc.types = make(map[string]string)
	}
	if len(sc.types) < 1024 {
		sc.types[s] = s
	}
	return s
}

// timeValue scans a DATETIME column written in UTC, whether the
// connection parses times (parseTime=true, in any loc) or not.
type timeValue struct{ t time.Time }

// Scan implements sql.Scanner.
func (v *timeValue) Scan(src any) error {
	switch x := src.(type) {
	case time.Time:
		// The wall clock is what was stored, in UTC.
		v.t = time.Date(x.Year(), x.Month(), x.Day(), x.Hour(), x.Minute(), x.Second(), x.Nanosecond(), time.UTC)
	case []byte:
		return v.parse(string(x))
	case string:
		return v.parse(x)
	case nil:
		v.t = time.Time{}
	default:
		return fmt.Errorf("novamysql: cannot read %T as a time", src)
	}
	return nil
}

func (v *timeValue) parse(s string) error {
	// The common case, as the store writes it: YYYY-MM-DD HH:MM:SS.ffffff.
	if len(s) == 26 && s[4] == '-' && s[7] == '-' && s[10] == ' ' && s[13] == ':' && s[16] == ':' && s[19] == '.' {
		n := func(i, j int) int {
			v := 0
			for _, c := range []byte(s[i:j]) {
				if c < '0' || c > '9' {
					return -1
				}
				v = v*10 + int(c-'0')
			}
			return v
		}
		y, mo, d, h, mi, sec, us := n(0, 4), n(5, 7), n(8, 10), n(11, 13), n(14, 16), n(17, 19), n(20, 26)
		if y >= 0 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h >= 0 && h < 24 && mi >= 0 && mi < 60 && sec >= 0 && sec < 60 && us >= 0 {
			v.t = time.Date(y, time.Month(mo), d, h, mi, sec, us*1000, time.UTC)
			return nil
		}
	}
	t, err := time.ParseInLocation("2006-01-02 15:04:05.999999999", s, time.UTC)
	if err != nil {
		return fmt.Errorf("novamysql: read time %q: %w", s, err)
	}
	v.t = t
	return nil
}

// readError wraps a read's error with the package name (see paging.Error).
func readError(what string, err error) error { return paging.Error("novamysql", what, err) }
