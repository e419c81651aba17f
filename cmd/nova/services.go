package main

import (
	"context"
	"fmt"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/novamem"
	"github.com/nova-go/nova/novasqlite"
	"github.com/nova-go/nova/projection"
	"github.com/nova-go/nova/saga"
)

// services are what a store's backend serves beside the events: the saga
// runs table and its outbox, projection checkpoints, and query stores,
// each on the store's own database so that they share its transactions.
type services struct {
	runs        saga.RunStore
	checkpoints projection.CheckpointStore
	queryStore  func(ctx context.Context, table string) (cqrs.QueryStore, error)
}

// errNoServices says a backend keeps events only.
func errNoServices(store nova.Store, what string) error {
	return fmt.Errorf("%s need a SQLite, PostgreSQL or in-memory store; a %T keeps events only", what, store)
}

// servicesOf returns the services of store's backend, or an error naming
// what is missing, for the feature called what.
func servicesOf(store nova.Store, what string) (*services, error) {
	switch s := store.(type) {
	case *novasqlite.Store:
		runs, err := novasqlite.NewRunStore(s)
		if err != nil {
			return nil, err
		}
		cps, err := novasqlite.NewCheckpoints(s)
		if err != nil {
			return nil, err
		}
		return &services{runs: runs, checkpoints: cps, queryStore: func(ctx context.Context, table string) (cqrs.QueryStore, error) {
			return novasqlite.NewQueryStore(ctx, s, table)
		}}, nil
	case *novamem.Store:
		return &services{runs: novamem.NewRunStore(s), checkpoints: projection.NewMemoryCheckpoints(), queryStore: func(context.Context, string) (cqrs.QueryStore, error) {
			return novamem.NewQueryStore(), nil
		}}, nil
	}
	return postgresServices(store, what)
}

// openServices opens an existing store and its services, for the feature
// called what. The caller closes the store.
func openServices(ctx context.Context, spec, what string) (nova.Store, *services, error) {
	store, err := openExistingStore(ctx, spec)
	if err != nil {
		return nil, nil, err
	}
	svc, err := servicesOf(store, what)
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	return store, svc, nil
}
