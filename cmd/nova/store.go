package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"slices"
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
	// check reads a --store value strictly, without connecting.
	check func(spec string) error
	// open opens the store. With create it creates or migrates the
	// store's schema; without, it opens an existing store only and
	// creates and migrates nothing (the backends' SkipMigrate).
	open func(ctx context.Context, spec string, create bool) (nova.Store, error)
	// migrate creates or migrates the schema and returns its version.
	migrate func(ctx context.Context, spec string) (int, error)
	// notCreated reports whether an error of open without create means
	// there is no store, or one that needs migrating.
	notCreated func(err error) bool
	// persistent is false for the in-memory store.
	persistent bool
}

var (
	sqliteBackend = &backend{
		name:       "sqlite",
		persistent: true,
		check:      func(string) error { return nil },
		open: func(ctx context.Context, path string, create bool) (nova.Store, error) {
			return novasqlite.Open(ctx, novasqlite.Config{Path: path, SkipMigrate: !create})
		},
		migrate: func(ctx context.Context, path string) (int, error) {
			return novasqlite.Migrate(ctx, novasqlite.Config{Path: path})
		},
		notCreated: func(err error) bool { return errors.Is(err, novasqlite.ErrSchemaOutdated) },
	}
	memoryBackend = &backend{
		name:  "memory",
		check: func(string) error { return nil },
		open:  func(context.Context, string, bool) (nova.Store, error) { return novamem.New(novamem.Config{}) },
		migrate: func(context.Context, string) (int, error) {
			return 0, errors.New("the in-memory store has no schema to migrate")
		},
		notCreated: func(error) bool { return false },
	}
	mysqlBackend = &backend{
		name:       "mysql",
		schemes:    []string{"mysql"},
		persistent: true,
		check: func(spec string) error {
			_, err := novamysql.ParseURL(spec)
			return err
		},
		open: func(ctx context.Context, url string, create bool) (nova.Store, error) {
			return novamysql.Open(ctx, novamysql.Config{DSN: url, SkipMigrate: !create})
		},
		migrate: func(ctx context.Context, url string) (int, error) {
			return novamysql.Migrate(ctx, novamysql.Config{DSN: url})
		},
		notCreated: func(err error) bool { return errors.Is(err, novamysql.ErrSchemaOutdated) },
	}
	postgresBackend = &backend{
		name:       "postgres",
		schemes:    []string{"postgres", "postgresql"},
		persistent: true,
		check: func(spec string) error {
			_, err := novapg.ParseURL(spec)
			return err
		},
		open: func(ctx context.Context, spec string, create bool) (nova.Store, error) {
			cfg, err := novapg.ParseURL(spec)
			if err != nil {
				return nil, err
			}
			cfg.SkipMigrate = !create
			return novapg.Open(ctx, cfg)
		},
		migrate: func(ctx context.Context, spec string) (int, error) {
			cfg, err := novapg.ParseURL(spec)
			if err != nil {
				return 0, err
			}
			return novapg.Migrate(ctx, cfg)
		},
		notCreated: func(err error) bool { return errors.Is(err, novapg.ErrSchemaOutdated) },
	}
	natsBackend = &backend{
		name:       "nats",
		schemes:    []string{"nats"},
		persistent: true,
		check: func(spec string) error {
			// novanats.ParseURL ignores unknown parameters: refuse them here.
			if err := knownParams(spec, natsParams); err != nil {
				return err
			}
			_, err := novanats.ParseURL(spec)
			return err
		},
		open: func(ctx context.Context, spec string, create bool) (nova.Store, error) {
			cfg, err := novanats.ParseURL(spec)
			if err != nil {
				return nil, err
			}
			cfg.SkipMigrate = !create
			return novanats.Open(ctx, cfg)
		},
		migrate: func(ctx context.Context, spec string) (int, error) {
			cfg, err := novanats.ParseURL(spec)
			if err != nil {
				return 0, err
			}
			return novanats.Migrate(ctx, cfg)
		},
		notCreated: func(err error) bool { return errors.Is(err, novanats.ErrFormatOutdated) },
	}
)

// natsParams are the query parameters of a nats:// store URL (see
// novanats.ParseURL).
var natsParams = []string{"prefix", "replicas", "storage", "stream"}

// serverBackends are the backends selected by a URL scheme.
var serverBackends = []*backend{postgresBackend, mysqlBackend, natsBackend}

// parseStore says which backend a --store value names: a URL of a server
// backend, "memory:", or else a SQLite file path. A URL is read strictly
// (see checkURL and the backends' ParseURL): what is wrong with it is bad
// usage, reported without its password.
func parseStore(spec string) (*backend, error) {
	switch {
	case spec == "":
		return nil, usagef("--store is empty: give a SQLite file path, a server URL or %q", memorySpec)
	case spec == memorySpec:
		return memoryBackend, nil
	case strings.Contains(spec, "://"):
		scheme, _, _ := strings.Cut(spec, "://")
		var known []string
		var b *backend
		for _, sb := range serverBackends {
			for _, s := range sb.schemes {
				if strings.EqualFold(s, scheme) {
					b = sb
				}
				known = append(known, s+"://")
			}
		}
		if b == nil {
			return nil, usagef("--store %s: unknown scheme %q: give a SQLite file path, %q, or a URL starting with %s",
				redact(spec), scheme, memorySpec, strings.Join(known, ", "))
		}
		if err := checkURL(spec); err != nil {
			return nil, usagef("--store %s: %v", redact(spec), hideSecrets(err.Error(), spec))
		}
		if err := b.check(spec); err != nil {
			return nil, usagef("--store %s: %v", redact(spec), hideSecrets(err.Error(), spec))
		}
		return b, nil
	case strings.IndexByte(spec, 0) >= 0:
		return nil, usagef("--store %q: a file path cannot hold a NUL byte", spec)
	}
	return sqliteBackend, nil
}

