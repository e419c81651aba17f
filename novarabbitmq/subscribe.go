package novarabbitmq

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/internal/backoff"
)

// subscription is one Subscribe or SubscribeGroup subscription: a queue
// bound to the topic exchange with the pattern's binding key, and one
// goroutine that consumes it, calls the handler one envelope at a time,
// and sets the consumer up again after the connection came back.
type subscription struct {
	b       *Broker
	pattern string
	key     string // the binding key
	group   string // "" for Subscribe
	queue   string
	h       broker.Handler
	ctx     context.Context // cancelled when the subscription ends
	cancel  context.CancelFunc
	done    chan struct{}

	// A Subscribe subscription counts failures in the process (its
	// queue is a classic queue, without a delivery count). The envelope
	// it is retrying, so that a redelivery after a reconnection goes on
	// counting.
	retryID       string
	retryFailures int
	retryReason   string
}

// Subscribe implements [broker.Broker.Subscribe]. The subscription's
// queue is a non-durable classic queue of its own, named
// <namespace>.sub.<random>, bound to the topic exchange with the
// pattern's binding key before Subscribe returns; it is deleted when the
// subscription ends, and by the server (x-expires, [Config.SubscriptionExpiry])
// when the process dies. Failures are counted in the process: a
// rejected envelope is held and handed to the handler again after the
// backoff, so later envelopes wait behind it. Subscribe returns an error
// matching [nova.ErrTransient] while the connection is down.
//
// Unsubscribe must not be called from the subscription's own handler,
// which would wait for itself.
func (b *Broker) Subscribe(ctx context.Context, pattern string, h broker.Handler) (broker.Subscription, error) {
	return b.subscribe(ctx, "", pattern, h)
}

// SubscribeGroup implements [broker.GroupSubscriber]. The group is the
// durable quorum queue <namespace>.group.<group>, bound to the topic
// exchange with the pattern's binding key, declared with
// x-delivery-limit MaxAttempts-1 and the namespace's dead-letter
// exchange. Members consume it together, each with [Config.Prefetch]
// envelopes in hand at most, and handle them one at a time. Attempts is
// the queue's x-delivery-count, so it counts deliveries to members that
// died. A rejected envelope stays with its member for the backoff and is
// then returned to the queue (basic.nack with requeue); on the last
// attempt the member dead-letters it with the error as the reason and
// acknowledges it. When members die holding an envelope until the limit
// is passed, the server dead-letters it itself (see the package
// documentation).
func (b *Broker) SubscribeGroup(ctx context.Context, group, pattern string, h broker.Handler) (broker.Subscription, error) {
	if err := checkGroup(group); err != nil {
		return nil, err
	}
	return b.subscribe(ctx, group, pattern, h)
}

func (b *Broker) subscribe(ctx context.Context, group, pattern string, h broker.Handler) (broker.Subscription, error) {
	if err := broker.ValidatePattern(pattern); err != nil {
		return nil, err
	}
	key, err := bindingKey(pattern)
	if err != nil {
		return nil, err
	}
	what := fmt.Sprintf("subscribe to %q", pattern)
	if group != "" {
		what = fmt.Sprintf("join group %q on %q", group, pattern)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", pkg, what, err)
	}
	sctx, cancel := context.WithCancel(ctx)
	s := &subscription{
		b:       b,
		pattern: pattern,
		key:     key,
		group:   group,
		h:       h,
		ctx:     sctx,
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	if group != "" {
		s.queue = b.names.group(group)
	} else {
		s.queue = b.names.sub(strings.ToLower(rand.Text()))
	}
	ch, deliveries, err := s.open()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%s: %s: %w", pkg, what, err)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		s.remove(ch)
		ch.Close()
		cancel()
		return nil, fmt.Errorf("%s: %s: %w", pkg, what, nova.ErrClosed)
	}
	b.subs[s] = struct{}{}
	b.wg.Go(func() { s.run(ch, deliveries) })
	b.mu.Unlock()
	return s, nil
}

// Done implements [broker.Subscription].
func (s *subscription) Done() <-chan struct{} { return s.done }

// Unsubscribe implements [broker.Subscription].
func (s *subscription) Unsubscribe() error {
	s.cancel()
	<-s.done
	return nil
}

