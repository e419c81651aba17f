package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novamem"
	"github.com/nova-go/nova/novasqlite"
)

// memorySpec selects the in-memory store: nothing is kept after the command.
const memorySpec = "memory:"

// storeKind says what a --store value names.
type storeKind int

const (
	kindSQLite storeKind = iota
	kindMemory
)

// parseStore classifies a --store value: a SQLite file path or "memory:".
// URLs of server backends are refused with a clear message until this build
// has them.
func parseStore(spec string) (storeKind, string, error) {
	switch {
	case spec == "":
		return 0, "", usagef("--store is empty: give a SQLite file path or %q", memorySpec)
	case spec == memorySpec:
		return kindMemory, "", nil
	case strings.Contains(spec, "://"):
		scheme, _, _ := strings.Cut(spec, "://")
		return 0, "", usagef("--store %s: %q stores are not supported by this build; give a SQLite file path or %q", redact(spec), scheme, memorySpec)
	}
	return kindSQLite, spec, nil
}

// openStore opens the store named by spec, creating a SQLite file if it
// does not exist.
func openStore(ctx context.Context, spec string) (nova.Store, error) {
	kind, path, err := parseStore(spec)
	if err != nil {
		return nil, err
	}
	if kind == kindMemory {
		return novamem.New(nil)
	}
	return novasqlite.Open(ctx, novasqlite.Config{Path: path})
}

// openExistingStore opens a store that must already exist: commands that
// only read never create a file because of a mistyped path.
func openExistingStore(ctx context.Context, spec string) (nova.Store, error) {
	kind, path, err := parseStore(spec)
	if err != nil {
		return nil, err
	}
	if kind == kindSQLite {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("store %s does not exist (run 'nova demo --store %s' to create one)", path, path)
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
	userinfo, host, ok := strings.Cut(rest, "@")
	if !ok {
		return spec
	}
	if user, _, hasPass := strings.Cut(userinfo, ":"); hasPass {
		return scheme + "://" + user + ":xxxxx@" + host
	}
	return spec
}
