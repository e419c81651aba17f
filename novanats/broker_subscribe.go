package novanats

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/internal/backoff"
)

const (
	// subInactiveThreshold is how long the server keeps a subscription's
	// consumer once nobody pulls from it: the broker deletes it when the
	// subscription ends, so this only cleans up after a process that
	// died. A subscription cut off longer makes its consumer again from
	// where it was.
	subInactiveThreshold = 5 * time.Minute
	// pullExpiry is how long one pull request of a subscription waits
	// at the server; heartbeats every half of it tell a dead connection.
	pullExpiry = 10 * time.Second
	// groupPullWait is how long a member of a group waits for a message
	// per request.
	groupPullWait = 5 * time.Second
	// retryMin and retryMax bound the waits of a subscription retrying
	// after a fault of the server or the connection.
	retryMin = 100 * time.Millisecond
	retryMax = 5 * time.Second
	// cleanupTimeout bounds deleting a subscription's consumer when it
	// ends.
	cleanupTimeout = 2 * time.Second
)

// Subscribe implements [broker.Broker.Subscribe] with a consumer of its
// own on the server (an ephemeral pull consumer filtered on the pattern,
// delivering new messages, one unacknowledged at a time), deleted when
// the subscription ends. A rejected envelope is negatively acknowledged
// with a delay (the backoff), and the server delivers it again: Attempts
// is the server's delivery count less one. A redelivery holds back the
// subscription's later envelopes until it is handled, so a subscription
// sees every topic in publish order, redeliveries included. Unsubscribe
// must not be called from the subscription's own handler, which would
// wait for itself.
func (b *Broker) Subscribe(ctx context.Context, pattern string, h broker.Handler) (broker.Subscription, error) {
	return b.subscribe(ctx, "", pattern, h)
}

// SubscribeGroup implements [broker.GroupSubscriber] with a durable pull
// consumer per group, "group_<group>" (see the package doc), that every
// member pulls from one message at a time. The consumer is created by the
// first member with the pattern as its filter, delivering what is
// published from then on; a member giving another pattern for a group
// that exists fails with an error matching nova.ErrInvalid. A member that
// dies holding an envelope does not acknowledge it, and the server
// delivers it to another member once [BrokerConfig.AckWait] has passed,
// with Attempts one higher. The group stays on the server when its
// members end; delete it with [Broker.DeleteGroup].
func (b *Broker) SubscribeGroup(ctx context.Context, group, pattern string, h broker.Handler) (broker.Subscription, error) {
	if err := validGroup(group); err != nil {
		return nil, err
	}
	return b.subscribe(ctx, group, pattern, h)
}

// validGroup checks a group's name: 1 to 128 ASCII letters, digits, '-'
// and '_', the names every Nova broker accepts.
func validGroup(group string) error {
	if err := broker.ValidateGroup(group); err != nil {
		return invalidf("%w", err)
	}
	return nil
}

// DeleteGroup deletes a consumer group and what it has not acknowledged.
// Members of it that still run find it gone and make it again, receiving
// what is published from then on. Deleting a group that does not exist
// is not an error.
func (b *Broker) DeleteGroup(ctx context.Context, group string) error {
	if err := validGroup(group); err != nil {
		return err
	}
	op := fmt.Sprintf("delete group %q", group)
	if b.isClosed() {
		return errClosed(op)
	}
	ctx, cancel := b.opCtx(ctx)
	defer cancel()
	err := b.stream.DeleteConsumer(ctx, consumerName("group", group))
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return b.callErr(ctx, op, err)
	}
	return nil
}

