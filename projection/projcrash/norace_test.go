//go:build !race

package projcrash_test

const raceEnabled = false
