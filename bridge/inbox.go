package bridge

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/internal/startstop"
	"github.com/nova-go/nova/internal/validate"
)

// ErrNotIdentified is matched by the error an [Inbox] rejects a message
// with when Decode returned a command without its own ID.
var ErrNotIdentified = errors.New("bridge: inbox: command carries no ID (implement cqrs.Identified)")

// InboxConfig configures an [Inbox]. Every field but Group is required.
type InboxConfig struct {
	// Broker delivers the messages. With Group set it must be a
	// [broker.GroupSubscriber].
	Broker broker.Broker
	// Pattern names the topics to take ([broker.ValidatePattern]).
	Pattern string
	// Group, when set, makes the inbox a member of this durable consumer
	// group: messages published while no member runs wait for one, and
	// several processes share the messages. Empty subscribes with
	// [broker.Broker.Subscribe]: each inbox gets its own copy of what is
	// published while it runs.
	Group string
	// Bus runs the commands.
	Bus *cqrs.CommandBus
	// Decode returns the command a message asks for. The command must
	// carry its own ID ([cqrs.Identified]), and for a redelivery to be the
	// same command that ID must come from the message: its envelope ID
	// (e.ID), or an ID in its payload. A nil command with a nil error
	// acknowledges the message without dispatching anything. An error
	// rejects it: it is delivered again, then dead-lettered.
	Decode func(e broker.Envelope) (cmd any, err error)
}

func (c InboxConfig) validate() error {
	switch {
	case c.Broker == nil:
		return validate.InvalidFieldf("bridge", "InboxConfig.Broker", "required")
	case c.Bus == nil:
		return validate.InvalidFieldf("bridge", "InboxConfig.Bus", "required")
	case c.Decode == nil:
		return validate.InvalidFieldf("bridge", "InboxConfig.Decode", "required")
	}
	if err := broker.ValidatePattern(c.Pattern); err != nil {
		return validate.InvalidFieldf("bridge", "InboxConfig.Pattern", "%v", err)
	}
	if c.Group != "" {
		if _, ok := c.Broker.(broker.GroupSubscriber); !ok {
			return validate.InvalidFieldf("bridge", "InboxConfig.Group", "%q set, but the broker (%T) has no consumer groups", c.Group, c.Broker)
		}
	}
	return nil
}

// Inbox dispatches the messages of a broker subscription as commands; see
// the package documentation. It starts and stops like the other
// long-running components (internal/startstop): one run at a time, and a
// run that has ended may be followed by another Start. Its methods are
// safe for concurrent use.
type Inbox struct {
	cfg  InboxConfig
	life startstop.Lifecycle // owns the goroutine that ends each run's subscription

	mu      sync.Mutex
	stopErr error // what the last run's Unsubscribe returned, for Stop
}

// NewInbox returns an inbox that is not yet subscribed; [Inbox.Start]
// subscribes.
func NewInbox(cfg InboxConfig) (*Inbox, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Inbox{cfg: cfg}, nil
}

// Start subscribes. The subscription runs until Stop, ctx's end or the
// broker's Close. Starting an inbox that runs, or whose Stop is still
// waiting for a command in progress, is an error; once [Inbox.Stopped] is
// closed it may be started again.
func (in *Inbox) Start(ctx context.Context) error {
	err := in.life.Start(ctx, func(ctx context.Context, group *sync.WaitGroup) error {
		var (
			sub broker.Subscription
			err error
		)
		if in.cfg.Group != "" {
			sub, err = in.cfg.Broker.(broker.GroupSubscriber).SubscribeGroup(ctx, in.cfg.Group, in.cfg.Pattern, in.handle)
		} else {
			sub, err = in.cfg.Broker.Subscribe(ctx, in.cfg.Pattern, in.handle)
		}
		if err != nil {
			return err
		}
		in.mu.Lock()
		in.stopErr = nil
		in.mu.Unlock()
		group.Go(func() {
			select {
			case <-sub.Done(): // ended by the broker's Close
			case <-ctx.Done(): // Stop, or Start's ctx
				err := sub.Unsubscribe() // waits for a command in progress
				in.mu.Lock()
				in.stopErr = err
				in.mu.Unlock()
			}
		})
		return nil
	})
	if errors.Is(err, startstop.ErrRunning) {
		return fmt.Errorf("bridge: inbox on %q: already started", in.cfg.Pattern)
	}
	return err
}

// Stop ends the subscription and waits for a command in progress, or for
// ctx to be done, whichever comes first; then it returns ctx's error, and
// the inbox, told to stop, is still winding down: a later Stop waits
// again, and Start fails until [Inbox.Stopped] is closed. A message being
// handled and not yet acknowledged is delivered again. Stopping an inbox
// that is not running returns nil.
func (in *Inbox) Stop(ctx context.Context) error {
	if err := in.life.Stop(ctx); err != nil {
		return fmt.Errorf("bridge: inbox on %q: stop: %w", in.cfg.Pattern, err)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	err := in.stopErr
	in.stopErr = nil
	return err
}

// Stopped returns a channel closed once the inbox is not running: when
// the run the last Start began has ended (by Stop, Start's ctx or the
// broker's Close, its command in progress returned), or at once for an
// inbox not running.
func (in *Inbox) Stopped() <-chan struct{} { return in.life.Stopped() }

func (in *Inbox) handle(ctx context.Context, e broker.Envelope) (err error) {
	ctx, end := traceInbox(ctx, e)
	defer func() { end(err) }()
	defer nova.Recover(&err)
	cmd, err := in.cfg.Decode(e)
	if err != nil {
		return fmt.Errorf("bridge: inbox: decode %s %q: %w", e.Topic, e.ID, err)
	}
	if cmd == nil {
		return nil
	}
	id, ok := cmd.(cqrs.Identified)
	if !ok || id.CommandID() == "" {
		return fmt.Errorf("%w: message %q gave %T", ErrNotIdentified, e.ID, cmd)
	}
	md := nova.Metadata{CorrelationID: e.Headers[HeaderCorrelationID], CausationID: e.ID}
	if md.CorrelationID == "" {
		md.CorrelationID = e.ID
	}
	return in.cfg.Bus.Dispatch(cqrs.WithMetadata(ctx, md), cmd)
}
