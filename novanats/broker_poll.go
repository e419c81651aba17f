package novanats

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nova-go/nova/broker"
)

// maxPollBatch caps the envelopes one Poll asks the server for: Poll
// returns up to max, and fewer is allowed.
const maxPollBatch = 1000

// noAnswer is how long an empty fetch took when the server did not
// answer it: the client gives up on a request without waiting after a
// second.
const noAnswer = 900 * time.Millisecond

// Poll implements [broker.Broker.Poll] with a durable pull consumer per
// topic, "poll_<topic>", created on the first Poll that finds something
// on the topic. It delivers every envelope the stream holds for the topic
// from the oldest on (published before the consumer existed too), and
// competing pollers never get the same one. Poll takes what is there
// without waiting and acknowledges it before returning: an envelope is
// gone once returned. If Poll fails after the server handed it envelopes,
// they are delivered again to a later Poll after [BrokerConfig.AckWait].
// A message on the topic that does not hold a valid envelope is
// dead-lettered under the topic with the reason, not returned.
func (b *Broker) Poll(ctx context.Context, topic string, max int) ([]broker.Envelope, error) {
	op := fmt.Sprintf("poll %q", topic)
	ctx, cancel, msgs, err := b.poll(ctx, op, "poll", topic, b.names.topic(topic), max)
	if err != nil {
		return nil, err
	}
	defer cancel()
	out := make([]broker.Envelope, 0, len(msgs))
	for _, m := range msgs {
		e, err := decodeEnvelope(topic, m.Headers(), m.Data(), hdrMsgID)
		if err != nil {
			// Acknowledged below with the rest once it is kept as a
			// dead letter; if that fails, nothing is acknowledged.
			if err := b.deadLetterRaw(ctx, m, err); err != nil {
				return nil, b.callErr(ctx, op, err)
			}
			continue
		}
		out = append(out, e)
	}
	if err := ackAll(ctx, msgs); err != nil {
		return nil, b.callErr(ctx, op, err)
	}
	return out, nil
}

// PollDLQ implements [broker.Broker.PollDLQ] as Poll does, with a durable
// consumer "dlq_<topic>" on the topic's dead letters. A dead letter's At
// is when the server stored it.
func (b *Broker) PollDLQ(ctx context.Context, topic string, max int) ([]broker.DeadLetter, error) {
	op := fmt.Sprintf("poll dead letters of %q", topic)
	ctx, cancel, msgs, err := b.poll(ctx, op, "dlq", topic, b.names.deadLetter(topic), max)
	if err != nil {
		return nil, err
	}
	defer cancel()
	out := make([]broker.DeadLetter, 0, len(msgs))
	for _, m := range msgs {
		var at time.Time
		if md, err := m.Metadata(); err == nil {
			at = md.Timestamp
		}
		out = append(out, decodeDeadLetter(topic, m.Headers(), m.Data(), at))
	}
	if err := ackAll(ctx, msgs); err != nil {
		return nil, b.callErr(ctx, op, err)
	}
	return out, nil
}

// poll checks the arguments of a Poll or PollDLQ and fetches up to max
// messages of subj, not yet acknowledged, through the durable consumer
// kind_<topic>. It returns the call's context, to acknowledge them with,
// and its cancel function, unless it fails.
func (b *Broker) poll(ctx context.Context, op, kind, topic, subj string, max int) (context.Context, context.CancelFunc, []jetstream.Msg, error) {
	if err := broker.ValidateTopic(topic); err != nil {
		return nil, nil, nil, err
	}
	if max < 1 {
		return nil, nil, nil, invalidf("%s: max is %d: want at least 1", op, max)
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, nil, fmt.Errorf("novanats: %s: %w", op, err)
	}
	if b.isClosed() {
		return nil, nil, nil, errClosed(op)
	}
	ctx, cancel := b.opCtx(ctx)
	name := consumerName(kind, topic)
	for try := 0; ; try++ {
		cons, err := b.pollConsumer(ctx, name, subj)
		if err != nil {
			err = b.callErr(ctx, op, err)
			cancel()
			return nil, nil, nil, err
		}
		if cons == nil {
			return ctx, cancel, nil, nil
		}
		start := time.Now()
		msgs, err := fetchNow(ctx, cons, min(max, maxPollBatch))
		if err == nil && len(msgs) == 0 && time.Since(start) >= noAnswer {
			// A consumer answers a request without waiting at once, if
			// only to say it has nothing; silence until the client
			// gives up means it may be gone.
			if _, ierr := cons.Info(ctx); ierr != nil {
				err = ierr
			}
		}
		if try == 0 && (errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, nats.ErrNoResponders)) {
			// Deleted behind the broker's back (or lost with a server's
			// memory): make it again.
			b.forgetPoller(name)
			continue
		}
		if err != nil {
			err = b.callErr(ctx, op, err)
			cancel()
			return nil, nil, nil, err
		}
		return ctx, cancel, msgs, nil
	}
}

