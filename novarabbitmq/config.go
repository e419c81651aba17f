package novarabbitmq

import (
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/nova-go/nova/internal/redelivery"
	"github.com/nova-go/nova/internal/validate"
)

// Defaults used for zero fields of [Config].
const (
	// DefaultURL is the server of a zero Config: RabbitMQ's own default
	// address and account.
	DefaultURL = "amqp://guest:guest@127.0.0.1:5672/"
	// DefaultNamespace starts the name of every exchange and queue.
	DefaultNamespace = "nova"
	// DefaultPrefetch is how many unacknowledged envelopes the server
	// hands one member of a consumer group ahead of its handler.
	DefaultPrefetch = 4
	// DefaultSubscriptionExpiry is how long the queue of a Subscribe
	// subscription outlives a lost connection (RabbitMQ's x-expires).
	DefaultSubscriptionExpiry = time.Minute
	// DefaultDialTimeout bounds one attempt to connect.
	DefaultDialTimeout = 10 * time.Second
	// DefaultReconnectMinBackoff and DefaultReconnectMaxBackoff bound the
	// waits between attempts to reconnect.
	DefaultReconnectMinBackoff = 100 * time.Millisecond
	DefaultReconnectMaxBackoff = 5 * time.Second
)

// MaxNamespaceLen is the longest [Config.Namespace], in bytes, so that
// every name built from it fits RabbitMQ's limit of 255 bytes.
const MaxNamespaceLen = 64

// Config configures [New]. The zero value of every field means its
// default.
type Config struct {
	// URL is the server: amqp://user:password@host:port/vhost (or
	// amqps://). Default [DefaultURL].
	URL string

	// Namespace starts the name of every exchange and queue the broker
	// declares (see the package documentation), so that services and
	// tests share a server apart. Letters, digits, '-', '_' and '.', at
	// most [MaxNamespaceLen] bytes, not starting with "amq.". Default
	// [DefaultNamespace]. Every broker of one namespace must use the same
	// MaxAttempts: a consumer group's queue is declared with it.
	Namespace string

	// MaxAttempts is how many times an envelope is delivered to a
	// subscription or a consumer group before it is dead-lettered.
	// Default [broker.DefaultMaxAttempts]; 1 dead-letters on the first
	// rejection.
	MaxAttempts int

	// MinBackoff is the longest wait before the first redelivery; the
	// bound doubles with each further failure up to MaxBackoff, and the
	// wait is drawn uniformly below it. Default [broker.DefaultMinBackoff].
	MinBackoff time.Duration

	// MaxBackoff caps the wait before a redelivery. Default
	// [broker.DefaultMaxBackoff], or MinBackoff when that is longer.
	MaxBackoff time.Duration

	// Prefetch is how many unacknowledged envelopes the server sends a
	// member of a consumer group ahead of its handler (basic.qos). The
	// handler still sees them one at a time; a larger value saves round
	// trips and holds more envelopes away from the other members, and
	// from them while a redelivery waits out its backoff. At most 65535.
	// Default [DefaultPrefetch].
	Prefetch int

	// SubscriptionExpiry is how long the server keeps the queue of a
	// Subscribe subscription, and what it holds, once no consumer reads
	// it: a subscription whose connection drops for less than this finds
	// the envelopes published meanwhile when it reconnects. Default
	// [DefaultSubscriptionExpiry]; at least one second.
	SubscriptionExpiry time.Duration

	// PollRetention is how long a topic's poll queue keeps an envelope
	// that nobody polled (the queue's x-message-ttl): a service that
	// consumes only with Subscribe and SubscribeGroup sets it so that the
	// poll queues, which receive every envelope published, do not grow
	// without bound. Zero, the default, keeps envelopes until they are
	// polled, as [broker.Broker.Poll] promises. At least one millisecond
	// otherwise. Like MaxAttempts it is part of a queue's declaration:
	// every broker of a namespace must use the same value, and changing
	// it means deleting the namespace's poll queues first.
	PollRetention time.Duration

	// DialTimeout bounds one attempt to connect, TCP and AMQP handshake.
	// Default [DefaultDialTimeout].
	DialTimeout time.Duration

	// ReconnectMinBackoff and ReconnectMaxBackoff bound the wait between
	// attempts to reconnect after the connection dropped (exponential,
	// with full jitter). Defaults [DefaultReconnectMinBackoff] and
	// [DefaultReconnectMaxBackoff] (or ReconnectMinBackoff when longer).
	ReconnectMinBackoff time.Duration
	ReconnectMaxBackoff time.Duration

	// Logger receives connection losses, reconnections and envelopes
	// that could not be decoded. Default: discard.
	Logger *slog.Logger
}

