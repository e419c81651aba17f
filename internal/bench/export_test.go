package bench

import "github.com/nova-go/nova/saga"

// PostgresRawSchema returns the scratch schema of a baseline made by the
// RawFunc of [Postgres].
func PostgresRawSchema(r Raw) string { return r.(*postgresRaw).table[0] }

// SetProcsRunHook makes f see, after every run of the saga-procs
// scenario, how many runs it started, their statuses at the end and the
// worker processes' IDs; the function returned removes it.
func SetProcsRunHook(f func(total int, counts map[saga.Status]int, pids []int)) func() {
	procsRunHook = f
	return func() { procsRunHook = nil }
}
