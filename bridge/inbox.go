package bridge

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/cqrs"
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
// the package documentation. Its methods are safe for concurrent use.
type Inbox struct {
	cfg InboxConfig

	mu  sync.Mutex
	sub broker.Subscription
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
// broker's Close. Starting a running inbox is an error; a stopped one may
// be started again.
func (in *Inbox) Start(ctx context.Context) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.sub != nil {
		select {
		case <-in.sub.Done():
		default:
			return fmt.Errorf("bridge: inbox on %q: already started", in.cfg.Pattern)
		}
	}
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
	in.sub = sub
	return nil
}

// Stop ends the subscription and waits for a command in progress. A
// message being handled and not yet acknowledged is delivered again.
func (in *Inbox) Stop(context.Context) error {
	in.mu.Lock()
	sub := in.sub
	in.mu.Unlock()
	if sub == nil {
		return nil
	}
	return sub.Unsubscribe()
}

// Done is closed when the inbox's subscription has ended; it is nil
// before the first Start.
func (in *Inbox) Done() <-chan struct{} {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.sub == nil {
		return nil
	}
	return in.sub.Done()
}

func (in *Inbox) handle(ctx context.Context, e broker.Envelope) (err error) {
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
