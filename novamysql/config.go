package novamysql

import (
	"database/sql"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/validate"
)

// Defaults used for zero fields of [Config].
const (
	DefaultTablePrefix  = "nova_"
	DefaultPollInterval = 250 * time.Millisecond
	DefaultPageSize     = 10_000
	DefaultMaxGroup     = 128
	DefaultWriters      = 2
)

// Config configures [Open]. Exactly one of DB and DSN is required; the zero
// value of every other field means its default.
type Config struct {
	// DB is a pool the caller owns and closes after the store. The store
	// uses it as it is: its isolation level, time zone and parameters
	// do not matter to the store (see the package documentation).
	DB *sql.DB

	// DSN is where to connect when DB is nil: a go-sql-driver DSN
	// (user:pass@tcp(host:port)/db?param=value) or a URL
	// (mysql://user:pass@host:port/db?param=value, see [ParseURL]). The
	// store opens its own pool and closes it on Close.
	DSN string

	// TablePrefix starts the name of every table the store uses, so that
	// several stores can share one database. Letters, digits and
	// underscores, at most 32 characters. Default [DefaultTablePrefix].
	TablePrefix string

	// PollInterval is how often a live subscription looks for events when
	// it has not been woken. Appends made through the same Store wake
	// subscriptions at once; polling finds those of other processes and
	// of [Store.AppendTx]. Default [DefaultPollInterval].
	PollInterval time.Duration

	// PageSize is the most rows one read query fetches. A read's first
	// page is smaller (500 rows), and a page stops early once its events
	// hold 16 MB of data, so that large events are never buffered by the
	// thousand. Default [DefaultPageSize].
	PageSize int

	// MaxGroup is the most appends committed in one transaction
	// (group commit). Default [DefaultMaxGroup]. 1 turns group commit off.
	MaxGroup int

	// Writers is how many groups of appends commit at a time, each on a
	// connection of its own. Their transactions still take turns
	// on the counter row, but InnoDB releases a transaction's locks before
	// it flushes the redo log, so the next group's statements run while
	// the previous group's commit is being flushed. Default
	// [DefaultWriters].
	Writers int

	// SkipMigrate makes Open use an existing store only: it creates and
	// migrates nothing, and fails with an error matching
	// [ErrSchemaOutdated] unless the tables exist at [SchemaVersion]
	// (create or migrate them with [Migrate], or nova migrate). Tools
	// that only read, and deployments that migrate as a separate step,
	// set it.
	SkipMigrate bool

	// Logger receives errors of the background writer and the transient
	// errors subscriptions recover from. Default: nothing is logged.
	Logger *slog.Logger
}

