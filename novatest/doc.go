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
// The load cases run at the sizes of the original issue by default: 64
// goroutines appending 500 events each to one stream (twice: with exact
// expected versions and with Any), and 16 writers appending 10,000 events
// each while a subscriber follows. Goroutine counts are fixed; the number
// of events per goroutine is multiplied by a scale factor, taken from, in
// order of precedence:
//
//   - the test flag -nova.scale=F (for example go test -nova.scale=0.1),
//   - the environment variable NOVA_TEST_SCALE=F,
//   - otherwise 1.
//
// and then by the factor a backend passes with [WithScale] (default 1), so
// NOVA_TEST_SCALE=10 runs ten times the default of every backend. Every
// scaled size is at least 1. Waits that must end (a cancelled subscription,
// a Close) are bounded by a generous timeout, [WithTimeout]; the suite
// asserts that they end, never how fast.
package novatest
