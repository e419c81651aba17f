package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/internal/instrument"
	"github.com/nova-go/nova/internal/validate"
	"github.com/nova-go/nova/projection"
)

// Defaults of [ForwarderConfig].
const (
	DefaultForwarderName  = "forwarder"
	DefaultBatchSize      = 100
	DefaultPublishTimeout = 30 * time.Second
)

// Headers a [Forwarder] sets on each envelope.
const (
	HeaderStream        = "nova-stream"
	HeaderVersion       = "nova-version"
	HeaderPosition      = "nova-position"
	HeaderCorrelationID = "nova-correlation-id"
	HeaderCausationID   = "nova-causation-id"
)

// ForwarderConfig configures a [Forwarder]. Store and Broker are required;
// every other zero field means its default.
type ForwarderConfig struct {
	// Name names the forwarder's checkpoint and lease. Default
	// [DefaultForwarderName]. Two forwarders of one store to different
	// brokers need different names.
	Name string
	// Store is the event store whose log is forwarded.
	Store nova.Store
	// Broker receives the envelopes.
	Broker broker.Broker
	// Checkpoints keeps the position of the last event the broker
	// confirmed. Default: a new [projection.MemoryCheckpoints], which
	// forwards the whole log again each time the process starts; a
	// service uses its store's checkpoint store (novasqlite.NewCheckpoints,
	// novapg.NewCheckpoints).
	Checkpoints projection.CheckpointStore
	// Leaser keeps one forwarder of this Name running across processes.
	// Default: Checkpoints, when it is a [projection.Leaser] (the SQL
	// backends' are); none otherwise.
	Leaser projection.Leaser
	// Owner names this instance in the lease. Default: the runner's.
	Owner string
	// LeaseTTL is how long the lease lasts unless renewed. Default: the
	// runner's.
	LeaseTTL time.Duration
	// Categories, when not empty, forwards only the events of streams in
	// these categories (the part of the stream before its first '-', as
	// in aggregate.Config.Category).
	Categories []string
	// Types, when not empty, forwards only events of these types.
	Types []string
	// Topic names the topic of an event's envelope. Default
	// [DefaultTopic]. An event whose topic is not valid
	// ([broker.ValidateTopic]) stops the forwarder with a
	// *projection.PoisonError naming it.
	Topic func(e nova.Event) string
	// BatchSize is the most events published before the checkpoint moves.
	// Default [DefaultBatchSize], at most [nova.MaxBatch].
	BatchSize int
	// PublishTimeout bounds one batch's publishing, after which the
	// forwarder backs off and tries again. Default
	// [DefaultPublishTimeout].
	PublishTimeout time.Duration
	// Logger reports the forwarder's failures. Default slog.Default().
	Logger *slog.Logger
}

func (c ForwarderConfig) validate() error {
	switch {
	case c.Store == nil:
		return validate.InvalidFieldf("bridge", "ForwarderConfig.Store", "required")
	case c.Broker == nil:
		return validate.InvalidFieldf("bridge", "ForwarderConfig.Broker", "required")
	case c.BatchSize < 0 || c.BatchSize > nova.MaxBatch:
		return validate.InvalidFieldf("bridge", "ForwarderConfig.BatchSize", "%d, want 0 (default) to %d", c.BatchSize, nova.MaxBatch)
	case c.PublishTimeout < 0:
		return validate.InvalidFieldf("bridge", "ForwarderConfig.PublishTimeout", "%v is negative", c.PublishTimeout)
	case slices.Contains(c.Categories, ""):
		return validate.InvalidFieldf("bridge", "ForwarderConfig.Categories", "an empty category")
	case slices.Contains(c.Types, ""):
		return validate.InvalidFieldf("bridge", "ForwarderConfig.Types", "an empty type")
	}
	return nil
}

