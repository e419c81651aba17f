package novanats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/internal/redelivery"
	"github.com/nova-go/nova/internal/validate"
)

// Defaults used for zero fields of [BrokerConfig].
const (
	// DefaultNamespace is the topic space of a broker whose
	// BrokerConfig.Namespace is empty.
	DefaultNamespace = "nova-broker"
	// DefaultMaxAge is how long the broker's stream keeps envelopes and
	// dead letters.
	DefaultMaxAge = 7 * 24 * time.Hour
	// DefaultAckWait is how long the server waits for a consumer's
	// acknowledgement before it delivers a message again.
	DefaultAckWait = 30 * time.Second
)

// BrokerConfig configures [NewBroker]. Either Conn or URL is required; the
// zero value of every other field means its default.
type BrokerConfig struct {
	// Conn is a connection the caller owns and closes after the broker.
	// When set, URL must be empty.
	Conn *nats.Conn

	// URL is the server to connect to (nats://host:4222, several separated
	// by commas) when Conn is nil. The broker owns that connection, which
	// reconnects without limit and does not buffer while reconnecting (a
	// publish then fails at once), and closes it on Close.
	URL string

	// Namespace is the broker's topic space: one token of letters, digits,
	// '-' and '_', at most 32 bytes. The JetStream stream
	// NOVA_BROKER_<Namespace> holds its envelopes on the subjects
	// "<Namespace>.t.<topic>" and its dead letters on
	// "<Namespace>.d.<topic>" (see the package doc). Brokers of different
	// namespaces share a server without seeing each other's topics.
	// Default [DefaultNamespace].
	Namespace string

	// Storage is the stream's storage when it is created: [FileStorage]
	// (the default) or [MemoryStorage].
	Storage Storage

	// Replicas is the stream's replica count when it is created. Default
	// [DefaultReplicas].
	Replicas int

	// MaxAge is how long the stream keeps an envelope (and a dead letter)
	// after it was published, polled or not: the server removes older
	// ones. Default [DefaultMaxAge]. At least DedupWindow.
	MaxAge time.Duration

	// DedupWindow is the stream's duplicate window: an envelope whose ID
	// was published within it is dropped. Default
	// [broker.DefaultDedupWindow].
	DedupWindow time.Duration

	// MaxAttempts is how many times a subscription or a consumer group
	// delivers an envelope before it dead-letters it. Default
	// [broker.DefaultMaxAttempts]; 1 dead-letters on the first rejection.
	MaxAttempts int

	// MinBackoff is the longest wait before the first redelivery; the
	// bound doubles with each further failure up to MaxBackoff, and the
	// wait is drawn uniformly below it. Default [broker.DefaultMinBackoff].
	MinBackoff time.Duration

	// MaxBackoff caps the wait before a redelivery. Default
	// [broker.DefaultMaxBackoff], or MinBackoff when that is longer.
	MaxBackoff time.Duration

	// AckWait is how long the server waits for the acknowledgement of a
	// delivered envelope before it delivers the envelope again: to
	// another member of a consumer group when a member died, or to a
	// later Poll when a poller died before acknowledging. While a handler
	// runs the broker tells the server it is still working every AckWait/3,
	// so handlers may run longer than AckWait. Default [DefaultAckWait];
	// at least 100ms.
	AckWait time.Duration

	// Timeout bounds each request to the server when the caller's context
	// has no earlier deadline. Default [DefaultTimeout].
	Timeout time.Duration

	// Logger receives what the broker's background work cannot return:
	// connection events of a connection the broker owns, and errors its
	// subscriptions retry (a lost connection, a consumer that must be
	// created again). Default: nothing is logged.
	Logger *slog.Logger
}

// The limits of BrokerConfig fields.
const (
	maxNamespaceLen = 32
	minAckWait      = 100 * time.Millisecond
)

