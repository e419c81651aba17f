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
//			s, err := novamem.New(nil)
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
// constructor must be safe to call concurrently. The suite covers expected
// versions and concurrency errors, all-or-nothing batches, idempotent
// retries and reused IDs, racing writers on one stream, a subscriber that
// must see every event of many concurrent writers exactly once and in
// order, paged reads in both directions, cancellation, loops stopped early,
// bad input, metadata round trips and use after Close. A backend that is
// not in the suite is not done, and a case is never weakened to let a
// backend pass.
//
// # Sizes
//
// The load cases run at these sizes at scale 1, the default:
//
//	case              goroutines   events each   events in all   the figure
//	RaceAny           64 writers   500           32,000          the same
//	SubscribeWriters  16 writers   10,000        160,000         the same
//	RaceExact         64 writers   50            3,200           scale 10
//
// RaceExact is smaller because every successful append with an exact
// expected version needs a commit of its own: the next writer cannot learn
// the new version before that commit returns, so group commit cannot help,
// and on a durable store each commit is a disk flush (about 1 ms on an
// ordinary disk; the 32,000 take over half a minute on SQLite with
// synchronous=FULL). The others run in seconds on memory and on SQLite.
//
// Goroutine counts are fixed; the events per goroutine are multiplied by a
// scale factor taken from, in order of precedence:
//
//   - the test flag -nova.scale=F (go test ./novasqlite -args -nova.scale=10),
//   - the environment variable NOVA_TEST_SCALE=F (NOVA_TEST_SCALE=10 go test ./...),
//   - otherwise 1,
//
// then divided by 10 under go test -short, and multiplied by the factor a
// backend passes with [WithScale] (default 1). Every scaled size is at
// least 1. Waits that must end (a cancelled subscription, a Close, the next
// event of a subscription) are bounded by a generous timeout,
// [WithTimeout]; the suite asserts that they end, never how fast.
package novatest
