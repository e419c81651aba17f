//go:build !race

package novasqlite_test

const raceEnabled = false
