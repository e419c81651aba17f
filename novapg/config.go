package novapg

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nova-go/nova/internal/validate"
)

// Defaults used for zero fields of [Config].
const (
	DefaultSchema         = "nova"
	DefaultPollInterval   = 500 * time.Millisecond
	DefaultNotifyCoalesce = 5 * time.Millisecond
	DefaultPageSize       = 1000
	DefaultMaxGroup       = 128
	DefaultWriters        = 2
)

// MaxPageSize is the largest [Config.PageSize].
const MaxPageSize = 100_000

// maxSchemaLen keeps the schema name, and the notification channel named
// after it, within PostgreSQL's 63-byte identifiers.
const maxSchemaLen = 48

// Config configures [Open] and [Migrate]. Exactly one of URL and Pool is
// required; the zero value of every other field means its default.
type Config struct {
	// URL is a PostgreSQL connection string, as pgxpool.ParseConfig reads
	// it ("postgres://user@host:5432/db?sslmode=disable&pool_max_conns=8",
	// or the key=value form). The store creates a pool from it and closes
	// the pool on Close. pool_max_conns sets the pool's size (pgxpool's
	// default is 4, or the number of CPUs if more). Appends commit in
	// groups on at most [Config.Writers] connections at a time (see the
	// package documentation); the others serve reads and [Store.AppendTx].
	URL string

	// Pool is a pool the caller owns, used instead of URL: the store never
	// closes it. The store opens one more connection with the pool's
	// settings, outside the pool, to LISTEN for appends.
	Pool *pgxpool.Pool

	// Schema is the PostgreSQL schema holding the store's tables, created
	// when missing (unless SkipMigrate is set). Several stores can share a database, each in its own
	// schema. A lower-case identifier: a letter or underscore, then
	// letters, digits or underscores, at most 48 bytes. Default
	// [DefaultSchema].
	Schema string

	// PollInterval is how long a live subscription waits for a
	// notification before it looks for new events anyway. Notifications
	// wake subscriptions at once; polling finds events whose notification
	// was lost (a dropped connection) or never sent (a transaction of
	// AppendTx whose caller did not call Notify). Default
	// [DefaultPollInterval].
	PollInterval time.Duration

	// NotifyCoalesce is the shortest time between two notifications this
	// store sends: the appends committed meanwhile share the next one.
	// Default [DefaultNotifyCoalesce].
	NotifyCoalesce time.Duration

	// PageSize is how many events one read query fetches. Default
	// [DefaultPageSize], at most [MaxPageSize].
	PageSize int

	// MaxGroup is the most appends of [Store.Append] committed in one
	// transaction (group commit; see the package documentation). Default
	// [DefaultMaxGroup], at most 10,000. 1 turns group commit off: every
	// append is then a transaction of its own.
	MaxGroup int

	// Writers is how many groups of appends may commit at a time, each on
	// a connection of the pool: while one group's commit is flushed to
	// disk, the next group's statements run. Default [DefaultWriters], at
	// most 64. The pool needs at least as many connections, besides those
	// of readers.
	Writers int

	// SkipMigrate makes Open use an existing store only: it checks the
	// schema's version instead of creating or migrating the schema, for
	// tools that only read and for deployments that run [Migrate] (nova
	// migrate) as a separate step with other privileges. Open then fails
	// with an error matching [ErrSchemaOutdated] when the schema is
	// missing (a mistyped name), holds no store or has migrations pending,
	// and creates nothing.
	SkipMigrate bool

	// Logger receives the errors of the store's background work (the
	// listener's reconnections, failed notifications). Default: nothing
	// is logged.
	Logger *slog.Logger
}

// validate checks the fields, naming the wrong one.
func (c Config) validate() error {
	switch {
	case c.URL == "" && c.Pool == nil:
		return validate.InvalidFieldf("novapg", "Config.URL", "one of URL and Pool is required")
	case c.URL != "" && c.Pool != nil:
		return validate.InvalidFieldf("novapg", "Config.URL", "set either URL or Pool, not both")
	case c.PollInterval < 0:
		return validate.InvalidFieldf("novapg", "Config.PollInterval", "negative duration %s", c.PollInterval)
	case c.NotifyCoalesce < 0:
		return validate.InvalidFieldf("novapg", "Config.NotifyCoalesce", "negative duration %s", c.NotifyCoalesce)
	case c.PageSize < 0:
		return validate.InvalidFieldf("novapg", "Config.PageSize", "negative size %d", c.PageSize)
	case c.PageSize > MaxPageSize:
		return validate.InvalidFieldf("novapg", "Config.PageSize", "%d is more than the limit of %d", c.PageSize, MaxPageSize)
	case c.MaxGroup < 0:
		return validate.InvalidFieldf("novapg", "Config.MaxGroup", "negative count %d", c.MaxGroup)
	case c.MaxGroup > 10_000:
		return validate.InvalidFieldf("novapg", "Config.MaxGroup", "%d is more than the limit of 10000", c.MaxGroup)
	case c.Writers < 0:
		return validate.InvalidFieldf("novapg", "Config.Writers", "negative count %d", c.Writers)
	case c.Writers > 64:
		return validate.InvalidFieldf("novapg", "Config.Writers", "%d is more than the limit of 64", c.Writers)
	}
	if c.Schema != "" {
		if err := validSchema(c.Schema); err != "" {
			return validate.InvalidFieldf("novapg", "Config.Schema", "%s", err)
		}
	}
	return nil
}

