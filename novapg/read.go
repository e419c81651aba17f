package novapg

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/paging"
	"github.com/nova-go/nova/internal/uuidx"
)

// pageLimit returns the size of the next page of a read that wants want
// more rows (0: any number).
func (s *Store) pageLimit(want int) int {
	if want > 0 && want < s.cfg.PageSize {
		return want
	}
	return s.cfg.PageSize
}

// ReadStream implements nova.Store. It fetches pages of Config.PageSize
// events by (stream, version), each in a query of its own; a loop that
// stops early holds nothing. Versions of one stream commit in order (each
// append updates the stream's row), so a stream read needs no horizon. An
// error (bad options, ctx done, store closed) is yielded once and ends the
// loop.
func (s *Store) ReadStream(ctx context.Context, stream string, opts nova.ReadStreamOptions) iter.Seq2[nova.Event, error] {
	return func(yield func(nova.Event, error) bool) {
		if err := paging.Check(opts.Validate(), nova.ValidateStream(stream)); err != nil {
			yield(nova.Event{}, err)
			return
		}
		backwards := opts.Direction == nova.Backwards
		start, ok := paging.StreamStart(opts, math.MaxInt64)
		if !ok {
			return
		}
		next := int64(start) // version of the next event wanted
		sql := s.sql.forwards
		if backwards {
			sql = s.sql.backwards
		}
		left := opts.Limit
		var sc scanner
		for {
			n := s.pageLimit(left)
			buf, err := s.page(ctx, &sc, n, func(scan func(pgx.Rows) error) error {
				return s.queryRows(ctx, scan, sql, stream, next, n)
			})
			if err != nil {
				yield(nova.Event{}, readError(fmt.Sprintf("read stream %q", stream), err))
				return
			}
			if !paging.Yield(buf, len(buf) < n, &left, yield) {
				return
			}
			v, ok := paging.StreamNext(buf[len(buf)-1].Version, backwards, math.MaxInt64)
			if !ok {
				return
			}
			next = int64(v)
		}
	}
}

// after turns an exclusive position into the (label, seq) pair to read
// after. ok is false when nothing can follow p.
func after(p nova.Position) (label, seq int64, ok bool) {
	switch {
	case p.Commit > math.MaxInt64:
		return 0, 0, false
	case p.Prepare <= math.MaxInt64:
		return int64(p.Commit), int64(p.Prepare), true
	case p.Commit == math.MaxInt64:
		return 0, 0, false
	}
	// No sequence is that large: everything of label p.Commit is before
	// p, and seq > 0 takes all of the next.
	return int64(p.Commit) + 1, 0, true
}

// ReadAll implements nova.Store. Its first round trip takes the horizon
// (see the package documentation). Every event below it has committed or
// never will, so the events it reads, in (label, seq) order and in pages,
// are a gap-free prefix of the log that no later commit can extend below;
// events at or past the horizon are left for the next read. A read
// therefore ends even while writers keep appending.
//
// While an append of this schema that started before this store's last
// one is still running, the horizon is below that last append. ReadAll
// then waits for such appends to end, polling, up to Config.PollInterval
// or a second, whichever is less, so that a process reads its own
// appends; past that it reads below the horizon as it is, and the rest
// comes with the next read.
func (s *Store) ReadAll(ctx context.Context, opts nova.ReadAllOptions) iter.Seq2[nova.Event, error] {
	return func(yield func(nova.Event, error) bool) {
		if err := opts.Validate(); err != nil {
			yield(nova.Event{}, err)
			return
		}
		label, seq, ok := after(opts.From)
		if !ok {
			return
		}
		horizon, err := s.horizon(ctx)
		if err != nil {
			yield(nova.Event{}, readError("read all", err))
			return
		}
		left := opts.Limit
		var sc scanner
		for {
			if label >= horizon {
				return
			}
			n := s.pageLimit(left)
			buf, err := s.page(ctx, &sc, n, func(scan func(pgx.Rows) error) error {
				return s.queryRows(ctx, scan, s.sql.all, label, seq, horizon, n)
			})
			if err != nil {
				yield(nova.Event{}, readError("read all", err))
				return
			}
			if !paging.Yield(buf, len(buf) < n, &left, yield) {
				return
			}
			last := buf[len(buf)-1].Position
			label, seq = int64(last.Commit), int64(last.Prepare)
		}
	}
}