// open opens a channel on the current connection, declares and binds the
// subscription's queue and starts consuming it.
func (s *subscription) open() (*amqp.Channel, <-chan amqp.Delivery, error) {
	b := s.b
	conn, err := b.connection()
	if err != nil {
		return nil, nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		return nil, nil, wrap("open a channel", err)
	}
	fail := func(what string, err error) (*amqp.Channel, <-chan amqp.Delivery, error) {
		ch.Close()
		return nil, nil, wrap(what, err)
	}
	prefetch := 1
	if s.group != "" {
		prefetch = b.cfg.Prefetch
		args := amqp.Table{
			amqp.QueueTypeArg:        amqp.QueueTypeQuorum,
			"x-delivery-limit":       int64(b.cfg.MaxAttempts - 1),
			"x-dead-letter-exchange": b.names.dlx(),
			"x-dead-letter-strategy": "at-least-once",
			amqp.QueueOverflowArg:    amqp.QueueOverflowRejectPublish,
		}
		if _, err := ch.QueueDeclare(s.queue, true, false, false, false, args); err != nil {
			return fail("declare queue "+s.queue+" (a queue of that name with other arguments, such as another MaxAttempts, is refused)", err)
		}
		b.mu.Lock()
		b.queues[s.queue] = true
		b.mu.Unlock()
	} else {
		args := amqp.Table{
			amqp.QueueTypeArg: amqp.QueueTypeClassic,
			amqp.QueueTTLArg:  b.cfg.SubscriptionExpiry.Milliseconds(),
		}
		if _, err := ch.QueueDeclare(s.queue, false, false, false, false, args); err != nil {
			return fail("declare queue "+s.queue, err)
		}
	}
	if err := ch.QueueBind(s.queue, s.key, b.names.topics(), false, nil); err != nil {
		return fail("bind queue "+s.queue+" to "+b.names.topics(), err)
	}
	if err := ch.Qos(prefetch, 0, false); err != nil {
		return fail("set the prefetch count", err)
	}
	deliveries, err := ch.Consume(s.queue, "", false, false, false, false, nil)
	if err != nil {
		return fail("consume "+s.queue, err)
	}
	return ch, deliveries, nil
}

// run consumes until the subscription ends, setting the consumer up again
// each time the connection comes back.
func (s *subscription) run(ch *amqp.Channel, deliveries <-chan amqp.Delivery) {
	b := s.b
	defer close(s.done)
	defer func() {
		b.mu.Lock()
		delete(b.subs, s)
		b.mu.Unlock()
		s.cancel()
	}()
	for n := 0; ; {
		if ch != nil {
			s.consume(ch, deliveries)
			if s.ctx.Err() != nil {
				s.remove(ch)
				ch.Close()
				return
			}
			ch.Close()
			ch = nil
			b.log.Warn("novarabbitmq: consumer stopped; resuming when the connection is back", "queue", s.queue)
		}
		if !b.waitUp(s.ctx) {
			return
		}
		var err error
		ch, deliveries, err = s.open()
		if err == nil {
			n = 0
			continue
		}
		n++
		b.log.Warn("novarabbitmq: could not resume a consumer", "queue", s.queue, "attempt", n, "err", err)
		if backoff.Sleep(s.ctx, backoff.Full(b.cfg.ReconnectMinBackoff, b.cfg.ReconnectMaxBackoff, n)) != nil {
			return
		}
	}
}

// remove deletes the queue of a Subscribe subscription that ended; a
// group's queue stays. On failure the server's x-expires removes it.
func (s *subscription) remove(ch *amqp.Channel) {
	if s.group != "" || ch == nil || ch.IsClosed() {
		return
	}
	if _, err := ch.QueueDelete(s.queue, false, false, false); err != nil {
		s.b.log.Warn("novarabbitmq: could not delete a subscription's queue; the server expires it", "queue", s.queue, "err", err)
	}
}

// consume handles deliveries until the channel closes or the
// subscription ends.
func (s *subscription) consume(ch *amqp.Channel, deliveries <-chan amqp.Delivery) {
	for {
		select {
		case <-s.ctx.Done():
			return
		case d, ok := <-deliveries:
			if !ok {
				return
			}
			if s.group != "" {
				s.handleGroup(ch, &d)
			} else {
				s.handle(ch, &d)
			}
		}
	}
}