func (c ForwarderConfig) withDefaults() ForwarderConfig {
	if c.Name == "" {
		c.Name = DefaultForwarderName
	}
	if c.Checkpoints == nil {
		c.Checkpoints = projection.NewMemoryCheckpoints()
	}
	if c.Leaser == nil {
		c.Leaser, _ = c.Checkpoints.(projection.Leaser)
	}
	if c.Topic == nil {
		c.Topic = DefaultTopic
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = DefaultPublishTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Category returns the category of a stream: the part before its first
// '-', or the whole name when it has none ("order-42" → "order").
func Category(stream string) string {
	cat, _, _ := strings.Cut(stream, "-")
	return cat
}

// DefaultTopic returns "events.{category}.{type}" for e: "events.order.
// OrderPlaced" for an OrderPlaced event of stream "order-42". A type with
// dots adds tokens ("events.order.order.placed").
func DefaultTopic(e nova.Event) string {
	return "events." + Category(e.Stream) + "." + e.Type
}

// Envelope returns the envelope a forwarder publishes for e, with topic.
// Empty data becomes the payload null; data that is not JSON is an error
// matching [nova.ErrInvalid].
func Envelope(e nova.Event, topic string) (broker.Envelope, error) {
	payload := json.RawMessage(e.Data)
	if len(payload) == 0 {
		payload = json.RawMessage("null")
	}
	env := broker.Envelope{
		ID:        e.ID,
		Topic:     topic,
		EventType: e.Type,
		Payload:   payload,
		Key:       e.Stream,
		Timestamp: e.RecordedAt,
		Headers: map[string]string{
			HeaderStream:   e.Stream,
			HeaderVersion:  strconv.FormatUint(e.Version, 10),
			HeaderPosition: e.Position.String(),
		},
	}
	if id := e.Metadata.CorrelationID; id != "" {
		env.Headers[HeaderCorrelationID] = id
	}
	if id := e.Metadata.CausationID; id != "" {
		env.Headers[HeaderCausationID] = id
	}
	// The append's trace context (see package telemetry) rides on, so a
	// consumer continues the trace.
	env.Headers = instrument.TraceKeys(env.Headers, e.Metadata.Extra)
	if err := env.Validate(); err != nil {
		return broker.Envelope{}, fmt.Errorf("event %s of %s: %w", e.ID, e.Stream, err)
	}
	return env, nil
}

// Forwarder publishes a store's events to a broker; see the package
// documentation. Its methods are safe for concurrent use.
type Forwarder struct {
	cfg    ForwarderConfig
	runner *projection.Runner
	out    *outbound
}

// NewForwarder returns a stopped forwarder; [Forwarder.Start] starts it.
func NewForwarder(cfg ForwarderConfig) (*Forwarder, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	p, err := projection.New(cfg.Name, nova.NewRegistry(nova.RegistryOptions{}))
	if err != nil {
		return nil, err
	}
	out := &outbound{cfg: cfg, checkpoints: cfg.Checkpoints}
	if err := projection.OnAny(p, out.add); err != nil {
		return nil, err
	}
	r, err := projection.NewRunner(projection.Config{
		Store:       cfg.Store,
		Projection:  p,
		Checkpoints: out,
		BatchSize:   cfg.BatchSize,
		Leaser:      cfg.Leaser,
		Owner:       cfg.Owner,
		LeaseTTL:    cfg.LeaseTTL,
	})
	if err != nil {
		return nil, err
	}
	return &Forwarder{cfg: cfg, runner: r, out: out}, nil
}

// Start starts forwarding from the checkpoint, on a goroutine the
// forwarder owns, until Stop or ctx's end.
func (f *Forwarder) Start(ctx context.Context) error { return f.runner.Start(ctx) }

// Stop stops the forwarder and waits for it, up to ctx's end. A batch
// being published is finished or abandoned (and published again on the
// next start).
func (f *Forwarder) Stop(ctx context.Context) error { return f.runner.Stop(ctx) }

// Stopped is closed when the forwarder has stopped.
func (f *Forwarder) Stopped() <-chan struct{} { return f.runner.Stopped() }

// Wait waits for the forwarder to stop and returns why it stopped: nil
// after Stop, or the error that stopped it.
func (f *Forwarder) Wait() error { return f.runner.Wait() }

// Status reports the forwarder's state, checkpoint and counts.
func (f *Forwarder) Status() projection.Status { return f.runner.Status() }

// Lag reports how far the forwarder is behind the store's log.
func (f *Forwarder) Lag(ctx context.Context) (projection.Lag, error) { return f.runner.Lag(ctx) }

// WaitFor waits until every event up to pos has been published and
// checkpointed, or ctx ends.
func (f *Forwarder) WaitFor(ctx context.Context, pos nova.Position) error {
	return f.runner.WaitFor(ctx, pos)
}

// Published returns how many envelopes the broker has confirmed since the
// forwarder was made (a batch published again counts again).
func (f *Forwarder) Published() uint64 {
	f.out.mu.Lock()
	defer f.out.mu.Unlock()
	return f.out.published
}

// outbound gathers a batch's envelopes as the runner hands it events, and
// publishes them when the runner saves the batch's checkpoint: only once
// the broker has confirmed them does the checkpoint move. It is the
// runner's CheckpointStore, and deliberately not a TxCheckpoints: a
// broker is not part of the store's transaction.
type outbound struct {
	cfg         ForwarderConfig
	checkpoints projection.CheckpointStore

	mu        sync.Mutex
	batch     []broker.Envelope
	published uint64
}

func (o *outbound) add(_ context.Context, e nova.Event) error {
	if !o.wanted(e) {
		return nil
	}
	env, err := Envelope(e, o.cfg.Topic(e))
	if err != nil {
		return err
	}
	o.mu.Lock()
	o.batch = append(o.batch, env)
	o.mu.Unlock()
	return nil
}

func (o *outbound) wanted(e nova.Event) bool {
	if len(o.cfg.Types) > 0 && !slices.Contains(o.cfg.Types, e.Type) {
		return false
	}
	return len(o.cfg.Categories) == 0 || slices.Contains(o.cfg.Categories, Category(e.Stream))
}

func (o *outbound) Load(ctx context.Context, name string) (nova.Position, error) {
	// The runner loads when it (re)starts from the checkpoint: whatever
	// was gathered after it will be handed over again.
	o.mu.Lock()
	o.batch = nil
	o.mu.Unlock()
	return o.checkpoints.Load(ctx, name)
}

// Save publishes the gathered batch, then saves pos. The runner calls it
// with a context that is not cancelled by Stop, so publishing is bounded
// by PublishTimeout. A failed publish drops the batch and is transient:
// the runner backs off and hands the events over again from the
// checkpoint.
func (o *outbound) Save(ctx context.Context, name string, pos nova.Position) error {
	o.mu.Lock()
	batch := o.batch
	o.batch = nil
	o.mu.Unlock()
	if len(batch) > 0 {
		pctx, cancel := context.WithTimeout(ctx, o.cfg.PublishTimeout)
		err := publishTraced(pctx, name, o.cfg.Broker, batch)
		cancel()
		if err != nil {
			o.cfg.Logger.WarnContext(ctx, "bridge: forwarder: publish failed; will publish the batch again",
				"forwarder", name, "envelopes", len(batch), "err", err)
			if errors.Is(err, nova.ErrInvalid) {
				return err
			}
			return nova.Transient(fmt.Errorf("publish %d envelopes: %w", len(batch), err))
		}
		o.mu.Lock()
		o.published += uint64(len(batch))
		o.mu.Unlock()
	}
	return o.checkpoints.Save(ctx, name, pos)
}