func (b *Broker) subscribe(ctx context.Context, group, pattern string, h broker.Handler) (broker.Subscription, error) {
	if err := broker.ValidatePattern(pattern); err != nil {
		return nil, err
	}
	op := fmt.Sprintf("subscribe to %q", pattern)
	if group != "" {
		op = fmt.Sprintf("join group %q on %q", group, pattern)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("novanats: %s: %w", op, err)
	}
	if b.isClosed() {
		return nil, errClosed(op)
	}
	s := &brokerSub{
		b:       b,
		group:   group,
		pattern: pattern,
		h:       h,
		done:    make(chan struct{}),
	}
	cctx, cancel := b.opCtx(ctx)
	err := s.createConsumer(cctx, false)
	if err != nil {
		err = b.callErr(cctx, op, err)
	}
	cancel()
	if err != nil {
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.stopClose = context.AfterFunc(b.done, s.cancel)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		s.cancel()
		s.stopClose()
		s.deleteConsumer()
		return nil, errClosed(op)
	}
	b.subs.Add(2)
	b.mu.Unlock()
	go s.keepAlive()
	go s.run()
	return s, nil
}

// brokerSub is a running subscription or group member.
type brokerSub struct {
	b       *Broker
	group   string // empty for a subscription of its own
	pattern string
	h       broker.Handler

	ctx       context.Context // ends the subscription
	cancel    context.CancelFunc
	stopClose func() bool // stops cancelling on the broker's Close
	done      chan struct{}

	// Owned by run.
	cons    jetstream.Consumer
	lastSeq uint64 // the stream sequence settled last (a subscription's)

	mu    sync.Mutex
	cur   jetstream.Msg // the message whose handler runs
	since time.Time     // when it started
}

func (s *brokerSub) Done() <-chan struct{} { return s.done }

func (s *brokerSub) Unsubscribe() error {
	s.cancel()
	<-s.done
	return nil
}

func (s *brokerSub) what() string {
	if s.group != "" {
		return fmt.Sprintf("group %q on %q", s.group, s.pattern)
	}
	return fmt.Sprintf("subscription to %q", s.pattern)
}

// createConsumer makes the subscription's consumer on the server: for a
// group its durable consumer, or the existing one; otherwise a new
// ephemeral one delivering what is published from now on, or, again
// after it was lost, from the message after the last one handled.
func (s *brokerSub) createConsumer(ctx context.Context, again bool) error {
	b := s.b
	filter := b.names.topic(s.pattern)
	if s.group != "" {
		return s.joinGroup(ctx, filter)
	}
	cfg := jetstream.ConsumerConfig{
		Name:              "sub_" + nuid.Next(),
		Description:       "nova broker: Subscribe " + s.pattern,
		FilterSubject:     filter,
		DeliverPolicy:     jetstream.DeliverNewPolicy,
		AckPolicy:         jetstream.AckExplicitPolicy,
		AckWait:           b.cfg.AckWait,
		MaxDeliver:        -1,
		MaxAckPending:     1,
		InactiveThreshold: subInactiveThreshold,
		MemoryStorage:     true,
	}
	if again {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = s.lastSeq + 1
	}
	cons, err := b.stream.CreateConsumer(ctx, cfg)
	if err != nil {
		return err
	}
	if !again {
		s.lastSeq = cons.CachedInfo().Delivered.Stream
	}
	s.cons = cons
	return nil
}

// joinGroup finds the group's durable consumer, or creates it.
func (s *brokerSub) joinGroup(ctx context.Context, filter string) error {
	b := s.b
	name := consumerName("group", s.group)
	var createErr error
	for range 2 {
		cons, err := b.stream.Consumer(ctx, name)
		if err == nil {
			if have := cons.CachedInfo().Config.FilterSubject; have != filter {
				pattern, _ := b.names.topicOf(have)
				return invalidf("group %q exists with the pattern %q, not %q: every member of a group gives the same pattern", s.group, pattern, s.pattern)
			}
			s.cons = cons
			return nil
		}
		if !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return err
		}
		if createErr != nil {
			return createErr
		}
		cons, createErr = b.stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
			Durable:       name,
			Description:   "nova broker: group " + s.group,
			FilterSubject: filter,
			DeliverPolicy: jetstream.DeliverNewPolicy,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       b.cfg.AckWait,
			MaxDeliver:    -1,
			MaxAckPending: -1,
		})
		if createErr == nil {
			s.cons = cons
			return nil
		}
		// Another member may have created it meanwhile: look again.
	}
	return createErr
}

