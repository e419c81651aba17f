// Package novasqlite is Nova's embedded default event store: one SQLite
// file, no cgo, no server.
//
// # The idea
//
// SQLite allows one writer at a time, and that is what makes the global
// log simple and correct here: a store has exactly one writing connection,
// used by one caller at a time (the leader, below). It begins every
// transaction with BEGIN IMMEDIATE, so even another process writing the
// same file takes turns with it. Each event's global position
// is the events table's INTEGER PRIMARY KEY (AUTOINCREMENT: never reused),
// allocated inside the writing transaction; with one writer at a time,
// commit order is position order and the log has no gaps, so a reader that
// has seen position P never later finds an event at or below P. Readers
// use a separate pool of connections (WAL mode: readers never block the
// writer, nor it them).
//
//	s, err := novasqlite.Open(ctx, novasqlite.Config{Path: "events.db"})
//	if err != nil { ... }
//	defer s.Close()
//	res, err := s.Append(ctx, "order-1", nova.NoStream, nova.EventData{Type: "order.placed", Data: data})
//
// # Group commit
//
// A durable commit costs a flush to disk, and with one transaction per
// append a store would append no faster than the disk flushes, whatever
// the number of writers (docs/BENCHMARKS.md has the rates). So concurrent
// appends share transactions, leader/follower style. An append that finds no commit in
// progress becomes the leader: it commits on its own goroutine, taking
// with it whatever is queued at that moment (up to [Config.MaxGroup]
// appends in all), so a lone writer costs no hand-off to another
// goroutine and never waits for more work. Appends that arrive while a
// commit is in progress queue up; when the leader's commit is done it
// wakes the first of them, which becomes the next leader and commits the
// queue as one group. The store runs no goroutine of its own.
//
// Each append in a group keeps its own expected-version check and its own
// result, and one that fails is undone alone while the others commit. A
// failed version check writes nothing, so the group is first written
// straight through; only when an append fails after writing (an event ID
// already stored, a disk error) is the transaction rolled back and the
// group written again with every append in its own SAVEPOINT, rolled back
// to on failure. Savepoints cost a copy of every page they change, so the
// common case does without them. Every append is all or nothing; a crash
// loses the whole uncommitted group and never half of an append.
//
// An exact expected version, the common case of an aggregate saving its
// changes, costs no read: the UPDATE that moves the stream's version on
// matches only the expected version (a NoStream append inserts the
// stream's row), and a statement that matches nothing is the conflict.
//
// Idempotent retries cost nothing on the fast path: events are inserted
// directly, and only when the unique index on event IDs refuses one are
// the IDs looked up and the append decided by the rule shared by every
// backend (an exact retry succeeds with Duplicate set; anything else is a
// nova.DuplicateEventError). An append whose expected version does not
// match is looked up the same way, since a retry of an append that did
// commit finds its stream moved on.
//
// An append whose context ends while it is still queued is withdrawn and
// returns ctx.Err() having written nothing. A leader takes the appends of
// its group only once it holds the write lock, so an append waiting for a
// lock that another process holds can still be withdrawn; the leader's own
// context interrupts its wait for the lock, and the others of its group
// queue again for the next leader. Once taken, the append waits for its
// commit and returns its real result, unless its context ends first
// while the leader is held up (by another call's TxFunc, say): then it
// gives its place up and returns at once. Given up before the leader
// reached it, it returns ctx.Err() having written nothing; given up after
// its writes were made in the group's transaction, it returns an error
// wrapping ctx.Err() that says the write may still commit, and a retry
// with the same event IDs finds out. Otherwise an error from Append means
// nothing was written, except for a failure of the disk itself while
// committing. An append, or a read, that finds the file locked by another
// process for longer than [Config.BusyTimeout] fails with an error that
// nova.IsTransient reports: waiting and trying again may succeed.
//
// # Closing
//
// [Store.Close] lets the leaders commit every append already queued;
// each gets its real result, and the last leader closes the writing
// connection. An append that arrives after Close has begun fails with
// nova.ErrClosed and writes nothing, as does every later call.
// Subscriptions end with nova.ErrClosed; Close waits for reads that are
// fetching a page.
//
// # Durability
//
// [Config.Synchronous] chooses SQLite's synchronous setting in WAL mode:
// [SyncFull] (the default) flushes the log at every commit, so an acknowledged
// append survives power loss; [SyncNormal] flushes only at checkpoints, so it
// survives a crash of the process but a power loss may drop the last
// commits. The file stays consistent either way.
//
// # Reads and subscriptions
//
// ReadStream, ReadAll and Streams page through with keyset pagination: each
// page (512 rows) is one short query on a pooled reader connection, copied
// out and the connection returned before the events are yielded, so a slow
// consumer never holds a connection or a snapshot and the log is never
// loaded into memory. Subscribe catches up the same way, then waits for
// the signal raised after every commit that wrote events, polling every
// [Config.PollInterval] as a fallback for appends made by other processes
// on the same file.
//
// # Schema
//
// The store creates and migrates its schema itself, in one transaction at
// Open, and records its version in PRAGMA user_version ([SchemaVersion]);
// PRAGMA application_id, set in that same transaction, marks the file as a
// Nova store. Open creates a store only in a new or empty file: a file
// without Nova's application ID that has tables (another program's
// database, whose application_id and user_version are 0 by default) is
// refused with [ErrNotDatabase] and left byte for byte, as is a file that
// is not an SQLite database; [IsStore] tells the two apart without
// writing. A file written by a newer version is refused with
// [ErrSchemaTooNew]. With Config.SkipMigrate, Open only opens an existing
// store at this version, creating and migrating nothing, and fails with
// [ErrSchemaOutdated] otherwise; [Migrate] creates or migrates alone, for
// `nova migrate`. Tables:
//
//	streams   (stream TEXT PRIMARY KEY, version INTEGER)           -- last version of each stream
//	events    (position INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE, stream TEXT,
//	           version INTEGER, type TEXT, data BLOB, metadata TEXT, recorded_at INTEGER,
//	           UNIQUE (stream, version))                            -- metadata is JSON or NULL,
//	                                                                -- recorded_at Unix nanoseconds
//	snapshots (stream TEXT PRIMARY KEY, version, schema, data, recorded_at)
//	saga_runs, outbox                                               -- [RunStore] (schema 2)
//	checkpoints                                                     -- [Checkpoints] (schema 3)
//	                                                                -- saga_runs' due and lease indexes (schema 4)
//
// plus one table per [QueryStore], created by [NewQueryStore].
//
// # One file, one transaction
//
// What else the store serves lives in the same file and writes through
// the same writer, so it commits with events: [Store.AppendTx] runs the
// caller's statements in an append's transaction, [Store.WriteTx] in a
// transaction of their own (both may share a group commit), and
// [Store.ReadTx] reads one consistent snapshot. [RunStore] records a saga
// transition, its runs-table row and its outbox envelopes in one
// AppendTx; [Checkpoints] commits a projection batch's read-model writes
// with its checkpoint in one WriteTx, and hands the transaction to the
// handlers in their ctx ([WithTx], [TxFromContext]), where [QueryStore]
// and the caller's own SQL find it.
//
// A [TxFunc] runs under recover: one that panics fails its own call with
// a *nova.PanicError (its stack kept), its writes and its append are
// rolled back as for an error, the statements it left stepping are
// reset, and the writer goes on with the rest of the group and the next
// ones. The panic never reaches the goroutine that led the group.
//
// Tools that open the file with the plain database/sql driver (the
// benchmarks' baseline does) get the store's settings from [DSN] or
// [Pragmas]:
//
//	import _ "github.com/ncruces/go-sqlite3/driver"
//
//	cfg := novasqlite.Config{Path: path}
//	s, _ := novasqlite.Open(ctx, cfg) // creates the schema
//	s.Close()
//	db, _ := sql.Open("sqlite3", novasqlite.DSN(cfg))
//
// # Why github.com/ncruces/go-sqlite3
//
// It is SQLite compiled to WebAssembly and run by a pure-Go runtime, so it
// needs no cgo, and it was the faster of the two pure-Go drivers
// (modernc.org/sqlite the other) both at reading streams and at writing
// batches when the choice was made (docs/BENCHMARKS.md has the figures).
// The store uses its direct connection API rather than database/sql:
// prepared statements live as long as their connection, rows are read
// without an intermediate copy, and insert parameters equal to the
// previous event's are not bound again. A program importing this package
// compiles in, besides Nova, that driver with the two modules it is built
// from (go-sqlite3-wasm, julianday) and golang.org/x/sys.
//
// # Performance
//
// The benchmarks in this package run each scenario through the store and
// through the plain driver on the same file layout and pragmas, one
// BEGIN IMMEDIATE transaction per append (go test -run '^$' -bench .
// ./novasqlite/, or `nova bench`); docs/BENCHMARKS.md has the figures and
// the commands. The trade-off: a lone writer pays what the plain driver
// pays, one flush per commit, since the leader commits on its own
// goroutine; concurrent writers share flushes through group commit, where
// the plain driver's writers take turns on SQLite's write lock and pay a
// flush each. Reads beat a plain loop mostly by decoding stored metadata
// without encoding/json when it has the shape the store writes.
package novasqlite
