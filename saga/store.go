package saga

import (
	"context"
	"errors"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
)

// ErrLeaseLost is matched by the error a [RunStore] returns when a worker
// writes to a run, or renews its lease, after the lease has expired or
// passed to another worker. The write changed nothing; the worker must
// stop working on the run.
var ErrLeaseLost = errors.New("saga: lease lost")

// RunInfo is one row of the runs table: where a run stands, when a worker
// should next act on it and who holds it. It is a projection of the run's
// stream, written in the transaction of each transition, so the two never
// disagree.
type RunInfo struct {
	Saga  string
	RunID string
	// Status is the run's status after its last transition.
	Status Status
	// Version is the run stream's version after its last transition.
	Version uint64
	// Step and Attempt are the step (or compensation) the run is at, and
	// its attempt; Error is the last attempt's error, if it failed.
	Step    string
	Attempt int
	Error   string
	// DueAt is when a worker should take the run's next action: now for a
	// run ready to go on, later for a retry waiting out its backoff, zero
	// for a run no worker should pick up (terminal or Stuck).
	DueAt time.Time
	// DeadlineAt, when set, is when the saga's overall timeout ends.
	DeadlineAt time.Time
	// LeaseOwner holds the run until LeaseUntil; empty when free.
	LeaseOwner string
	LeaseUntil time.Time
	// CreatedAt and UpdatedAt are when the run started and when its last
	// transition was recorded.
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Transition is one atomic write to a run: events appended to its stream
// at the expected version, its runs-table row replaced by Run, and
// lifecycle envelopes put in the outbox. The coordinator builds it and
// [RunStore.Record] writes it; applications have no use for one.
type Transition struct {
	// Stream is the run's stream, [StreamName] of Run.Saga and Run.RunID;
	// for a run an older version recorded, the "saga-{saga}-{run}" it
	// named the stream, written only at an expected version that needs
	// the stream to exist (see the package doc).
	Stream string
	// Expected is the stream's version the events follow: the fence that
	// keeps a stale worker out.
	Expected nova.ExpectedVersion
	Events   []nova.EventData
	// Run is the row after the transition. Its Version is set by the store
	// from the append; its lease fields are ignored (see Owner).
	Run RunInfo
	// Owner, when not empty, is the worker writing under its lease: the
	// write fails with [ErrLeaseLost] unless Owner holds an unexpired lease
	// on the run (by the store's Now), and keeps the lease as it is. A
	// transition that creates the run (no row yet) creates it leased to
	// Owner until now + Lease. Empty writes with no lease check and clears
	// the lease (an operator action).
	Owner string
	Lease time.Duration
	// Outbox holds the lifecycle envelopes of the transition, relayed to
	// the broker after commit.
	Outbox []broker.Envelope
}

// ClaimRequest asks [RunStore.Claim] for due runs. Workers build it;
// applications have no use for one.
type ClaimRequest struct {
	// Owner is the claiming worker's ID, unique per worker process.
	Owner string
	// Sagas limits the claim to the sagas the worker has definitions for.
	// Required.
	Sagas []string
	// Lease is how long the claim holds without renewal.
	Lease time.Duration
	// Limit is the most runs claimed; at least 1.
	Limit int
}

// RunFilter selects runs to list.
type RunFilter struct {
	// Saga and Status, when set, keep only runs of that saga or status.
	Saga   string
	Status Status
	// After lists runs after this (saga, run ID) in that order, for
	// paging; zero starts at the first.
	AfterSaga, AfterRun string
	// Limit is the most runs returned; 0 means 100, at most 1000.
	Limit int
}

// RunStore keeps durable runs: their streams, the runs table and the
// outbox, on one database so that a transition writes all three in one
// transaction. novamem, novasqlite and novapg implement it, and
// novatest.RunSagaStore is its conformance suite.
//
// Times are the store's clock ([RunStore.Now]) so that every worker on the
// database agrees on leases and due times.
type RunStore interface {
	// Events is the event store holding the runs' streams.
	Events() nova.Store
	// Record writes t atomically. A stream at another version fails with
	// an error matching [nova.ErrConcurrency], a lost lease with
	// [ErrLeaseLost]; either way nothing is written.
	Record(ctx context.Context, t Transition) (RunInfo, error)
	// Claim leases up to r.Limit runs of r.Sagas that are due (DueAt set
	// and not after now) and not leased (no owner, or a lease expired), the
	// earliest due first, to r.Owner until now + r.Lease. Two concurrent
	// claims never get the same run.
	Claim(ctx context.Context, r ClaimRequest) ([]RunInfo, error)
	// Renew extends owner's lease on a run to now + lease, or fails with
	// [ErrLeaseLost].
	Renew(ctx context.Context, saga, runID, owner string, lease time.Duration) error
	// Release frees owner's lease on a run, keeping its due time; a lease
	// owner no longer holds is left alone.
	Release(ctx context.Context, saga, runID, owner string) error
	// Get returns a run's row, or an error matching [nova.ErrNotFound].
	Get(ctx context.Context, saga, runID string) (RunInfo, error)
	// List returns runs ordered by (saga, run ID).
	List(ctx context.Context, f RunFilter) ([]RunInfo, error)
	// Count returns the number of runs per status.
	Count(ctx context.Context, saga string) (map[Status]int, error)
	// Outbox is where Record puts lifecycle envelopes.
	Outbox() broker.Outbox
	// Now is the store's clock.
	Now(ctx context.Context) (time.Time, error)
}
