package broker

import (
	"context"
	"time"
)

// Broker moves envelopes from publishers to consumers. Every method is
// safe for concurrent use. Bad input returns an error matching
// [nova.ErrInvalid] and changes nothing; a call after Close returns an
// error matching [nova.ErrClosed]; a call whose ctx is already done
// returns ctx's error and changes nothing.
type Broker interface {
	// Publish sends e to its topic: to the topic's poll queue and to
	// every subscription whose pattern matches. On a backend that
	// deduplicates ([Guarantees].Dedup), an envelope whose ID was
	// published to the same topic within the deduplication window is
	// dropped and Publish reports success (see the package documentation
	// for other topics). A zero Timestamp is set to the time of Publish.
	Publish(ctx context.Context, e Envelope) error

	// Poll removes and returns up to max envelopes published to topic (a
	// topic, not a pattern), oldest first, and an empty slice when there
	// are none. It does not wait for envelopes to arrive. max must be at
	// least 1.
	Poll(ctx context.Context, topic string, max int) ([]Envelope, error)

	// Subscribe starts delivering every envelope published after it
	// returns whose topic matches pattern to h, one at a time, in publish order
	// per topic, on a goroutine the broker owns. h returning nil
	// acknowledges the envelope; an error (or a panic) rejects it, and it
	// is delivered again with Attempts one higher until the broker's
	// attempt limit, then dead-lettered under its topic with the error as
	// the reason. The subscription ends when ctx is done, when
	// Unsubscribe is called or when the broker closes; the ctx given to h
	// is cancelled then.
	Subscribe(ctx context.Context, pattern string, h Handler) (Subscription, error)

	// PublishDLQ dead-letters e under topic with reason. Dead letters are
	// not deduplicated.
	PublishDLQ(ctx context.Context, topic string, e Envelope, reason string) error

	// PollDLQ removes and returns up to max dead letters kept under
	// topic, oldest first. max must be at least 1.
	PollDLQ(ctx context.Context, topic string, max int) ([]DeadLetter, error)

	// Close ends every subscription, waits for their handlers to return
	// and releases the broker. Calling it again returns nil.
	Close() error
}

// Handler processes one delivered envelope. Returning nil acknowledges it;
// returning an error rejects it, and it is delivered again. ctx is
// cancelled when the subscription ends.
type Handler func(ctx context.Context, e Envelope) error

// Subscription is a running subscription returned by [Broker.Subscribe].
type Subscription interface {
	// Done is closed once the subscription has ended and its handler is
	// no longer running.
	Done() <-chan struct{}
	// Unsubscribe ends the subscription and waits for a handler call in
	// progress to return. Envelopes not yet delivered to it are dropped.
	// Calling it again, or after the subscription ended, returns nil.
	Unsubscribe() error
}

// DeadLetter is an envelope that could not be processed.
type DeadLetter struct {
	// Envelope is the message, with Attempts set to the number of failed
	// deliveries when a subscription dead-lettered it.
	Envelope Envelope `json:"envelope"`
	// Topic is the topic it is kept under: its own topic when a
	// subscription dead-lettered it, the caller's for PublishDLQ.
	Topic string `json:"topic"`
	// Reason says why: the last handler error, or the caller's reason.
	Reason string `json:"reason"`
	// At is when it was dead-lettered.
	At time.Time `json:"at"`
}

// BatchPublisher is an optional capability of a [Broker]: publishing many
// envelopes in one call, with the same meaning as one Publish each, in
// order. A backend implements it when that saves round trips.
// PublishBatch validates every envelope before any I/O, so that bad input
// publishes none of them ([PublishAll] relies on it rather than
// validating twice). On another error some envelopes may have been
// published; publishing the whole batch again is safe on a backend that
// deduplicates, and delivers repeats on one that does not.
type BatchPublisher interface {
	PublishBatch(ctx context.Context, envelopes []Envelope) error
}

// PublishAll publishes envelopes in order through b, in one call when b
// is a [BatchPublisher] and one Publish each otherwise. Every envelope is
// validated first, so bad input publishes none of them. On another error
// some may have been published; calling PublishAll again with the same
// envelopes is safe within the deduplication window of a backend that
// deduplicates.
func PublishAll(ctx context.Context, b Broker, envelopes ...Envelope) error {
	if len(envelopes) == 0 {
		return nil
	}
	if bp, ok := b.(BatchPublisher); ok {
		return bp.PublishBatch(ctx, envelopes) // it validates them all first
	}
	for i, e := range envelopes {
		if err := e.Validate(); err != nil {
			return invalidf("envelope %d: %v", i, err)
		}
	}
	for _, e := range envelopes {
		if err := b.Publish(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// GroupSubscriber is an optional capability of a [Broker]: durable
// consumer groups, the way several processes share one stream of work.
// A backend implements it when its server keeps a group's messages and
// acknowledgements (JetStream durable consumers, RabbitMQ queues, Kafka
// consumer groups).
type GroupSubscriber interface {
	// SubscribeGroup joins the durable consumer group named group (see
	// [ValidateGroup]), creating it on the first call. The group receives
	// every envelope whose topic matches pattern that was published since
	// the group was created, including while no member runs; envelopes
	// published before are not its own. Each envelope goes to one member
	// at a time, and h returning nil acknowledges it for the whole group.
	// An envelope a member does not acknowledge — its handler failed or
	// panicked, its subscription ended, its process died, its connection
	// dropped — is delivered again, to that member or another, with
	// Attempts one higher, until the broker's attempt limit, and is then
	// dead-lettered under its topic with the last error as the reason.
	// (A delivery to a process that died counts only where the server
	// counts deliveries, [Guarantees].ServerAttempts.) Every member of a
	// group must give the same pattern. The subscription ends as
	// [Broker.Subscribe]'s does; the group and its unacknowledged
	// envelopes outlive it. A group lives as long as the broker's server
	// keeps it: for [Memory], as long as the Memory.
	SubscribeGroup(ctx context.Context, group, pattern string, h Handler) (Subscription, error)
}

// Guarantees says what a backend promises beyond the [Broker] contract,
// so that callers and the conformance suite can tell. The zero value
// promises nothing more.
type Guarantees struct {
	// Dedup: an envelope whose ID was published within the
	// deduplication window is dropped (see the package documentation).
	// Without it, a relay's retry after a timeout reaches subscribers
	// twice, and handlers must drop repeats by envelope ID.
	Dedup bool
	// KeyOrder: a subscription, and a consumer group across all its
	// members, hands the envelopes of one key to its handler in publish
	// order, one at a time, redeliveries included.
	KeyOrder bool
	// Durable: published envelopes survive a restart of the broker's
	// server, and so do consumer groups with what they have not yet
	// acknowledged.
	Durable bool
	// ServerAttempts: the server counts deliveries, so a delivery to a
	// consumer whose process died or whose connection dropped before it
	// answered counts in Attempts and towards the attempt limit, and an
	// envelope that crashes every consumer it reaches is dead-lettered in
	// the end. Without it the count lives in the consumer's process and
	// starts again at 0 after a crash.
	ServerAttempts bool
}

// Guarantor is an optional capability of a [Broker]: reporting its
// [Guarantees].
type Guarantor interface {
	Guarantees() Guarantees
}

// GuaranteesOf returns b's guarantees, or the zero value when b does not
// report any.
func GuaranteesOf(b Broker) Guarantees {
	if g, ok := b.(Guarantor); ok {
		return g.Guarantees()
	}
	return Guarantees{}
}
