// Package broker carries messages between parts of a system that must not
// call each other directly: a saga announces that a step started, a
// projection elsewhere reacts. A message is an [Envelope] — an ID, a topic,
// an event type, a JSON payload, an optional key, headers, an attempt count
// and a timestamp, in the JSON form that consumers of
// nova-boot-data-patterns' saga events read (see [Envelope]) — and a
// [Broker] moves envelopes from publishers to consumers.
//
// # Topics and patterns
//
// A topic is a dot-separated list of tokens, as in NATS:
// "saga.order-42.charge.started". Sagas publish their lifecycle on
// "saga.{saga}.{step}.{status}". A subscription names a pattern in which
// the token "*" matches exactly one token and a final ">" matches one or
// more tokens, so "saga.>" takes every saga event and "saga.*.*.failed"
// every failed step. [ValidateTopic], [ValidatePattern] and [Match] are the
// rules every backend applies, so a topic accepted by one is accepted by
// all.
//
// # Delivery
//
// Every broker offers two ways to consume, and one that is a
// [GroupSubscriber] a third (see Consumer groups below):
//
//   - Poll(ctx, topic, max), a pull consumer: each topic keeps the
//     envelopes published to it, oldest first, and Poll removes and returns
//     up to max of them; pollers of one topic compete, each envelope
//     going to one of them. A test can run a saga and then poll
//     "saga.test-saga.a.started" for the event it expects.
//   - Subscribe(ctx, pattern, handler): every subscription receives its
//     own copy of each envelope whose topic matches, published after it
//     started, in publish order per topic, one at a time. A handler that
//     returns nil acknowledges the envelope. One that returns an error (or
//     panics) rejects it: the envelope is delivered again after a backoff
//     with Attempts one higher, and when the broker's attempt limit is
//     used up it is dead-lettered under its own topic with the last error
//     as the reason. Envelopes published later do not wait for a
//     redelivery and may overtake it (unless the backend promises order
//     per key, see Guarantees). Delivery is at least once: handlers must
//     be idempotent, keyed by the envelope ID.
//
// They are independent: an envelope goes to its topic's poll queue, to
// every matching subscription and to every matching consumer group, and
// polling takes nothing from a subscriber.
//
// Dead letters are read with PollDLQ; PublishDLQ dead-letters an envelope
// by hand, with a reason.
//
// # Consumer groups
//
// A subscription is fan-out and lives with its process: what is published
// while it is not running is not its own. Work shared by several
// processes, which must survive their crashes, goes to a consumer group
// instead, on a backend that is a [GroupSubscriber]:
// SubscribeGroup(ctx, group, pattern, handler) joins the group named group
// ([ValidateGroup]). The group is created by its first member and receives
// every matching envelope published from then on, including while no
// member runs; each envelope goes to one member at a time, and the
// member's acknowledgement is the group's. An envelope a member does not
// acknowledge — its handler failed or panicked, its subscription ended,
// its process was killed, its connection dropped — goes to a member again
// (the same or another) with Attempts one higher, and is dead-lettered
// after the attempt limit as with Subscribe. Two groups on one pattern
// each get their own copy. [Memory]'s groups live as long as the Memory;
// a server's live as long as the server keeps them.
//
// # Guarantees
//
// Beyond the contract, a backend states what it promises in
// [Guarantees], read with [GuaranteesOf]:
//
//   - Dedup: a repeated envelope ID is dropped (next section).
//   - KeyOrder: a subscription, and a group across all its members, hands
//     one key's envelopes over in publish order, one at a time,
//     redeliveries included. Without it, a redelivery may be overtaken by
//     envelopes published later, and two members may handle envelopes of
//     one key at once.
//   - Durable: envelopes and groups survive a restart of the server.
//   - ServerAttempts: the server counts deliveries, so a delivery to a
//     process that died counts in Attempts and towards the limit, and an
//     envelope that crashes every consumer ends as a dead letter instead
//     of coming back for ever.
//
// The conformance suite checks each promise a backend makes, and skips
// the checks of those it does not.
//
// # Deduplication
//
// A backend whose [Guarantees] include Dedup drops an envelope whose ID
// was already published within its deduplication window, and reports
// success: nothing is queued and no subscriber sees it again. The key is
// the ID; the content of the second envelope is not compared. Every such
// backend drops an ID published again to the same topic; whether it also
// drops it on another topic depends on the backend ([Memory] does;
// JetStream does within one stream), so envelope IDs should be unique
// across topics, as the saga's "{saga}-{step}-{status}" IDs are. This is
// what makes an at-least-once relay quiet: the saga outbox writes each
// lifecycle envelope in the transaction of the saga transition that
// caused it, and the [Relay] that reads the outbox and publishes here may
// publish an envelope again after a crash or a timeout without a
// subscriber seeing it twice, as long as it does so within the window. On
// a backend without Dedup the repeat reaches subscribers, which is why
// handlers must be idempotent, keyed by the envelope ID. Dead letters are
// not deduplicated.
//
// # Where this sits
//
// Sagas write transitions and their lifecycle envelopes together, into an
// [Outbox] on the run store's database (novamem, novasqlite, novapg). The
// [Relay] sits between that outbox and a Broker: it publishes the pending
// envelopes in order with [PublishAll] and removes them once the broker
// accepted them, backing off through outages. The broker therefore never
// disagrees with a run's stream for longer than a relay outage lasts, and
// loses nothing meanwhile.
//
// This package holds the contract and [Memory], an in-process broker for
// tests, demos and single-process deployments. Adapters for servers live
// in packages of their own, each passing the conformance suite in package
// brokertest, as Memory does.
//
// # Capabilities
//
// The [Broker] interface is what every backend must do. Optional
// capabilities are separate interfaces found by type assertion, as
// database/sql/driver does: a backend that can publish many envelopes in
// one round trip implements [BatchPublisher], and [PublishAll] uses it
// when it is there and falls back to one Publish per envelope otherwise.
// Durable consumer groups, shared by processes, are [GroupSubscriber];
// what a backend promises beyond the contract (deduplication, order per
// key, durability, delivery counts kept by the server) it reports as
// [Guarantees] through [Guarantor]. Memory implements all three, with
// the guarantees Dedup and ServerAttempts.
//
// # Bad input
//
// Every method validates its input — envelopes ([Envelope.Validate]),
// topics, patterns, group names, sizes — before any I/O, so bad input
// returns an error matching [nova.ErrInvalid] at once, even while the
// server is unreachable, and changes nothing. A call whose ctx is already
// done returns ctx's error and changes nothing. A nil context, broker,
// handler or outbox is a programmer's bug, not input: it is not checked,
// and panics as a nil value does.
package broker
