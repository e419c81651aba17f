// Package novamem is Nova's in-memory backend: an event store and a
// snapshot store that live in one process and vanish with it.
//
// # The idea
//
// The global log is a slice; an event's position is its index plus one
// (Position{Commit: n}, Prepare always zero). Each stream is a list of
// indexes into that slice, and a map from event ID to index answers the
// idempotency question of every append. One mutex guards it all: an append
// takes it, checks the IDs and the expected version, and either writes the
// whole batch or nothing, so commit order is position order and the log is
// gap-free by construction.
//
// Reads never hold the lock while they hand an event to the caller: they
// copy one page of events under a read lock, release it, and yield the
// copies. A reader that stops early therefore holds nothing. Subscribe reads
// pages until it catches up, then waits on a broadcast channel that every
// append closes and replaces, so live subscribers wake as soon as an append
// returns, without polling.
//
// Every event handed out is a deep copy: a caller that modifies the data or
// metadata it appended or read cannot change what the store holds.
//
// The same Store keeps the latest snapshot of each stream
// (aggregate.SnapshotStore), so an aggregate repository can use one value
// for both.
//
// Nothing is ever evicted: memory grows with the log. Use novamem in
// tests, in examples, and wherever losing everything on exit
// is acceptable. It passes the same conformance suite (package novatest) as
// every durable backend.
package novamem
