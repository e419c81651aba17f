package novanats

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/aggregate"
)

// snapshotDesc is the description of a store's snapshot bucket.
const snapshotDesc = "nova snapshots (format 1)"

// snapshotFormat is the first byte of a snapshot value.
const snapshotFormat = 1

// Snapshots keeps the latest snapshot of each stream in a JetStream
// key-value bucket of the store: "<StreamName>_snapshots", created on the
// first save (or by [Migrate]). Create it with [NewSnapshots]; it is
// safe for concurrent use. See "Snapshots" in the package doc.
type Snapshots struct {
	s *Store
	b *bucket
}

var _ aggregate.SnapshotStore = (*Snapshots)(nil)

// NewSnapshots returns the snapshot store of s. It sends nothing: the
// bucket is looked up on first use.
func NewSnapshots(s *Store) *Snapshots {
	return &Snapshots{s: s, b: newBucket(s, snapshotSuffix, snapshotDesc)}
}

// encodeSnapshot returns a snapshot's value: the format byte, the version
// and the schema as unsigned varints, then the data.
func encodeSnapshot(snap aggregate.Snapshot) []byte {
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(snap.Data))
	b = append(b, snapshotFormat)
	b = binary.AppendUvarint(b, snap.Version)
	b = binary.AppendUvarint(b, uint64(snap.Schema))
	return append(b, snap.Data...)
}

// decodeSnapshot reverses encodeSnapshot, into a snapshot of stream with
// its own copy of the data.
func decodeSnapshot(stream string, v []byte) (aggregate.Snapshot, error) {
	if len(v) == 0 || v[0] != snapshotFormat {
		return aggregate.Snapshot{}, errors.New("unknown format")
	}
	r := bytes.NewReader(v[1:])
	version, err1 := binary.ReadUvarint(r)
	schema, err2 := binary.ReadUvarint(r)
	if err := errors.Join(err1, err2); err != nil || version == 0 || schema > math.MaxInt32 {
		return aggregate.Snapshot{}, errors.New("bad header")
	}
	data := make([]byte, r.Len())
	_, _ = r.Read(data)
	return aggregate.Snapshot{Stream: stream, Version: version, Schema: int(schema), Data: data}, nil
}

// LoadSnapshot returns the stream's snapshot, or an error matching
// nova.ErrNotFound when it has none. RecordedAt is the server's time of
// the save.
func (n *Snapshots) LoadSnapshot(ctx context.Context, stream string) (aggregate.Snapshot, error) {
	if err := nova.ValidateStream(stream); err != nil {
		return aggregate.Snapshot{}, err
	}
	ctx, cancel := n.s.opCtx(ctx)
	defer cancel()
	what := fmt.Sprintf("load snapshot of stream %q", stream)
	_, e, err := n.entry(ctx, what, stream, false)
	if err != nil {
		return aggregate.Snapshot{}, err
	}
	if e == nil {
		return aggregate.Snapshot{}, fmt.Errorf("novanats: no snapshot of stream %q: %w", stream, nova.ErrNotFound)
	}
	snap, err := decodeSnapshot(stream, e.Value())
	if err != nil {
		return aggregate.Snapshot{}, fmt.Errorf("novanats: %s: revision %d of bucket %s: %v", what, e.Revision(), n.b.name, err)
	}
	snap.RecordedAt = e.Created().UTC()
	return snap, nil
}

// entry returns the bucket and stream's entry in it, nil when it has
// none; with write, the bucket is created when missing.
func (n *Snapshots) entry(ctx context.Context, what, stream string, write bool) (jetstream.KeyValue, jetstream.KeyValueEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, n.s.wrap(ctx, what, err)
	}
	kv, err := n.b.get(ctx, write)
	if errors.Is(err, errNoBucket) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, n.s.wrap(ctx, what, err)
	}
	e, err := again(ctx, func() (jetstream.KeyValueEntry, error) { return kv.Get(ctx, kvKey(stream)) })
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return kv, nil, nil
	case err != nil:
		return nil, nil, n.s.wrap(ctx, what, err)
	}
	return kv, e, nil
}

// SaveSnapshot stores snap unless the stream's stored snapshot is at a
// higher version: a compare-and-set on the key's revision, tried again
// when another save came first. A stored value that cannot be read is
// replaced. snap.RecordedAt is not stored: a load returns the server's
// time of the save. A snapshot whose value passes the server's
// max_payload fails with an error matching nova.ErrInvalid.
func (n *Snapshots) SaveSnapshot(ctx context.Context, snap aggregate.Snapshot) error {
	if err := snap.Validate(); err != nil {
		return err
	}
	value := encodeSnapshot(snap)
	if limit := n.s.nc.MaxPayload(); limit > 0 && int64(len(value)) > limit {
		return nova.Invalidf("novanats",
			"snapshot of stream %q: %d bytes is larger than the NATS server's max_payload of %d bytes (%s): raise max_payload in the server's configuration",
			snap.Stream, len(value), limit, sizeText(limit))
	}
	ctx, cancel := n.s.opCtx(ctx)
	defer cancel()
	what := fmt.Sprintf("save snapshot of stream %q at version %d", snap.Stream, snap.Version)
	for {
		kv, e, err := n.entry(ctx, what, snap.Stream, true)
		if err != nil {
			return err
		}
		var rev uint64
		if e != nil {
			rev = e.Revision()
			if old, err := decodeSnapshot(snap.Stream, e.Value()); err == nil && old.Version > snap.Version {
				return nil // a newer snapshot is kept
			}
		}
		err = put(ctx, kv, kvKey(snap.Stream), value, rev)
		switch {
		case err == nil:
			return nil
		case conflict(err) && ctx.Err() == nil:
			continue // another save came first: look again
		}
		return n.s.wrap(ctx, what, err)
	}
}
