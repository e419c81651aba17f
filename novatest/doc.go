// Package novatest holds the conformance suites every Nova backend must
// pass, and the small fixtures those suites and the backends' own tests
// share.
//
// # The idea
//
// There is one definition of what an event store is, and it is executable.
// A backend does not document which guarantees it keeps; it runs
// [RunStore] in its tests and passes it, as river's drivers run
// riverdrivertest and watermill's pub/subs run its pubsub tests:
//
//	func TestStore(t *testing.T) {
//		novatest.RunStore(t, func(t *testing.T) nova.Store {
//			s, err := novamem.New(novamem.Config{})
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// The constructor returns a fresh, empty store for each subtest and
// registers its own cleanup. Subtests run in parallel where they can, so a
// constructor must be safe to call concurrently. The cases, by file:
//
//   - expected.go: every expected version (Any, NoStream, StreamExists,
//     Exact(n), Exact(0)) against empty and non-empty streams; a mismatch
//     is a *nova.ConcurrencyError naming stream, expected and actual
//     version, and writes nothing; what Append returns.
//   - atomic.go: a batch with one bad event writes nothing; readers never
//     see part of a batch while writers append.
//   - idempotency.go: re-appending stored events at their place succeeds
//     with Duplicate set and the original result; reused IDs (other
//     content, other stream, other place, partial overlap, reordered) fail
//     with nova.ErrDuplicateEvent.
//   - concurrency.go: 64 writers racing on one stream with exact versions
//     and retries, and with Any; 16 writers creating one stream with
//     NoStream; 8 identical appends at once, as retries in flight.
//   - subscribe.go: subscriptions resumed from a position; appends made
//     one at a time while four subscribers wait, each of which must wake
//     them; 16 writers
//     followed by a subscriber from the start, one joining midway and a
//     ReadAll poller, each seeing every event once, in order.
//   - read.go: ReadStream forwards and backwards, from the middle, past the
//     end, with limits, across pages; ReadAll from positions with limits;
//     Streams with After and Limit in byte order.
//   - roundtrip.go, limits.go: data bytes and metadata round trips,
//     RecordedAt, assigned IDs, no shared slices; every documented limit
//     and stream names that trip up SQL or subject mapping.
//   - cancel.go, release.go, close.go: cancelled contexts end every call
//     with an error matching context.Canceled; loops stopped early hold
//     nothing and leave no goroutine behind after Close; use after Close
//     fails with nova.ErrClosed.
//   - badinput.go: every kind of bad input fails with nova.ErrInvalid (or
//     nova.ErrUnknownType from a registry), never panics, writes nothing.
//   - server.go: subscribers started while writers run (every backend);
//     with [WithOpenTransaction], a transaction left open holds readers
//     back and loses nothing; with [WithConnectionKiller], subscriptions
//     survive dropped connections without loss or repeats. The two hooked
//     cases run alone, before the parallel ones.
//   - single.go: a store that is an [AtomicBatcher] and cannot append
//     several events atomically (JetStream before 2.12) runs only the cases
//     that append one event at a time.
//
// [RunSnapshotStore] (snapshot.go) does the same for
// aggregate.SnapshotStore, and [RunQueryStore] (querystore.go) for
// cqrs.QueryStore, with [RunSQLQueryStore] for the SQL ones.
// [RunSagaStore] (sagastore.go, sagacases.go) holds saga.RunStore to its
// transitions' atomicity, its leases and claims, and its outbox.
// [RunCheckpointStore] (checkpoint.go) holds projection.CheckpointStore,
// and the SQL backends' transactional checkpoints, to their fences,
// leases and rebuild swaps. A
// backend that is not in the suites is not done, and a case is never
// weakened to let a backend pass.
//
// # Sizes
//
// The load cases have these sizes at scale 1; the first three are the
// figures the suite was specified with:
//
//	case              goroutines   events each   events in all
//	RaceExact         64 writers   500           32,000
//	RaceAny           64 writers   500           32,000
//	SubscribeWriters  16 writers   10,000        160,000
//	SubscribeWakeUp   1 writer     1,000         1,000
//	AtomicVisibility  4 writers    200 x 5       4,000
//
// The factor is taken from, in order of precedence:
//
//   - the test flag -nova.scale=F (go test ./novasqlite -args -nova.scale=2),
//   - the environment variable NOVA_TEST_SCALE=F (NOVA_TEST_SCALE=2 go test ./...),
//   - otherwise 1, except that RaceExact then runs a tenth of its figure
//     (64 x 50).
//
// RaceExact is the exception because every successful append with an
// exact expected version needs a commit of its own: the next writer cannot
// learn the new version before that commit returns, so group commit cannot
// help, and on a durable store each commit is a disk flush (about 1 ms on
// an ordinary disk; the full 32,000 take over half a minute on SQLite
// with synchronous=FULL). Every other case runs at scale 1 in seconds on
// memory and on SQLite, and NOVA_TEST_SCALE=1 runs them all at the specified
// figures (CI does, for memory and SQLite).
//
// Goroutine counts are fixed; the scale multiplies the events per
// goroutine. It is divided by 10 under go test -short, and multiplied by
// the factor a backend passes with [WithScale] (default 1). Every scaled
// size is at least 1. Waits that must end (a cancelled subscription, a
// Close, the next event of a subscription) are bounded by a generous
// timeout, [WithTimeout]; the suite asserts that they end, never how fast.
package novatest