// maxReadWait bounds how long ReadAll waits for transactions older than
// the store's last append.
const maxReadWait = time.Second

// horizon returns the label below which the log is complete, read in
// two statements of one round trip: the clock's next value X, then
// H = min(X, the smallest value a running append of this schema
// guards). When this store's last append is not below it yet (an append
// that started before it has not ended), it waits for that append,
// polling, for up to Config.PollInterval or a second, whichever is less,
// so that a process reads its own appends; past that it returns the
// horizon as it is.
func (s *Store) horizon(ctx context.Context) (int64, error) {
	var h int64
	deadline := time.Now().Add(min(s.cfg.PollInterval, maxReadWait))
	pause := 500 * time.Microsecond
	for {
		err := s.retry(ctx, func() error {
			if err := s.checkOpen(); err != nil {
				return err
			}
			b := &pgx.Batch{}
			b.Queue(s.sql.clock)
			b.Queue(s.sql.horizon).QueryRow(func(row pgx.Row) error { return row.Scan(&h) })
			return s.pool.SendBatch(ctx, b).Close()
		})
		if err != nil || uint64(h) > s.lastLabel.Load() || time.Now().After(deadline) {
			return h, err
		}
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-s.closing:
			return 0, nova.ErrClosed
		}
		pause = min(2*pause, 20*time.Millisecond)
	}
}

// maxHeldBack is the longest pause of a subscription whose next events
// are held back by a running append.
const maxHeldBack = 200 * time.Millisecond

