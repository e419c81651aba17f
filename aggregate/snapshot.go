package aggregate

import (
	"context"
	"time"
)

// Snapshot is an aggregate's state saved at a version of its stream, so a
// load can start from it instead of from the first event.
type Snapshot struct {
	// Stream is the aggregate's stream.
	Stream string
	// Version is the stream version the state includes.
	Version uint64
	// Schema is the version of the state's shape when it was saved. A
	// snapshot whose Schema differs from the repository's current one is
	// ignored, never trusted.
	Schema int
	// Data is the encoded state.
	Data []byte
	// RecordedAt is when the snapshot was saved (UTC).
	RecordedAt time.Time
}

// SnapshotStore keeps the latest snapshot of each stream. Backends that can
// store snapshots implement it beside their event store, and pass
// novatest.RunSnapshotStore.
type SnapshotStore interface {
	// LoadSnapshot returns the stream's latest snapshot, or an error
	// matching nova.ErrNotFound when it has none.
	LoadSnapshot(ctx context.Context, stream string) (Snapshot, error)
	// SaveSnapshot stores s as the stream's snapshot unless a snapshot at a
	// higher version is already stored, which is kept.
	SaveSnapshot(ctx context.Context, s Snapshot) error
}
