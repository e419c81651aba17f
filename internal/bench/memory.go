package bench

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novamem"
)

// memoryWorkScale keeps memory runs long enough to time: appends and reads
// in memory take microseconds.
const memoryWorkScale = 20

// Memory returns the backend of package novamem beside a hand-written
// in-memory log: a mutex-protected slice and map that check the version,
// index streams and IDs and copy events in and out, as any in-memory store
// must. It owns no files.
func Memory() Backend {
	return Backend{
		Name: "memory",
		NovaFunc: func(ctx context.Context) (nova.Store, func() error, error) {
			s, err := novamem.New(novamem.Config{})
			if err != nil {
				return nil, nil, fmt.Errorf("bench: %w", err)
			}
			return s, s.Close, nil
		},
		RawFunc: func(ctx context.Context) (Raw, func() error, error) {
			r := newMemRaw()
			return r, r.Close, nil
		},
		Scale:        memoryWorkScale,
		ServicesFunc: storeServices,
	}
}

// memRaw is the memory baseline.
type memRaw struct {
	mu      sync.RWMutex
	log     []nova.Event
	streams map[string][]int // stream -> indexes into log
	ids     map[string]int   // event ID -> index into log
}

func newMemRaw() *memRaw {
	return &memRaw{streams: make(map[string][]int), ids: make(map[string]int)}
}

func (m *memRaw) Append(ctx context.Context, stream string, version uint64, events []nova.EventData) error {
	now := time.Now().UTC()
	m.mu.Lock()
	defer m.mu.Unlock()
	idx := m.streams[stream]
	if uint64(len(idx)) != version {
		return fmt.Errorf("bench: stream %q is at version %d, not %d", stream, len(idx), version)
	}
	for _, e := range events {
		if _, ok := m.ids[e.ID]; ok {
			return fmt.Errorf("bench: event ID %s already stored", e.ID)
		}
	}
	for i, e := range events {
		n := len(m.log)
		md := e.Metadata
		md.Extra = maps.Clone(md.Extra)
		m.log = append(m.log, nova.Event{
			ID:         e.ID,
			Stream:     stream,
			Type:       e.Type,
			Version:    version + uint64(i) + 1,
			Position:   nova.Position{Commit: uint64(n) + 1},
			Data:       bytes.Clone(e.Data),
			Metadata:   md,
			RecordedAt: now,
		})
		idx = append(idx, n)
		m.ids[e.ID] = n
	}
	m.streams[stream] = idx
	return nil
}

func (m *memRaw) ReadStream(ctx context.Context, stream string) (int, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n := 0
	for _, i := range m.streams[stream] {
		if e := copyEvent(m.log[i]); e.Stream == stream {
			n++
		}
	}
	return n, nil
}

func (m *memRaw) ReadAll(ctx context.Context) (int, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n := 0
	for i := range m.log {
		if e := copyEvent(m.log[i]); e.Position.Commit == uint64(i)+1 {
			n++
		}
	}
	return n, nil
}

func (m *memRaw) Close() error { return nil }

// copyEvent returns e with its own data and metadata, as a store hands
// events to callers that may modify them.
func copyEvent(e nova.Event) nova.Event {
	e.Data = bytes.Clone(e.Data)
	e.Metadata.Extra = maps.Clone(e.Metadata.Extra)
	return e
}
