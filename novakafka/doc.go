// Package novakafka is Nova's [broker.Broker] on Apache Kafka: sagas'
// lifecycle envelopes, and any other [broker.Envelope], travel through a
// Kafka cluster and reach subscriptions, consumer groups and pollers in
// other processes.
//
//	b, err := novakafka.New(ctx, novakafka.Config{
//		Seeds:     []string{"kafka-1:9092", "kafka-2:9092"},
//		Namespace: "shop",
//	})
//	...
//	defer b.Close()
//	sub, err := b.SubscribeGroup(ctx, "billing", "saga.*.charge.>", handle)
//
// It has been tested here only against franz-go's in-process fake
// cluster (kfake), not against a real Kafka cluster: what it relies on is
// plain Kafka (idempotent produce with acks=all, consumer groups with
// the classic protocol, committed offsets, ListOffsets), but timings such
// as the 3-second group.initial.rebalance.delay.ms of a real cluster, and
// its behaviour under broker failover, have not been exercised.
//
// # Mapping
//
// A broker uses two Kafka topics per [Config.Namespace], which it creates
// when they do not exist (with [Config.Partitions] partitions,
// [Config.ReplicationFactor] replicas and max.message.bytes set to
// [Config.MaxMessageBytes]):
//
//   - "<ns>.events" holds every published envelope as one record. The
//     record's value is the payload, byte for byte; its key is the
//     envelope's Key, or its topic when the key is empty, so Kafka's
//     partitioner keeps each key on one partition; its timestamp is the
//     envelope's. The other fields travel in record headers: nova-id,
//     nova-topic, nova-type, nova-key (when set), nova-attempts (when not
//     0) and nova-time (milliseconds since the epoch). Each user header is
//     a record header of the same name; one whose name starts with
//     "nova-" travels as "nova-h-<name>".
//   - "<ns>.dlq" holds dead letters: the envelope's record as above, with
//     the record key and the nova-dlq-topic header set to the topic it is
//     kept under, nova-dlq-reason and nova-dlq-at (milliseconds).
//
// Nova topics and patterns are not Kafka topics: every consumer reads
// "<ns>.events" and filters by the nova-topic header with [broker.Match].
// A consumer therefore reads the records of every topic of its
// namespace; namespaces keep unrelated traffic apart.
//
// The consumers:
//
//   - Subscribe is a consumer outside any group, which starts at the end
//     offsets of the partitions as they are when Subscribe is called:
//     every subscription gets its own copy of what is published after it
//     returns, and nothing from before.
//   - SubscribeGroup(group, …) joins the Kafka consumer group
//     "<ns>.group.<group>". Its first SubscribeGroup commits the current
//     end offsets, so the group gets what is published from then on, even
//     while none of its members runs. Partitions are shared between the
//     members; a handler's acknowledgement marks the record, and marked
//     offsets are committed every [Config.CommitInterval], when a partition
//     moves to another member and when the subscription ends.
//   - Poll(topic) is the consumer group "<ns>.poll.<topic>", reading from
//     the start of the log, and PollDLQ(topic) the group
//     "<ns>.dlqpoll.<topic>" on "<ns>.dlq". The first Poll of a topic
//     joins its group; the member stays joined, with the records it has
//     fetched, until Close. A Poll lists the end offsets of the log when
//     it is called and fetches until its partitions have been read that
//     far or it holds max envelopes, so it returns what was published
//     before it was called without waiting for more, within
//     [Config.PollWait]. It commits past the envelopes it returns (and the
//     other topics' records before them) and never past one it keeps for
//     the next Poll.
//
// # Delivery and guarantees
//
// Publish produces with Kafka's idempotent producer and acks=all, and
// returns once the record is written: nil means every in-sync replica has
// it. An error means it was not written, or — when ctx ended while the
// record was in flight, which franz-go will not cancel — that the outcome
// is unknown and the record may still be written (the error says so).
// PublishBatch produces all records at once and then waits for all;
// records of one partition are written in order.
//
// [Broker.Guarantees] reports KeyOrder and Durable, not Dedup:
//
//   - KeyOrder: a key's envelopes share a partition, and each partition
//     is handled by one goroutine that retries a rejected envelope in
//     place (with backoff, Attempts one higher each time, up to
//     [Config.MaxAttempts], then a dead letter) before it goes on. So a
//     subscription, and a group across its members and their crashes,
//     hands each key's envelopes over in publish order. The price is that
//     a rejected envelope holds back its partition while it is retried —
//     unlike [broker.Memory], where later envelopes overtake a
//     redelivery.
//   - Durable: envelopes and committed offsets live in Kafka, as durable
//     as the topics' replication makes them (use a replication factor of
//     3 and min.insync.replicas 2 for envelopes that survive a broker).
//   - No deduplication: Kafka's idempotent producer drops only the
//     producer's own retries of a request, not an envelope published
//     again. A relay's retry after a timeout reaches consumers twice, so
//     handlers must drop repeats by envelope ID.
//
// Delivery is at least once. A group member that dies (SIGKILL, lost
// network) loses nothing acknowledged; once the group's
// [Config.SessionTimeout] has passed, another member takes its
// partitions and receives every envelope after the last commit — the one
// the dead member was handling, and those it acknowledged within the
// last CommitInterval, again.
//
// Attempt counts are kept in the consuming process, not in Kafka (which
// has no delivery count): an envelope redelivered after its member died
// or gave up its partition starts again at its published Attempts, and a
// poison envelope can therefore be delivered MaxAttempts times per member
// that tries it.
//
// Records on "<ns>.events" that are not valid envelopes (written by some
// other producer) are never handed to a handler: one whose nova-topic
// matches a consumer is dead-lettered under that topic with a reason;
// one without a valid nova-topic is dead-lettered by each group under
// [InvalidTopic] and skipped by subscriptions and pollers.
//
// The broker's connections are franz-go's: when the cluster is
// unreachable, producing and consuming retry and resume by themselves; a
// Publish meanwhile returns an error when its ctx ends. A group member
// cut off for longer than the session timeout loses its partitions
// (handlers of those partitions are cancelled, nothing is committed for
// them) and rejoins when the cluster is back.
//
// # Limits
//
//   - An envelope's record — payload, key and headers — must fit
//     [Config.MaxMessageBytes] (default 1 MiB, which takes a payload of
//     1,000,000 bytes); a larger one is refused with an error matching
//     [nova.ErrInvalid] before any I/O. Topics that exist must allow the
//     same size.
//   - With one partition (the default) every consumer sees every envelope
//     in publish order, as the broker contract says, but one member of a
//     group does all the group's work. With more partitions, order holds
//     per key (per topic for envelopes without a key), and a consumer's
//     envelopes of different keys may come in another order than they
//     were published.
//   - Every Subscribe, SubscribeGroup and polled topic is a franz-go
//     client of its own, with its own connections. A topic's poller keeps
//     its partitions until Close: a second process polling the same topic
//     gets the partitions the first does not have — none, with one
//     partition — so Poll suits tests and single consumers, and groups
//     suit sharing work.
//   - Subscriptions read the partitions that exist when they start.
//
// # Why franz-go
//
// github.com/twmb/franz-go is a pure-Go Kafka client without cgo, which
// keeps the module buildable everywhere Go is; it implements the
// idempotent producer, consumer groups with cooperative rebalancing,
// synchronous commits of chosen offsets and per-partition rebalance
// callbacks that the mapping above needs, and its admin package (kadm)
// creates the topics and reads offsets. Its kfake package, an in-process
// Kafka cluster, is what this package's tests run against; it is imported
// by tests only, so an application that imports novakafka does not link
// it.
package novakafka
