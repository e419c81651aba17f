package projection

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/validate"
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
	// Name is the projection's name (a rebuild's checkpoint is named with
	// [RebuildSuffix]).
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

type rebuildKey struct{}

// ShadowSuffix is appended to a table's name for its rebuild shadow.
const ShadowSuffix = "__rebuild"

// RebuildSuffix is appended to a projection's name for the checkpoint
// (and lease) of its rebuild.
const RebuildSuffix = "@rebuild"

// ValidateTable checks a read-model table name for [Config].Tables and
// the backends' Prepare and Swap: an SQL identifier of ASCII letters,
// digits and underscores, not starting with a digit, optionally
// qualified by a schema ("schema.table"), at most 63 bytes for the schema
// and 54 for the table (so that its shadow's name fits PostgreSQL's 63),
// and not a shadow's name. Anything else fails with an error matching
// [nova.ErrInvalid]: the backends splice the name into SQL.
func ValidateTable(name string) error {
	schema, table, qualified := strings.Cut(name, ".")
	if !qualified {
		schema, table = "", name
	} else if !isIdent(schema, 63) {
		return invalidf("table %q: schema %q is not a plain SQL identifier", name, schema)
	}
	if !isIdent(table, 63-len(ShadowSuffix)) {
		return invalidf("table %q: not a plain SQL identifier ([A-Za-z_][A-Za-z0-9_]*, at most %d bytes so that its shadow's name fits)", name, 63-len(ShadowSuffix))
	}
	if strings.HasSuffix(table, ShadowSuffix) {
		return invalidf("table %q: names ending in %q are rebuild shadows", name, ShadowSuffix)
	}
	return nil
}

func isIdent(s string, maxLen int) bool {
	if s == "" || len(s) > maxLen || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '_' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

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

// ValidateCommit checks the arguments of a [TxCheckpoints] Commit, for
// the backends: a context, a projection name, an owner that is empty or
// a valid name, to not before from, and an apply function. Anything else
// fails with an error matching [nova.ErrInvalid].
func ValidateCommit(ctx context.Context, name, owner string, from, to nova.Position, apply func(context.Context) error) error {
	if err := validateCall(ctx, name); err != nil {
		return err
	}
	switch {
	case apply == nil:
		return invalidf("commit %q: nil apply function", name)
	case owner != "" && nova.ValidateStream(owner) != nil:
		return invalidf("commit %q: owner: %v", name, nova.ValidateStream(owner))
	case to.Less(from):
		return invalidf("commit %q: %s is before %s", name, to, from)
	}
	return nil
}

// ValidateLease checks the arguments of a [Leaser] call, for the
// backends: a context, a projection name and an owner's name. ttl is
// checked when not nil: it must be positive. Anything else fails with an
// error matching [nova.ErrInvalid].
func ValidateLease(ctx context.Context, name, owner string, ttl *time.Duration) error {
	if err := validateCall(ctx, name); err != nil {
		return err
	}
	if err := nova.ValidateStream(owner); err != nil {
		return invalidf("lease on %q: owner: %v", name, err)
	}
	if ttl != nil && *ttl <= 0 {
		return invalidf("lease on %q: ttl %s is not positive", name, *ttl)
	}
	return nil
}

// ValidateTables checks the arguments of a [Rebuilder] Prepare or Swap,
// for the backends: a context and at least one table, each valid by
// [ValidateTable]. Anything else fails with an error matching
// [nova.ErrInvalid].
func ValidateTables(ctx context.Context, tables []string) error {
	if err := validate.Context(ctx); err != nil {
		return invalidf("tables: nil context")
	}
	if len(tables) == 0 {
		return invalidf("no tables")
	}
	for _, t := range tables {
		if err := ValidateTable(t); err != nil {
			return err
		}
	}
	return nil
}

// ValidateSwap checks the arguments of a [Rebuilder] Swap, for the
// backends: those of ValidateTables, and two different projection names.
func ValidateSwap(ctx context.Context, name, shadow string, tables []string) error {
	if err := ValidateTables(ctx, tables); err != nil {
		return err
	}
	if err := errors.Join(validateName(name), validateName(shadow)); err != nil {
		return err
	}
	if name == shadow {
		return invalidf("swap %q: the shadow checkpoint is the projection's own", name)
	}
	return nil
}