// fetchNow takes up to n messages the consumer has now, without waiting
// for more.
func fetchNow(ctx context.Context, cons jetstream.Consumer, n int) ([]jetstream.Msg, error) {
	batch, err := cons.FetchNoWait(n)
	if err != nil {
		return nil, err
	}
	var msgs []jetstream.Msg
	for {
		select {
		case m, ok := <-batch.Messages():
			if !ok {
				return msgs, batch.Error()
			}
			msgs = append(msgs, m)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// ackAll acknowledges msgs, all but the last without waiting: the
// server handles one connection's acknowledgements in order, so once it
// has confirmed the last, it has recorded them all.
func ackAll(ctx context.Context, msgs []jetstream.Msg) error {
	if len(msgs) == 0 {
		return nil
	}
	for _, m := range msgs[:len(msgs)-1] {
		if err := m.Ack(); err != nil {
			return err
		}
	}
	return msgs[len(msgs)-1].DoubleAck(ctx)
}

// pollConsumer returns the durable consumer name on subj, creating it if
// the stream holds a message on subj; nil when it does not exist and
// there is nothing to take yet, so that polling a topic never published
// to leaves nothing behind on the server.
func (b *Broker) pollConsumer(ctx context.Context, name, subj string) (jetstream.Consumer, error) {
	b.mu.Lock()
	cons := b.pollers[name]
	b.mu.Unlock()
	if cons != nil {
		return cons, nil
	}
	cons, err := again(ctx, func() (jetstream.Consumer, error) { return b.stream.Consumer(ctx, name) })
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		_, err = again(ctx, func() (*jetstream.RawStreamMsg, error) { return b.stream.GetLastMsgForSubject(ctx, subj) })
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		// DeliverAll: what the stream holds from before the first Poll
		// is the topic's queue too. Creating a consumer that exists with
		// the same settings returns it, so pollers of several processes
		// may race here.
		cons, err = b.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable:       name,
			Description:   "nova broker: Poll " + subj,
			FilterSubject: subj,
			DeliverPolicy: jetstream.DeliverAllPolicy,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       b.cfg.AckWait,
			MaxDeliver:    -1,
			MaxAckPending: -1,
		})
	}
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.pollers[name] = cons
	b.mu.Unlock()
	return cons, nil
}

func (b *Broker) forgetPoller(name string) {
	b.mu.Lock()
	delete(b.pollers, name)
	b.mu.Unlock()
}

// deadLetterRaw keeps m, a message on an envelope subject that holds no
// valid envelope, as a dead letter with why as the reason. The caller
// then acknowledges (or terminates) m.
func (b *Broker) deadLetterRaw(ctx context.Context, m jetstream.Msg, why error) error {
	nm := &nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()}
	reason := "novanats: the message holds no valid envelope: " + why.Error()
	dl := b.names.rawDeadLetterMsg(nm, "")
	fitReason(dl, reason, b.nc.MaxPayload())
	_, err := b.js.PublishMsg(ctx, dl, jetstream.WithExpectStream(b.streamName()))
	return err
}
