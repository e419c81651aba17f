//go:build race

package scaleout_test

// raceEnabled is true under the race detector, which slows the processes
// several times over: the tests start fewer runs by default then.
const raceEnabled = true
