package cqrs

import (
	"context"
	"fmt"
	"iter"

	"github.com/nova-go/nova"
)

// Command is a self-executing command: it executes against a [CommandStore],
// saving the events it decides on, and returns the ID of the aggregate it
// changed. [RegisterCommand] makes Execute its handler on a [CommandBus].
// It is the shape of ported code; new code writes handlers with [Handle]
// (see "Which to use" in the package documentation).
type Command interface {
	Execute(ctx context.Context, store CommandStore) (aggregateID string, err error)
}

// Query is a self-executing query: it executes against a [QueryStore] and
// returns a result of type R. It has no side effects. [RegisterQuery]
// makes Execute its handler on a [QueryBus].
type Query[R any] interface {
	Execute(ctx context.Context, store QueryStore) (R, error)
}

// CommandStore saves an event of an aggregate and reads an aggregate's
// events. [NewEventCommandStore] provides it over any [nova.Store].
//
// The StoredEvent of nova-boot-data-patterns maps onto Nova's event types
// field by field:
//
//	StoredEvent          Nova
//	aggregate_id         Event.Stream (the aggregate ID is the stream ID)
//	event_type           EventData.Type, Event.Type
//	payload (JSON)       EventData.Data, Event.Data
//	version (1-based)    Event.Version; on save, the expected version
//	timestamp_ms         Event.RecordedAt (set by the store)
//
// and Nova adds the event's ID, its global Position and its Metadata.
type CommandStore interface {
	// SaveEvent appends one event to the aggregate's stream. It states
	// what the caller believes the stream's version is: nova.Exact(v)
	// saves the event as version v+1 or fails with an error matching
	// [nova.ErrConcurrency]. Correlation and
	// causation IDs the event lacks are taken from ctx (see
	// [MetadataFrom]).
	SaveEvent(ctx context.Context, aggregateID string, expected nova.ExpectedVersion, event nova.EventData) (nova.AppendResult, error)
	// Events reads the aggregate's events in version order, one at a
	// time; an aggregate with no events yields nothing. Stopping the loop
	// early ends the read.
	Events(ctx context.Context, aggregateID string) iter.Seq2[nova.Event, error]
}

var _ CommandStore = (*EventCommandStore)(nil)

// EventCommandStore is a [CommandStore] over a [nova.Store]. The zero value and
// a nil *EventCommandStore fail every call with an error matching
// [nova.ErrInvalid]; call [NewEventCommandStore].
type EventCommandStore struct {
	store nova.Store
	reg   *nova.Registry
}

// NewEventCommandStore returns a [CommandStore] that saves and reads events
// in store, one stream per aggregate. It does not own store: closing
// store is the caller's business.
//
// reg is the registry the events are read with (by aggregate
// repositories and projections), or nil when none upcasts them. SaveEvent
// stamps each event whose metadata sets no shape with the current shape
// of its type in reg ([nova.Registry.SchemaVersion]), as
// [nova.Registry.Encode] does: the caller builds the data in the current
// shape, and the upcasters of older shapes must not run on it when it is
// read. With a nil reg an unstamped event is shape 1.
func NewEventCommandStore(store nova.Store, reg *nova.Registry) *EventCommandStore {
	return &EventCommandStore{store: store, reg: reg}
}

// SaveEvent implements [CommandStore]. Metadata from ctx fills the
// event's empty correlation and causation IDs and its missing free keys
// (see [StampMetadata]), and an event that names no shape is stamped with
// its type's current one (see [NewEventCommandStore]).
func (s *EventCommandStore) SaveEvent(ctx context.Context, aggregateID string, expected nova.ExpectedVersion, event nova.EventData) (nova.AppendResult, error) {
	if aggregateID == "" {
		return nova.AppendResult{}, invalidf("save event: empty aggregate ID")
	}
	event.Metadata = StampMetadata(ctx, event.Metadata)
	if event.Metadata.Schema == 0 && s.reg != nil {
		event.Metadata.Schema = s.reg.SchemaVersion(event.Type)
	}
	res, err := s.store.Append(ctx, aggregateID, expected, event)
	if err != nil {
		return nova.AppendResult{}, fmt.Errorf("cqrs: save event of aggregate %q: %w", aggregateID, err)
	}
	return res, nil
}

// Events implements [CommandStore].
func (s *EventCommandStore) Events(ctx context.Context, aggregateID string) iter.Seq2[nova.Event, error] {
	return func(yield func(nova.Event, error) bool) {
		switch {
		case aggregateID == "":
			yield(nova.Event{}, invalidf("events: empty aggregate ID"))
			return
		}
		for e, err := range s.store.ReadStream(ctx, aggregateID, nova.ReadStreamOptions{}) {
			if err != nil {
				yield(nova.Event{}, fmt.Errorf("cqrs: events of aggregate %q: %w", aggregateID, err))
				return
			}
			if !yield(e, nil) {
				return
			}
		}
	}
}

// RegisterCommand makes C's own Execute its handler on b, run against
// store, with [HandleResult]: the command goes through b's middleware
// (validation, correlation, idempotency, retry) as any other does.
// [DispatchResult] with R = string returns the aggregate ID Execute
// returned. C is not inferred: write
//
//	err := cqrs.RegisterCommand[PlaceOrder](bus, store)
func RegisterCommand[C Command](b *CommandBus, store CommandStore) error {
	return HandleResult(b, func(ctx context.Context, cmd C) (string, error) {
		return cmd.Execute(ctx, store)
	})
}

// RegisterQuery makes Q's own Execute its handler on b, run against
// store; [Ask] with R returns its result. Q is not inferred, R is, from
// Q's Execute:
//
//	err := cqrs.RegisterQuery[GetOrder](qbus, store)
func RegisterQuery[Q Query[R], R any](b *QueryBus, store QueryStore) error {
	return HandleQuery(b, func(ctx context.Context, q Q) (R, error) {
		return q.Execute(ctx, store)
	})
}
