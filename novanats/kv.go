package novanats

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// Key mapping. A stream ID or projection name becomes a key-value key by
// the same base64url without padding as a subject token: its alphabet,
// A–Z a–z 0–9 '-' '_', is within what JetStream allows in a key
// ([-/_=.A-Za-z0-9], no leading, trailing or double '.'), a valid name is
// never empty, so every name maps to exactly one key and back, and names
// differing only in case stay apart.

// kvKey returns the key of a stream ID or projection name.
func kvKey(name string) string { return encodeStream(name) }

// kvName returns the name a key encodes, and false for a key no name
// maps to.
func kvName(key string) (string, bool) { return decodeStream(key) }

// Bucket suffixes: a store's buckets are its stream's name with these
// appended.
const (
	snapshotSuffix   = "_snapshots"
	checkpointSuffix = "_checkpoints"
)

// bucket is one of a store's key-value buckets, looked up on first use
// and created on first write unless the store was opened with
// SkipMigrate.
type bucket struct {
	s    *Store
	name string
	desc string

	mu sync.Mutex
	kv jetstream.KeyValue // nil until found or created
}

func newBucket(s *Store, suffix, desc string) *bucket {
	return &bucket{s: s, name: s.cfg.StreamName + suffix, desc: desc}
}

// errNoBucket is returned by bucket.get for a missing bucket that is not
// to be created.
var errNoBucket = errors.New("novanats: no bucket")

// get returns the bucket. A missing bucket is created when write is set
// and the store may create (no SkipMigrate); otherwise get fails with
// errNoBucket, wrapped in [ErrFormatOutdated] for a write.
func (b *bucket) get(ctx context.Context, write bool) (jetstream.KeyValue, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.kv != nil {
		return b.kv, nil
	}
	kv, err := b.s.js.KeyValue(ctx, b.name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		switch {
		case !write:
			return nil, errNoBucket
		case b.s.cfg.SkipMigrate:
			return nil, fmt.Errorf("%w: the server has no bucket %s: create it with Migrate (nova migrate)", ErrFormatOutdated, b.name)
		}
		kv, err = b.create(ctx)
	}
	if err != nil {
		return nil, err
	}
	b.kv = kv
	return kv, nil
}

// create makes the bucket: one revision per key, the store's storage and
// replicas. A bucket another process made meanwhile is used.
func (b *bucket) create(ctx context.Context) (jetstream.KeyValue, error) {
	kv, err := b.s.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      b.name,
		Description: b.desc,
		History:     1,
		Storage:     b.s.cfg.Storage.jetstream(),
		Replicas:    b.s.cfg.Replicas,
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		return b.s.js.KeyValue(ctx, b.name)
	}
	return kv, err
}

// conflict reports whether a create or update lost to another writer of
// the key.
func conflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

// put writes value under key: a create when rev is 0, else an update of
// revision rev.
func put(ctx context.Context, kv jetstream.KeyValue, key string, value []byte, rev uint64) error {
	if rev == 0 {
		_, err := kv.Create(ctx, key, value)
		return err
	}
	_, err := kv.Update(ctx, key, value, rev)
	return err
}

// migrateBuckets creates the store's buckets that are missing.
func (s *Store) migrateBuckets(ctx context.Context) error {
	for _, b := range []*bucket{newBucket(s, snapshotSuffix, snapshotDesc), newBucket(s, checkpointSuffix, checkpointDesc)} {
		if _, err := b.get(ctx, true); err != nil {
			return fmt.Errorf("novanats: bucket %s: %w", b.name, err)
		}
	}
	return nil
}
