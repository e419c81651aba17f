//go:build race

package pgfault_test

// raceEnabled is true under the race detector: the tests run smaller by
// default then.
const raceEnabled = true
