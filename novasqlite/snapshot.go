package novasqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/aggregate"
)

// LoadSnapshot implements aggregate.SnapshotStore.
func (s *Store) LoadSnapshot(ctx context.Context, stream string) (aggregate.Snapshot, error) {
	if err := nova.ValidateStream(stream); err != nil {
		return aggregate.Snapshot{}, err
	}
	snap := aggregate.Snapshot{Stream: stream}
	found := false
	err := s.query(ctx, func(r *reader) error {
		st := r.snapshot
		if err := st.BindText(1, stream); err != nil {
			return err
		}
		return rows(st, func() error {
			found = true
			snap.Version = uint64(st.ColumnInt64(0))
			snap.Schema = int(st.ColumnInt64(1))
			snap.Data = cloneBytes(st.ColumnRawBlob(2))
			snap.RecordedAt = time.Unix(0, st.ColumnInt64(3)).UTC()
			return nil
		})
	})
	if err != nil {
		return aggregate.Snapshot{}, readError(fmt.Sprintf("load snapshot of stream %q", stream), err)
	}
	if !found {
		return aggregate.Snapshot{}, fmt.Errorf("novasqlite: no snapshot of stream %q: %w", stream, nova.ErrNotFound)
	}
	return snap, nil
}

// SaveSnapshot implements aggregate.SnapshotStore. It is written like an
// append, so it may share a group commit. A snapshot at a
// lower version than the stored one is ignored; one at the same or a
// higher version replaces it. RecordedAt is set by the store.
func (s *Store) SaveSnapshot(ctx context.Context, snap aggregate.Snapshot) error {
	if err := snap.Validate(); err != nil {
		return err
	}
	r := &request{kind: kindSnapshot, stream: snap.Stream, snap: snap}
	if err := s.do(ctx, r); err != nil {
		return err
	}
	return r.err
}
