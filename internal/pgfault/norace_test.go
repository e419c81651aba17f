//go:build !race

package pgfault_test

const raceEnabled = false