// validate checks the fields, naming the wrong one.
func (c BrokerConfig) validate() error {
	const pkg = "novanats"
	switch {
	case c.Conn == nil && c.URL == "":
		return validate.InvalidFieldf(pkg, "BrokerConfig.URL", "required when Conn is nil")
	case c.Conn != nil && c.URL != "":
		return validate.InvalidFieldf(pkg, "BrokerConfig.URL", "must be empty when Conn is set")
	case c.Namespace != "" && !validNamespace(c.Namespace):
		return validate.InvalidFieldf(pkg, "BrokerConfig.Namespace", "%q: want at most %d letters, digits, '-' or '_'", c.Namespace, maxNamespaceLen)
	case c.Storage > MemoryStorage:
		return validate.InvalidFieldf(pkg, "BrokerConfig.Storage", "unknown value %d: want FileStorage or MemoryStorage", c.Storage)
	case c.Replicas < 0 || c.Replicas > 5:
		return validate.InvalidFieldf(pkg, "BrokerConfig.Replicas", "%d: want 1 to 5", c.Replicas)
	case c.MaxAge < 0:
		return validate.InvalidFieldf(pkg, "BrokerConfig.MaxAge", "%v, want 0 (default) or more", c.MaxAge)
	case c.DedupWindow < 0:
		return validate.InvalidFieldf(pkg, "BrokerConfig.DedupWindow", "%v, want 0 (default) or more", c.DedupWindow)
	case c.AckWait < 0 || c.AckWait > 0 && c.AckWait < minAckWait:
		return validate.InvalidFieldf(pkg, "BrokerConfig.AckWait", "%v, want 0 (default) or at least %v", c.AckWait, minAckWait)
	case c.Timeout < 0:
		return validate.InvalidFieldf(pkg, "BrokerConfig.Timeout", "%v, want 0 (default) or more", c.Timeout)
	}
	d := c.withDefaults()
	if err := redelivery.Check(pkg, "BrokerConfig.", c.MaxAttempts, c.MinBackoff, c.MaxBackoff); err != nil {
		return err
	}
	if d.MaxAge < d.DedupWindow {
		return validate.InvalidFieldf(pkg, "BrokerConfig.MaxAge", "%v is shorter than DedupWindow %v", d.MaxAge, d.DedupWindow)
	}
	if c.URL != "" {
		for _, u := range strings.Split(c.URL, ",") {
			p, err := url.Parse(strings.TrimSpace(u))
			if err != nil || p.Host == "" {
				return validate.InvalidFieldf(pkg, "BrokerConfig.URL", "%q: want nats://host:port", redactURL(c.URL))
			}
			switch p.Scheme {
			case "nats", "tls", "ws", "wss":
			default:
				return validate.InvalidFieldf(pkg, "BrokerConfig.URL", "%q: unknown scheme %q", redactURL(c.URL), p.Scheme)
			}
		}
	}
	return nil
}

