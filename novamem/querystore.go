package novamem

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/internal/querystore"
)

var (
	_ cqrs.QueryStore   = (*QueryStore)(nil)
	_ cqrs.CommandStore = (*CQRSStore)(nil)
	_ cqrs.QueryStore   = (*CQRSStore)(nil)
)

// QueryStore is an in-memory [cqrs.QueryStore]: projections by key in a
// map. It keeps a copy of every value it is given and returns copies. It
// is safe for concurrent use; the zero value is ready to use.
type QueryStore struct {
	mu sync.RWMutex
	m  map[string][]byte
}

// NewQueryStore returns an empty query store.
func NewQueryStore() *QueryStore { return &QueryStore{} }

// GetRaw implements [cqrs.QueryStore].
func (q *QueryStore) GetRaw(ctx context.Context, key string) (json.RawMessage, error) {
	if err := querystore.ValidateKey(key); err != nil {
		return nil, fmt.Errorf("novamem: get projection: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("novamem: get projection %q: %w", key, err)
	}
	q.mu.RLock()
	v, ok := q.m[key]
	q.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("novamem: projection %q: %w", key, nova.ErrNotFound)
	}
	return slices.Clone(v), nil
}

// UpsertRaw implements [cqrs.QueryStore].
func (q *QueryStore) UpsertRaw(ctx context.Context, key string, value json.RawMessage) error {
	if err := querystore.ValidateUpsert(key, value); err != nil {
		return fmt.Errorf("novamem: upsert projection: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("novamem: upsert projection %q: %w", key, err)
	}
	v := slices.Clone(value)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.m == nil {
		q.m = make(map[string][]byte)
	}
	q.m[key] = v
	return nil
}

// CQRSStore is one value that is both a
// [cqrs.CommandStore], over an in-memory event [Store], and a
// [cqrs.QueryStore].
type CQRSStore struct {
	*cqrs.EventCommandStore
	*QueryStore
}

// NewCQRSStore returns a command and query store whose events go to
// events and whose projections live in a new [QueryStore]. reg, which may
// be nil, is the registry the events are read with: saved events are
// stamped with their type's current shape (see [cqrs.NewEventCommandStore]).
// It does not own events: closing it is the caller's business.
func NewCQRSStore(events *Store, reg *nova.Registry) *CQRSStore {
	return &CQRSStore{EventCommandStore: cqrs.NewEventCommandStore(events, reg), QueryStore: NewQueryStore()}
}
