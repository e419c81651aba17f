package novamem

import (
	"context"
	"fmt"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/aggregate"
)

// LoadSnapshot returns the stream's latest snapshot, or an error matching
// [nova.ErrNotFound] when it has none; see [aggregate.SnapshotStore].
func (s *Store) LoadSnapshot(ctx context.Context, stream string) (aggregate.Snapshot, error) {
	if err := nova.ValidateStream(stream); err != nil {
		return aggregate.Snapshot{}, nova.Invalidf("novamem", "load snapshot: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return aggregate.Snapshot{}, fmt.Errorf("novamem: load snapshot of %q: %w", stream, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return aggregate.Snapshot{}, fmt.Errorf("novamem: load snapshot of %q: %w", stream, nova.ErrClosed)
	}
	snap, ok := s.snaps[stream]
	if !ok {
		return aggregate.Snapshot{}, fmt.Errorf("novamem: no snapshot of %q: %w", stream, nova.ErrNotFound)
	}
	snap.Data = cloneData(snap.Data)
	return snap, nil
}

// SaveSnapshot stores snap as its stream's snapshot unless one at a higher
// version is already stored; see [aggregate.SnapshotStore]. The store sets
// RecordedAt. A snapshot that [aggregate.Snapshot.Validate] rejects is not
// saved.
func (s *Store) SaveSnapshot(ctx context.Context, snap aggregate.Snapshot) error {
	if err := snap.Validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("novamem: save snapshot of %q: %w", snap.Stream, err)
	}
	snap.Data = cloneData(snap.Data)
	snap.RecordedAt = s.now().UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("novamem: save snapshot of %q: %w", snap.Stream, nova.ErrClosed)
	}
	if old, ok := s.snaps[snap.Stream]; ok && old.Version > snap.Version {
		return nil
	}
	s.snaps[snap.Stream] = snap
	return nil
}
