package main

import (
	"context"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/novapg"
)

// postgresServices returns the services of a PostgreSQL store, in its
// schema.
func postgresServices(store nova.Store, what string) (*services, error) {
	s, ok := store.(*novapg.Store)
	if !ok {
		return nil, errNoServices(store, what)
	}
	runs, err := novapg.NewRunStore(s)
	if err != nil {
		return nil, err
	}
	cps, err := novapg.NewCheckpoints(s)
	if err != nil {
		return nil, err
	}
	return &services{runs: runs, checkpoints: cps, queryStore: func(ctx context.Context, table string) (cqrs.QueryStore, error) {
		return novapg.NewQueryStore(ctx, s, table)
	}}, nil
}
