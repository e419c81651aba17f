package novasqlite

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/paging"
)

// pageLimit returns the size of the next page of a read that wants want
// more rows (0: any number).
func pageLimit(want int) int {
	if want > 0 && want < pageSize {
		return want
	}
	return pageSize
}

// ReadStream implements nova.Store. It fetches pages of up to 512 events,
// each in a short query; a loop that stops early releases everything. An
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
		left := opts.Limit
		buf := make([]nova.Event, 0, min(pageLimit(left), 64)) // grows to a page if needed
		for {
			n := pageLimit(left)
			buf = buf[:0]
			err := s.query(ctx, func(r *reader) error {
				st := r.forwards
				if backwards {
					st = r.backwards
				}
				if err := errors.Join(st.BindText(1, stream), st.BindInt64(2, next), st.BindInt64(3, int64(n))); err != nil {
					return err
				}
				return rows(st, func() error {
					buf = append(buf, nova.Event{Stream: stream})
					return r.scan(st, &buf[len(buf)-1])
				})
			})
			if err != nil {
				yield(nova.Event{}, readError("read stream "+fmt.Sprintf("%q", stream), err))
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

// ReadAll implements nova.Store. It pages as ReadStream does, in position
// order, up to the last event committed when it read its first page.
func (s *Store) ReadAll(ctx context.Context, opts nova.ReadAllOptions) iter.Seq2[nova.Event, error] {
	return func(yield func(nova.Event, error) bool) {
		if err := opts.Validate(); err != nil {
			yield(nova.Event{}, err)
			return
		}
		after, ok := positionAfter(opts.From)
		if !ok {
			return
		}
		// Read up to the head of the log as it is at the first page, so
		// that a read ends even while writers keep appending.
		head := int64(-1)
		left := opts.Limit
		buf := make([]nova.Event, 0, min(pageLimit(left), 64)) // grows to a page if needed
		for {
			n := pageLimit(left)
			buf = buf[:0]
			err := s.query(ctx, func(r *reader) error {
				if head < 0 {
					if err := rows(r.head, func() error {
						head = r.head.ColumnInt64(0)
						return nil
					}); err != nil {
						return err
					}
				}
				var err error
				buf, err = readAllRows(r, after, head, n, buf)
				return err
			})
			if err != nil {
				yield(nova.Event{}, readError("read all", err))
				return
			}
			if !paging.Yield(buf, len(buf) < n, &left, yield) {
				return
			}
			if after = int64(buf[len(buf)-1].Position.Commit); after >= head {
				return
			}
		}
	}
}

// positionAfter turns an exclusive ReadAll position into the position
// column value to read after. Positions here have Prepare 0, so
// (c, p) excludes everything up to commit c. ok is false when nothing can
// follow.
func positionAfter(p nova.Position) (after int64, ok bool) {
	if p.Commit >= math.MaxInt64 {
		return 0, false
	}
	return int64(p.Commit), true
}

// readAllPage appends up to n events after position after and up to
// position upto to buf.
func (s *Store) readAllPage(ctx context.Context, after, upto int64, n int, buf []nova.Event) ([]nova.Event, error) {
	err := s.query(ctx, func(r *reader) error {
		var err error
		buf, err = readAllRows(r, after, upto, n, buf)
		return err
	})
	return buf, err
}

// readAllRows is readAllPage on a lent reader.
func readAllRows(r *reader, after, upto int64, n int, buf []nova.Event) ([]nova.Event, error) {
	st := r.all
	if err := errors.Join(st.BindInt64(1, after), st.BindInt64(2, upto), st.BindInt64(3, int64(n))); err != nil {
		return buf, err
	}
	prev := ""
	err := rows(st, func() error {
		buf = append(buf, nova.Event{})
		e := &buf[len(buf)-1]
		if err := r.scan(st, e); err != nil {
			return err
		}
		// Consecutive events often share a stream: reuse its string.
		if raw := st.ColumnRawText(7); string(raw) == prev {
			e.Stream = prev
		} else {
			prev = string(raw)
			e.Stream = prev
		}
		return nil
	})
	return buf, err
}

// Subscribe implements nova.Store. It reads pages from opts.From until it
// has caught up, then waits for the signal raised after a commit, or
// PollInterval for appends of other processes, and reads again. It yields
// ctx.Err() when ctx is done and nova.ErrClosed when the store closes.
func (s *Store) Subscribe(ctx context.Context, opts nova.SubscribeOptions) iter.Seq2[nova.Event, error] {
	return func(yield func(nova.Event, error) bool) {
		after, ok := positionAfter(opts.From)
		if !ok {
			<-ctx.Done()
			yield(nova.Event{}, ctx.Err())
			return
		}
		var timer *time.Timer
		defer func() {
			if timer != nil {
				timer.Stop()
			}
		}()
		buf := make([]nova.Event, 0, 64)
		for {
			wake := s.wakeup() // before reading, so no commit is missed
			var err error
			buf, err = s.readAllPage(ctx, after, math.MaxInt64, pageSize, buf[:0])
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
				after = int64(buf[len(buf)-1].Position.Commit)
			}
			if len(buf) == pageSize {
				continue
			}
			if timer == nil {
				timer = time.NewTimer(s.cfg.PollInterval)
			} else {
				timer.Reset(s.cfg.PollInterval)
			}
			if err := paging.Wait(ctx, timer, wake, s.closing); err != nil {
				yield(nova.Event{}, err)
				return
			}
		}
	}
}

// Streams implements nova.Store, paging by stream name.
func (s *Store) Streams(ctx context.Context, opts nova.StreamsOptions) iter.Seq2[nova.StreamInfo, error] {
	return func(yield func(nova.StreamInfo, error) bool) {
		if err := opts.Validate(); err != nil {
			yield(nova.StreamInfo{}, err)
			return
		}
		after := opts.After
		left := opts.Limit
		buf := make([]nova.StreamInfo, 0, min(pageLimit(left), 64))
		for {
			n := pageLimit(left)
			buf = buf[:0]
			err := s.query(ctx, func(r *reader) error {
				st := r.streams
				if err := errors.Join(st.BindText(1, after), st.BindInt64(2, int64(n))); err != nil {
					return err
				}
				return rows(st, func() error {
					buf = append(buf, nova.StreamInfo{Stream: st.ColumnText(0), Version: uint64(st.ColumnInt64(1))})
					return nil
				})
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

// readError wraps a read's error with the package name (see paging.Error).
func readError(what string, err error) error { return paging.Error("novasqlite", what, err) }
