//go:build race

package novasqlite_test

// raceEnabled is true under the race detector, which slows SQLite (Go code
// generated from WebAssembly) by an order of magnitude: the load cases run
// smaller then.
const raceEnabled = true
