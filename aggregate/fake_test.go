package aggregate_test

import (
	"context"
	"iter"
	"maps"
	"sync"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/aggregate"
	"github.com/nova-go/nova/internal/validate"
)

// memStore is a small in-memory nova.Store for these tests, with counters
// and fault injection. Only Append and ReadStream are implemented.
type memStore struct {
	mu      sync.Mutex
	streams map[string][]nova.Event
	pos     uint64
	appends int      // successful appends
	reads   []uint64 // From of each ReadStream
	failErr error    // returned by every Append when set
	readErr error    // yielded by every ReadStream after its first event when set
}

var _ nova.Store = (*memStore)(nil)

func newMemStore() *memStore { return &memStore{streams: make(map[string][]nova.Event)} }

func (s *memStore) Append(ctx context.Context, stream string, expected nova.ExpectedVersion, events ...nova.EventData) (nova.AppendResult, error) {
	evs, err := validate.Append(stream, events)
	if err != nil {
		return nova.AppendResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failErr != nil {
		return nova.AppendResult{}, s.failErr
	}
	cur := uint64(len(s.streams[stream]))
	if !expected.Check(cur) {
		return nova.AppendResult{}, &nova.ConcurrencyError{Stream: stream, Expected: expected, Actual: cur}
	}
	var res nova.AppendResult
	for i, d := range evs {
		s.pos++
		v := cur + uint64(i) + 1
		s.streams[stream] = append(s.streams[stream], nova.Event{
			ID: d.ID, Stream: stream, Type: d.Type, Version: v,
			Position: nova.Position{Commit: s.pos}, Data: d.Data, Metadata: d.Metadata,
			RecordedAt: time.Now().UTC(),
		})
		if i == 0 {
			res.FirstVersion = v
		}
		res.LastVersion = v
	}
	res.Position = nova.Position{Commit: s.pos}
	s.appends++
	return res, nil
}

func (s *memStore) ReadStream(ctx context.Context, stream string, opts nova.ReadStreamOptions) iter.Seq2[nova.Event, error] {
	return func(yield func(nova.Event, error) bool) {
		s.mu.Lock()
		s.reads = append(s.reads, opts.From)
		evs := append([]nova.Event(nil), s.streams[stream]...)
		readErr := s.readErr
		s.mu.Unlock()
		for i, e := range evs {
			if readErr != nil && i > 0 {
				yield(nova.Event{}, readErr)
				return
			}
			if e.Version < opts.From {
				continue
			}
			if err := ctx.Err(); err != nil {
				yield(nova.Event{}, err)
				return
			}
			if !yield(e, nil) {
				return
			}
		}
	}
}

func (s *memStore) ReadAll(context.Context, nova.ReadAllOptions) iter.Seq2[nova.Event, error] {
	return func(yield func(nova.Event, error) bool) { yield(nova.Event{}, nova.ErrNotImplemented) }
}

func (s *memStore) Subscribe(context.Context, nova.SubscribeOptions) iter.Seq2[nova.Event, error] {
	return func(yield func(nova.Event, error) bool) { yield(nova.Event{}, nova.ErrNotImplemented) }
}

func (s *memStore) Streams(context.Context, nova.StreamsOptions) iter.Seq2[nova.StreamInfo, error] {
	return func(yield func(nova.StreamInfo, error) bool) { yield(nova.StreamInfo{}, nova.ErrNotImplemented) }
}

func (s *memStore) Close() error { return nil }

func (s *memStore) setReadErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readErr = err
}

// corrupt renumbers the stream's events, as a broken backend might.
func (s *memStore) corrupt(stream string, i int, version uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.streams[stream][i].Version = version
}

func (s *memStore) events(stream string) []nova.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]nova.Event(nil), s.streams[stream]...)
}

func (s *memStore) appendCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appends
}

func (s *memStore) lastReadFrom() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads[len(s.reads)-1]
}

// memSnapshots is an in-memory aggregate.SnapshotStore with fault
// injection.
type memSnapshots struct {
	mu      sync.Mutex
	snaps   map[string]aggregate.Snapshot
	saves   int
	saveErr error
	loadErr error
}

var _ aggregate.SnapshotStore = (*memSnapshots)(nil)

func newMemSnapshots() *memSnapshots {
	return &memSnapshots{snaps: make(map[string]aggregate.Snapshot)}
}

func (m *memSnapshots) LoadSnapshot(ctx context.Context, stream string) (aggregate.Snapshot, error) {
	if err := nova.ValidateStream(stream); err != nil {
		return aggregate.Snapshot{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.loadErr != nil {
		return aggregate.Snapshot{}, m.loadErr
	}
	s, ok := m.snaps[stream]
	if !ok {
		return aggregate.Snapshot{}, nova.ErrNotFound
	}
	s.Data = append([]byte(nil), s.Data...)
	return s, nil
}

func (m *memSnapshots) SaveSnapshot(ctx context.Context, s aggregate.Snapshot) error {
	if err := nova.ValidateStream(s.Stream); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.saveErr != nil {
		return m.saveErr
	}
	m.saves++
	if old, ok := m.snaps[s.Stream]; ok && old.Version > s.Version {
		return nil
	}
	s.Data = append([]byte(nil), s.Data...)
	m.snaps[s.Stream] = s
	return nil
}

func (m *memSnapshots) get(stream string) (aggregate.Snapshot, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.snaps[stream]
	return s, ok
}

func (m *memSnapshots) put(s aggregate.Snapshot) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.snaps[s.Stream] = s
}

func (m *memSnapshots) all() map[string]aggregate.Snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.snaps)
}

// reports collects what a repository reports through Config.ErrorFunc.
type reports struct {
	mu   sync.Mutex
	errs []error
}

func (r *reports) add(_ context.Context, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

func (r *reports) list() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}

// setData replaces the data of the stream's i-th event.
func (s *memStore) setData(stream string, i int, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.streams[stream][i].Data = data
}

// setType replaces the type and data of the stream's i-th event.
func (s *memStore) setType(stream string, i int, typ string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.streams[stream][i].Type = typ
	s.streams[stream][i].Data = data
}
