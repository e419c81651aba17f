package novapg

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"iter"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/paging"
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
		if err := paging.Check(ctx, opts.Validate(), nova.ValidateStream(stream)); err != nil {
			yield(nova.Event{}, err)
			return
		}
		backwards := opts.Direction == nova.Backwards
		var next int64 // version of the next event wanted
		switch {
		case opts.From > math.MaxInt64:
			if !backwards {
				return
			}
			next = math.MaxInt64
		case opts.From == 0 && backwards:
			next = math.MaxInt64
		case opts.From == 0:
			next = 1
		default:
			next = int64(opts.From)
		}
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
			last := int64(buf[len(buf)-1].Version)
			if backwards {
				if last <= 1 {
					return
				}
				next = last - 1
			} else {
				next = last + 1
			}
		}
	}
}

// after turns an exclusive position into the (xid, seq) pair to read
// after. ok is false when nothing can follow p.
func after(p nova.Position) (xid uint64, seq int64, ok bool) {
	if p.Prepare <= math.MaxInt64 {
		return p.Commit, int64(p.Prepare), true
	}
	// No sequence is that large: everything of transaction p.Commit is
	// before p, and seq > 0 takes all of the next.
	if p.Commit == math.MaxUint64 {
		return 0, 0, false
	}
	return p.Commit + 1, 0, true
}

// ReadAll implements nova.Store. Its first query takes the horizon: the
// oldest transaction still running (pg_snapshot_xmin). Every event below
// it is committed or never will be, so the events it reads, in (xid, seq)
// order and in pages, are a gap-free prefix of the log that no later
// commit can extend below; events of transactions at or past the horizon
// are left for the next read. A read therefore ends even while writers
// keep appending.
//
// While a transaction older than this store's last append is still
// running, anywhere on the server, the horizon is below that append.
// ReadAll then waits for such transactions to end, polling, up to
// Config.PollInterval or a second, whichever is less, so that a process
// reads its own appends; past that it reads below the horizon as it is,
// and the rest comes with the next read.
func (s *Store) ReadAll(ctx context.Context, opts nova.ReadAllOptions) iter.Seq2[nova.Event, error] {
	return func(yield func(nova.Event, error) bool) {
		if err := paging.Check(ctx, opts.Validate()); err != nil {
			yield(nova.Event{}, err)
			return
		}
		xid, seq, ok := after(opts.From)
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
			if xid >= horizon {
				return
			}
			n := s.pageLimit(left)
			buf, err := s.page(ctx, &sc, n, func(scan func(pgx.Rows) error) error {
				return s.queryRows(ctx, scan, s.sql.all, xid, seq, horizon, n)
			})
			if err != nil {
				yield(nova.Event{}, readError("read all", err))
				return
			}
			if !paging.Yield(buf, len(buf) < n, &left, yield) {
				return
			}
			last := buf[len(buf)-1].Position
			xid, seq = last.Commit, int64(last.Prepare)
		}
	}
}

// maxReadWait bounds how long ReadAll waits for transactions older than
// the store's last append.
const maxReadWait = time.Second

// horizon returns the position below which the log is complete: the
// oldest transaction still running. When this store's last append is not
// below it yet (an older transaction, of any database of the server, has
// not ended), it waits for that transaction, polling, for up to
// Config.PollInterval or a second, whichever is less, so that a process
// reads its own appends; past that it returns the horizon as it is.
func (s *Store) horizon(ctx context.Context) (uint64, error) {
	var h uint64
	deadline := time.Now().Add(min(s.cfg.PollInterval, maxReadWait))
	pause := 500 * time.Microsecond
	for {
		err := s.retry(ctx, func() error {
			if err := s.checkOpen(); err != nil {
				return err
			}
			return s.pool.QueryRow(ctx, s.sql.horizon).Scan(&h)
		})
		if err != nil || h > s.lastXid.Load() || time.Now().After(deadline) {
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
// are held back by an older transaction.
const maxHeldBack = 200 * time.Millisecond

// Subscribe implements nova.Store. It reads pages from opts.From as
// ReadAll does, with the horizon taken afresh by each query, until it has
// caught up; then it waits for a wake-up (an append of this store, or a
// notification from another process through the store's listener) or for
// Config.PollInterval, and reads again. When events past its position are
// committed but held back by an older transaction still running, it looks
// again after a short, growing pause instead: that transaction may belong
// to no store and send no notification.
//
// Queries that fail on a broken connection are retried, so a subscription
// rides out a server restart or terminated sessions and resumes from the
// last event it yielded. It yields ctx.Err() when ctx is done and
// nova.ErrClosed when the store closes.
func (s *Store) Subscribe(ctx context.Context, opts nova.SubscribeOptions) iter.Seq2[nova.Event, error] {
	return func(yield func(nova.Event, error) bool) {
		if err := paging.Check(ctx); err != nil {
			yield(nova.Event{}, err)
			return
		}
		xid, seq, ok := after(opts.From)
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
			// One round trip: whether events past the position are held
			// back, then the page below the horizon.
			buf, err := s.page(ctx, &sc, n, func(scan func(pgx.Rows) error) error {
				pending = false
				b := &pgx.Batch{}
				b.Queue(s.sql.pending, xid, seq).QueryRow(func(row pgx.Row) error { return row.Scan(&pending) })
				b.Queue(s.sql.live, xid, seq, n).Query(scan)
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
				xid, seq = last.Commit, int64(last.Prepare)
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
		if err := paging.Check(ctx, opts.Validate()); err != nil {
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
	xid          uint64
	id           pgtype.UUID
	md           []byte
	corr, caus   pgtype.Text
	recorded     time.Time
	stream, typ  string
}

func (sc *scanner) scan(rows pgx.Rows, e *nova.Event) error {
	sc.md = nil
	if err := rows.Scan(&sc.seq, &sc.xid, &sc.stream, &sc.version, &sc.id, &sc.typ, &e.Data, &sc.md, &sc.corr, &sc.caus, &sc.recorded); err != nil {
		return err
	}
	e.Position = nova.Position{Commit: sc.xid, Prepare: uint64(sc.seq)}
	e.Stream = sc.stream
	e.Version = uint64(sc.version)
	e.ID = formatUUID(sc.id.Bytes)
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

// formatUUID returns u in canonical lower-case form.
func formatUUID(u [16]byte) string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}

// readError wraps a read's error with the package name (see paging.Error).
func readError(what string, err error) error { return paging.Error("novapg", what, err) }
