package projection

import (
	"context"
	"sync"

	"github.com/nova-go/nova"
)

// CheckpointStore keeps, per projection name, the position of the last
// event the projection has handled.
//
// Where the checkpoint lives decides the delivery guarantee. With a SQL
// read model the checkpoint must be written in the same transaction as the
// read-model rows a batch changes: either both commit or neither does, so
// each event's effect is applied once (effectively once). With any other
// pairing — an in-memory or Redis read model, or a checkpoint stored apart
// from the read model — a crash between the read-model writes and Save
// makes the runner handle those events again on restart: delivery is at
// least once and handlers must be idempotent (an upsert by key is).
//
// Implementations are safe for concurrent use.
type CheckpointStore interface {
	// Load returns the saved position for name, or [nova.Start] when none
	// was saved.
	Load(ctx context.Context, name string) (nova.Position, error)
	// Save records pos as name's checkpoint, replacing the last one.
	Save(ctx context.Context, name string, pos nova.Position) error
}

// MemoryCheckpoints is an in-memory [CheckpointStore]: checkpoints last as
// long as the process. The zero value is ready to use.
type MemoryCheckpoints struct {
	mu sync.Mutex
	m  map[string]nova.Position
}

var _ CheckpointStore = (*MemoryCheckpoints)(nil)

// NewMemoryCheckpoints returns an empty in-memory checkpoint store.
func NewMemoryCheckpoints() *MemoryCheckpoints { return &MemoryCheckpoints{} }

// Load returns name's checkpoint or [nova.Start]. A bad name fails with
// an error matching [nova.ErrInvalid].
func (c *MemoryCheckpoints) Load(ctx context.Context, name string) (nova.Position, error) {
	if err := validateName(name); err != nil {
		return nova.Start, err
	}
	if err := ctx.Err(); err != nil {
		return nova.Start, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[name], nil
}

// Save records name's checkpoint. A bad name fails with an error matching
// [nova.ErrInvalid] and saves nothing.
func (c *MemoryCheckpoints) Save(ctx context.Context, name string, pos nova.Position) error {
	if err := validateName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]nova.Position)
	}
	c.m[name] = pos
	return nil
}
