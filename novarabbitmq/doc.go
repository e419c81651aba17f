// Package novarabbitmq is a [broker.Broker] on RabbitMQ: the envelopes of
// sagas and services travel through a topic exchange, consumer groups
// are durable quorum queues that several processes share, and dead
// letters go through a dead-letter exchange. It passes the conformance
// suite in package brokertest against a real server, and implements
// [broker.GroupSubscriber], [broker.BatchPublisher] and
// [broker.Guarantor].
//
//	b, err := novarabbitmq.New(ctx, novarabbitmq.Config{
//		URL:       "amqp://user:password@rabbit:5672/",
//		Namespace: "orders",
//	})
//	…
//	defer b.Close()
//	sub, err := b.SubscribeGroup(ctx, "billing", "saga.*.charge.>", handle)
//
// # What maps to what
//
// Everything a broker declares is named after its [Config.Namespace]
// (<ns> below), so services and tests share a server apart:
//
//   - <ns>.topics, a durable topic exchange. Publish sends each envelope
//     there with its topic as the routing key.
//   - <ns>.poll, a durable direct exchange bound to <ns>.topics with "#":
//     it receives every envelope and routes it by exact routing key, so
//     that a topic holding the token "#" (a wildcard in a topic exchange's
//     binding keys, a literal in Nova) reaches its own queue only.
//   - <ns>.poll.<topic>, a durable quorum queue per topic, bound to
//     <ns>.poll with the topic: what Poll reads. A broker declares it the
//     first time it publishes to the topic (and remembers that until its
//     connection drops) and on Poll, so every envelope published through
//     Nova is kept until polled, even before anyone polled. Poll takes up
//     to max messages with basic.get and acknowledges them together
//     before it returns; when it fails, they go back to the queue.
//   - <ns>.sub.<random>, one classic queue per Subscribe subscription,
//     bound to <ns>.topics with the pattern's binding key before Subscribe
//     returns, consumed with prefetch 1. It is not exclusive and not
//     auto-delete: an exclusive queue dies with its connection, so what
//     another process published while this one reconnected would never
//     reach the subscription. Instead it is deleted when the subscription
//     ends, and by the server when no consumer has used it for
//     [Config.SubscriptionExpiry] (x-expires), which covers a process that
//     died.
//   - <ns>.group.<group>, a durable quorum queue per consumer group,
//     bound to <ns>.topics with the pattern's binding key, declared with
//     x-delivery-limit MaxAttempts-1, x-dead-letter-exchange <ns>.dlx and
//     at-least-once dead-lettering. Members compete for its messages, each
//     with at most [Config.Prefetch] unacknowledged.
//   - <ns>.dlx, a durable direct exchange, and <ns>.dlq.<topic>, a
//     durable quorum queue per topic bound to it with the topic: the dead
//     letters PollDLQ reads.
//
// A queue name longer than RabbitMQ's 255 bytes keeps a prefix of the
// topic or group and ends in "~" and a hash of the whole.
//
// Patterns become binding keys: "*" stays "*" (one word in both); a final
// ">" (one or more tokens) becomes "*.#", since RabbitMQ's "#" alone also
// matches zero words and "a.#" would take the topic "a" itself; and a
// token "#", which Nova treats as a literal and RabbitMQ as a wildcard,
// binds as "*". Every consumer also checks each delivery's topic with
// [broker.Match] and acknowledges without handling one the pattern does
// not match, so the handler sees exactly Nova's matches.
//
// An envelope is one message: the payload is the body (content type
// application/json), the ID is the message-id property, the event type
// the type property, the timestamp the timestamp property (which has
// seconds) and the header nova-timestamp-ms (which has the milliseconds),
// and the headers nova-topic, nova-key and nova-attempts carry the rest;
// each header h of the envelope is the message header nova-h-<h>. An ID or
// event type longer than a property allows (255 bytes) travels in the
// header nova-id or nova-event-type instead, and headers whose names are
// too long for a table key in nova-headers, a list of name and value
// pairs. Every message is persistent (delivery mode 2).
//
// A message on the exchange that is not a valid envelope (another client
// published it, say) is dead-lettered under its topic as it came, with
// the decoding error as its reason, and acknowledged: it never reaches a
// handler, Poll never returns it, and it cannot loop.
//
// # Publishing
//
// Publish and PublishBatch send on one channel in confirm mode, with the
// mandatory flag, and return once the server has confirmed every message,
// that is once the quorum queues it was routed to have it on a majority
// of their replicas. PublishBatch sends the whole batch and then waits
// for all the confirmations, one round trip instead of one per envelope.
// A negative confirmation (basic.nack: the server could not take the
// message) and a returned message (basic.return: no queue took it, which
// means its topic's poll queue was deleted behind the broker's back; it is
// declared again on the next Publish) are errors matching
// [nova.ErrTransient]: trying again may succeed. RabbitMQ has no
// deduplication, so an envelope published again after an error whose
// outcome was unknown (the connection dropped before the confirmation) is
// delivered twice.
//
// # Delivery and attempts
//
// Delivery is at least once, everywhere: an envelope whose acknowledgement
// was lost with the connection is delivered again, so handlers must be
// idempotent, keyed by the envelope ID.
//
// A consumer group counts attempts on the server: Attempts is the
// envelope's own count plus the queue's x-delivery-count, so a delivery to
// a member that died counts, and the next member sees it. A rejected
// envelope (the handler returned an error or panicked) stays with the
// member for the backoff and is then returned with basic.nack and
// requeue, which counts a delivery; a member that stops while its handler
// runs returns the envelope by closing its channel, which counts one as
// well. On the last attempt the member itself dead-letters the envelope
// with the handler's error as the reason, confirmed, and then acknowledges
// it, so the reason is kept; should it die in between, the server
// dead-letters it too, and it is kept twice. When members die holding an
// envelope until the queue's delivery limit is passed, no handler error
// exists: the server dead-letters the envelope through <ns>.dlx, and
// PollDLQ reads RabbitMQ's x-death headers, giving a reason that names the
// limit and the queue and Attempts of MaxAttempts. For that the topic's
// dead-letter queue must exist before the envelope is dead-lettered, and
// it does: a member declares it before handling the first envelope of a
// topic.
//
// A Subscribe subscription counts attempts in the process: its queue is
// a classic queue, which has no delivery count (and a quorum queue, which
// has one, must be durable). A rejected envelope is held, unacknowledged,
// and handed to the handler again after the backoff until MaxAttempts,
// then dead-lettered with the reason and acknowledged; envelopes published
// after it wait behind it. If the connection drops meanwhile, the count
// goes on when the server delivers the envelope again.
//
// Guarantees: Durable, since envelopes are persistent in quorum queues and
// consumer groups and their unacknowledged envelopes survive a restart of
// the server (a Subscribe subscription's queue does not, by design). Not
// Dedup: RabbitMQ keeps no IDs. Not KeyOrder: members of a group take
// envelopes of one key in any order, and a redelivery comes after
// envelopes published later. (RabbitMQ's single active consumer would
// give order at the price of one member working at a time; it is not
// used.)
//
// # Connections
//
// amqp091-go does not reconnect on its own unless asked, so a Broker owns
// one goroutine that watches its connection. When the connection drops,
// every call that needs the server returns an error matching
// [nova.ErrTransient] at once — Publish neither waits for the connection
// nor keeps envelopes in memory, so nothing is lost silently, and a
// publish in flight when it dropped fails too, its outcome unknown —
// while the goroutine dials again with
// exponential backoff and full jitter ([Config.ReconnectMinBackoff],
// [Config.ReconnectMaxBackoff]), declares the exchanges again and forgets
// which queues it had declared. Every subscription then sets up its
// channel, queue and consumer again by itself, with no new Subscribe call.
// A consumer group loses nothing while it is away, and a Subscribe
// subscription loses nothing as long as the outage is shorter than
// [Config.SubscriptionExpiry].
//
// # Limits
//
//   - A topic is at most 255 bytes, RabbitMQ's limit on a routing key (Nova
//     allows 256), and a pattern at most 255 bytes as a binding key (a
//     final ">" adds two); longer ones are refused as bad input.
//   - A payload is at most [broker.MaxPayloadLen], well under RabbitMQ's
//     max_message_size (128 MiB by default); the client splits it into
//     frames. 1 MB envelopes are tested.
//   - RabbitMQ 3.10 or later, for quorum queues with x-delivery-count and
//     at-least-once dead-lettering.
//   - Every broker of a namespace must use the same MaxAttempts: a group's
//     queue is declared with it, and declaring it again with another
//     limit fails (PRECONDITION_FAILED).
//   - Nothing deletes a namespace's durable queues: a topic's poll queue
//     keeps what nobody polls, as the contract asks, until an operator
//     purges or deletes it, or for [Config.PollRetention] when that is
//     set (a service that never polls should set it).
//
// # Why amqp091-go
//
// github.com/rabbitmq/amqp091-go is the Go client the RabbitMQ team
// maintains (the continuation of streadway/amqp), speaking all of AMQP
// 0-9-1 that this package uses — publisher confirms, mandatory returns,
// basic.get, qos, exchange-to-exchange bindings — with no dependencies of
// its own. Its opt-in automatic recovery (since v1.12) is not used: the
// broker needs to know when its connection is down, so that Publish fails
// instead of blocking, to forget its declarations, and to resume consumers
// whose retry state it keeps; a small supervisor it owns does that and is
// tested by cutting connections through a proxy.
package novarabbitmq
