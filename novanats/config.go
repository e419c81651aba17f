package novanats

import (
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/validate"
)

// Defaults used for zero fields of [Config].
const (
	DefaultStreamName      = "NOVA"
	DefaultReplicas        = 1
	DefaultFetchSize       = 512
	DefaultDuplicateWindow = 2 * time.Minute
	DefaultTimeout         = 10 * time.Second
)

// Storage is where the JetStream stream keeps its messages.
type Storage uint8

const (
	// FileStorage keeps messages on disk. It is the default.
	FileStorage Storage = iota
	// MemoryStorage keeps messages in the server's memory: fast, lost when
	// the server stops.
	MemoryStorage
)

// String returns "file" or "memory".
func (s Storage) String() string {
	switch s {
	case FileStorage:
		return "file"
	case MemoryStorage:
		return "memory"
	}
	return "Storage(" + strconv.Itoa(int(s)) + ")"
}

// Config configures [Open]. Either Conn or URL is required; the zero value
// of every other field means its default.
type Config struct {
	// Conn is a connection the caller owns and closes after the store.
	// When set, URL must be empty.
	Conn *nats.Conn

	// URL is the server to connect to (nats://host:4222, several separated
	// by commas) when Conn is nil. The store owns that connection, which
	// reconnects without limit, and closes it on Close.
	URL string

	// StreamName is the JetStream stream that holds the events. Default
	// [DefaultStreamName].
	StreamName string

	// SubjectPrefix starts every event's subject: the stream captures
	// "<SubjectPrefix>.>" and an event stream's subject is
	// "<SubjectPrefix>.<encoded stream ID>" (see the package doc). Tokens
	// may not contain wildcards, spaces or control characters. When
	// empty, a stream that exists keeps the subjects it captures, and a
	// new one gets "nova.<StreamName>", so stores with different stream
	// names share a server without sharing subjects.
	SubjectPrefix string

	// Replicas is the stream's replica count when it is created. Default
	// [DefaultReplicas].
	Replicas int

	// Storage is the stream's storage when it is created: [FileStorage]
	// (the default) or [MemoryStorage].
	Storage Storage

	// DuplicateWindow is how long the server remembers event IDs
	// (Nats-Msg-Id) to drop retried appends. Default
	// [DefaultDuplicateWindow]. See the package doc for what is guaranteed
	// inside and outside the window.
	DuplicateWindow time.Duration

	// FetchSize is how many messages a read asks the server for at a time,
	// and the page size of backwards stream reads. Default
	// [DefaultFetchSize].
	FetchSize int

	// Timeout bounds each request to the server when the caller's context
	// has no earlier deadline. Default [DefaultTimeout].
	Timeout time.Duration

	// SkipMigrate makes Open use an existing stream only: it neither
	// creates the stream nor updates its settings, and fails with an
	// error matching [ErrFormatOutdated] when the stream is missing or of
	// an older format (create or update it with [Migrate], or nova
	// migrate). Tools that only read, and deployments that migrate as a
	// separate step, set it.
	SkipMigrate bool

	// Logger receives connection events of a connection the store owns.
	// Default: nothing is logged.
	Logger *slog.Logger
}

