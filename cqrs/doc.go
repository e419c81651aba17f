// Package cqrs separates the writes of a Nova application from its reads:
// commands change aggregates by saving events, queries answer from read
// models ("projections") that are built from those events and shaped for
// the question asked.
//
// # The idea
//
// A command is a request to change one thing ("place order 42"). It is
// handled once, by one handler, which loads the aggregate, decides, and
// saves the events that record what happened. A query asks a question
// and changes nothing. Keeping the two apart lets each side be modelled,
// stored and scaled for its own job: the write side is an event stream
// per aggregate with an expected version guarding every save; the read
// side is a set of JSON documents by key that a projection keeps up to
// date.
//
// # Which to use
//
// New code writes one handler per command with [Handle] (or
// [HandleResult]) on a [CommandBus]. The handler loads the aggregate from
// an aggregate.Repository, decides, and saves the events through it,
// passing [StampMetadata]'s result so the events carry the command's IDs:
//
//	err := cqrs.Handle(bus, func(ctx context.Context, cmd ShipOrder) error {
//		_, err := orders.Update(ctx, cmd.Order, func(o *Order) ([]any, error) {
//			return o.Ship()
//		}, &aggregate.SaveOptions{Metadata: cqrs.StampMetadata(ctx, nova.Metadata{})})
//		return err
//	})
//
// Queries are handled the same way with [HandleQuery] on a [QueryBus],
// reading read models from a [QueryStore] (raw get and upsert of a JSON
// document by key, with the typed [GetProjection] and
// [UpsertProjection]).
//
// The self-executing shape exists for code ported from
// nova-boot-data-patterns: a [Command] whose Execute saves events through
// a [CommandStore] and returns the aggregate's ID, and a [Query] whose
// Execute reads a QueryStore. It is the same bus underneath, not a second
// path: [RegisterCommand] registers C's Execute as C's handler with
// [HandleResult], so it runs inside the bus's middleware like any other
// handler, and [RegisterQuery] does the same on a QueryBus.
// [EventCommandStore] ([NewEventCommandStore]) is a few lines over a
// [nova.Store]: SaveEvent is an Append of one event, stamped from ctx;
// Events is a ReadStream. novamem.CQRSStore is one in-memory value that
// is both stores.
//
// Query stores are implemented by the backends (novamem, novasqlite,
// novapg and novamysql tables, novaredis keys "{prefix}:{key}", novamongo
// documents) and all pass one suite, novatest.RunQueryStore. The SQL ones
// write inside the transaction a projection's checkpoint commits in,
// found in the ctx.
//
// # Buses and middleware
//
// Applications usually dispatch commands rather than call them: a
// [CommandBus] routes each command to the one handler registered for its
// Go type, and a [QueryBus] does the same for queries. Handlers are
// plain typed functions, registered with generics whose type arguments
// are inferred:
//
//	bus := new(cqrs.CommandBus)
//	err := cqrs.Handle(bus, func(ctx context.Context, cmd PlaceOrder) error { ... })
//	err = bus.Dispatch(ctx, PlaceOrder{ID: "42"})
//
//	qbus := new(cqrs.QueryBus)
//	err = cqrs.HandleQuery(qbus, func(ctx context.Context, q GetOrder) (OrderView, error) { ... })
//	view, err := cqrs.Ask[OrderView](ctx, qbus, GetOrder{ID: "42"})
//
// What every handler needs is middleware around it, as in Axon's
// interceptors or Commanded's middleware, composed in the order given to
// Use (the first is outermost):
//
//   - [Logging] logs each message handled, with its duration and error.
//   - [Validation] rejects a message whose Validate method fails before
//     its handler runs, with an error matching [nova.ErrInvalid].
//   - [Retry] runs a handler again when it lost an optimistic
//     concurrency race ([nova.ErrConcurrency]): capped exponential
//     backoff with full jitter, a bounded number of attempts, and ctx
//     honoured while waiting.
//   - [Idempotency] runs a command carrying an ID ([Identified]) at most
//     once, using a [HandledStore] of the commands that succeeded, keyed
//     by type and ID ([CommandKey]): CancelOrder{ID: "order-77"} after
//     PlaceOrder{ID: "order-77"} is another command, and runs.
//   - [Correlation] puts the message's metadata in ctx: the command's ID
//     becomes the causation ID of what it causes and the correlation ID
//     flows on from the caller. Code saving through
//     aggregate.Repository passes [StampMetadata]'s result in its
//     SaveOptions; [EventCommandStore] stamps every event it saves.
//
// A useful order is Logging, Validation, Correlation, Idempotency, Retry:
// a conflict is retried inside the idempotency check, so a command that
// succeeds on its third attempt is recorded once.
//
// # Exactly once is a storage property
//
// [MemoryHandled] makes a process run each command once for as long as
// it lives. Across processes and crashes, the record of a handled
// command must commit in the same transaction as the command's events,
// and the record Nova uses is the events themselves: a handler saves its
// events under IDs derived from the command's type and ID
// ([CommandKey.EventID]), so a command sent again after a crash (its
// events saved, not yet marked in the HandledStore) decides the same
// events at the same place and its append is an idempotent retry that
// writes nothing (see [nova.Store]'s Append), while a command of another
// type with the same ID derives other IDs. The events also carry the
// command's ID as their causation ID. ([EventID] derives from the ID
// alone; it stays for events already stored under its IDs.)
// A handler whose decision depends on the time or on other streams may
// decide differently the second time; such handlers should key their
// outside effects by the command's ID as well.
//
// Every entry point validates its input: a nil message fails with an
// error matching [nova.ErrInvalid], an unknown
// message type with one matching [ErrNoHandler], a second registration
// with [ErrHandlerExists], a request for the wrong result type with
// [ErrResultType].
//
// Handlers and middleware run under recover: one that panics fails its
// message with a [*nova.PanicError] (matching [nova.ErrPanic], with the
// panic's stack), which the middleware outside it and the caller see as
// any other error. The process does not die and the panic does not reach
// the caller.
package cqrs
