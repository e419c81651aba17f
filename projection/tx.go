package projection

import (
	"context"
	"errors"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/projectiondriver"
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
	// An error from apply rolls everything back and is returned. apply
	// may run more than once for one Commit (novasqlite retries a group
	// commit when another member failed), so it must do the same each
	// time and change nothing but the transaction's rows: the runner runs
	// the handlers in it and counts them only after Commit returns.
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

// LeasedCheckpoints is a [CheckpointStore] and [Leaser] that fences saves
// by the lease: a store that cannot commit a read model with its
// checkpoint (novanats, a key-value bucket) still refuses the checkpoint
// of an instance that has lost its lease. A [Runner] whose Checkpoints
// and Leaser are one such store saves through SaveLeased, and goes back
// to standby when a save fails with [ErrLeaseLost]. Delivery stays at
// least once: the handlers' writes before the refused save are not
// undone.
type LeasedCheckpoints interface {
	CheckpointStore
	Leaser
	// SaveLeased records pos as name's checkpoint if owner holds name's
	// lease; otherwise it fails with an error matching [ErrLeaseLost] and
	// saves nothing.
	SaveLeased(ctx context.Context, name, owner string, pos nova.Position) error
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
	// and sets name's checkpoint to shadow's, deleting shadow's. When
	// name's checkpoint is ahead of shadow's (the live model has seen
	// events the shadow has not), it swaps nothing and fails with an error
	// matching [nova.ErrConcurrency]: readers would see the model go
	// back. The rebuild catches up and tries again.
	Swap(ctx context.Context, name, shadow string, tables []string) error
}

// CheckpointInfo is one projection's row in a SQL checkpoint store, as
// [CheckpointLister] lists it.
type CheckpointInfo struct {
	// Name is the projection's name (a rebuild's checkpoint is the
	// projection's name with "@rebuild" appended).
	Name string
	// Position is the checkpoint: the last event whose effect is in the
	// read model.
	Position nova.Position
	// LeaseOwner holds the lease until LeaseUntil, when LeaseOwner is set
	// and LeaseUntil is in the future.
	LeaseOwner string
	LeaseUntil time.Time
	// UpdatedAt is when the checkpoint last moved (a lease's renewal
	// does not count).
	UpdatedAt time.Time
}

// Active reports whether the lease is held at now.
func (i CheckpointInfo) Active(now time.Time) bool {
	return i.LeaseOwner != "" && now.Before(i.LeaseUntil)
}

// CheckpointLister lists every stored checkpoint, for tools (`nova
// projections`) that report projections without running them; see
// [StoredLag] for the lag of one.
type CheckpointLister interface {
	List(ctx context.Context) ([]CheckpointInfo, error)
}

// Table returns the table a handler should write for the read-model
// table base: base itself, or, during a rebuild, its shadow (base with
// "__rebuild" appended). Handlers that write their own SQL tables use it
// so that a rebuild fills the shadow.
func Table(ctx context.Context, base string) string {
	if projectiondriver.Rebuilding(ctx) {
		return base + projectiondriver.ShadowSuffix
	}
	return base
}

// Rebuilding reports whether ctx is a rebuild's: read-model writes go to
// the shadow tables ([Table]).
func Rebuilding(ctx context.Context) bool {
	return projectiondriver.Rebuilding(ctx)
}
