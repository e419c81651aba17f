//go:build race

package projcrash_test

// raceEnabled is true under the race detector, which slows SQLite by an
// order of magnitude: the test runs smaller by default then.
const raceEnabled = true
