// Package novamysql is Nova's event store on MySQL 8 and MariaDB 10.11 (and
// later), built on github.com/go-sql-driver/mysql.
//
// # The idea
//
// The global log must be gap-free: a reader that has seen position P must
// never later find an event at or below P. With AUTO_INCREMENT that fails,
// because ids are taken at insert and transactions commit in another order,
// so a reader may see 7 before 6 commits. This store allocates positions
// from one counter row instead, inside the append transaction:
//
//	UPDATE nova_counter SET position = LAST_INSERT_ID(position + n) WHERE id = 1
//
// The statement takes the row's exclusive lock, which the transaction holds
// until it commits. The next append's transaction waits for the lock, so it
// allocates its positions only after the previous one has committed: commit
// order is position order, and a reader's snapshot that contains an event
// contains every event before it. Positions are also dense (no holes): a
// rolled-back append rolls the counter back with it. An event's
// nova.Position is {Commit: position}.
//
//	s, err := novamysql.Open(ctx, novamysql.Config{DSN: "mysql://nova:secret@db:3306/app"})
//	if err != nil { ... }
//	defer s.Close()
//	res, err := s.Append(ctx, "order-1", nova.NoStream, nova.EventData{Type: "order.placed", Data: data})
//
// # What the counter row costs
//
// Every append to any stream of a store, from any process, holds that one
// row lock from the moment it allocates until its COMMIT returns: the
// statements that follow (the version check, the INSERT) and the commit's
// flush of the redo log. Appends to different streams therefore never run
// side by side in the database; they queue on the lock. Throughput is
// bounded by one transaction's length after the lock, whatever the number
// of writers, and a transaction that stays open while holding the lock
// (see [Store.AppendTx]) stops every other append until it ends.
//
// The figures in "Measured" below show the cost, and how this store hides
// most of it:
//
// # Group commit
//
// Appends do not each get a transaction. They queue for the store's writer
// goroutine, which takes whatever is queued (up to [Config.MaxGroup]
// appends), takes the counter lock once for all of them, writes them in one
// transaction and commits once: one lock hold and one redo-log flush for
// the whole group. Appends that arrive while a commit is in flight form the
// next group; the writer never waits for more to arrive, so a lone writer
// pays nothing for this.
//
// Each append in a group keeps its own expected-version check and its own
// result. The check is one conditional statement on the stream's row
// (INSERT for a new stream, UPDATE ... WHERE version = expected for an
// exact version; for Any and StreamExists the row is read under a lock
// first), and a failed check writes nothing, so the group is written
// straight through: the events of every append that passed go in as few
// multi-row INSERTs as possible. Only when an insert fails (an event ID
// already stored, error 1062) is the transaction rolled back and the group
// written again with every append in its own SAVEPOINT, rolled back to on
// failure and then decided by the rule shared by every backend
// (internal/retry: an exact retry succeeds with Duplicate set, anything
// else is a nova.DuplicateEventError). An append whose check fails is
// looked up by its IDs the same way, since a retry of an append that did
// commit finds its stream moved on.
//
// An append whose context ends while it is queued, or while the writer
// waits for the counter lock, is withdrawn and returns ctx.Err() having
// written nothing. Once the writer holds the lock it has taken the append,
// which then gets its real result. When the connection breaks during the
// COMMIT the outcome is unknown and the append returns an error; a retry
// with the same event IDs (and expected version) is safe and reports what
// happened.
//
// # Isolation
//
// The store does not set an isolation level: it works the same at the
// server's default REPEATABLE READ, at READ COMMITTED, and in a caller's
// transaction at either. Every read inside an append is a locking read
// (FOR UPDATE, or the implicit one of UPDATE and INSERT), which sees the
// latest committed row whatever the level, and every append takes the
// counter lock first, so no two appends ever interleave and none can
// deadlock another. Reads outside appends (ReadStream, ReadAll, Subscribe,
// Streams) are single statements in autocommit mode: each page is its own
// consistent snapshot.
//
// # Reads and subscriptions
//
// ReadStream, ReadAll and Streams page with keyset pagination (position,
// version or stream name): each page ([Config.PageSize] rows) is one short
// query on a pooled connection, read to the end and returned to the pool
// before its events are yielded, so a slow consumer holds no connection and
// no snapshot. Subscribe catches up the same way, then waits for the signal
// the writer raises after every commit, polling every [Config.PollInterval]
// as a fallback for appends of other processes (MariaDB has no LISTEN); the
// signal is only a hint to read again. A subscription whose query fails
// because its connection broke or the server restarted retries from the
// last position it delivered, so it never ends, skips or repeats because of
// a dropped connection.
//
// # Schema
//
// Open creates and migrates the tables itself unless [Config.SkipMigrate]
// is set; [Migrate] does only that (nova migrate). The version is kept in
// PREFIXschema ([SchemaVersion]); tables of a newer version are refused
// with [ErrSchemaTooNew]. Tables, all InnoDB, named with
// [Config.TablePrefix] (default "nova_") so that several stores share a
// database:
//
//	nova_schema    (id, version)                       -- schema version
//	nova_counter   (id, position)                      -- the one counter row
//	nova_streams   (stream VARBINARY(256) PRIMARY KEY, version)
//	nova_events    (position BIGINT UNSIGNED PRIMARY KEY, id CHAR(36) UNIQUE,
//	                stream VARBINARY(256), version, type, data LONGBLOB,
//	                metadata LONGTEXT (JSON: schema and extra keys),
//	                correlation_id, causation_id, recorded_at DATETIME(6),
//	                UNIQUE (stream, version))
//	nova_snapshots (stream PRIMARY KEY, version, schema_version, data, recorded_at)
//
// Stream IDs are binary strings, so they compare byte by byte, with no
// collation folding case or trailing spaces. recorded_at is UTC with
// microseconds.
//
// # Measured
//
// See the package's bench_test.go and internal/bench; figures are in the
// section below.
package novamysql
