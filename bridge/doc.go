// Package bridge connects a Nova service's event store and command bus to
// a message broker, in both directions, at least once and without a lost
// message across crashes.
//
// # Out: forwarding a store's events
//
// A [Forwarder] publishes the events of a store's global log to a
// [broker.Broker] as integration events: every event, or those of chosen
// stream categories or event types. It follows the log from a checkpoint
// the way a projection does — it is a [projection.Runner] underneath, so it
// resumes after a crash from its checkpoint, keeps one active instance
// across processes by lease, reports its lag and status, and waits out a
// broker outage with backoff. Each event becomes one envelope:
//
//   - ID: the event's ID, so a broker that deduplicates (JetStream) drops
//     an event published again after a crash;
//   - Topic: [ForwarderConfig.Topic], by default
//     "events.{category}.{type}" ([DefaultTopic]);
//   - Key: the stream, so brokers that order by key (Kafka) keep a
//     stream's events in order;
//   - EventType, Payload (the event's data, which must be JSON) and
//     Timestamp (when the store recorded it);
//   - Headers: [HeaderStream], [HeaderVersion], [HeaderPosition] and, when
//     set, [HeaderCorrelationID] and [HeaderCausationID].
//
// Events are published in log order, a batch at a time
// ([broker.PublishAll]), and the checkpoint moves only after the broker
// confirmed the batch. A crash between the two publishes the batch again
// on restart: a broker with [broker.Guarantees].Dedup drops the repeats
// within its window; on the others consumers see them again and must drop
// repeats by envelope ID.
//
// # In: an inbox that turns messages into commands
//
// An [Inbox] subscribes to a broker (a durable consumer group when
// [InboxConfig.Group] is set) and dispatches each message as a command on a
// [cqrs.CommandBus]. [InboxConfig.Decode] turns an envelope into a command
// that carries its own ID ([cqrs.Identified]); giving it the envelope's ID
// makes a redelivered message the same command. With the bus's
// Idempotency middleware and a handler that saves its events under IDs
// derived from the command's key ([cqrs.CommandKey.EventID]), the message's
// effect is recorded with the command's events: a redelivery — after a
// crash, a lost acknowledgement or a consumer that was killed — decides the
// same events and its append writes nothing. The command's metadata takes
// the envelope's correlation ID and the envelope ID as its causation ID.
//
// A command that fails is rejected, so the broker delivers it again until
// its attempt limit and then dead-letters it with the error as the reason;
// an envelope Decode cannot read is rejected the same way.
package bridge
