package novamem

import (
	"context"
	"fmt"
	"iter"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/aggregate"
	"github.com/nova-go/nova/internal/retry"
	"github.com/nova-go/nova/internal/validate"
)

var (
	_ nova.Store              = (*Store)(nil)
	_ aggregate.SnapshotStore = (*Store)(nil)
)

// DefaultPageSize is the default of [Config.PageSize].
const DefaultPageSize = 256

// Config configures a [Store]. The zero value means defaults.
type Config struct {
	// PageSize is how many events (or streams) a read copies under the
	// store's lock at a time before yielding them. Default
	// [DefaultPageSize].
	PageSize int
	// NowFunc returns the time recorded in Event.RecordedAt and
	// Snapshot.RecordedAt; it is converted to UTC. Default time.Now.
	NowFunc func() time.Time
}

// validate reports the first bad field; it changes nothing.
func (c Config) validate() error {
	if c.PageSize < 0 {
		return validate.InvalidFieldf("novamem", "Config.PageSize", "%d, want 0 (default %d) or more", c.PageSize, DefaultPageSize)
	}
	return nil
}

// withDefaults returns c with each zero field set to its default.
func (c Config) withDefaults() Config {
	if c.PageSize == 0 {
		c.PageSize = DefaultPageSize
	}
	if c.NowFunc == nil {
		c.NowFunc = time.Now
	}
	return c
}

// Store is an in-memory event store and snapshot store. It is safe for
// concurrent use. The zero value is not usable; call [New].
type Store struct {
	pageSize int
	now      func() time.Time

	mu      sync.RWMutex
	closed  bool
	log     []nova.Event     // log[i] has Position{Commit: i+1}
	streams map[string][]int // stream -> indexes into log, in version order
	names   []string         // stream names, sorted
	ids     map[string]int   // event ID -> index into log
	changed chan struct{}    // closed and replaced after every append and on Close
	snaps   map[string]aggregate.Snapshot
}

// New returns an empty store. The zero cfg means the defaults; an invalid
// cfg returns an error matching [nova.ErrInvalid] that names the field.
func New(cfg Config) (*Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := cfg.withDefaults()
	return &Store{
		pageSize: c.PageSize,
		now:      c.NowFunc,
		streams:  make(map[string][]int),
		ids:      make(map[string]int),
		changed:  make(chan struct{}),
		snaps:    make(map[string]aggregate.Snapshot),
	}, nil
}

// Append adds events to the end of stream, all or none; see
// [nova.Store.Append].
func (s *Store) Append(ctx context.Context, stream string, expected nova.ExpectedVersion, events ...nova.EventData) (nova.AppendResult, error) {
	events, err := validate.Append(stream, events)
	if err != nil {
		return nova.AppendResult{}, nova.Invalidf("novamem", "append: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nova.AppendResult{}, fmt.Errorf("novamem: append to %q: %w", stream, err)
	}
	// Copy what the caller may change later before taking the lock.
	now := s.now().UTC()
	recs := make([]nova.Event, len(events))
	for i, d := range events {
		recs[i] = nova.Event{
			ID:         d.ID,
			Stream:     stream,
			Type:       d.Type,
			Data:       d.Data,
			Metadata:   d.Metadata,
			RecordedAt: now,
		}
	}
	recs = clonePage(recs)

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nova.AppendResult{}, fmt.Errorf("novamem: append to %q: %w", stream, nova.ErrClosed)
	}

	// IDs first: a retry of an append that succeeded must succeed again
	// even though the stream has moved on since.
	var found map[string]nova.Event
	for _, d := range events {
		if i, ok := s.ids[d.ID]; ok {
			if found == nil {
				found = make(map[string]nova.Event, len(events))
			}
			found[d.ID] = s.log[i]
		}
	}
	if found != nil {
		res, err := retry.Check(stream, expected, events, found)
		if err != nil {
			return nova.AppendResult{}, fmt.Errorf("novamem: append to %q: %w", stream, err)
		}
		return res, nil
	}

	idx := s.streams[stream]
	current := uint64(len(idx))
	if !expected.Check(current) {
		return nova.AppendResult{}, fmt.Errorf("novamem: append: %w",
			&nova.ConcurrencyError{Stream: stream, Expected: expected, Actual: current})
	}
	if idx == nil {
		i, _ := slices.BinarySearch(s.names, stream)
		s.names = slices.Insert(s.names, i, stream)
	}
	for i, e := range recs {
		n := len(s.log)
		e.Version = current + uint64(i) + 1
		e.Position = nova.Position{Commit: uint64(n) + 1}
		s.log = append(s.log, e)
		idx = append(idx, n)
		s.ids[e.ID] = n
	}
	s.streams[stream] = idx
	s.wakeLocked()
	return nova.AppendResult{
		FirstVersion: current + 1,
		LastVersion:  current + uint64(len(events)),
		Position:     nova.Position{Commit: uint64(len(s.log))},
	}, nil
}

