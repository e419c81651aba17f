//go:build race

package brokertest

// raceEnabled is true under the race detector, which slows the parent and
// the child processes alike: GroupKill publishes fewer envelopes then.
const raceEnabled = true
