// Package novanats is a Nova event store on a NATS JetStream stream, with
// aggregate snapshots ([Snapshots]) and projection checkpoints with leases
// ([Checkpoints]) in JetStream key-value buckets beside it, and a
// [broker.Broker] on JetStream ([Broker], see "Broker" below). It keeps
// no saga runs and no read models: see "Saga runs" below for why.
//
// # The idea
//
// One JetStream stream (Config.StreamName, default "NOVA") captures the
// subjects "<prefix>.>" and holds every event, one message per event. The
// prefix (Config.SubjectPrefix, prefix= in a store URL) is by default
// derived from the stream's name, "nova.<StreamName>", so that stores
// with different stream names share a server apart (JetStream refuses two
// streams whose subjects overlap); a stream that exists keeps the
// subjects it captures (streams created before the prefix was derived
// capture "nova.events.>"). Each event stream has a subject of its own,
// and the stream sequence JetStream gives a message is the event's global
// position:
//
//	event stream  "order-42"        subject  nova.NOVA.b3JkZXItNDI
//	event         order-42 v3       message  Nova-Version: 3, seq 1187
//	position      1187              nova.Position{Commit: 1187}
//
// The stream ID becomes one subject token by base64url without padding
// (RFC 4648 §5). Its alphabet holds no '.', '*', '>', space or control
// character, so any valid stream ID (dots, wildcards, spaces, non-ASCII)
// maps to exactly one token and back, and IDs differing only in case stay
// distinct.
//
// A message carries the event's data as its body and the rest in headers:
// Nats-Msg-Id (the event ID), Nova-Type, Nova-Version and Nova-Meta
// (metadata as JSON, absent when empty). RecordedAt is the server's
// timestamp of the message. The stream denies deletes and purges, so a
// subject's message count is its stream's version, and Streams reads the
// versions from the server's per-subject counts.
//
// # Appends and the version check
//
// Append reads the subject's last message (its sequence and Nova-Version),
// checks the expected version against it, and publishes with
// Nats-Expected-Last-Subject-Sequence set to that sequence. The server
// stores the message only if no other message reached the subject in
// between, so the version written (last + 1) is right and the check is
// the server's, atomic with the write. NoStream is the expected sequence 0.
// StreamExists and Any cannot be stated as a sequence, so they are checked
// against the tip just read and published with that tip's sequence; when
// the server refuses because another append came first, Append reads the
// tip again and retries (a stream never shrinks, so StreamExists still
// holds). Exact versions and NoStream fail on the fresh tip with a
// *nova.ConcurrencyError.
//
// A store remembers the tips its own appends produced (up to 4,096
// streams), so an append after one of its own needs one round trip, not
// two. A remembered tip is only a guess: a stale one (another process
// appended) makes the server refuse, and a failed expected version is
// checked again against a fresh read before it is reported, unless the
// remembered version is already past an exact expectation (versions only
// grow, so that settles it). Appends of one
// process to one stream take turns, so they follow each other instead of
// refusing each other on the server; appends to different streams run in
// parallel.
//
// # Batches
//
// An append of several events is a JetStream atomic batch (nats-server
// 2.12 and later, stream setting allow_atomic): the messages carry
// Nats-Batch-Id and Nats-Batch-Sequence, the first carries the version
// check, and the last, with Nats-Batch-Commit, makes the server store all
// of them or none, with consecutive sequences, visible at once. The
// server's max_batch_size (default 1,000 messages) caps a batch; Nova's
// own limit is nova.MaxBatch (10,000), so a server for large batches
// needs that setting raised. Likewise the server's max_payload (1 MiB by
// default, 64 MB at most) caps one event's data and headers, below
// nova.MaxEventLen (8 MiB) unless raised: Append refuses a larger event
// before sending anything, with an error matching nova.ErrInvalid that
// names the server's max_payload (read from the INFO the server sends on
// connecting) and says to raise it. Headers hold the type and the
// metadata, within the 64 KiB JetStream stores with a message since
// nova.MaxMetadataLen is 32 KiB. On an older server, or a stream without
// atomic publish, an append of more than one event fails with
// [ErrAtomicBatchUnsupported] (matching nova.ErrNotImplemented) before
// anything is sent: one event at a time works everywhere.
//
// A read may look at the stream while a batch is being stored (stream
// info is not isolated from a commit), so every message of a batch but
// its last carries Nova-Batch-Last, the batch's last version: ReadAll
// reads on past its end point to the end of a batch it cut, and a stream's
// last message is read again until it ends a batch, so no read and no
// version check ever sees part of a batch.
// [Store.AtomicBatches] tells which it is.
//
// # Retries and duplicates
//
// The event ID is the message's Nats-Msg-Id, so within the stream's
// duplicate window (Config.DuplicateWindow, default 2 minutes) the server
// itself drops a retried event. To tell a retry from a reused ID, Append
// asks the server where a known ID is stored with a probe: a message with
// that ID and a check that cannot pass (Nats-Expected-Last-Msg-Id naming
// no event), which the server answers as a duplicate with the stored
// sequence when it knows the ID, and refuses otherwise; nothing is stored.
// The stored events are then compared as internal/retry decides for every
// backend: a retry at the same place with the same content succeeds with
// Duplicate set; anything else is a *nova.DuplicateEventError.
//
// What is guaranteed:
//
//   - Inside the window, every retry and every reused ID is recognized,
//     whatever the expected version.
//   - Past the window, a retry with an exact expected version or NoStream
//     is still recognized: its version check fails, and Append reads the
//     events at the versions the expected version implies and matches
//     their IDs.
//   - Past the window, a retry with Any or StreamExists, or an ID reused
//     in another stream, is not recognized: it is stored again. Callers
//     that retry late should use exact expected versions.
//
// # Reads
//
// ReadAll and Subscribe use an ordered consumer from the position's next
// sequence: the server pushes messages in sequence order and the client
// recreates the consumer, from the last sequence it delivered, after a
// gap or a dropped connection, so nothing is skipped or repeated. ReadAll
// ends at the stream's last sequence when it started; Subscribe goes on
// with the messages the server pushes as they are stored (no polling).
// Sequences are assigned in the order messages are stored, and an atomic
// batch is stored at once, so the consumer's order is the log's order,
// gap-free. Reads delete their consumer when they end.
//
// A read or an append that fails because the connection is lost or
// reconnecting, a request went unanswered within [Config.Timeout], or the
// server is shutting down returns an error that nova.IsTransient reports:
// trying again later may succeed.
//
// ReadStream reads a subject. JetStream indexes a subject by sequence, not
// by version, so a read that starts past version 1 first finds its start
// by searching the stream sequence, one direct get per step: galloping
// back from the stream's last event by the number of versions between,
// then bisecting. A stream written alone (or a version near the end) takes
// one step; the worst case is about twice log2 of the log's length (34
// for 100,000 messages).
// Short reads (up to 16 events) use direct gets; longer ones an ordered
// consumer filtered on the subject. Backwards reads go a page
// (Config.FetchSize) at a time: each page is found by that search, read
// forwards and yielded reversed, so a backwards read holds one page.
//
// Streams asks the server for the subjects' message counts. The server
// sends them in pages but unordered, so the listing holds every stream's
// name and version (not its events) in memory to sort them by name.
//
// # Format and migration
//
// Open creates the stream when it is missing (file storage, Config's
// replicas, no limits, deletes and purges denied, direct gets allowed,
// atomic publish on servers that have it) and otherwise checks and updates
// it. The stream's description records the layout's version ("nova event
// store (format 1)"); Open refuses a stream of a newer format with
// [ErrNewerFormat] and one that is not a Nova stream. [Migrate] does the
// same for `nova migrate`. With Config.SkipMigrate, Open neither creates
// nor updates the stream, and fails with [ErrFormatOutdated] when it is
// missing or of an older format. [ParseURL] reads the nova command's
// nats://host:port?stream=…&prefix=… URLs; prefix= is needed only to give
// a new stream subjects other than nova.<stream>.
//
// # Snapshots
//
// [Snapshots] keeps each stream's latest snapshot in the key-value bucket
// "<StreamName>_snapshots" (one revision per key, the store's storage and
// replicas). A stream's key is its ID in base64url without padding, as
// its subject token: the alphabet is within what JetStream allows in a
// key, so any valid stream ID (dots, wildcards, spaces, non-ASCII) has
// exactly one key, and IDs differing only in case stay apart. The value
// is a format byte, the version and schema as varints, then the data; the
// entry's server timestamp is RecordedAt. A save reads the key and writes
// with a compare-and-set on the revision read (kv.Create or kv.Update),
// reading again when another save came first, so the highest version wins
// whatever the order of racing saves. A snapshot's value must fit the
// server's max_payload (1 MiB by default); a larger one is refused with
// nova.ErrInvalid before anything is sent.
//
// # Checkpoints and leases
//
// [Checkpoints] keeps one entry per projection, keyed like a stream, in
// the bucket "<StreamName>_checkpoints": the checkpoint (both parts of a
// nova.Position), when it last moved, and the lease's owner and expiry.
// Checkpoint and lease share the entry so that one compare-and-set on its
// revision covers both: Acquire, Release, Save and SaveLeased read the
// entry and write it with kv.Update on the revision read, and read again
// when another writer came first. [Checkpoints.SaveLeased], which a
// projection runner with these checkpoints as its Leaser uses, writes
// only while the caller holds the lease, so a holder whose lease expired
// or was taken over cannot move the checkpoint (projection.ErrLeaseLost):
// the fence is the revision, not a clock.
//
// Whether a lease has expired is decided by clocks: the holder writes its
// expiry as a time of its own clock (now + ttl), and a contender compares
// it with its own. The processes that share a projection must have clocks
// that agree (NTP) to well within the lease's TTL; a contender whose clock
// runs ahead by d takes a lease d early, and for that while two instances
// may run the projection's handlers (their saves stay fenced). A lease
// cannot use the server's per-message TTL (nats-server 2.11 and later) to
// expire by the server's clock: the lease shares its entry with the
// checkpoint, which must not expire, and a lease in an entry of its own
// could not be checked in the same compare-and-set as the save it fences.
//
// Checkpoints is not a projection.TxCheckpoints: nothing commits a read
// model with a key-value entry. A projection on these checkpoints writes
// its read model elsewhere (Redis, a document store, a search index)
// and gets each event at least once: a crash, or a lease lost, between
// the handlers' writes and the save makes the next holder handle those
// events again, so handlers must be idempotent (an upsert of a value the
// event determines is; an increment is not). Nor is it a
// projection.Rebuilder: there are no tables to swap.
//
// Both buckets are created on the first write, or by [Migrate]; a store
// opened with Config.SkipMigrate creates nothing: its reads find a missing
// bucket empty and its writes fail with [ErrFormatOutdated].
//
// # Saga runs
//
// This package keeps no saga runs (saga.RunStore), because JetStream lacks
// what a correct one needs:
//
//   - A claim of due runs. Workers take "runs of these sagas due by now,
//     earliest first, not leased", atomically per run, so that two
//     workers never get one run (SQL: an index on the due time and FOR
//     UPDATE SKIP LOCKED). A key-value bucket is read by key or by a
//     wildcard over keys, never by a range of values nor in their order:
//     every poll of every worker would read every run, and each claim
//     would be a compare-and-set race on rows all workers read.
//   - One atomic write across the run's events, its runs row and its
//     outbox. Record appends the transition's events (with the stream's
//     version check), updates the row (status, due time, the lease it
//     checks) and queues the lifecycle envelopes, all or nothing, so the
//     broker never disagrees with the run's stream. An atomic batch
//     (nats-server 2.12 and later) covers the subjects of one stream only,
//     and a key-value bucket is a stream of its own; putting the rows and
//     the outbox in the event stream would need deletes there (a relayed
//     envelope, a row's old revisions), which the event stream denies so
//     that a subject's message count is its stream's version. On the
//     servers before 2.12 there are no multi-message atomic writes at all.
//
// Without them a saga would either run a step twice at once or lose a
// lifecycle event after a crash. Keep saga runs (and the outbox) in a SQL
// store beside a JetStream event store.
//
// # Broker
//
// [NewBroker] returns a [broker.Broker] that also implements
// [broker.BatchPublisher], [broker.GroupSubscriber] and
// [broker.Guarantor]. It is independent of the event store: its own
// stream, its own connection (or the caller's).
//
// What maps to what, for a broker of namespace ns
// ([BrokerConfig].Namespace, one token, default "nova-broker"):
//
//	topic space         stream NOVA_BROKER_<ns>, subjects "<ns>.t.>" and "<ns>.d.>"
//	envelope on topic T message on "<ns>.t.T": body = payload, fields in headers
//	envelope ID         Nats-Msg-Id (the stream's duplicate window drops repeats)
//	Poll(T)             durable pull consumer "poll_<T>", filter "<ns>.t.T", deliver all
//	Subscribe(P)        ephemeral pull consumer, filter "<ns>.t.P", deliver new,
//	                    MaxAckPending 1, deleted when the subscription ends
//	SubscribeGroup(G,P) durable pull consumer "group_<G>", filter "<ns>.t.P",
//	                    deliver new from the group's creation, shared by members
//	dead letter under T message on "<ns>.d.T"; PollDLQ(T): consumer "dlq_<T>"
//
// Topics and patterns are NATS subjects already (dot-separated tokens,
// '*' one token, a final '>' the rest), so a pattern is the consumer's
// filter subject as it is and the server does the matching. Consumer
// names keep a–z, 0–9 and '-' of the topic or group and escape every
// other byte as '_' and two hex digits (topic "orders.Created" is polled
// through "poll_orders_2e_43reated"), which is injective; a name that
// would pass 200 bytes is "H" and the SHA-256 of the topic instead.
// Group names are 1 to 128 ASCII letters, digits, '-' and '_'.
//
// An envelope's payload is the message body. Its other fields travel in
// headers: Nats-Msg-Id (the ID), Nova-Event-Type, Nova-Key,
// Nova-Headers (the headers as a JSON object), Nova-Attempts and
// Nova-Time (milliseconds since the Unix epoch); the topic is the
// subject. Values that are not plain printable ASCII are quoted as Go
// string literals, so any valid envelope reads back unchanged. A dead
// letter carries the same headers with the ID in Nova-Id (dead letters
// are not deduplicated), plus Nova-Topic and Nova-Reason; its At is the
// server's timestamp of the message. A message on an envelope subject
// that holds no valid envelope (published there by another client) is
// dead-lettered under its topic with the reason, by Poll and by
// subscriptions alike: it is never handed to a handler, never panics
// and never loops; its body is kept, as a JSON string when it is not
// JSON.
//
// Delivery:
//
//   - Publish waits for the server's acknowledgement: the envelope is
//     stored (file storage by default) or was a duplicate. PublishBatch
//     publishes asynchronously, up to 512 at a time, then waits for every
//     acknowledgement.
//   - Poll takes what the topic's consumer has, without waiting, and
//     acknowledges it before returning (the last acknowledgement waited
//     for; the server handles one connection's acknowledgements in
//     order). The consumer delivers everything the stream holds for the
//     topic, so envelopes published before the first Poll are seen.
//     Pollers of several processes compete on the one consumer. Polling a
//     topic that never had a message creates nothing. Each polled topic
//     keeps its durable consumer on the server.
//   - Subscribe's consumer lets one message be unacknowledged at a time,
//     so the handler sees the pattern's envelopes in stream order, one at
//     a time. A rejected (or panicking) envelope is negatively
//     acknowledged with a delay drawn from the backoff
//     ([BrokerConfig].MinBackoff, MaxBackoff); the server keeps it pending
//     meanwhile, so it holds back the subscription's later envelopes and
//     order holds across redeliveries. Attempts is the server's delivery
//     count less one (plus the Attempts the envelope was published with),
//     so it survives a consumer crash and reconnects. When a delivery
//     that is attempt MaxAttempts fails, the envelope is published to
//     "<ns>.d.<topic>" with the reason and the attempt count, and then
//     terminated (+TERM). The server's MaxDeliver is not used: the broker
//     counts, so that a dead letter that could not be published (the
//     connection down) is tried again on the next delivery instead of
//     being dropped by the server. The broker writes the dead letters
//     itself: JetStream has no dead-letter stream of its own, only the
//     advisory a MaxDeliver raises.
//   - A consumer group's members pull one message per request, so a
//     member holds only the envelope it is handling. An envelope not
//     acknowledged within [BrokerConfig].AckWait (default 30 s) goes to
//     another member: that is how the envelope of a member killed with
//     SIGKILL is handled elsewhere, with Attempts one higher, and nothing
//     a member acknowledged is delivered again. A member that leaves may
//     leave its last pull request open on the server for up to 5 s: an
//     envelope handed to it then reaches another member after AckWait,
//     with Attempts one higher. While a handler runs, the
//     broker tells the server every AckWait/3 that it is in progress, so
//     handlers may run longer than AckWait. Every member must give the
//     same pattern; another fails with nova.ErrInvalid. The group outlives
//     its members ([Broker.DeleteGroup] removes it); a member that finds
//     its group deleted on the server makes it again.
//
// Delivery is at least once everywhere: an acknowledgement lost with a
// connection makes the server deliver the envelope again after AckWait.
//
// Guarantees: Dedup is true: the server drops an envelope whose ID was
// published within the stream's duplicate window
// ([BrokerConfig].DedupWindow, default 2 minutes), on any topic of the
// namespace, since the window is the stream's. Durable is true with file
// storage: envelopes, dead letters and consumer groups with what they
// have not acknowledged survive a server restart. KeyOrder is false: a
// group's members pull from one consumer, and two envelopes of one key
// may be handled by two members at once. The stream keeps envelopes for
// [BrokerConfig].MaxAge (default 7 days) whether polled or not, as the
// log that new Poll consumers and groups read; it is not a queue that
// empties.
//
// Connection loss: a connection the broker opened reconnects without
// limit and buffers nothing while reconnecting, so a Publish then fails
// at once with a transient error (nova.IsTransient) and never goes out
// late after its caller gave up; a Publish whose acknowledgement was lost
// may still have been stored, and publishing it again within the window
// is harmless. Subscriptions and group members keep running through an
// outage: their pulls fail, are logged ([BrokerConfig].Logger) and
// retried with backoff, and resume without a new Subscribe once the
// connection is back. A subscription whose consumer the server dropped
// (inactive for 5 minutes, or a server restarted without a memory-stored
// stream) makes it again from the message after the last one it handled.
//
// Limits: the server's max_payload (1 MiB by default, read from the INFO
// the server sends on connecting) bounds a message's body and headers
// together, so a payload of 1,000,000 bytes fits with room for the
// headers; a larger one, up to Nova's [broker.MaxPayloadLen] (8 MiB),
// needs max_payload raised. An envelope that does not fit is refused
// before anything is sent, with an error matching nova.ErrInvalid that
// names max_payload. Headers are limited to the 64 KiB JetStream stores
// with a message.
//
// Servers: everything above works on nats-server 2.9 (2.9.10 is tested)
// and on current servers (2.15 is tested). It uses one filter subject per
// consumer, named ephemeral consumers with an inactive threshold and
// negative acknowledgements with a delay, all of which 2.9 has; it uses
// none of what came later (several filter subjects per consumer, 2.10;
// +TERM with a reason, 2.10.4; per-message TTLs and atomic batches,
// 2.11 and 2.12).
//
// The broker's tests run broker/brokertest and their own cases (consumer
// groups, a member killed with SIGKILL in a child process, reconnection
// through a proxy that cuts the connection, 1,000,000-byte payloads, dead
// letters) against the shared server and a private current one.
// BenchmarkBrokerPublish and BenchmarkBrokerConsume run the broker beside
// nats.go's jetstream package doing the same by hand (the same messages,
// consumer settings and pulls) on a private server with file storage.
// One confirmed publish, and one-at-a-time consumption through a
// subscription or a group, cost what the raw client's do: both wait for
// the server at every step. A batch costs more per envelope than raw
// asynchronous publishing (1.3 to 2 times, on a shared two-core machine),
// because PublishBatch checks every envelope, its JSON payload included,
// before it sends the first, so that bad input publishes nothing, and
// that work does not overlap the server's.
//
// # Why github.com/nats-io/nats.go
//
// It is the client NATS maintains for Go, with the jetstream package
// (streams, direct gets, ordered consumers, pull consumers) this store and
// the broker are built on; its companion nuid names atomic batches and
// subscriptions' consumers. A program importing this package
// compiles in, besides Nova, those and what nats.go is built on
// (klauspost/compress, nats-io/nkeys, golang.org/x/crypto and sys).
//
// # Tests and performance
//
// Tests that need a server of their own (its limits set, its client
// connections cut, atomic batches) start a private nats-server 2.12 or
// later as a child process, found through NOVA_TEST_NATS_SERVER or PATH,
// on a free port with a temporary store directory; the others run
// against the shared server at NOVA_TEST_NATS_URL, whatever its version.
// Without them the tests skip, saying so (see internal/testenv). No server
// is linked into a test binary, so a program that depends on Nova never
// resolves one.
//
// TestBenchRun (with NOVA_NATS_BENCH set; see docs/BENCHMARKS.md for the
// command and the figures) runs internal/bench's scenarios against a
// hand-written nats.go baseline that publishes the same messages with the
// same headers and expected-sequence checks and reads them with the same
// consumer kind. Both sides are bound by the server: a publish waits for
// its acknowledgement, in which the server has checked the expected
// sequence and stored the message. What the store adds on top is work in
// the client (validation, encoding the headers, remembering tips), so its
// rates stay close to the baseline's, a little below: unlike the SQL
// stores, it has no commit to share between concurrent appends.
//
// Snapshots are not stored here (no aggregate.SnapshotStore): keep them in
// a SQL store or rebuild from the stream.
package novanats
