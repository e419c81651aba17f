package novamysql

import (
	"context"
	"database/sql"
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
	err := s.query(ctx, s.q.loadSnap, []any{stream}, func(rows *sql.Rows) error {
		var at timeValue
		if err := rows.Scan(&snap.Version, &snap.Schema, &snap.Data, &at); err != nil {
			return err
		}
		snap.RecordedAt = at.t
		found = true
		return nil
	})
	if err != nil {
		return aggregate.Snapshot{}, readError(fmt.Sprintf("load snapshot of stream %q", stream), err)
	}
	if !found {
		return aggregate.Snapshot{}, fmt.Errorf("novamysql: no snapshot of stream %q: %w", stream, nova.ErrNotFound)
	}
	if len(snap.Data) == 0 {
		snap.Data = nil
	}
	return snap, nil
}

// SaveSnapshot implements aggregate.SnapshotStore in one statement: a
// snapshot at a lower version than the stored one is ignored; one at the
// same or a higher version replaces it. RecordedAt is set by the store.
func (s *Store) SaveSnapshot(ctx context.Context, snap aggregate.Snapshot) error {
	if err := snap.Validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.readMu.RLock()
	defer s.readMu.RUnlock()
	if s.readsClosed {
		return nova.ErrClosed
	}
	data := snap.Data
	if data == nil {
		data = []byte{}
	}
	st, err := s.stmt(ctx, s.q.saveSnap)
	if err == nil {
		_, err = st.ExecContext(ctx, snap.Stream, snap.Version, snap.Schema, data, time.Now().UTC().Format(timeLayout))
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("novamysql: save snapshot of stream %q: %w", snap.Stream, markTransient(err))
	}
	return nil
}
