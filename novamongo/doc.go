// Package novamongo keeps Nova's read models in a document database
// speaking the MongoDB API (MongoDB itself, FerretDB, and the managed
// services compatible with it): [QueryStore] is a [cqrs.QueryStore]
// holding one document per key in a collection ("projections" unless
// another is given).
//
//	qs, err := novamongo.Open(ctx, novamongo.Config{URL: "mongodb://127.0.0.1:27017", Database: "shop"})
//	if err != nil { ... }
//	defer qs.Close()
//	err = cqrs.UpsertProjection(ctx, qs, "order-1", summary)
//
// # Documents
//
// The key is the document's _id. The value is stored as BSON, so that
// the server can query and index the read model by its fields
// (value.status, say):
//
//	{_id: "order-1", value: {status: "paid", total: 4200}, updated_at: ISODate(...)}
//
// JSON objects become documents with their keys in order, arrays arrays,
// integers that fit 64 bits int64, other numbers doubles (the meaning
// JSON numbers have in Go), strings, booleans and null themselves.
// GetRaw writes the value back as compact JSON: a value upserted with
// other spacing, or with a number spelt otherwise (1.0, 1e3), comes back
// with the same meaning in this spelling.
//
// Some JSON has no faithful form in the MongoDB API: object keys that are
// empty, start with '$', hold '.' or NUL, or repeat within their object;
// numbers beyond a double's range; \u escapes of lone surrogates; nesting
// deeper than 90 levels; a value whose BSON form would pass the server's
// 16 MiB document limit. Such a value is stored as its JSON text, byte
// for byte, in the field json instead of value:
//
//	{_id: "k", json: "{\"$set\":1}", updated_at: ISODate(...)}
//
// so every valid value is kept, and queries on value fields do not see
// it.
//
// # Delivery
//
// The store takes part in no transaction with a projection's checkpoint,
// so a projection writing here sees each event at least once: after a
// crash the events since its last checkpoint are handled again, and
// handlers make their writes idempotent (an upsert of the whole view is).
// Rebuild shadows (projection.Table) are a SQL read-model feature; this
// store ignores them.
//
// # Why go.mongodb.org/mongo-driver/v2
//
// It is MongoDB's own Go driver, the one every server speaking the API
// is tested with; version 2 is its current major version (contexts on
// every call, a smaller API than v1's). A program importing this package
// compiles in, besides Nova, that driver and what it is built on
// (klauspost/compress, xdg-go/scram and stringprep, youmark/pkcs8,
// golang.org/x/crypto, sync and text).
//
// # Tests
//
// The tests run against the server at NOVA_TEST_MONGO_URI (default
// mongodb://127.0.0.1:27017), each in a scratch database it drops: CI
// runs FerretDB there, a MongoDB-API server, as a process of its own on
// its SQLite backend; a MongoDB serves as well. Without a server they
// skip, saying so (see internal/testenv). No server is linked into the
// test binary, so a program that depends on Nova never resolves one.
package novamongo