// wakeLocked wakes every waiting subscriber. s.mu must be held for writing.
func (s *Store) wakeLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// ReadStream reads one stream's events in version order; see
// [nova.Store.ReadStream]. Stopping the loop early holds nothing.
func (s *Store) ReadStream(ctx context.Context, stream string, opts nova.ReadStreamOptions) iter.Seq2[nova.Event, error] {
	return func(yield func(nova.Event, error) bool) {
		if err := opts.Validate(); err != nil {
			yield(nova.Event{}, nova.Invalidf("novamem", "read stream: %w", err))
			return
		}
		if err := nova.ValidateStream(stream); err != nil {
			yield(nova.Event{}, nova.Invalidf("novamem", "read stream: %w", err))
			return
		}
		back := opts.Direction == nova.Backwards
		next := opts.From // version of the next event to return; 0 means "from the start/end"
		left := opts.Limit
		for {
			page, err := s.streamPage(ctx, stream, back, next, s.pageFor(left))
			if err != nil {
				yield(nova.Event{}, err)
				return
			}
			for _, e := range page {
				if err := ctx.Err(); err != nil {
					yield(nova.Event{}, fmt.Errorf("novamem: read stream %q: %w", stream, err))
					return
				}
				if !yield(e, nil) {
					return
				}
			}
			if len(page) < s.pageSize {
				return
			}
			last := page[len(page)-1].Version
			if back {
				if last == 1 {
					return
				}
				next = last - 1
			} else {
				next = last + 1
			}
			if opts.Limit > 0 {
				if left -= len(page); left == 0 {
					return
				}
			}
		}
	}
}

// streamPage copies at most n events of stream starting at version from
// (0: the start forwards, the end backwards).
func (s *Store) streamPage(ctx context.Context, stream string, back bool, from uint64, n int) ([]nova.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("novamem: read stream %q: %w", stream, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, fmt.Errorf("novamem: read stream %q: %w", stream, nova.ErrClosed)
	}
	idx := s.streams[stream]
	var page []nova.Event
	if back {
		hi := uint64(len(idx)) // versions hi..1
		if from != 0 && from < hi {
			hi = from
		}
		page = make([]nova.Event, 0, min(uint64(n), hi))
		for v := hi; v >= 1 && len(page) < n; v-- {
			page = append(page, s.log[idx[v-1]])
		}
		return clonePage(page), nil
	}
	lo := max(from, 1)
	if lo <= uint64(len(idx)) {
		page = make([]nova.Event, 0, min(uint64(n), uint64(len(idx))-lo+1))
	}
	for v := lo; v <= uint64(len(idx)) && len(page) < n; v++ {
		page = append(page, s.log[idx[v-1]])
	}
	return clonePage(page), nil
}

// pageFor returns the page size for a read with left events still wanted
// (0: no limit).
func (s *Store) pageFor(left int) int {
	if left > 0 && left < s.pageSize {
		return left
	}
	return s.pageSize
}

// ReadAll reads the global log from just after opts.From; see
// [nova.Store.ReadAll]. Stopping the loop early holds nothing.
func (s *Store) ReadAll(ctx context.Context, opts nova.ReadAllOptions) iter.Seq2[nova.Event, error] {
	return func(yield func(nova.Event, error) bool) {
		if err := opts.Validate(); err != nil {
			yield(nova.Event{}, nova.Invalidf("novamem", "read all: %w", err))
			return
		}
		after := opts.From
		left := opts.Limit
		for {
			n := s.pageFor(left)
			page, _, err := s.logPage(ctx, after, n)
			if err != nil {
				yield(nova.Event{}, fmt.Errorf("novamem: read all: %w", err))
				return
			}
			for _, e := range page {
				if err := ctx.Err(); err != nil {
					yield(nova.Event{}, fmt.Errorf("novamem: read all: %w", err))
					return
				}
				if !yield(e, nil) {
					return
				}
			}
			if len(page) < n {
				return
			}
			after = page[len(page)-1].Position
			if opts.Limit > 0 {
				if left -= len(page); left == 0 {
					return
				}
			}
		}
	}
}

