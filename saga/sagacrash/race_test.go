//go:build race

package sagacrash_test

// raceEnabled is true under the race detector, which slows the workers
// (SQLite most, being Go code generated from WebAssembly) by an order of
// magnitude: the tests run fewer rounds and runs by default then.
const raceEnabled = true
