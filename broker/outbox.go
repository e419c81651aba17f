package broker

import "context"

// OutboxMessage is an envelope waiting in an outbox. Seq orders the
// outbox: messages are relayed in Seq order.
type OutboxMessage struct {
	Seq      int64
	Envelope Envelope
}

// Outbox holds envelopes written in the same transaction as the state
// change they announce, until a [Relay] has published them. The backends
// that keep saga runs implement it on the same database.
type Outbox interface {
	// Pending returns up to limit messages not yet marked sent, lowest
	// Seq first. limit is at least 1.
	Pending(ctx context.Context, limit int) ([]OutboxMessage, error)
	// MarkSent removes the messages with these Seqs. Unknown Seqs are
	// ignored.
	MarkSent(ctx context.Context, seqs []int64) error
	// Wake returns a channel closed when a message may have been added
	// (a hint; a relay polls as well). It may return nil.
	Wake() <-chan struct{}
}