// validate checks the fields, naming the wrong one.
func (c Config) validate() error {
	switch {
	case c.DB == nil && c.DSN == "":
		return validate.InvalidFieldf("novamysql", "Config.DB", "either DB or DSN is required")
	case c.DB != nil && c.DSN != "":
		return validate.InvalidFieldf("novamysql", "Config.DSN", "set DB or DSN, not both")
	case c.PollInterval < 0:
		return validate.InvalidFieldf("novamysql", "Config.PollInterval", "negative duration %s", c.PollInterval)
	case c.PageSize < 0:
		return validate.InvalidFieldf("novamysql", "Config.PageSize", "negative count %d", c.PageSize)
	case c.PageSize > 100_000:
		return validate.InvalidFieldf("novamysql", "Config.PageSize", "%d is more than the limit of 100000", c.PageSize)
	case c.MaxGroup < 0:
		return validate.InvalidFieldf("novamysql", "Config.MaxGroup", "negative count %d", c.MaxGroup)
	case c.MaxGroup > 10_000:
		return validate.InvalidFieldf("novamysql", "Config.MaxGroup", "%d is more than the limit of 10000", c.MaxGroup)
	case c.Writers < 0:
		return validate.InvalidFieldf("novamysql", "Config.Writers", "negative count %d", c.Writers)
	case c.Writers > 64:
		return validate.InvalidFieldf("novamysql", "Config.Writers", "%d is more than the limit of 64", c.Writers)
	}
	if c.TablePrefix != "" {
		if len(c.TablePrefix) > 32 {
			return validate.InvalidFieldf("novamysql", "Config.TablePrefix", "%q is longer than 32 characters", c.TablePrefix)
		}
		for _, r := range c.TablePrefix {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
				return validate.InvalidFieldf("novamysql", "Config.TablePrefix", "%q: want letters, digits and underscores only", c.TablePrefix)
			}
		}
	}
	if c.DSN != "" {
		if _, err := driverDSN(c.DSN); err != nil {
			return validate.InvalidFieldf("novamysql", "Config.DSN", "%w", err)
		}
	}
	return nil
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.TablePrefix == "" {
		c.TablePrefix = DefaultTablePrefix
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
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

// driverDSN returns dsn in go-sql-driver form, converting a mysql:// URL.
func driverDSN(dsn string) (string, error) {
	if strings.HasPrefix(dsn, "mysql://") {
		return ParseURL(dsn)
	}
	if _, err := mysql.ParseDSN(dsn); err != nil {
		return "", fmt.Errorf("%q is not a go-sql-driver DSN (user:pass@tcp(host:port)/db) nor a mysql:// URL: %w", redact(dsn), err)
	}
	return dsn, nil
}

// URLParams are the query parameters [ParseURL] accepts: those of
// github.com/go-sql-driver/mysql. (Server variables, which the driver
// also takes as parameters, go in a go-sql-driver DSN.)
var URLParams = []string{
	"allowAllFiles", "allowCleartextPasswords", "allowFallbackToPlaintext", "allowNativePasswords",
	"allowOldPasswords", "charset", "checkConnLiveness", "clientFoundRows", "collation", "columnsWithAlias",
	"compress", "connectionAttributes", "interpolateParams", "loc", "maxAllowedPacket", "multiStatements",
	"parseTime", "readTimeout", "rejectReadOnly", "serverPubKey", "timeTruncate", "timeout", "tls", "writeTimeout",
}

// ParseURL converts a URL of the form
//
//	mysql://user:password@host:port/database?param=value&...
//
// into the DSN github.com/go-sql-driver/mysql takes
// (user:password@tcp(host:port)/database?param=value&...). The port
// defaults to 3306; user, password and database are percent-decoded; the
// query parameters are the driver's ([URLParams]: parseTime, tls,
// timeout, ...) and are checked by it. The URL is read strictly, so that a
// typo is reported rather than ignored: an unknown or repeated parameter,
// a query not joined by '&' (a ';' would hide what follows it) or a
// fragment fails. Errors match nova.ErrInvalid and never show the
// password.
func ParseURL(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", nova.Invalidf("novamysql", "invalid URL: %v", redactErr(err))
	}
	if u.Scheme != "mysql" {
		return "", nova.Invalidf("novamysql", "URL scheme %q: want mysql://", u.Scheme)
	}
	if u.Host == "" {
		return "", nova.Invalidf("novamysql", "URL %q has no host", redact(rawURL))
	}
	if u.Fragment != "" || strings.HasSuffix(rawURL, "#") {
		return "", nova.Invalidf("novamysql", "URL %q: a store URL has no fragment (#...)", redact(rawURL))
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return "", nova.Invalidf("novamysql", "URL query: %v: join parameters with '&'", err)
	}
	for _, k := range slices.Sorted(maps.Keys(q)) {
		if !slices.Contains(URLParams, k) {
			return "", nova.Invalidf("novamysql", "URL: unknown parameter %q: want one of %s", k, strings.Join(URLParams, ", "))
		}
		if len(q[k]) > 1 {
			return "", nova.Invalidf("novamysql", "URL: parameter %q is given twice", k)
		}
	}
	host := u.Host
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(strings.Trim(host, "[]"), "3306")
	}
	db := strings.TrimPrefix(u.Path, "/")
	if strings.Contains(db, "/") {
		return "", nova.Invalidf("novamysql", "URL path %q: want one database name", u.Path)
	}
	// The driver parses the parameters.
	cfg, err := mysql.ParseDSN("/?" + u.RawQuery)
	if err != nil {
		return "", nova.Invalidf("novamysql", "URL parameters: %v", err)
	}
	cfg.Net = "tcp"
	cfg.Addr = host
	cfg.DBName = db
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	return cfg.FormatDSN(), nil
}

// redact hides the password of a DSN or URL in messages.
func redact(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return u.String()
		}
		return s
	}
	at := strings.LastIndex(s, "@")
	if at < 0 {
		return s
	}
	if colon := strings.IndexByte(s[:at], ':'); colon >= 0 {
		return s[:colon+1] + "xxxxx" + s[at:]
	}
	return s
}

// redactErr strips a URL error of the URL, which may hold a password.
func redactErr(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}
