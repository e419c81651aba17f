package aggregate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/nova-go/nova"
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

// Validate reports what is wrong with s as a snapshot to save, with an
// error matching [nova.ErrInvalid]: a bad stream ID, version 0 (a snapshot
// includes at least one event) or a version past math.MaxInt64, a schema
// outside 0 to math.MaxInt32, data larger than [nova.MaxDataLen]. Every
// [SnapshotStore] checks it before it saves.
func (s Snapshot) Validate() error {
	if err := nova.ValidateStream(s.Stream); err != nil {
		return err
	}
	switch {
	case s.Version == 0:
		return invalidf("snapshot of stream %q: version 0: a snapshot includes at least one event", s.Stream)
	case s.Version > math.MaxInt64:
		return invalidf("snapshot of stream %q: version %d is too large", s.Stream, s.Version)
	case s.Schema < 0:
		return invalidf("snapshot of stream %q: negative schema %d", s.Stream, s.Schema)
	case s.Schema > math.MaxInt32:
		return invalidf("snapshot of stream %q: schema %d is too large", s.Stream, s.Schema)
	case len(s.Data) > nova.MaxDataLen:
		return invalidf("snapshot of stream %q: data of %d bytes is larger than the limit of %d", s.Stream, len(s.Data), nova.MaxDataLen)
	}
	return nil
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

// loadSnapshot returns the stream's latest snapshot decoded into
// root.State, with root.Version set to its version, when a usable one
// exists. Anything unusable is ignored: a snapshot of another shape
// silently (it is expected after the shape changes), and one that cannot
// be read or decoded with a report.
func (r *Repository[T]) loadSnapshot(ctx context.Context, stream string, root *Root[T]) (Snapshot, bool) {
	if r.snaps == nil {
		return Snapshot{}, false
	}
	s, err := r.snaps.LoadSnapshot(ctx, stream)
	switch {
	case errors.Is(err, nova.ErrNotFound):
		return Snapshot{}, false
	case err != nil:
		if ctx.Err() == nil {
			r.report(ctx, fmt.Errorf("aggregate: load snapshot of stream %q: %w", stream, err))
		}
		return Snapshot{}, false
	case s.Schema != r.schema || s.Version == 0:
		return Snapshot{}, false
	case s.Stream != "" && s.Stream != stream:
		r.report(ctx, fmt.Errorf("aggregate: snapshot for stream %q ignored: it belongs to stream %q", stream, s.Stream))
		return Snapshot{}, false
	}
	state := new(T)
	if err := r.unmarshal(s.Data, state); err != nil {
		r.report(ctx, fmt.Errorf("aggregate: snapshot of stream %q at version %d ignored: decode: %w", stream, s.Version, err))
		return Snapshot{}, false
	}
	root.State, root.Version = state, s.Version
	return s, true
}

// saveSnapshot stores root's state as the stream's snapshot, reporting a
// failure instead of returning it: the events are already committed.
func (r *Repository[T]) saveSnapshot(ctx context.Context, stream string, root *Root[T]) {
	data, err := r.marshal(root.State)
	if err == nil {
		err = r.snaps.SaveSnapshot(ctx, Snapshot{
			Stream:     stream,
			Version:    root.Version,
			Schema:     r.schema,
			Data:       data,
			RecordedAt: time.Now().UTC(),
		})
	}
	// A caller that gave up meanwhile is no fault of the snapshot store's:
	// the next save past a multiple of SnapshotEvery tries again.
	if err != nil && ctx.Err() == nil {
		r.report(ctx, fmt.Errorf("aggregate: save snapshot of stream %q at version %d: %w", stream, root.Version, err))
	}
}

// marshal runs the snapshot codec's Marshal under recover.
func (r *Repository[T]) marshal(state *T) (data []byte, err error) {
	defer nova.Recover(&err)
	return r.codec.Marshal(state)
}

// unmarshal runs the snapshot codec's Unmarshal under recover.
func (r *Repository[T]) unmarshal(data []byte, state *T) (err error) {
	defer nova.Recover(&err)
	return r.codec.Unmarshal(data, state)
}
