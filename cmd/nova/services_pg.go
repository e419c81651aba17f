package main

import (
	"github.com/nova-go/nova"
)

// postgresServices returns the services of a PostgreSQL store.
func postgresServices(store nova.Store, what string) (*services, error) {
	return nil, errNoServices(store, what)
}
