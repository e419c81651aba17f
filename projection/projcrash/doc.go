// Package projcrash holds the projection crash test and nothing else: a
// projection runner on SQLite (the events and the read model in one file),
// on PostgreSQL (one scratch schema) or on MySQL/MariaDB (one scratch
// database) is killed with SIGKILL at random points while writers
// append, restarted each time, and the read model is then checked against
// the log and against a fresh rebuild. Its tests re-execute their own
// binary as the runner's process.
//
// NOVA_PROJCRASH_EVENTS sets how many events the writers append; the
// acceptance size is 100,000. The default is 10,000 on SQLite and 2,500
// on PostgreSQL, and 4,000 and 1,000 under the race detector. The MySQL
// half has its own, NOVA_PROJCRASH_MYSQL_EVENTS, 2,500 by default and
// 1,000 under the race detector.
// NOVA_PROJCRASH_KILLS sets how many times the runner is killed (default
// 20).
//
// The tests use go-sqlite3, pgx and database/sql with go-sql-driver/mysql
// directly for the read model's SQL, as a user's handlers would.
package projcrash