// deleteConsumer removes a subscription's own consumer (not a group's).
func (s *brokerSub) deleteConsumer() {
	if s.group != "" || s.cons == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	name := s.cons.CachedInfo().Name
	if err := s.b.stream.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		s.b.log.Debug("novanats: could not delete a subscription's consumer; the server removes it once inactive", "consumer", name, "err", err)
	}
}

// run pulls and handles messages until the subscription ends, starting
// over after faults.
func (s *brokerSub) run() {
	defer s.b.subs.Done()
	defer close(s.done)
	defer s.deleteConsumer()
	defer s.stopClose()
	defer s.cancel()
	for faults := 0; ; {
		var err error
		if s.group != "" {
			err = s.pullGroup()
		} else {
			err = s.pullOwn()
		}
		if s.ctx.Err() != nil {
			return
		}
		faults++
		s.b.log.Warn("novanats: "+s.what()+": pulling failed; retrying", "err", err, "faults", faults)
		if backoff.Sleep(s.ctx, backoff.Full(retryMin, retryMax, faults)) != nil {
			return
		}
		if err := s.recover(); err != nil {
			s.b.log.Warn("novanats: "+s.what()+": could not restore the consumer; retrying", "err", err)
			continue
		}
		faults = 0
	}
}

// recover checks the consumer after a fault, and makes it again when the
// server lost it (an inactive subscription's consumer, a group deleted,
// a server restarted without its memory-stored stream).
func (s *brokerSub) recover() error {
	ctx, cancel := context.WithTimeout(s.ctx, s.b.cfg.Timeout)
	defer cancel()
	_, err := s.cons.Info(ctx)
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return err
	}
	if _, err := s.b.js.Stream(ctx, s.b.streamName()); errors.Is(err, jetstream.ErrStreamNotFound) {
		if err := s.b.ensureStream(ctx); err != nil {
			return err
		}
	}
	s.b.log.Warn("novanats: " + s.what() + ": the consumer is gone from the server; making it again")
	return s.createConsumer(ctx, true)
}

// pullOwn runs a subscription's pulls: a standing pull request that the
// client renews, which the server answers one message at a time
// (MaxAckPending 1). It returns on a fault that needs the consumer
// checked, or when the subscription ends.
func (s *brokerSub) pullOwn() error {
	it, err := s.cons.Messages(jetstream.PullExpiry(pullExpiry))
	if err != nil {
		return err
	}
	defer it.Stop()
	missed := 0
	for {
		m, err := it.Next(jetstream.NextContext(s.ctx))
		switch {
		case s.ctx.Err() != nil:
			return nil
		case errors.Is(err, jetstream.ErrNoHeartbeat):
			// The connection or the consumer may be gone; the iterator
			// pulls again by itself, but a consumer the server lost needs
			// making again.
			missed++
			if missed >= 2 {
				return err
			}
			continue
		case err != nil:
			return err
		}
		missed = 0
		s.handle(m)
	}
}

// pullGroup runs a group member's pulls: one message per request, so
// that a member holds only the message it handles and the others go to
// the members that are free.
func (s *brokerSub) pullGroup() error {
	silent := 0
	for s.ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(s.ctx, groupPullWait)
		batch, err := s.cons.Fetch(1, jetstream.FetchContext(ctx))
		if err != nil {
			cancel()
			return err
		}
		m := <-batch.Messages()
		cancel()
		if m == nil {
			err := batch.Error()
			switch {
			case err == nil || errors.Is(err, context.Canceled):
				// Nothing came within the wait (the server said so), or
				// the subscription ends.
				silent = 0
				continue
			case errors.Is(err, context.DeadlineExceeded):
				// The server did not answer before the request expired:
				// the connection is down or the consumer is gone.
				if silent++; silent < 2 {
					continue
				}
			}
			return err
		}
		silent = 0
		s.handle(m)
	}
	return nil
}

