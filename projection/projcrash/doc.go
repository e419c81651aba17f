// Package projcrash holds the projection crash test and nothing else: a
// projection runner on SQLite (the events and the read model in one file)
// or on PostgreSQL (one scratch schema) is killed with SIGKILL at random
// points while writers append, restarted each time, and the read model is
// then checked against the log and against a fresh rebuild. Its tests
// re-execute their own binary as the runner's process.
//
// NOVA_PROJCRASH_EVENTS sets how many events the writers append (default
// on SQLite 10,000, 4,000 under the race detector; on PostgreSQL 2,500,
// 1,000 under the race detector; the acceptance size is 100,000), NOVA_PROJCRASH_KILLS how many
// times the runner is killed (default 20).
package projcrash
