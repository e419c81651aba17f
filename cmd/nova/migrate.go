package main

import (
	"context"
	"encoding/json"
	"fmt"
)

func migrateCommand() *command {
	return &command{
		name:     "migrate",
		summary:  "create or migrate the store's schema and report its version",
		usage:    "[--store PATH|URL] [--json]",
		jsonHelp: "print the result as one JSON object: {backend, store, version}",
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 0 {
				return usagef("migrate takes no arguments, got %q", args)
			}
			b, err := parseStore(e.store)
			if err != nil {
				return err
			}
			v, err := b.migrate(ctx, e.store)
			if err != nil {
				return fmt.Errorf("%s store %s: %w", b.name, redact(e.store), err)
			}
			if e.json {
				return json.NewEncoder(e.stdout).Encode(struct {
					Backend string `json:"backend"`
					Store   string `json:"store"`
					Version int    `json:"version"`
				}{b.name, redact(e.store), v})
			}
			fmt.Fprintf(e.stdout, "%s store %s is at schema version %d\n", b.name, redact(e.store), v)
			return nil
		},
	}
}