// validSchema returns what is wrong with a schema name, or "".
func validSchema(s string) string {
	if len(s) > maxSchemaLen {
		return fmt.Sprintf("%q is longer than %d bytes", s, maxSchemaLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c == '_':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return fmt.Sprintf("%q: want a lower-case identifier (a-z or _, then a-z, 0-9 or _)", s)
		}
	}
	if s == "pg_catalog" || s == "information_schema" || len(s) >= 3 && s[:3] == "pg_" {
		return fmt.Sprintf("%q is reserved by PostgreSQL", s)
	}
	return ""
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Schema == "" {
		c.Schema = DefaultSchema
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.NotifyCoalesce == 0 {
		c.NotifyCoalesce = DefaultNotifyCoalesce
	}
	if c.PageSize == 0 {
		c.PageSize = DefaultPageSize
	}
	if c.MaxGroup == 0 {
		c.MaxGroup = DefaultMaxGroup
	}
	if c.Writers == 0 {
		c.Writers = DefaultWriters
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// URLParams are the query parameters [ParseURL] accepts: schema, which
// names the store's schema, then those of the driver (pgconn, pgx and
// pgxpool). Server settings go in options ("options=-c%20statement_timeout=5s").
var URLParams = []string{
	"schema",
	"application_name", "channel_binding", "connect_timeout", "database", "default_query_exec_mode",
	"description_cache_capacity", "host", "krbspn", "krbsrvname", "max_protocol_version", "min_protocol_version",
	"options", "passfile", "password", "pool_health_check_period", "pool_max_conn_idle_time",
	"pool_max_conn_lifetime", "pool_max_conn_lifetime_jitter", "pool_max_conns", "pool_min_conns",
	"pool_min_idle_conns", "pool_ping_timeout", "port", "require_auth", "service", "servicefile", "sslcert",
	"sslcertmode", "sslkey", "sslmode", "sslnegotiation", "sslpassword", "sslrootcert", "sslsni",
	"statement_cache_capacity", "target_session_attrs", "user",
}

// ParseURL returns the Config for a store URL as the nova command takes
// it: a PostgreSQL URL (postgres:// or postgresql://) that may name the
// schema with a schema query parameter, which is not passed on to the
// server:
//
//	postgres://app@db:5432/prod?sslmode=require&schema=orders
//
// Other parameters are pgx's and pgxpool's (pool_max_conns, ...), listed
// in [URLParams]. The URL is read strictly, so that a typo is reported
// rather than ignored: an unknown or repeated parameter, a query that is
// not a list of key=value pairs joined by '&' (a ';' would hide what
// follows it), or a fragment fails. A URL that is not one fails with an
// error matching nova.ErrInvalid; no message shows the password.
func ParseURL(s string) (Config, error) {
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL may hold a password
		}
		return Config{}, validate.InvalidFieldf("novapg", "Config.URL", "want a postgres:// URL: %w", err)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return Config{}, validate.InvalidFieldf("novapg", "Config.URL", "want a postgres:// URL")
	}
	if u.Fragment != "" || strings.HasSuffix(s, "#") {
		return Config{}, validate.InvalidFieldf("novapg", "Config.URL", "a store URL has no fragment (#...)")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Config{}, validate.InvalidFieldf("novapg", "Config.URL", "query: %w: join parameters with '&'", err)
	}
	for _, k := range slices.Sorted(maps.Keys(q)) {
		if !slices.Contains(URLParams, k) {
			return Config{}, validate.InvalidFieldf("novapg", "Config.URL", "unknown parameter %q: want one of %s", k, strings.Join(URLParams, ", "))
		}
		if len(q[k]) > 1 {
			return Config{}, validate.InvalidFieldf("novapg", "Config.URL", "parameter %q is given twice", k)
		}
	}
	cfg := Config{Schema: q.Get("schema")}
	q.Del("schema")
	u.RawQuery = q.Encode()
	cfg.URL = u.String()
	if err := cfg.validate(); err != nil {
		return Config{}, err
	}
	if _, err := pgxpool.ParseConfig(cfg.URL); err != nil {
		return Config{}, validate.InvalidFieldf("novapg", "Config.URL", "%w", err)
	}
	return cfg, nil
}
