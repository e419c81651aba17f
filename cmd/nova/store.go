package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novamem"
	"github.com/nova-go/nova/novamysql"
	"github.com/nova-go/nova/novanats"
	"github.com/nova-go/nova/novapg"
	"github.com/nova-go/nova/novasqlite"
)

// memorySpec selects the in-memory store: nothing is kept after the command.
const memorySpec = "memory:"

// backend is one kind of store a --store value can name.
type backend struct {
	// name is the backend's name in messages and benchmark results.
	name string
	// schemes are the URL schemes that select it; none for SQLite paths.
	schemes []string
	// open opens the store, creating or migrating its schema.
	open func(ctx context.Context, spec string) (nova.Store, error)
	// migrate applies the schema migrations and returns the schema version.
	migrate func(ctx context.Context, spec string) (int, error)
	// persistent is false for the in-memory store.
	persistent bool
}

var (
	sqliteBackend = &backend{
		name:       "sqlite",
		persistent: true,
		open: func(ctx context.Context, path string) (nova.Store, error) {
			return novasqlite.Open(ctx, novasqlite.Config{Path: path})
		},
		migrate: func(ctx context.Context, path string) (int, error) {
			s, err := novasqlite.Open(ctx, novasqlite.Config{Path: path})
			if err != nil {
				return 0, err
			}
			return novasqlite.SchemaVersion, s.Close()
		},
	}
	memoryBackend = &backend{
		name: "memory",
		open: func(context.Context, string) (nova.Store, error) { return novamem.New(nil) },
		migrate: func(context.Context, string) (int, error) {
			return 0, errors.New("the in-memory store has no schema to migrate")
		},
	}
	mysqlBackend = &backend{
		name:       "mysql",
		schemes:    []string{"mysql"},
		persistent: true,
		open: func(ctx context.Context, url string) (nova.Store, error) {
			return novamysql.Open(ctx, novamysql.Config{DSN: url})
		},
		migrate: func(ctx context.Context, url string) (int, error) {
			return novamysql.Migrate(ctx, novamysql.Config{DSN: url})
		},
	}

	postgresBackend = &backend{
		name:       "postgres",
		schemes:    []string{"postgres", "postgresql"},
		persistent: true,
		open: func(ctx context.Context, spec string) (nova.Store, error) {
			cfg, err := postgresConfig(spec)
			if err != nil {
				return nil, err
			}
			return novapg.Open(ctx, cfg)
		},
		migrate: func(ctx context.Context, spec string) (int, error) {
			cfg, err := postgresConfig(spec)
			if err != nil {
				return 0, err
			}
			return novapg.Migrate(ctx, cfg)
		},
	}
	natsBackend = &backend{
		name:       "nats",
		schemes:    []string{"nats"},
		persistent: true,
		open: func(ctx context.Context, spec string) (nova.Store, error) {
			cfg, err := novanats.ParseURL(spec)
			if err != nil {
				return nil, err
			}
			return novanats.Open(ctx, cfg)
		},
		migrate: func(ctx context.Context, spec string) (int, error) {
			cfg, err := novanats.ParseURL(spec)
			if err != nil {
				return 0, err
			}
			return novanats.Migrate(ctx, cfg)
		},
	}
)

// serverBackends are the backends selected by a URL scheme.
var serverBackends = []*backend{postgresBackend, mysqlBackend, natsBackend}

// postgresConfig reads a postgres:// URL. Its optional "schema" parameter
// names the PostgreSQL schema holding the store (default "nova"); the other
// parameters are the driver's.
func postgresConfig(spec string) (novapg.Config, error) {
	u, err := url.Parse(spec)
	if err != nil {
		return novapg.Config{}, usagef("--store %s: %v", redact(spec), err)
	}
	q := u.Query()
	schema := q.Get("schema")
	q.Del("schema")
	u.RawQuery = q.Encode()
	return novapg.Config{URL: u.String(), Schema: schema}, nil
}

// parseStore says which backend a --store value names: a URL of a server
// backend, "memory:", or else a SQLite file path.
func parseStore(spec string) (*backend, error) {
	switch {
	case spec == "":
		return nil, usagef("--store is empty: give a SQLite file path, a server URL or %q", memorySpec)
	case spec == memorySpec:
		return memoryBackend, nil
	case strings.Contains(spec, "://"):
		scheme, _, _ := strings.Cut(spec, "://")
		var known []string
		for _, b := range serverBackends {
			for _, s := range b.schemes {
				if strings.EqualFold(s, scheme) {
					return b, nil
				}
				known = append(known, s+"://")
			}
		}
		return nil, usagef("--store %s: unknown scheme %q: give a SQLite file path, %q, or a URL starting with %s",
			redact(spec), scheme, memorySpec, strings.Join(known, ", "))
	}
	return sqliteBackend, nil
}

// openStore opens the store named by spec, creating a SQLite file, or a
// server backend's schema, if it does not exist.
func openStore(ctx context.Context, spec string) (nova.Store, error) {
	b, err := parseStore(spec)
	if err != nil {
		return nil, err
	}
	s, err := b.open(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("open %s store %s: %w", b.name, redact(spec), err)
	}
	return s, nil
}

// openExistingStore opens a store for reading: a SQLite file must already
// exist, so a mistyped path does not create one.
func openExistingStore(ctx context.Context, spec string) (nova.Store, error) {
	b, err := parseStore(spec)
	if err != nil {
		return nil, err
	}
	if b == sqliteBackend {
		if _, err := os.Stat(spec); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("store %s does not exist (run 'nova demo --store %s' to create one)", spec, spec)
		}
	}
	return openStore(ctx, spec)
}

// redact hides a password in a URL-like store value before it is printed.
func redact(spec string) string {
	scheme, rest, ok := strings.Cut(spec, "://")
	if !ok {
		return spec
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return spec
	}
	userinfo, host := rest[:at], rest[at+1:]
	if user, _, hasPass := strings.Cut(userinfo, ":"); hasPass {
		return scheme + "://" + user + ":xxxxx@" + host
	}
	return spec
}