// accept decodes d and reports whether the handler should see it. A
// message that is not an envelope is dead-lettered and acknowledged, and
// one whose topic the pattern does not match (a literal "#" in the
// pattern binds wider) is acknowledged; both report false.
func (s *subscription) accept(d *amqp.Delivery) (broker.Envelope, bool) {
	m := fromDelivery(d)
	e, err := decode(m)
	if err != nil {
		if derr := s.b.deadLetterRaw(s.ctx, m, e.Topic, err.Error()); derr != nil {
			s.b.log.Warn("novarabbitmq: could not dead-letter a message that is not an envelope; it will come again", "queue", s.queue, "err", derr)
			s.requeueLater(d, 1)
			return e, false
		}
		_ = d.Ack(false)
		return e, false
	}
	if !broker.Match(s.pattern, e.Topic) {
		_ = d.Ack(false)
		return e, false
	}
	return e, true
}

// handle delivers d to a Subscribe subscription's handler, retrying in
// the process until it succeeds or MaxAttempts is reached.
func (s *subscription) handle(ch *amqp.Channel, d *amqp.Delivery) {
	e, ok := s.accept(d)
	if !ok {
		return
	}
	cfg := &s.b.cfg
	base := e.Attempts
	failures, reason := 0, ""
	if d.Redelivered && s.retryID == e.ID {
		failures, reason = s.retryFailures, s.retryReason
	}
	for {
		if failures >= cfg.MaxAttempts {
			e.Attempts = base + failures
			if err := s.b.deadLetter(s.ctx, e.Topic, e, reason); err != nil {
				// Left unacknowledged: it comes back after a reconnection
				// and is dead-lettered then.
				s.b.log.Warn("novarabbitmq: could not dead-letter an envelope", "id", e.ID, "topic", e.Topic, "err", err)
				return
			}
			_ = d.Ack(false)
			s.retryID = ""
			return
		}
		e.Attempts = base + failures
		err := s.call(e)
		if err == nil {
			_ = d.Ack(false)
			s.retryID = ""
			return
		}
		if s.ctx.Err() != nil {
			return
		}
		failures++
		reason = sanitizeReason(err.Error())
		s.retryID, s.retryFailures, s.retryReason = e.ID, failures, reason
		if failures >= cfg.MaxAttempts {
			continue
		}
		if backoff.Sleep(s.ctx, backoff.Full(cfg.MinBackoff, cfg.MaxBackoff, failures)) != nil || ch.IsClosed() {
			return
		}
	}
}

// handleGroup delivers d to a group member's handler once. Attempts
// counts the queue's earlier deliveries of it.
func (s *subscription) handleGroup(ch *amqp.Channel, d *amqp.Delivery) {
	e, ok := s.accept(d)
	if !ok {
		return
	}
	b := s.b
	cfg := &b.cfg
	count := deliveryCount(d.Headers)
	base := e.Attempts
	e.Attempts = base + count
	// The server dead-letters to this queue when members die holding
	// the envelope: it must exist before the envelope could get there.
	if err := b.ensureDLQ(e.Topic); err != nil {
		b.log.Warn("novarabbitmq: could not declare a dead-letter queue", "topic", e.Topic, "err", err)
	}
	err := s.call(e)
	if err == nil {
		_ = d.Ack(false)
		return
	}
	if s.ctx.Err() != nil {
		// The member is leaving: closing its channel returns the
		// envelope to the group.
		return
	}
	if count+1 >= cfg.MaxAttempts {
		e.Attempts = base + count + 1
		if derr := b.deadLetter(s.ctx, e.Topic, e, sanitizeReason(err.Error())); derr != nil {
			// Returned to the queue, past its delivery limit: the
			// server dead-letters it (without this error as the reason).
			b.log.Warn("novarabbitmq: could not dead-letter an envelope; the server will", "id", e.ID, "topic", e.Topic, "reason", err, "err", derr)
			_ = d.Nack(false, true)
			return
		}
		_ = d.Ack(false)
		return
	}
	s.requeueLater(d, count+1)
}

// requeueLater waits out the backoff after failure n and returns d to
// its queue. When the subscription ends first, closing the channel
// returns it.
func (s *subscription) requeueLater(d *amqp.Delivery, n int) {
	cfg := &s.b.cfg
	if backoff.Sleep(s.ctx, backoff.Full(cfg.MinBackoff, cfg.MaxBackoff, n)) != nil {
		return
	}
	_ = d.Nack(false, true)
}

// call runs the handler, turning a panic into a rejection.
func (s *subscription) call(e broker.Envelope) (err error) {
	defer func() {
		if r := recover(); r != nil {
			pe := nova.NewPanicError(r)
			pe.Func = fmt.Sprintf("handler for %q on envelope %q", s.pattern, e.ID)
			err = pe
		}
	}()
	return s.h(s.ctx, e)
}
