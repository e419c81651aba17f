package novasqlite

import (
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nova-go/nova/internal/validate"
)

// Synchronous is SQLite's durability setting for commits (PRAGMA
// synchronous) in WAL mode.
type Synchronous uint8

const (
	// SyncFull flushes the write-ahead log to stable storage at every commit:
	// an acknowledged append survives a power loss. It is the default.
	SyncFull Synchronous = iota
	// SyncNormal flushes only at checkpoints: an acknowledged append survives a
	// crash of the process but the last commits may be lost on a power
	// loss. The file is never corrupted either way.
	SyncNormal
)

// String returns "FULL" or "NORMAL".
func (s Synchronous) String() string {
	switch s {
	case SyncFull:
		return "FULL"
	case SyncNormal:
		return "NORMAL"
	}
	return "Synchronous(" + strconv.Itoa(int(s)) + ")"
}

// Defaults used for zero fields of [Config].
const (
	DefaultBusyTimeout  = 5 * time.Second
	DefaultMaxReaders   = 4
	DefaultPollInterval = 500 * time.Millisecond
	DefaultMaxGroup     = 128
)

// pageSize is how many rows one read query fetches; reads page through with
// keyset pagination so that no read holds a snapshot open for long.
const pageSize = 512

// Config configures [Open]. The zero value of every field but Path means
// its default.
type Config struct {
	// Path is the database file, created when missing (unless
	// SkipMigrate is set). Required. A plain file path: URIs (file:...)
	// and in-memory databases are refused, since the store's writer and
	// readers are separate connections.
	Path string

	// SkipMigrate makes Open use an existing store only: it creates no
	// file, writes no schema and migrates nothing, and fails with an error
	// matching [ErrSchemaOutdated] when the file is missing, holds no store
	// yet or has migrations pending (run [Migrate], or nova migrate, to
	// create or migrate it). Tools that only read, and deployments that
	// migrate as a separate step, set it. A file that is not a Nova store
	// is refused either way, and left as it was.
	SkipMigrate bool

	// Synchronous is the durability of a commit: [SyncFull] (the default) or
	// [SyncNormal].
	Synchronous Synchronous

	// BusyTimeout is how long a connection waits for a lock held by
	// another process before failing. Default [DefaultBusyTimeout].
	BusyTimeout time.Duration

	// MaxReaders caps the pool of reader connections, opened as needed.
	// Default [DefaultMaxReaders].
	MaxReaders int

	// PollInterval is how often a live subscription looks for events when
	// it has not been woken. In-process appends wake subscriptions at once;
	// polling finds appends made by other processes on the same file.
	// Default [DefaultPollInterval].
	PollInterval time.Duration

	// MaxGroup is the most appends a leader commits in one transaction
	// (group commit). Default [DefaultMaxGroup]. 1 turns group commit off.
	MaxGroup int

	// Logger receives the errors of failed writes, other than conflicts
	// and duplicate events. Default: nothing is logged.
	Logger *slog.Logger
}

// validate checks the fields, naming the wrong one.
func (c Config) validate() error {
	switch {
	case c.Path == "":
		return validate.InvalidFieldf("novasqlite", "Config.Path", "required")
	case c.Path == ":memory:" || strings.HasPrefix(c.Path, "file:"):
		return validate.InvalidFieldf("novasqlite", "Config.Path", "%q: want a plain file path, not a URI or an in-memory database", c.Path)
	case strings.IndexByte(c.Path, 0) >= 0:
		return validate.InvalidFieldf("novasqlite", "Config.Path", "contains a NUL byte")
	case c.Synchronous > SyncNormal:
		return validate.InvalidFieldf("novasqlite", "Config.Synchronous", "unknown value %d: want SyncFull or SyncNormal", c.Synchronous)
	case c.BusyTimeout < 0:
		return validate.InvalidFieldf("novasqlite", "Config.BusyTimeout", "negative duration %s", c.BusyTimeout)
	case c.MaxReaders < 0:
		return validate.InvalidFieldf("novasqlite", "Config.MaxReaders", "negative count %d", c.MaxReaders)
	case c.MaxReaders > 1024:
		return validate.InvalidFieldf("novasqlite", "Config.MaxReaders", "%d is more than the limit of 1024", c.MaxReaders)
	case c.PollInterval < 0:
		return validate.InvalidFieldf("novasqlite", "Config.PollInterval", "negative duration %s", c.PollInterval)
	case c.MaxGroup < 0:
		return validate.InvalidFieldf("novasqlite", "Config.MaxGroup", "negative count %d", c.MaxGroup)
	}
	return nil
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.BusyTimeout == 0 {
		c.BusyTimeout = DefaultBusyTimeout
	}
	if c.MaxReaders == 0 {
		c.MaxReaders = DefaultMaxReaders
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.MaxGroup == 0 {
		c.MaxGroup = DefaultMaxGroup
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Pragmas returns the PRAGMA settings, as "name=value", that every
// connection of a store opened with cfg runs when it opens, in order.
// Zero fields mean their defaults, as in [Open].
//
// Tools that open a store's file with the plain driver use them (or [DSN])
// to get the same durability and locking behaviour as the store.
func Pragmas(cfg Config) []string {
	cfg = cfg.withDefaults()
	return []string{
		"busy_timeout=" + strconv.FormatInt(cfg.BusyTimeout.Milliseconds(), 10),
		"journal_mode=WAL",
		"synchronous=" + cfg.Synchronous.String(),
	}
}

// DSN returns a data source name for the database/sql driver
// github.com/ncruces/go-sqlite3/driver (registered as "sqlite3") that opens
// cfg.Path with [Pragmas](cfg):
//
//	db, err := sql.Open("sqlite3", novasqlite.DSN(cfg))
//
// That driver begins transactions with BEGIN IMMEDIATE, as the store's
// writer does.
func DSN(cfg Config) string {
	q := url.Values{}
	for _, p := range Pragmas(cfg) {
		name, value, _ := strings.Cut(p, "=")
		q.Add("_pragma", name+"("+value+")")
	}
	q.Set("_txlock", "immediate")
	u := url.URL{Scheme: "file", Opaque: (&url.URL{Path: cfg.Path}).EscapedPath(), RawQuery: q.Encode()}
	return u.String()
}
