package projection

import (
	"context"
	"sync"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/internal/projectiondriver"
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

	mu         sync.RWMutex
	handlers   map[string]HandlerFunc
	any        HandlerFunc
	prefetches []prefetch
}

// prefetch is one [Prefetch] declaration.
type prefetch struct {
	qs  cqrs.QueryStore
	key func(e nova.Event) string
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

// Prefetch declares that p's handlers read, for an event e, the document
// of qs under key(e) (none when key returns ""). Under a [TxCheckpoints],
// before the handlers of a batch run, the runner gives a SQL query store
// (novasqlite's, novapg's, novamysql's) the keys of the batch's events,
// and it reads the documents in one query per table, instead of one per
// event the first time a handler reads each: on a server, a round trip
// per distinct key of the batch saved. Keys the store does not hold are
// remembered as missing. Prefetching is a hint: other query stores
// ignore it, and a handler may read keys it did not declare. Prefetch
// may be called more than once, for several keys or stores; key runs
// under recover (a panic skips the event's key).
func Prefetch(p *Projection, qs cqrs.QueryStore, key func(e nova.Event) string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.prefetches = append(p.prefetches, prefetch{qs: qs, key: key})
}

// prefetch asks the query stores of p's [Prefetch] declarations for the
// documents evs's handlers will read, into the batch of ctx.
func (p *Projection) prefetch(ctx context.Context, evs []nova.Event) error {
	p.mu.RLock()
	pfs := p.prefetches
	p.mu.RUnlock()
	for _, pf := range pfs {
		pre, ok := pf.qs.(projectiondriver.Prefetcher)
		if !ok {
			continue
		}
		var keys []string
		seen := make(map[string]bool)
		for _, e := range evs {
			if p.handler(e.Type) == nil {
				continue
			}
			if k := callKey(pf.key, e); k != "" && !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
		if len(keys) == 0 {
			continue
		}
		if err := pre.Prefetch(ctx, keys); err != nil {
			return err
		}
	}
	return nil
}

// callKey returns key(e), or "" when key panics.
func callKey(key func(e nova.Event) string, e nova.Event) (k string) {
	defer func() {
		if recover() != nil {
			k = ""
		}
	}()
	return key(e)
}
