package novanats

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nova-go/nova/broker"
)

// maxInFlight is how many asynchronous publishes of a batch wait for
// their acknowledgements at once.
const maxInFlight = 512

// Publish implements [broker.Broker.Publish]: it returns once the server
// has stored the envelope (or dropped it as a duplicate within the
// stream's window). Bad input, and an envelope larger than the server's
// max_payload, fail with an error matching nova.ErrInvalid before
// anything is sent. A publish while the connection is down fails with a
// transient error (nova.IsTransient).
func (b *Broker) Publish(ctx context.Context, e broker.Envelope) error {
	m, err := b.envelopeMsg(e, time.Now())
	if err != nil {
		return err
	}
	op := "publish " + e.ID
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("novanats: %s: %w", op, err)
	}
	if b.isClosed() {
		return errClosed(op)
	}
	ctx, cancel := b.opCtx(ctx)
	defer cancel()
	if _, err := b.js.PublishMsg(ctx, m, jetstream.WithExpectStream(b.streamName())); err != nil {
		return b.callErr(ctx, op, err)
	}
	return nil
}

// envelopeMsg validates e and builds its message.
func (b *Broker) envelopeMsg(e broker.Envelope, now time.Time) (*nats.Msg, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	h := envelopeHeader(e, hdrMsgID, now)
	if err := checkSize("envelope "+e.ID, h, e.Payload, b.nc.MaxPayload()); err != nil {
		return nil, err
	}
	return &nats.Msg{Subject: b.names.topic(e.Topic), Header: h, Data: e.Payload}, nil
}

// PublishBatch implements [broker.BatchPublisher]: it validates every
// envelope first, so bad input publishes none, then publishes them in
// order without waiting for each acknowledgement, and returns once the
// server has acknowledged all of them. On an error some may have been
// stored; publishing the batch again within the duplicate window stores
// each envelope once.
func (b *Broker) PublishBatch(ctx context.Context, envelopes []broker.Envelope) error {
	now := time.Now()
	msgs := make([]*nats.Msg, len(envelopes))
	for i, e := range envelopes {
		m, err := b.envelopeMsg(e, now)
		if err != nil {
			if len(envelopes) == 1 {
				return err
			}
			return invalidf("envelope %d: %v", i, err)
		}
		msgs[i] = m
	}
	const op = "publish batch"
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("novanats: %s: %w", op, err)
	}
	if b.isClosed() {
		return errClosed(op)
	}
	if len(msgs) == 0 {
		return nil
	}
	ctx, cancel := b.opCtx(ctx)
	defer cancel()
	if _, hasDeadline := ctx.Deadline(); !hasDeadline {
		var c context.CancelFunc
		ctx, c = context.WithTimeout(ctx, b.cfg.Timeout)
		defer c()
	}
	for len(msgs) > 0 {
		n := min(len(msgs), maxInFlight)
		if err := b.publishAsync(ctx, msgs[:n]); err != nil {
			return b.callErr(ctx, op, err)
		}
		msgs = msgs[n:]
	}
	return nil
}

// publishAsync publishes msgs without waiting between them, then waits
// for every acknowledgement.
func (b *Broker) publishAsync(ctx context.Context, msgs []*nats.Msg) error {
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		f, err := b.js.PublishMsgAsync(m, jetstream.WithExpectStream(b.streamName()))
		if err != nil {
			return err
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// PublishDLQ implements [broker.Broker.PublishDLQ]. Dead letters are not
// deduplicated.
func (b *Broker) PublishDLQ(ctx context.Context, topic string, e broker.Envelope, reason string) error {
	if err := broker.ValidateTopic(topic); err != nil {
		return err
	}
	if err := e.Validate(); err != nil {
		return err
	}
	if err := validReason(e.ID, reason); err != nil {
		return err
	}
	m := b.names.deadLetterMsg(topic, e, reason, time.Now())
	if err := checkSize("dead letter "+e.ID, m.Header, m.Data, b.nc.MaxPayload()); err != nil {
		return err
	}
	op := "dead-letter " + e.ID
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("novanats: %s: %w", op, err)
	}
	if b.isClosed() {
		return errClosed(op)
	}
	ctx, cancel := b.opCtx(ctx)
	defer cancel()
	if _, err := b.js.PublishMsg(ctx, m, jetstream.WithExpectStream(b.streamName())); err != nil {
		return b.callErr(ctx, op, err)
	}
	return nil
}