// validate reports the first bad field; it changes nothing.
func (c Config) validate() error {
	if c.URL != "" {
		if _, err := amqp.ParseURI(c.URL); err != nil {
			return validate.InvalidFieldf(pkg, "Config.URL", "%v", redactErr(err, c.URL))
		}
	}
	if c.Namespace != "" {
		if err := checkNamespace(c.Namespace); err != nil {
			return err
		}
	}
	switch {
	case c.Prefetch < 0 || c.Prefetch > 65535:
		return validate.InvalidFieldf(pkg, "Config.Prefetch", "%d, want 0 (default) to 65535", c.Prefetch)
	case c.SubscriptionExpiry < 0 || (c.SubscriptionExpiry > 0 && c.SubscriptionExpiry < time.Second):
		return validate.InvalidFieldf(pkg, "Config.SubscriptionExpiry", "%v, want 0 (default) or at least 1s", c.SubscriptionExpiry)
	case c.PollRetention < 0 || (c.PollRetention > 0 && c.PollRetention < time.Millisecond):
		return validate.InvalidFieldf(pkg, "Config.PollRetention", "%v, want 0 (keep until polled) or at least 1ms", c.PollRetention)
	case c.DialTimeout < 0:
		return validate.InvalidFieldf(pkg, "Config.DialTimeout", "%v, want 0 (default) or more", c.DialTimeout)
	case c.ReconnectMinBackoff < 0:
		return validate.InvalidFieldf(pkg, "Config.ReconnectMinBackoff", "%v, want 0 (default) or more", c.ReconnectMinBackoff)
	case c.ReconnectMaxBackoff < 0:
		return validate.InvalidFieldf(pkg, "Config.ReconnectMaxBackoff", "%v, want 0 (default) or more", c.ReconnectMaxBackoff)
	}
	d := c.withDefaults()
	if err := redelivery.Check(pkg, "Config.", c.MaxAttempts, c.MinBackoff, c.MaxBackoff); err != nil {
		return err
	}
	if d.ReconnectMaxBackoff < d.ReconnectMinBackoff {
		return validate.InvalidFieldf(pkg, "Config.ReconnectMaxBackoff", "%v is shorter than ReconnectMinBackoff %v", d.ReconnectMaxBackoff, d.ReconnectMinBackoff)
	}
	return nil
}

// withDefaults returns c with each zero field set to its default.
func (c Config) withDefaults() Config {
	if c.URL == "" {
		c.URL = DefaultURL
	}
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	c.MaxAttempts, c.MinBackoff, c.MaxBackoff = redelivery.Defaults(c.MaxAttempts, c.MinBackoff, c.MaxBackoff)
	if c.Prefetch == 0 {
		c.Prefetch = DefaultPrefetch
	}
	if c.SubscriptionExpiry == 0 {
		c.SubscriptionExpiry = DefaultSubscriptionExpiry
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.ReconnectMinBackoff == 0 {
		c.ReconnectMinBackoff = DefaultReconnectMinBackoff
	}
	if c.ReconnectMaxBackoff == 0 {
		c.ReconnectMaxBackoff = max(DefaultReconnectMaxBackoff, c.ReconnectMinBackoff)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func checkNamespace(ns string) error {
	const field = "Config.Namespace"
	switch {
	case len(ns) > MaxNamespaceLen:
		return validate.InvalidFieldf(pkg, field, "%q is %d bytes, longer than the limit of %d", ns, len(ns), MaxNamespaceLen)
	case strings.HasPrefix(ns, "amq."):
		return validate.InvalidFieldf(pkg, field, "%q starts with amq., which RabbitMQ reserves", ns)
	case strings.HasPrefix(ns, ".") || strings.HasSuffix(ns, ".") || strings.Contains(ns, ".."):
		return validate.InvalidFieldf(pkg, field, "%q has an empty dot-separated part", ns)
	}
	for _, r := range ns {
		if r >= utf8.RuneSelf || !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_' || r == '.') {
			return validate.InvalidFieldf(pkg, field, "%q has %q: want ASCII letters, digits, '-', '_' and '.'", ns, r)
		}
	}
	return nil
}

// redactErr returns err's message with the URL's user and password
// hidden, for an error about rawURL.
func redactErr(err error, rawURL string) string {
	return strings.ReplaceAll(err.Error(), rawURL, redactURL(rawURL))
}

// redactURL returns rawURL with its user information replaced by "xxxxx".
func redactURL(rawURL string) string {
	i := strings.Index(rawURL, "://")
	j := strings.LastIndex(rawURL, "@")
	if i < 0 || j < i {
		return rawURL
	}
	return rawURL[:i+3] + "xxxxx" + rawURL[j:]
}
