// Package nova is the core of Nova, a library for event sourcing, CQRS and
// durable sagas.
//
// # The idea
//
// State is not stored; the facts that produced it are. Every change to an
// aggregate (an order, an account, a saga run) is recorded as an [Event]
// appended to that aggregate's stream. Current state is rebuilt by replaying
// the stream, read models are built by following the global log, and nothing
// is ever updated in place.
//
// This package holds the vocabulary every other package shares and depends
// on the standard library only:
//
//   - [EventData] is what a caller appends; [Event] is what the store
//     recorded, with its stream [Event.Version] (1-based) and its global
//     [Position].
//   - [Store] is the contract every backend implements: all-or-nothing
//     [Store.Append] with an [ExpectedVersion], streaming reads through
//     iterators, and a catch-up-then-live [Store.Subscribe]. The backends
//     live in their own packages (novamem, novasqlite, ...) and all pass the
//     same conformance suite (package novatest).
//   - [Registry] maps Go types to event type names, encodes and decodes
//     them (JSON by default) and runs upcasters that turn old shapes of an
//     event into the current one. An event of a newer shape than the
//     registry knows, written by a newer deployment, fails the read with
//     an [*EventTooNewError] rather than being misread, unless
//     [RegistryOptions.AllowNewer] says to read it as the newest known
//     shape.
//
// # Guarantees every Store gives
//
//   - Append writes all of its events or none. A stream that is not at the
//     expected version fails with a [*ConcurrencyError] matching
//     [ErrConcurrency].
//   - Appending events whose IDs are already stored at the same place is a
//     success that writes nothing, so a caller may retry an append after a
//     timeout without writing twice. Reusing an ID for different content, or
//     at another place, fails with [ErrDuplicateEvent].
//   - The global log is gap-free: a reader that has seen [Position] P never
//     later receives an event at or below P, and never skips one. Positions
//     order the log in commit order, so they are safe to store as
//     checkpoints.
//   - No read loads a whole stream or the whole log into memory: reads are
//     [iter.Seq2] iterators that fetch in pages.
//
// # Limits
//
// Every store refuses the same input, before any I/O, with an error
// matching [ErrInvalid], so that what one backend accepts every other
// holds: stream IDs and event types of at most [MaxStreamLen] and
// [MaxTypeLen] bytes of valid UTF-8 without control characters (C0, DEL
// or C1); events of at most [MaxEventLen] (8 MiB) counting the type, the
// data and the metadata as stores write it ([EventData.Size]), of which
// metadata at most [MaxMetadataLen] (32 KiB, [Metadata.Size]); at most
// [MaxBatch] events per append. Where a server's own setting is smaller
// than these (a NATS server's max_payload, 1 MiB by default; a MySQL
// server's max_allowed_packet below 16 MiB), the backend refuses a larger
// event before sending it, with an error matching [ErrInvalid] that names
// the setting and says to raise it.
//
// Bad input to any package of Nova, limits and Config fields included,
// is an [*InvalidError]: errors.As finds it, with the package that
// refused the input (Pkg), the field when there is one (Field) and what
// is wrong (Msg), and its message names the package once
// ("novapg: Config.Schema: ...", "saga: empty run ID").
//
// # Reading
//
// Every read returns an iterator; range over it and stop at the first
// error:
//
//	for ev, err := range store.ReadStream(ctx, "order-42", nova.ReadStreamOptions{}) {
//		if err != nil {
//			return err
//		}
//		fmt.Println(ev.Version, ev.Type)
//	}
//
// Breaking out of the loop early releases whatever the read held (rows,
// connections). A cancelled context ends the read with ctx.Err().
package nova