// withDefaults returns c with each zero field set to its default.
func (c BrokerConfig) withDefaults() BrokerConfig {
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	if c.Replicas == 0 {
		c.Replicas = DefaultReplicas
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.DedupWindow == 0 {
		c.DedupWindow = broker.DefaultDedupWindow
	}
	c.MaxAttempts, c.MinBackoff, c.MaxBackoff = redelivery.Defaults(c.MaxAttempts, c.MinBackoff, c.MaxBackoff)
	if c.AckWait == 0 {
		c.AckWait = DefaultAckWait
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func validNamespace(ns string) bool {
	return len(ns) <= maxNamespaceLen && validStreamName(ns)
}

// BrokerFormatVersion is the version of the broker's layout (subjects,
// headers, stream settings), recorded in its stream's description.
const BrokerFormatVersion = 1

// brokerDescPrefix starts the description of a broker's stream, which
// records the format: "nova broker (format 1)".
const brokerDescPrefix = "nova broker (format "

func brokerDescription(v int) string { return fmt.Sprintf("%s%d)", brokerDescPrefix, v) }

// Broker is a [broker.Broker] on NATS JetStream. Create it with
// [NewBroker]; it is safe for concurrent use. See the package doc's
// "Broker" section for how topics, subscriptions and groups map to the
// server.
type Broker struct {
	cfg    BrokerConfig
	nc     *nats.Conn
	owned  bool // the broker opened nc and closes it
	js     jetstream.JetStream
	stream jetstream.Stream
	log    *slog.Logger
	names  subjects

	// done ends every subscription when the broker closes.
	done      context.Context
	closeDone context.CancelFunc

	mu     sync.Mutex
	closed bool
	subs   sync.WaitGroup // one per running subscription
	// pollers are the Poll and PollDLQ consumers known to exist, by name.
	pollers map[string]jetstream.Consumer
}

var (
	_ broker.Broker          = (*Broker)(nil)
	_ broker.BatchPublisher  = (*Broker)(nil)
	_ broker.GroupSubscriber = (*Broker)(nil)
	_ broker.Guarantor       = (*Broker)(nil)
)

// NewBroker connects (or takes cfg.Conn), creates the namespace's
// JetStream stream when it is missing and brings an existing one up to
// cfg's settings, and returns the broker. Bad configuration fails with an
// error matching nova.ErrInvalid before any connection is made.
func NewBroker(ctx context.Context, cfg BrokerConfig) (*Broker, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	b := &Broker{
		cfg:     cfg,
		nc:      cfg.Conn,
		log:     cfg.Logger,
		names:   subjects{ns: cfg.Namespace},
		pollers: make(map[string]jetstream.Consumer),
	}
	if b.nc == nil {
		l := cfg.Logger
		opts := []nats.Option{
			nats.Name("nova broker"),
			nats.MaxReconnects(-1),
			// A publish while reconnecting fails at once rather than
			// waiting in a buffer for a server that may store it after
			// its caller gave up.
			nats.ReconnectBufSize(-1),
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { l.Warn("novanats: broker disconnected", "err", err) }),
			nats.ReconnectHandler(func(c *nats.Conn) { l.Info("novanats: broker reconnected", "url", redactURL(c.ConnectedUrl())) }),
		}
		nc, err := nats.Connect(cfg.URL, opts...)
		if err != nil {
			return nil, fmt.Errorf("novanats: connect to %s: %w", redactURL(cfg.URL), err)
		}
		b.nc, b.owned = nc, true
	}
	js, err := jetstream.New(b.nc,
		jetstream.WithDefaultTimeout(cfg.Timeout),
		jetstream.WithPublishAsyncTimeout(cfg.Timeout),
	)
	if err != nil {
		b.closeConn()
		return nil, fmt.Errorf("novanats: %w", err)
	}
	b.js = js
	if err := b.ensureStream(ctx); err != nil {
		b.closeConn()
		return nil, err
	}
	b.done, b.closeDone = context.WithCancel(context.Background())
	return b, nil
}

// streamName is the JetStream stream of the broker's namespace.
func (b *Broker) streamName() string { return "NOVA_BROKER_" + b.cfg.Namespace }

// ensureStream creates the namespace's stream or checks and updates it.
func (b *Broker) ensureStream(ctx context.Context) error {
	cfg := b.cfg
	name := b.streamName()
	want := jetstream.StreamConfig{
		Name:        name,
		Description: brokerDescription(BrokerFormatVersion),
		Subjects:    []string{b.names.envelopes(), b.names.deadLetters()},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxMsgs:     -1,
		MaxBytes:    -1,
		MaxAge:      cfg.MaxAge,
		Storage:     cfg.Storage.jetstream(),
		Replicas:    cfg.Replicas,
		Duplicates:  cfg.DedupWindow,
		AllowDirect: true,
	}
	st, err := b.js.Stream(ctx, name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		st, err = b.js.CreateStream(ctx, want)
		if err != nil {
			// Another process may have created it meanwhile.
			if st2, err2 := b.js.Stream(ctx, name); err2 == nil {
				st, err = st2, nil
			} else {
				return markTransient(fmt.Errorf("novanats: create stream %s: %w", name, err))
			}
		}
	case err != nil:
		return markTransient(fmt.Errorf("novanats: look up stream %s: %w", name, err))
	}
	have := st.CachedInfo().Config
	if !strings.HasPrefix(have.Description, brokerDescPrefix) {
		return fmt.Errorf("novanats: stream %s exists and is not a nova broker's (description %q)", name, have.Description)
	}
	if have.Description != want.Description {
		return fmt.Errorf("%w: stream %s is %q, this package writes %q", ErrNewerFormat, name, have.Description, want.Description)
	}
	if len(have.Subjects) != 2 || have.Subjects[0] != want.Subjects[0] || have.Subjects[1] != want.Subjects[1] {
		return fmt.Errorf("novanats: stream %s captures %q, want %q", name, have.Subjects, want.Subjects)
	}
	if have.Duplicates != want.Duplicates || have.MaxAge != want.MaxAge || !have.AllowDirect {
		up := have
		up.Duplicates, up.MaxAge, up.AllowDirect = want.Duplicates, want.MaxAge, true
		if st, err = b.js.UpdateStream(ctx, up); err != nil {
			return markTransient(fmt.Errorf("novanats: update stream %s: %w", name, err))
		}
	}
	b.stream = st
	return nil
}

// Guarantees implements [broker.Guarantor]: the server drops an envelope
// ID published again within the stream's duplicate window (on any topic
// of the namespace), and messages and consumer groups are persisted with
// [FileStorage]. A consumer group's members share one pull consumer,
// which does not hand one key's envelopes to one member in order, so
// KeyOrder is false.
func (b *Broker) Guarantees() broker.Guarantees {
	return broker.Guarantees{Dedup: true, Durable: b.cfg.Storage == FileStorage, ServerAttempts: true}
}

// Close ends every subscription, waits for their handlers to return,
// deletes their consumers (consumer groups stay) and closes the
// connection if the broker opened it. Later calls fail with an error
// matching nova.ErrClosed. Calling Close again returns nil.
func (b *Broker) Close() error {
	b.mu.Lock()
	first := !b.closed
	b.closed = true
	b.mu.Unlock()
	b.closeDone()
	b.subs.Wait()
	if first {
		b.closeConn()
	}
	return nil
}

func (b *Broker) closeConn() {
	if b.owned {
		b.nc.Close()
	}
}

// errClosed returns the error of a call after Close, naming op.
func errClosed(op string) error { return fmt.Errorf("novanats: %s: %w", op, nova.ErrClosed) }

// isClosed reports whether Close has been called.
func (b *Broker) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// opCtx returns a context for one call: it ends with ctx or with Close.
func (b *Broker) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(b.done, func() { cancel(nova.ErrClosed) })
	return ctx, func() { stop(); cancel(context.Canceled) }
}

// callErr maps the error of a call made with a context from opCtx: the
// broker's Close to nova.ErrClosed, the caller's ctx to its error, and
// faults a later attempt may cure to transient errors.
func (b *Broker) callErr(ctx context.Context, op string, err error) error {
	if c := context.Cause(ctx); errors.Is(c, nova.ErrClosed) {
		return errClosed(op)
	}
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return fmt.Errorf("novanats: %s: %w", op, ctx.Err())
	}
	err = fmt.Errorf("novanats: %s: %w", op, err)
	if errors.Is(err, nats.ErrReconnectBufExceeded) || errors.Is(err, nats.ErrConnectionClosed) && !b.isClosed() {
		return nova.Transient(err)
	}
	return markTransient(err)
}
