package projection

import (
	"context"
	"sync"

	"github.com/nova-go/nova"
)

// HandlerFunc handles one event, given in its current shape (upcast by the
// projection's registry).
type HandlerFunc func(ctx context.Context, e nova.Event) error

// Projection is a named set of handlers by event type. It is built once,
// then given to a [Runner]; registering while a runner uses it is safe
// but affects only events handled afterwards.
type Projection struct {
	name string
	reg  *nova.Registry

	mu       sync.RWMutex
	handlers map[string]HandlerFunc
	any      HandlerFunc
}

// New returns a projection called name that decodes events through reg.
// The name keys its checkpoint, so it must stay the same across restarts.
// A bad name fails with an error matching [nova.ErrInvalid].
func New(name string, reg *nova.Registry) (*Projection, error) {
	if err := validateName(name); err != nil {
		return nil, err
	}
	return &Projection{name: name, reg: reg, handlers: make(map[string]HandlerFunc)}, nil
}

// Name returns the projection's name.
func (p *Projection) Name() string { return p.name }

// On registers fn for the event type the registry knows T by. Events of
// that type are upcast and decoded into a T before fn runs; a decoding
// error counts as a handler error. T must be registered, and a type has
// at most one handler; otherwise On fails with an error matching
// [nova.ErrInvalid].
func On[T any](p *Projection, fn func(ctx context.Context, e nova.Event, v T) error) error {
	var zero T
	name, err := p.reg.TypeName(zero)
	if err != nil {
		return invalidf("on: %v", err)
	}
	reg := p.reg
	return p.add(name, func(ctx context.Context, e nova.Event) error {
		v, err := nova.DecodeAs[T](reg, e)
		if err != nil {
			return err
		}
		return fn(ctx, e, v)
	}, false)
}

// OnType registers a raw handler for the event type typ, whether or not
// the registry knows a Go type for it. The event it gets is upcast. A
// type has at most one handler.
func OnType(p *Projection, typ string, fn HandlerFunc) error {
	if typ == "" {
		return invalidf("on type: empty event type")
	}
	reg := p.reg
	return p.add(typ, func(ctx context.Context, e nova.Event) error {
		e, err := reg.Upcasted(e)
		if err != nil {
			return err
		}
		return fn(ctx, e)
	}, false)
}

// OnAny registers a raw handler for every event no typed handler takes.
// The event it gets is upcast. There is at most one such handler.
func OnAny(p *Projection, fn HandlerFunc) error {
	reg := p.reg
	return p.add("", func(ctx context.Context, e nova.Event) error {
		e, err := reg.Upcasted(e)
		if err != nil {
			return err
		}
		return fn(ctx, e)
	}, true)
}

func (p *Projection) add(typ string, h HandlerFunc, any bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if any {
		if p.any != nil {
			return invalidf("%q: a handler for any event is already registered", p.name)
		}
		p.any = h
		return nil
	}
	if _, ok := p.handlers[typ]; ok {
		return invalidf("%q: a handler for %q is already registered", p.name, typ)
	}
	p.handlers[typ] = h
	return nil
}

// handler returns the handler for typ, or nil when the projection ignores
// that type.
func (p *Projection) handler(typ string) HandlerFunc {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if h, ok := p.handlers[typ]; ok {
		return h
	}
	return p.any
}