// validate checks the fields, naming the wrong one.
func (c Config) validate() error {
	switch {
	case c.Conn == nil && c.URL == "":
		return validate.InvalidFieldf("novanats", "Config.URL", "required when Conn is nil")
	case c.Conn != nil && c.URL != "":
		return validate.InvalidFieldf("novanats", "Config.URL", "must be empty when Conn is set")
	case c.StreamName != "" && !validStreamName(c.StreamName):
		return validate.InvalidFieldf("novanats", "Config.StreamName", "%q: want letters, digits, '-' or '_' only", c.StreamName)
	case c.SubjectPrefix != "" && !validPrefix(c.SubjectPrefix):
		return validate.InvalidFieldf("novanats", "Config.SubjectPrefix", "%q: want dot-separated tokens without wildcards, spaces or control characters", c.SubjectPrefix)
	case c.Replicas < 0 || c.Replicas > 5:
		return validate.InvalidFieldf("novanats", "Config.Replicas", "%d: want 1 to 5", c.Replicas)
	case c.Storage > MemoryStorage:
		return validate.InvalidFieldf("novanats", "Config.Storage", "unknown value %d: want FileStorage or MemoryStorage", c.Storage)
	case c.DuplicateWindow < 0:
		return validate.InvalidFieldf("novanats", "Config.DuplicateWindow", "negative duration %s", c.DuplicateWindow)
	case c.FetchSize < 0:
		return validate.InvalidFieldf("novanats", "Config.FetchSize", "negative count %d", c.FetchSize)
	case c.FetchSize > 10_000:
		return validate.InvalidFieldf("novanats", "Config.FetchSize", "%d is more than the limit of 10000", c.FetchSize)
	case c.Timeout < 0:
		return validate.InvalidFieldf("novanats", "Config.Timeout", "negative duration %s", c.Timeout)
	}
	if c.URL != "" {
		for _, u := range strings.Split(c.URL, ",") {
			p, err := url.Parse(strings.TrimSpace(u))
			if err != nil || p.Host == "" {
				return validate.InvalidFieldf("novanats", "Config.URL", "%q: want nats://host:port", c.URL)
			}
			switch p.Scheme {
			case "nats", "tls", "ws", "wss":
			default:
				return validate.InvalidFieldf("novanats", "Config.URL", "%q: unknown scheme %q", c.URL, p.Scheme)
			}
		}
	}
	return nil
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.StreamName == "" {
		c.StreamName = DefaultStreamName
	}
	// An empty SubjectPrefix is decided by Open: see the field.
	if c.Replicas == 0 {
		c.Replicas = DefaultReplicas
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = DefaultDuplicateWindow
	}
	if c.FetchSize == 0 {
		c.FetchSize = DefaultFetchSize
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// ParseURL turns a store URL as the nova command takes it into a Config:
//
//	nats://host:4222?stream=NOVA&prefix=nova.NOVA&replicas=1&storage=file
//
// The query parameters are optional and map to the Config fields of the
// same meaning (without prefix, subjects are derived from the stream
// name: see Config.SubjectPrefix); the rest of the URL is the server's.
// Errors match nova.ErrInvalid.
func ParseURL(raw string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Config{}, nova.Invalidf("novanats", "store URL %q: %v", raw, err)
	}
	if u.Scheme != "nats" && u.Scheme != "tls" {
		return Config{}, nova.Invalidf("novanats", "store URL %q: want nats://host:port", raw)
	}
	q := u.Query()
	cfg := Config{StreamName: q.Get("stream"), SubjectPrefix: q.Get("prefix")}
	if v := q.Get("replicas"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return Config{}, nova.Invalidf("novanats", "store URL %q: replicas %q is not a number", raw, v)
		}
		cfg.Replicas = n
	}
	switch q.Get("storage") {
	case "", "file":
	case "memory":
		cfg.Storage = MemoryStorage
	default:
		return Config{}, nova.Invalidf("novanats", "store URL %q: storage %q: want file or memory", raw, q.Get("storage"))
	}
	u.RawQuery = ""
	cfg.URL = u.String()
	return cfg, cfg.validate()
}

func (s Storage) jetstream() jetstream.StorageType {
	if s == MemoryStorage {
		return jetstream.MemoryStorage
	}
	return jetstream.FileStorage
}

// redactURL hides the passwords of a server list (nats://user:pass@host,
// ...) before it is shown.
func redactURL(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			parts[i] = "<bad URL>"
			continue
		}
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}

func validStreamName(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func validPrefix(p string) bool {
	if len(p) > 128 {
		return false
	}
	for _, tok := range strings.Split(p, ".") {
		if tok == "" || tok == "*" || tok == ">" {
			return false
		}
		for _, r := range tok {
			if unicode.IsSpace(r) || unicode.IsControl(r) || r == '*' || r == '>' {
				return false
			}
		}
	}
	return true
}
