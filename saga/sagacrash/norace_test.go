//go:build !race

package sagacrash_test

const raceEnabled = false
