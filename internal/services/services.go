// Package services opens what a store's backend serves beside its events:
// the saga runs table with its outbox, projection checkpoints, snapshots
// and query stores, each on the store's own database so that they share
// its transactions (on JetStream: checkpoints and snapshots only, in
// key-value buckets of the store). It is the one place outside the backends that knows which
// backend serves what; the CLI and the benchmarks use it.
package services

import (
	"context"
	"errors"
	"fmt"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/aggregate"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/novamem"
	"github.com/nova-go/nova/novamysql"
	"github.com/nova-go/nova/novanats"
	"github.com/nova-go/nova/novapg"
	"github.com/nova-go/nova/novasqlite"
	"github.com/nova-go/nova/projection"
	"github.com/nova-go/nova/saga"
)

// ErrEventsOnly is matched by the error [For] returns for a store whose
// backend keeps events only.
var ErrEventsOnly = errors.New("the backend keeps events only: saga runs and checkpoints need a SQLite, PostgreSQL, MySQL or in-memory store")

// ErrNoRuns is matched by the error [Services.NeedRuns] returns for a
// backend that keeps no saga runs (JetStream: see the novanats package
// doc for why).
var ErrNoRuns = errors.New("the backend keeps no saga runs (JetStream has no atomic claim of due runs with their outbox): sagas need a SQLite, PostgreSQL, MySQL or in-memory store")

// ErrNoQueryStore is matched by the error [Services.NeedQueryStore]
// returns for a backend that keeps no read models (JetStream).
var ErrNoQueryStore = errors.New("the backend keeps no read models (JetStream keeps events, snapshots and checkpoints): read models need a SQLite, PostgreSQL, MySQL or in-memory store")

// Services are a store's saga runs, checkpoints, snapshots and query
// stores.
type Services struct {
	// Runs is nil where the backend keeps no saga runs (JetStream).
	Runs        saga.RunStore
	Checkpoints projection.CheckpointStore
	// Snapshots is the backend's snapshot store: the store itself on
	// SQL and in memory, a key-value bucket on JetStream.
	Snapshots aggregate.SnapshotStore
	// QueryStore opens the query store kept in table ("" for the
	// backend's default); the in-memory one ignores the table. It is nil
	// where the backend keeps no read models (JetStream).
	QueryStore func(ctx context.Context, table string) (cqrs.QueryStore, error)
	// Table returns the name of the query store table as
	// projection.Config.Tables takes it for a rebuild: qualified by the
	// store's schema on PostgreSQL, as it is elsewhere (MySQL's is in the
	// connection's database).
	Table func(table string) string
}

// For returns the services of store's backend. A backend that keeps events
// only fails with an error matching [ErrEventsOnly].
func For(store nova.Store) (Services, error) {
	switch s := store.(type) {
	case *novamem.Store:
		runs := novamem.NewRunStore(s)
		return Services{Runs: runs, Checkpoints: projection.NewMemoryCheckpoints(), Snapshots: s,
			QueryStore: func(context.Context, string) (cqrs.QueryStore, error) { return novamem.NewQueryStore(), nil },
			Table:      bare}, nil
	case *novasqlite.Store:
		runs := novasqlite.NewRunStore(s)
		cps := novasqlite.NewCheckpoints(s)
		return Services{Runs: runs, Checkpoints: cps, Snapshots: s, QueryStore: func(ctx context.Context, table string) (cqrs.QueryStore, error) {
			return novasqlite.NewQueryStore(ctx, s, table)
		}, Table: bare}, nil
	case *novapg.Store:
		runs := novapg.NewRunStore(s)
		cps := novapg.NewCheckpoints(s)
		return Services{Runs: runs, Checkpoints: cps, Snapshots: s, QueryStore: func(ctx context.Context, table string) (cqrs.QueryStore, error) {
			return novapg.NewQueryStore(ctx, s, table)
		}, Table: func(table string) string { return s.Schema() + "." + table }}, nil
	case *novamysql.Store:
		runs := novamysql.NewRunStore(s)
		cps := novamysql.NewCheckpoints(s)
		return Services{Runs: runs, Checkpoints: cps, Snapshots: s, QueryStore: func(ctx context.Context, table string) (cqrs.QueryStore, error) {
			return novamysql.NewQueryStore(ctx, s, table)
		}, Table: bare}, nil
	case *novanats.Store:
		// Checkpoints with leases and snapshots in key-value buckets;
		// no saga runs and no read models: see the package doc of
		// novanats.
		return Services{Checkpoints: novanats.NewCheckpoints(s), Snapshots: novanats.NewSnapshots(s), Table: bare}, nil
	}
	return Services{}, fmt.Errorf("%w (a %T)", ErrEventsOnly, store)
}

// NeedRuns fails with an error matching [ErrNoRuns] when the backend
// keeps no saga runs.
func (s *Services) NeedRuns() error {
	if s.Runs == nil {
		return ErrNoRuns
	}
	return nil
}

// NeedQueryStore fails with an error matching [ErrNoQueryStore] when the
// backend keeps no read models.
func (s *Services) NeedQueryStore() error {
	if s.QueryStore == nil {
		return ErrNoQueryStore
	}
	return nil
}

func bare(table string) string { return table }
