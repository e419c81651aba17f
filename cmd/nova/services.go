package main

import (
	"context"
	"fmt"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/services"
)

// servicesOf returns the services of store's backend (saga runs,
// checkpoints, query stores), or an error naming the feature, what, that
// needs them.
func servicesOf(store nova.Store, what string) (*services.Services, error) {
	svc, err := services.For(store)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return &svc, nil
}

// openServices opens an existing store and its services, for the feature
// called what. The caller closes the store.
func openServices(ctx context.Context, spec, what string) (nova.Store, *services.Services, error) {
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
