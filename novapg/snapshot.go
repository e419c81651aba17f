package novapg

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nova-go/nova"
	"github.com/nova-go/nova/aggregate"
	"github.com/nova-go/nova/internal/paging"
)

// LoadSnapshot implements aggregate.SnapshotStore.
func (s *Store) LoadSnapshot(ctx context.Context, stream string) (aggregate.Snapshot, error) {
	if err := paging.Check(ctx, nova.ValidateStream(stream)); err != nil {
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
	if err := paging.Check(ctx, nova.ValidateStream(snap.Stream)); err != nil {
		return err
	}
	switch {
	case snap.Version == 0:
		return nova.Invalidf("novapg", "snapshot of stream %q: version 0: a snapshot holds at least one event", snap.Stream)
	case snap.Version > maxVersion:
		return nova.Invalidf("novapg", "snapshot of stream %q: version %d is too large", snap.Stream, snap.Version)
	case snap.Schema < 0:
		return nova.Invalidf("novapg", "snapshot of stream %q: negative schema %d", snap.Stream, snap.Schema)
	case snap.Schema > 1<<31-1:
		return nova.Invalidf("novapg", "snapshot of stream %q: schema %d is too large", snap.Stream, snap.Schema)
	case len(snap.Data) > nova.MaxDataLen:
		return nova.Invalidf("novapg", "snapshot of stream %q: data of %d bytes is larger than the limit of %d", snap.Stream, len(snap.Data), nova.MaxDataLen)
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
