package broker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/backoff"
	"github.com/nova-go/nova/internal/validate"
)

// Defaults of [RelayConfig]; its backoff defaults are those of
// [MemoryConfig], [DefaultMinBackoff] and [DefaultMaxBackoff].
const (
	DefaultBatch        = 100
	DefaultPollInterval = time.Second
)

// RelayConfig configures a [Relay]. The zero value means the defaults
// given for each field.
type RelayConfig struct {
	// Batch is the most envelopes read from the outbox and published in
	// one go. Default [DefaultBatch].
	Batch int
	// PollInterval is how often [Relay.Run] looks at the outbox when its
	// Wake channel has said nothing. Default [DefaultPollInterval].
	PollInterval time.Duration
	// MinBackoff is the longest wait after the first failure to read the
	// outbox or publish; the bound doubles with each further failure up to
	// MaxBackoff, and the wait is drawn uniformly below it. Default
	// [DefaultMinBackoff].
	MinBackoff time.Duration
	// MaxBackoff caps the wait after a failure. Default
	// [DefaultMaxBackoff], or MinBackoff when that is longer; at least
	// MinBackoff.
	MaxBackoff time.Duration
	// Logger reports failures and envelopes that can never be published.
	// Default slog.Default().
	Logger *slog.Logger
}

// validate reports the first bad field; it changes nothing.
func (c RelayConfig) validate() error {
	switch {
	case c.Batch < 0:
		return validate.InvalidFieldf("broker", "RelayConfig.Batch", "%d is negative", c.Batch)
	case c.PollInterval < 0:
		return validate.InvalidFieldf("broker", "RelayConfig.PollInterval", "%s is negative", c.PollInterval)
	case c.MinBackoff < 0:
		return validate.InvalidFieldf("broker", "RelayConfig.MinBackoff", "%s is negative", c.MinBackoff)
	case c.MaxBackoff < 0:
		return validate.InvalidFieldf("broker", "RelayConfig.MaxBackoff", "%s is negative", c.MaxBackoff)
	}
	if d := c.withDefaults(); d.MaxBackoff < d.MinBackoff {
		return validate.InvalidFieldf("broker", "RelayConfig.MaxBackoff", "%s is below MinBackoff %s", d.MaxBackoff, d.MinBackoff)
	}
	return nil
}

// withDefaults returns c with each zero field set to its default.
func (c RelayConfig) withDefaults() RelayConfig {
	if c.Batch == 0 {
		c.Batch = DefaultBatch
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = max(DefaultMaxBackoff, c.MinBackoff)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Relay moves envelopes from an [Outbox] to a [Broker], at least once:
// it reads the pending messages in Seq order, publishes them with
// [PublishAll], and marks them sent only once the broker has accepted
// them. A crash between the two publishes them again; the broker drops an
// ID it has seen within its deduplication window, so subscribers see each
// envelope once as long as the relay catches up within the window. While
// the broker (or the outbox's database) is down, the relay backs off and
// retries, and loses nothing: the envelopes wait in the outbox.
//
// A Relay is safe for concurrent use; its own calls publish one batch at
// a time. Several relays, in one process or many, may serve one outbox:
// they may publish an envelope twice, which deduplication absorbs.
type Relay struct {
	outbox Outbox
	broker Broker
	cfg    RelayConfig
	mu     sync.Mutex // one flush at a time
}

// NewRelay returns a relay from o to b. An invalid cfg returns an error
// matching [nova.ErrInvalid] that names the field.
func NewRelay(o Outbox, b Broker, cfg RelayConfig) (*Relay, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Relay{outbox: o, broker: b, cfg: cfg.withDefaults()}, nil
}

// Flush publishes every message pending in the outbox, batch by batch,
// and returns how many it published. It stops at the first failure,
// leaving the rest (and the failed batch) in the outbox for the next call.
// An envelope that can never be published (it fails validation) is logged
// as an error and removed, so that it does not block the ones after it.
func (r *Relay) Flush(ctx context.Context) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sent := 0
	for {
		msgs, err := r.outbox.Pending(ctx, r.cfg.Batch)
		if err != nil {
			return sent, err
		}
		if len(msgs) == 0 {
			return sent, nil
		}
		envs := make([]Envelope, 0, len(msgs))
		seqs := make([]int64, 0, len(msgs))
		for _, m := range msgs {
			seqs = append(seqs, m.Seq)
			if err := m.Envelope.Validate(); err != nil {
				r.log(ctx, slog.LevelError, "broker: relay drops an envelope that cannot be published",
					"seq", m.Seq, "id", m.Envelope.ID, "topic", m.Envelope.Topic, "error", err)
				continue
			}
			envs = append(envs, m.Envelope)
		}
		if err := publishTraced(ctx, r.broker, envs); err != nil {
			return sent, err
		}
		if err := r.outbox.MarkSent(ctx, seqs); err != nil {
			return sent, err
		}
		sent += len(envs)
		if len(msgs) < r.cfg.Batch {
			return sent, nil
		}
	}
}

// publishAll is [PublishAll] under recover: a panic of the broker's
// Publish is a *nova.PanicError, a failed publish like any other, which
// leaves the envelopes in the outbox for a later attempt.
func publishAll(ctx context.Context, b Broker, envs []Envelope) (err error) {
	defer nova.Recover(&err)
	return PublishAll(ctx, b, envs...)
}

// log writes a record to the configured logger. A panic of its handler
// is dropped: losing a log record must not stop the relay.
func (r *Relay) log(ctx context.Context, level slog.Level, msg string, args ...any) {
	defer func() { _ = recover() }()
	r.cfg.Logger.Log(ctx, level, msg, args...)
}

// Run relays until ctx is done, then returns nil: it flushes the outbox,
// then waits for the outbox's Wake channel or PollInterval and flushes
// again. After a failure it logs and waits a backoff that grows with
// each consecutive failure, then tries again. A panic of the broker's
// Publish is such a failure (a *nova.PanicError), and a panic of the
// logger's handler loses only its record. The caller owns the
// goroutine Run blocks: it ends when ctx is done.
func (r *Relay) Run(ctx context.Context) error {
	failures := 0
	for {
		wake := r.outbox.Wake()
		_, err := r.Flush(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := r.cfg.PollInterval
		if err != nil {
			failures++
			wait = max(backoff.Full(r.cfg.MinBackoff, r.cfg.MaxBackoff, failures), time.Millisecond)
			level := slog.LevelWarn
			if errors.Is(err, nova.ErrInvalid) {
				level = slog.LevelError
			}
			r.log(ctx, level, "broker: relay failed; retrying", "failures", failures, "wait", wait, "error", err)
		} else {
			failures = 0
		}
		t := time.NewTimer(wait)
		if err != nil {
			wake = nil // back off even if more arrives
		}
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}
