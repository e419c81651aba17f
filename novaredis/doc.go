// Package novaredis keeps Nova's read models in Redis: [QueryStore] is a
// [cqrs.QueryStore] holding each projection as one Redis string under the
// key "{prefix}:{key}" (prefix "projection" unless another is given), the
// layout nova-boot-data-patterns' RedisQueryStore reads and writes.
//
//	qs, err := novaredis.Open(ctx, novaredis.Config{URL: "redis://127.0.0.1:6379/0"})
//	if err != nil { ... }
//	defer qs.Close()
//	err = cqrs.UpsertProjection(ctx, qs, "order-1", summary)
//
// Values are stored as the JSON text given and come back byte for byte.
// The prefix is fixed per store and the key appended to it unchanged, so
// keys with ':' or '/' stay apart, and several stores (or applications)
// share a server under different prefixes.
//
// # Delivery
//
// Redis takes part in no SQL transaction, so a projection that writes its
// read model here and keeps its checkpoint elsewhere sees each event at
// least once: after a crash, the events since the last checkpoint are
// handled again. Handlers make their writes idempotent (an upsert of the
// whole view is). Rebuild shadows (projection.Table) are a SQL read-model
// feature; this store ignores them.
//
// # Why github.com/redis/go-redis/v9
//
// It is the client Redis itself maintains for Go: every command takes a
// context, it pools and re-dials connections, and one interface,
// [redis.UniversalClient], covers a single server, Sentinel and Cluster,
// so [Config.Client] takes whichever the application already runs.
// A program importing this package compiles in, besides Nova, go-redis
// and what it is built on (cespare/xxhash, go.uber.org/atomic,
// golang.org/x/sys).
package novaredis
