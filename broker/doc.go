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
// A broker offers two ways to consume:
//
//   - Poll(ctx, topic, max), a pull consumer: each topic keeps the
//     envelopes published to it, oldest first, and Poll removes and returns
//     up to max of them. A test can run a saga and then poll
//     "saga.test-saga.a.started" for the event it expects.
//   - Subscribe(ctx, pattern, handler): every subscription receives its
//     own copy of each envelope whose topic matches, published after it
//     started, in publish order per topic, one at a time. A handler that
//     returns nil acknowledges the envelope. One that returns an error (or
//     panics) rejects it: the envelope is delivered again after a backoff
//     with Attempts one higher, and when the broker's attempt limit is
//     used up it is dead-lettered under its own topic with the last error
//     as the reason. Envelopes published later do not wait for a
//     redelivery and may overtake it. Delivery is at least once: handlers
//     must be idempotent, keyed by the envelope ID.
//
// The two are independent: an envelope goes to its topic's poll queue and
// to every matching subscription, and polling takes nothing from a
// subscriber.
//
// Dead letters are read with PollDLQ; PublishDLQ dead-letters an envelope
// by hand, with a reason.
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
// key, durability) it reports as [Guarantees] through [Guarantor].
package broker