// checkURL refuses what no store URL may hold, whatever its backend: a
// query that is not key=value pairs joined by '&' (url.Values.Get would
// silently drop what follows a ';'), a repeated parameter, a fragment.
func checkURL(spec string) error {
	u, err := url.Parse(spec)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold a password
		}
		return fmt.Errorf("not a URL: %v", err)
	}
	if u.Host == "" {
		return errors.New("the URL names no server (want SCHEME://[user[:password]@]host[:port]/...)")
	}
	if u.Fragment != "" || strings.HasSuffix(spec, "#") {
		return errors.New("a store URL has no fragment (#...)")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return fmt.Errorf("query: %v: join parameters with '&'", err)
	}
	for _, k := range slices.Sorted(maps.Keys(q)) {
		if len(q[k]) > 1 {
			return fmt.Errorf("parameter %q is given twice", k)
		}
	}
	return nil
}

// knownParams refuses a query parameter of spec that is not in known.
func knownParams(spec string, known []string) error {
	u, err := url.Parse(spec)
	if err != nil {
		return checkURL(spec)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return checkURL(spec)
	}
	for _, k := range slices.Sorted(maps.Keys(q)) {
		if !slices.Contains(known, k) {
			return fmt.Errorf("unknown parameter %q: want one of %s", k, strings.Join(known, ", "))
		}
	}
	return nil
}

// openStore opens the store named by spec, creating a SQLite file, or a
// server backend's schema, if it does not exist, and migrating it. Only
// the commands that create (demo, migrate) call it.
func openStore(ctx context.Context, spec string) (nova.Store, error) {
	b, err := parseStore(spec)
	if err != nil {
		return nil, err
	}
	s, err := b.open(ctx, spec, true)
	if err != nil {
		return nil, fmt.Errorf("open %s store %s: %w", b.name, redact(spec), err)
	}
	return s, nil
}

// openExistingStore opens an existing store and creates, migrates and
// writes nothing: a mistyped path or schema, another program's database,
// or a store that needs migrating fails with a message that names what
// was looked for and how to create it.
func openExistingStore(ctx context.Context, spec string) (nova.Store, error) {
	b, err := parseStore(spec)
	if err != nil {
		return nil, err
	}
	s, err := b.open(ctx, spec, false)
	switch {
	case err == nil:
		return s, nil
	case b.notCreated(err):
		q := shellQuote(redact(spec))
		return nil, fmt.Errorf("no Nova store at %s: %w\n  create one with:  nova migrate --store %s\n  or fill one with the demo's orders:  nova demo --store %s",
			redact(spec), err, q, q)
	case errors.Is(err, novasqlite.ErrNotDatabase):
		return nil, fmt.Errorf("%s is not a Nova store, leaving it alone: %w", spec, err)
	}
	return nil, fmt.Errorf("open %s store %s: %w", b.name, redact(spec), err)
}

// redact hides the password of a URL-like store value before it is
// printed: "postgres://bob:xxxxx@db/x". Everything the tool prints goes
// through it, or through hideSecrets, which hides the same password
// wherever it appears in a text.
func redact(spec string) string {
	scheme, rest, ok := strings.Cut(spec, "://")
	if !ok {
		return spec
	}
	// The userinfo ends at the last '@' before the path, query or fragment.
	authority := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority = rest[:i]
	}
	at := strings.LastIndexByte(authority, '@')
	if at < 0 {
		return spec
	}
	userinfo := authority[:at]
	user, _, hasPass := strings.Cut(userinfo, ":")
	if !hasPass {
		return spec
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}

// secrets returns the password of a store URL in the forms a message may
// show it in (as written, percent-decoded and query-escaped), each with
// what replaces it, or nil. A password shorter than 4 bytes is hidden
// only where it follows a user name, lest every such string go.
func secrets(spec string) (pairs []string) {
	_, rest, ok := strings.Cut(spec, "://")
	if !ok {
		return nil
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return nil
	}
	_, pass, ok := strings.Cut(rest[:at], ":")
	if !ok || pass == "" {
		return nil
	}
	forms := []string{pass}
	if dec, err := url.PathUnescape(pass); err == nil && dec != pass {
		forms = append(forms, dec)
	}
	if enc := url.QueryEscape(pass); enc != pass {
		forms = append(forms, enc)
	}
	for _, f := range forms {
		if len(f) < 4 {
			pairs = append(pairs, ":"+f+"@", ":xxxxx@")
		} else {
			pairs = append(pairs, f, "xxxxx")
		}
	}
	return pairs
}

// hideSecrets replaces the password of spec, wherever it appears in text,
// by xxxxx: drivers' errors and logs may quote a connection string.
func hideSecrets(text, spec string) string {
	if pairs := secrets(spec); len(pairs) > 0 {
		text = strings.NewReplacer(pairs...).Replace(text)
	}
	return text
}

// secretWriter writes through to w with the password of a store URL
// hidden (see hideSecrets). Messages are written whole (fmt, slog), so a
// password is never split across two writes.
type secretWriter struct {
	w    io.Writer
	spec string
}

func (s secretWriter) Write(p []byte) (int, error) {
	text := hideSecrets(string(p), s.spec)
	if _, err := io.WriteString(s.w, text); err != nil {
		return 0, err
	}
	return len(p), nil
}

// hidingSecrets returns w, or w wrapped so that it never shows the
// password of spec.
func hidingSecrets(w io.Writer, spec string) io.Writer {
	if len(secrets(spec)) == 0 {
		return w
	}
	return secretWriter{w: w, spec: spec}
}
