package projection

import (
	"context"
	"errors"
	"time"

	"github.com/nova-go/nova"
)

// ErrLeaseLost is matched by the error a [Leaser] or a [TxCheckpoints]
// returns when the caller's lease on a projection has expired or passed
// to another instance. Nothing was written.
var ErrLeaseLost = errors.New("projection: lease lost")

// TxCheckpoints is a [CheckpointStore] that commits a batch's read-model
// writes and the checkpoint in one transaction: each event's effect is
// applied exactly once (effectively once) even across crashes. The SQL
// backends implement it; their read-model helpers (the SQL query stores,
// and TxFromContext for the caller's own tables) find the transaction in
// the ctx given to apply.
type TxCheckpoints interface {
	CheckpointStore
	// Commit runs apply in a transaction and moves name's checkpoint from
	// from to to in it. If the stored checkpoint is not from (another
	// instance or a rebuild moved it), nothing is applied and the error
	// matches [nova.ErrConcurrency]. With owner set, the commit also
	// requires owner to hold name's lease, or fails with [ErrLeaseLost].
	// An error from apply rolls everything back and is returned.
	Commit(ctx context.Context, name, owner string, from, to nova.Position, apply func(ctx context.Context) error) error
}

// Leaser grants one instance at a time, across processes, the right to
// run a projection.
type Leaser interface {
	// Acquire takes name's lease for owner, or renews it when owner holds
	// it, until ttl from now. It reports whether owner holds it.
	Acquire(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
	// Release gives up owner's lease on name; one owner no longer holds is
	// left alone.
	Release(ctx context.Context, name, owner string) error
}

// Rebuilder is a [TxCheckpoints] that can rebuild a projection's SQL
// read model beside the live one and swap it in atomically, so that
// readers never see a half-built model.
type Rebuilder interface {
	TxCheckpoints
	// Prepare creates an empty shadow of each table (named by
	// [Table] under a rebuild's ctx), dropping an old shadow first.
	Prepare(ctx context.Context, tables []string) error
	// Swap, in one transaction, replaces each live table by its shadow
	// and sets name's checkpoint to shadow's, deleting shadow's.
	Swap(ctx context.Context, name, shadow string, tables []string) error
}

type rebuildKey struct{}

// ShadowSuffix is appended to a table's name for its rebuild shadow.
const ShadowSuffix = "__rebuild"

// Table returns the table a handler should write for the read-model
// table base: base itself, or its shadow during a rebuild. Handlers that
// write their own SQL tables use it so that a rebuild fills the shadow.
func Table(ctx context.Context, base string) string {
	if Rebuilding(ctx) {
		return base + ShadowSuffix
	}
	return base
}

// Rebuilding reports whether ctx is a rebuild's: read-model writes go to
// the shadow tables.
func Rebuilding(ctx context.Context) bool {
	v, _ := ctx.Value(rebuildKey{}).(bool)
	return v
}

// WithRebuild marks ctx as a rebuild's. The runner does this; backends'
// tests use it.
func WithRebuild(ctx context.Context) context.Context {
	return context.WithValue(ctx, rebuildKey{}, true)
}
