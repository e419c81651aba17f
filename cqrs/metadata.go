package cqrs

import (
	"context"
	"maps"

	"github.com/nova-go/nova"
)

// Identified is a message that carries its own ID, such as a command
// with a client-chosen UUID. [Correlation] makes the ID the causation ID
// of what the command causes; [Idempotency] runs a command with a given
// ID at most once.
type Identified interface {
	CommandID() string
}

// idOf returns msg's ID, "" when it has none.
func idOf(msg any) string {
	if m, ok := msg.(Identified); ok {
		return m.CommandID()
	}
	return ""
}

type metadataKey struct{}

// WithMetadata returns a context carrying md, the metadata that events
// caused by the work in ctx should bear.
func WithMetadata(ctx context.Context, md nova.Metadata) context.Context {
	md.Extra = maps.Clone(md.Extra)
	return context.WithValue(ctx, metadataKey{}, md)
}

// MetadataFrom returns the metadata ctx carries (see [WithMetadata]),
// the zero value when none. The result is a copy the caller may modify.
func MetadataFrom(ctx context.Context) nova.Metadata {
	md, _ := ctx.Value(metadataKey{}).(nova.Metadata)
	md.Extra = maps.Clone(md.Extra)
	return md
}

// StampMetadata returns md completed from the metadata ctx carries: an
// empty correlation or causation ID is taken from ctx, and so are free
// keys md lacks. What md sets wins. Stores and repositories call it so
// that every event a command causes records the command:
//
//	opts := &aggregate.SaveOptions{Metadata: cqrs.StampMetadata(ctx, nova.Metadata{})}
//	_, err := repo.Save(ctx, root, events, opts)
//
// [EventCommandStore.SaveEvent] does this for every event it saves.
func StampMetadata(ctx context.Context, md nova.Metadata) nova.Metadata {
	from := MetadataFrom(ctx)
	if md.CorrelationID == "" {
		md.CorrelationID = from.CorrelationID
	}
	if md.CausationID == "" {
		md.CausationID = from.CausationID
	}
	if len(from.Extra) > 0 {
		extra := from.Extra // already a copy
		maps.Copy(extra, md.Extra)
		md.Extra = extra
	}
	return md
}

// Correlation returns middleware that sets the metadata in ctx (see
// [WithMetadata]) for the handler: a message with an ID ([Identified])
// becomes the causation of everything it causes, and the correlation ID
// flows on from the caller's ctx. A message that starts a conversation
// (no correlation ID in ctx) starts it with its own ID, or with a fresh
// one if it has none; free keys flow on unchanged.
//
// A handler that dispatches further commands passes its ctx on, so they
// share the correlation ID and name their cause; events saved through
// [EventCommandStore] or with [StampMetadata] carry both.
func Correlation() Middleware {
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, msg any) (any, error) {
			md := MetadataFrom(ctx)
			id := idOf(msg)
			if id != "" {
				md.CausationID = id
			}
			if md.CorrelationID == "" {
				md.CorrelationID = id
				if id == "" {
					md.CorrelationID = nova.NewEventID()
				}
			}
			return next(WithMetadata(ctx, md), msg)
		}
	}
}
