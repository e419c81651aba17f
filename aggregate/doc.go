// Package aggregate loads and saves event-sourced aggregates.
//
// # The idea
//
// An aggregate (an order, an account) is not stored as a row. Its stream of
// events is the record, and its state is what folding those events gives. A
// command is handled in three steps: load the state by replaying the
// stream, decide which new events the command causes (or refuse it with an
// error), and append those events, expecting the stream to still be at the
// version that was loaded. If another writer got there first, the append
// fails with [nova.ErrConcurrency] and nothing is written; reloading and
// deciding again is always safe.
//
// The state is a plain Go type whose pointer folds events in:
//
//	type Order struct{ Status string; Total int64 }
//
//	func (o *Order) Apply(event any) error {
//		switch e := event.(type) {
//		case Placed:
//			o.Status, o.Total = "placed", e.Total
//		case Paid:
//			o.Status = "paid"
//		}
//		return nil
//	}
//
// Events reach Apply as the values a [nova.Registry] decodes (Placed, not
// *Placed), already upcast to their current shape, both on load and after a
// save, so the state never depends on how it was built.
//
// # The API
//
//   - [NewRepository] builds a [Repository] from a [Config]: the store, the
//     registry, how aggregate IDs map to stream IDs, and snapshots. The
//     state type is the one type argument; the rest is inferred:
//     aggregate.NewRepository[Order](cfg).
//   - [Repository.Load] replays a stream into a [Root]: the ID, the version
//     of the last event applied, and the state. An empty stream is an error
//     matching [nova.ErrNotFound]. Apply sees the events one at a time, in
//     stream order, on the caller's goroutine; on a long stream the
//     decoding runs ahead of it on other goroutines
//     ([Config.LoadDecoders]).
//   - [Repository.Save] appends events to a root's stream at the root's
//     version, then applies them to the root's state. Saving no events
//     writes nothing.
//   - [Repository.Update] is the command loop in one call: load (or start
//     fresh), decide, save, and on a concurrency conflict reload and decide
//     again, a bounded number of times.
//   - [Given] is a given/when/then fixture for testing decisions without a
//     store.
//
// # Streams
//
// An aggregate ID maps to a stream ID through [Config.Category] (stream
// "order-42" for category "order" and ID "42", KurrentDB's convention, so
// category projections can find every order) or [Config.StreamFunc]. With
// neither, the ID is the stream ID.
//
// # Snapshots
//
// A long stream is slow to replay. With [Config.Snapshots] set, a save that
// takes the stream past a multiple of [Config.SnapshotEvery] also stores the
// state, encoded with [Config.Codec], as a [Snapshot] tagged with
// [Config.SnapshotSchema], the version of the state's shape. A load starts
// from the latest snapshot and replays only the events after it.
//
// A snapshot is a cache, never the record, so it is never trusted blindly:
//
//   - a snapshot of another shape (Schema differs) is ignored; bump
//     SnapshotSchema whenever the state type or its Apply changes meaning;
//   - a snapshot that fails to decode, or that claims a version the stream
//     does not have, is ignored and reported;
//   - a failure to save a snapshot never fails the save that caused it (the
//     events are committed by then); it is reported.
//
// Reports go to [Config.ErrorFunc], by default a warning on [slog.Default].
// Snapshots are written synchronously after the append, on the caller's
// context: no background goroutine is left behind.
//
// # Panics
//
// The code a repository calls (Apply, decide functions, StreamFunc, the
// snapshot codec, ErrorFunc) runs under recover. A panic in Apply, a
// decide function or StreamFunc is a [*nova.PanicError] (matching
// [nova.ErrPanic], with its stack) returned as that code's error would
// be: a load fails, an update writes nothing, a save whose Apply panicked
// leaves a root that must be reloaded. A panicking snapshot codec is
// reported like a codec error; a panicking ErrorFunc's report goes to
// [slog.Default] instead.
package aggregate
