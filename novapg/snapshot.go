package novapg

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nova-go/nova"
	"github.com/nova-go/nova/aggregate"
)

// LoadSnapshot implements aggregate.SnapshotStore.
func (s *Store) LoadSnapshot(ctx context.Context, stream string) (aggregate.Snapshot, error) {
	if err := nova.ValidateStream(stream); err != nil {
		return aggregate.Snapshot{}, err
	}
	snap := aggregate.Snapshot{Stream: stream}
	var version int64
	err := s.retry(ctx, func() error {
		if err := s.checkOpen(); err != nil {
			return err
		}
		return s.pool.QueryRow(ctx, s.sql.loadSnapshot, stream).Scan(&version, &snap.Schema, &snap.Data, &snap.RecordedAt)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return aggregate.Snapshot{}, fmt.Errorf("novapg: no snapshot of stream %q: %w", stream, nova.ErrNotFound)
	}
	if err != nil {
		return aggregate.Snapshot{}, readError(fmt.Sprintf("load snapshot of stream %q", stream), err)
	}
	snap.Version = uint64(version)
	snap.RecordedAt = snap.RecordedAt.UTC()
	if snap.Data == nil {
		snap.Data = []byte{}
	}
	return snap, nil
}

// SaveSnapshot implements aggregate.SnapshotStore, in one statement. A
// snapshot at a lower version than the stored one is ignored; one at the
// same or a higher version replaces it. RecordedAt is set by the store.
func (s *Store) SaveSnapshot(ctx context.Context, snap aggregate.Snapshot) error {
	if err := snap.Validate(); err != nil {
		return err
	}
	data := snap.Data
	if data == nil {
		data = []byte{}
	}
	err := s.retry(ctx, func() error {
		if err := s.checkOpen(); err != nil {
			return err
		}
		_, err := s.pool.Exec(ctx, s.sql.saveSnapshot, snap.Stream, int64(snap.Version), int32(snap.Schema), data, time.Now().UTC())
		return err
	})
	if err != nil {
		return readError(fmt.Sprintf("save snapshot of stream %q", snap.Stream), err)
	}
	return nil
}
