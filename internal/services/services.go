// Package services opens what a store's backend serves beside its events:
// the saga runs table with its outbox, projection checkpoints and query
// stores, each on the store's own database so that they share its
// transactions. It is the one place outside the backends that knows which
// backend serves what; the CLI and the benchmarks use it.
package services

import (
	"context"
	"errors"
	"fmt"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/novamem"
	"github.com/nova-go/nova/novamysql"
	"github.com/nova-go/nova/novapg"
	"github.com/nova-go/nova/novasqlite"
	"github.com/nova-go/nova/projection"
	"github.com/nova-go/nova/saga"
)

// ErrEventsOnly is matched by the error [For] returns for a store whose
// backend keeps events only (JetStream).
var ErrEventsOnly = errors.New("the backend keeps events only: saga runs and checkpoints need a SQLite, PostgreSQL, MySQL or in-memory store")

// Services are a store's saga runs, checkpoints and query stores.
type Services struct {
	Runs        saga.RunStore
	Checkpoints projection.CheckpointStore
	// QueryStore opens the query store kept in table ("" for the
	// backend's default); the in-memory one ignores the table.
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
		return Services{Runs: runs, Checkpoints: projection.NewMemoryCheckpoints(),
			QueryStore: func(context.Context, string) (cqrs.QueryStore, error) { return novamem.NewQueryStore(), nil },
			Table:      bare}, nil
	case *novasqlite.Store:
		runs := novasqlite.NewRunStore(s)
		cps := novasqlite.NewCheckpoints(s)
		return Services{Runs: runs, Checkpoints: cps, QueryStore: func(ctx context.Context, table string) (cqrs.QueryStore, error) {
			return novasqlite.NewQueryStore(ctx, s, table)
		}, Table: bare}, nil
	case *novapg.Store:
		runs := novapg.NewRunStore(s)
		cps := novapg.NewCheckpoints(s)
		return Services{Runs: runs, Checkpoints: cps, QueryStore: func(ctx context.Context, table string) (cqrs.QueryStore, error) {
			return novapg.NewQueryStore(ctx, s, table)
		}, Table: func(table string) string { return s.Schema() + "." + table }}, nil
	case *novamysql.Store:
		runs := novamysql.NewRunStore(s)
		cps := novamysql.NewCheckpoints(s)
		return Services{Runs: runs, Checkpoints: cps, QueryStore: func(ctx context.Context, table string) (cqrs.QueryStore, error) {
			return novamysql.NewQueryStore(ctx, s, table)
		}, Table: bare}, nil
	}
	return Services{}, fmt.Errorf("%w (a %T)", ErrEventsOnly, store)
}

func bare(table string) string { return table }