// logPage copies at most n events of the log after position after. When the
// page is empty it also returns the channel the next append will close, read
// under the same lock, so a waiter cannot miss a wake-up.
func (s *Store) logPage(ctx context.Context, after nova.Position, n int) ([]nova.Event, <-chan struct{}, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, nil, nova.ErrClosed
	}
	// Positions are {Commit: index+1}; a Prepare above zero sorts after its
	// Commit, so the next event is at index Commit either way.
	start := after.Commit
	if start >= uint64(len(s.log)) {
		return nil, s.changed, nil
	}
	end := min(start+uint64(n), uint64(len(s.log)))
	return clonePage(slices.Clone(s.log[start:end])), nil, nil
}

// Subscribe reads the global log from just after opts.From, then follows new
// appends; see [nova.Store.Subscribe]. It ends with an error matching
// ctx.Err() when ctx is done and with [nova.ErrClosed] when the store is
// closed. Stopping the loop early holds nothing.
func (s *Store) Subscribe(ctx context.Context, opts nova.SubscribeOptions) iter.Seq2[nova.Event, error] {
	return func(yield func(nova.Event, error) bool) {
		after := opts.From
		for {
			page, wait, err := s.logPage(ctx, after, s.pageSize)
			if err != nil {
				yield(nova.Event{}, fmt.Errorf("novamem: subscribe: %w", err))
				return
			}
			for _, e := range page {
				if err := ctx.Err(); err != nil {
					yield(nova.Event{}, fmt.Errorf("novamem: subscribe: %w", err))
					return
				}
				if !yield(e, nil) {
					return
				}
				after = e.Position
			}
			if wait == nil {
				continue
			}
			select {
			case <-ctx.Done():
				yield(nova.Event{}, fmt.Errorf("novamem: subscribe: %w", ctx.Err()))
				return
			case <-wait:
			}
		}
	}
}

// Streams lists streams by name after opts.After; see [nova.Store.Streams].
func (s *Store) Streams(ctx context.Context, opts nova.StreamsOptions) iter.Seq2[nova.StreamInfo, error] {
	return func(yield func(nova.StreamInfo, error) bool) {
		if err := opts.Validate(); err != nil {
			yield(nova.StreamInfo{}, nova.Invalidf("novamem", "streams: %w", err))
			return
		}
		after := opts.After
		left := opts.Limit
		for {
			n := s.pageFor(left)
			page, err := s.streamsPage(ctx, after, n)
			if err != nil {
				yield(nova.StreamInfo{}, fmt.Errorf("novamem: streams: %w", err))
				return
			}
			for _, info := range page {
				if err := ctx.Err(); err != nil {
					yield(nova.StreamInfo{}, fmt.Errorf("novamem: streams: %w", err))
					return
				}
				if !yield(info, nil) {
					return
				}
			}
			if len(page) < n {
				return
			}
			after = page[len(page)-1].Stream
			if opts.Limit > 0 {
				if left -= len(page); left == 0 {
					return
				}
			}
		}
	}
}

func (s *Store) streamsPage(ctx context.Context, after string, n int) ([]nova.StreamInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, nova.ErrClosed
	}
	i, found := slices.BinarySearch(s.names, after)
	if found {
		i++
	}
	var page []nova.StreamInfo
	for ; i < len(s.names) && len(page) < n; i++ {
		name := s.names[i]
		page = append(page, nova.StreamInfo{Stream: name, Version: uint64(len(s.streams[name]))})
	}
	return page, nil
}

// Close marks the store closed and ends every subscription with
// [nova.ErrClosed]; later calls fail with [nova.ErrClosed]. The data is
// dropped. Closing twice returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.log, s.streams, s.names, s.ids, s.snaps = nil, nil, nil, nil, nil
	s.wakeLocked()
	return nil
}

// clonePage gives the events of page, copied from the log or from an
// append, data and metadata of their own, in place. The data of the whole
// page is copied into one buffer, one allocation rather than one per
// event: each event's Data is a clipped slice of that buffer, so writing to
// it touches no other event's bytes and appending to it copies. (An event
// kept after a read keeps its page's buffer alive: at most a page of
// data.)
func clonePage(page []nova.Event) []nova.Event {
	n := 0
	for _, e := range page {
		n += len(e.Data)
	}
	buf := make([]byte, 0, n)
	for i := range page {
		e := &page[i]
		if e.Data != nil {
			start := len(buf)
			buf = append(buf, e.Data...)
			e.Data = buf[start:len(buf):len(buf)]
		}
		e.Metadata = cloneMetadata(e.Metadata)
	}
	return page
}

func cloneData(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

func cloneMetadata(m nova.Metadata) nova.Metadata {
	if len(m.Extra) == 0 {
		m.Extra = nil
	} else {
		m.Extra = maps.Clone(m.Extra)
	}
	return m
}