// handle delivers one message to the handler and settles it: an
// acknowledgement, a negative acknowledgement with the backoff as its
// delay, or, on the last attempt, a dead letter and a termination.
func (s *brokerSub) handle(m jetstream.Msg) {
	b := s.b
	md, err := m.Metadata()
	if err != nil {
		b.log.Warn("novanats: "+s.what()+": a message without JetStream metadata", "subject", m.Subject(), "err", err)
		return
	}
	delivered := int(md.NumDelivered)
	// settled records that m will not come again: a consumer made again
	// after it was lost starts after it. A message given back (nak)
	// holds back the later ones, so it stays the next.
	settled := func() {
		if s.group == "" {
			s.lastSeq = md.Sequence.Stream
		}
	}
	topic, _ := b.names.topicOf(m.Subject())
	e, err := decodeEnvelope(topic, m.Headers(), m.Data(), hdrMsgID)
	if err != nil {
		if err := b.deadLetterRaw(s.ctx, m, err); err != nil {
			b.log.Warn("novanats: "+s.what()+": could not dead-letter a message that holds no envelope; trying again", "subject", m.Subject(), "err", err)
			_ = m.NakWithDelay(backoff.Full(b.cfg.MinBackoff, b.cfg.MaxBackoff, delivered))
			return
		}
		_ = m.Term()
		settled()
		return
	}
	base := e.Attempts
	e.Attempts = base + delivered - 1
	herr := s.call(m, e)
	switch {
	case herr == nil:
		_ = m.Ack()
		settled()
		return
	case s.ctx.Err() != nil:
		// The subscription ended under the handler: give the message
		// back at once (to another member of a group).
		_ = m.Nak()
		return
	case delivered < b.cfg.MaxAttempts:
		_ = m.NakWithDelay(backoff.Full(b.cfg.MinBackoff, b.cfg.MaxBackoff, delivered))
		return
	}
	e.Attempts = base + delivered
	dl := b.names.deadLetterMsg(e.Topic, e, "", time.Now())
	fitReason(dl, herr.Error(), b.nc.MaxPayload())
	ctx, cancel := context.WithTimeout(s.ctx, b.cfg.Timeout)
	_, err = b.js.PublishMsg(ctx, dl, jetstream.WithExpectStream(b.streamName()))
	cancel()
	if err != nil {
		// Delivered again after the backoff, and dead-lettered then.
		b.log.Warn("novanats: "+s.what()+": could not dead-letter an envelope; trying again", "id", e.ID, "err", err)
		_ = m.NakWithDelay(backoff.Full(b.cfg.MinBackoff, b.cfg.MaxBackoff, delivered))
		return
	}
	_ = m.Term()
	settled()
}

// call runs the handler on e, turning a panic into an error, while
// keepAlive tells the server the message is in progress.
func (s *brokerSub) call(m jetstream.Msg, e broker.Envelope) (err error) {
	s.mu.Lock()
	s.cur, s.since = m, time.Now()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.cur = nil
		s.mu.Unlock()
	}()
	defer func() {
		if v := recover(); v != nil {
			pe := nova.NewPanicError(v)
			pe.Func = "novanats: handler of " + s.what() + " on envelope " + fmt.Sprintf("%q", e.ID)
			s.b.log.Error("novanats: handler panicked", "subscription", s.what(), "id", e.ID, "panic", v, "stack", string(pe.Stack))
			err = pe
		}
	}()
	return s.h(s.ctx, e)
}

// keepAlive tells the server every AckWait/3 that a message whose
// handler has run that long is still in progress, so that it is not
// delivered again meanwhile.
func (s *brokerSub) keepAlive() {
	defer s.b.subs.Done()
	every := s.b.cfg.AckWait / 3
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case now := <-t.C:
			s.mu.Lock()
			if s.cur != nil && now.Sub(s.since) >= every {
				_ = s.cur.InProgress()
			}
			s.mu.Unlock()
		}
	}
}