// Subscribe implements nova.Store. It reads pages from opts.From as
// ReadAll does, with the horizon taken afresh for each page, in the same
// round trip, until it has caught up; then it waits for a wake-up (an
// append of this store, or a notification from another process through
// the store's listener) or for Config.PollInterval, and reads again. When
// events past its position are at or past the horizon (held back by an
// append still running, or not committed yet), it looks again after a
// short, growing pause instead: the append may be in a caller's
// transaction, which sends no notification.
//
// Queries that fail on a broken connection are retried, so a subscription
// rides out a server restart or terminated sessions and resumes from the
// last event it yielded. It yields ctx.Err() when ctx is done and
// nova.ErrClosed when the store closes.
func (s *Store) Subscribe(ctx context.Context, opts nova.SubscribeOptions) iter.Seq2[nova.Event, error] {
	return func(yield func(nova.Event, error) bool) {
		label, seq, ok := after(opts.From)
		if !ok {
			select {
			case <-ctx.Done():
				yield(nova.Event{}, ctx.Err())
			case <-s.closing:
				yield(nova.Event{}, nova.ErrClosed)
			}
			return
		}
		timer := time.NewTimer(time.Hour)
		defer timer.Stop()
		heldBack := time.Duration(0) // the pause while events are held back
		var sc scanner
		n := s.cfg.PageSize
		for {
			wake := s.wakeup() // before reading, so no wake-up is missed
			var pending bool
			// One round trip: the horizon, in two statements, then the
			// page below it and whether events past the position are at
			// or past it, in later statements, whose snapshots are taken
			// after the horizon was: READ COMMITTED, whatever the
			// server's default.
			buf, err := s.page(ctx, &sc, n, func(scan func(pgx.Rows) error) error {
				pending = false
				b := &pgx.Batch{}
				b.Queue(`BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY`)
				b.Queue(s.sql.clock)
				b.Queue(s.sql.horizon)
				b.Queue(s.sql.live, label, seq, n).Query(scan)
				b.Queue(s.sql.pending, label, seq).QueryRow(func(row pgx.Row) error { return row.Scan(&pending) })
				b.Queue(`COMMIT`)
				return s.pool.SendBatch(ctx, b).Close()
			})
			if err != nil {
				yield(nova.Event{}, readError("subscribe", err))
				return
			}
			for i := range buf {
				if !yield(buf[i], nil) {
					return
				}
			}
			if len(buf) > 0 {
				last := buf[len(buf)-1].Position
				label, seq = int64(last.Commit), int64(last.Prepare)
			}
			if len(buf) == n {
				continue
			}
			wait := s.cfg.PollInterval
			if pending && len(buf) == 0 {
				heldBack = min(max(2*heldBack, time.Millisecond), maxHeldBack, s.cfg.PollInterval)
				wait = heldBack
			} else if !pending {
				heldBack = 0
			}
			if pending && len(buf) > 0 {
				continue
			}
			timer.Reset(wait)
			if err := paging.Wait(ctx, timer, wake, s.closing); err != nil {
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
		from := opts.After
		left := opts.Limit
		for {
			n := s.pageLimit(left)
			var buf []nova.StreamInfo
			err := s.retry(ctx, func() error {
				if err := s.checkOpen(); err != nil {
					return err
				}
				buf = buf[:0]
				rows, err := s.pool.Query(ctx, s.sql.streams, from, n)
				if err != nil {
					return err
				}
				var info nova.StreamInfo
				_, err = pgx.ForEachRow(rows, []any{&info.Stream, &info.Version}, func() error {
					buf = append(buf, info)
					return nil
				})
				return err
			})
			if err != nil {
				yield(nova.StreamInfo{}, readError("list streams", err))
				return
			}
			if !paging.Yield(buf, len(buf) < n, &left, yield) {
				return
			}
			from = buf[len(buf)-1].Stream
		}
	}
}

// page runs query, retrying it on a broken connection, and returns its
// events. query runs the statements and hands the event rows to scan.
func (s *Store) page(ctx context.Context, sc *scanner, n int, query func(scan func(pgx.Rows) error) error) ([]nova.Event, error) {
	var buf []nova.Event
	err := s.retry(ctx, func() error {
		if err := s.checkOpen(); err != nil {
			return err
		}
		buf = make([]nova.Event, 0, min(n, 64))
		return query(func(rows pgx.Rows) error {
			defer rows.Close()
			for rows.Next() {
				buf = append(buf, nova.Event{})
				if err := sc.scan(rows, &buf[len(buf)-1]); err != nil {
					return err
				}
			}
			return rows.Err()
		})
	})
	return buf, err
}

// queryRows runs one query and hands its rows to scan.
func (s *Store) queryRows(ctx context.Context, scan func(pgx.Rows) error, sql string, args ...any) error {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	return scan(rows)
}

// scanner reads event rows (eventColumns), sharing the strings that
// repeat from row to row.
type scanner struct {
	seq, version int64
	label        int64
	id           pgtype.UUID
	md           []byte
	corr, caus   pgtype.Text
	recorded     time.Time
	stream, typ  string
}

func (sc *scanner) scan(rows pgx.Rows, e *nova.Event) error {
	sc.md = nil
	if err := rows.Scan(&sc.seq, &sc.label, &sc.stream, &sc.version, &sc.id, &sc.typ, &e.Data, &sc.md, &sc.corr, &sc.caus, &sc.recorded); err != nil {
		return err
	}
	e.Position = nova.Position{Commit: uint64(sc.label), Prepare: uint64(sc.seq)}
	e.Stream = sc.stream
	e.Version = uint64(sc.version)
	e.ID = uuidx.Format(sc.id.Bytes)
	e.Type = sc.typ
	if e.Data == nil {
		e.Data = []byte{}
	}
	e.Metadata = nova.Metadata{CorrelationID: sc.corr.String, CausationID: sc.caus.String}
	if len(sc.md) > 0 {
		var md storedMetadata
		if err := json.Unmarshal(sc.md, &md); err != nil {
			return fmt.Errorf("novapg: decode metadata of event %s: %w", e.ID, err)
		}
		e.Metadata.Schema, e.Metadata.Extra = md.Schema, md.Extra
	}
	e.RecordedAt = sc.recorded.UTC()
	return nil
}

// readError wraps a read's error with the package name (see paging.Error).
func readError(what string, err error) error { return paging.Error("novapg", what, err) }
