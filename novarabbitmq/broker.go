package novarabbitmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/internal/backoff"
)

// Broker is a [broker.Broker] on a RabbitMQ server, with durable consumer
// groups ([broker.GroupSubscriber]) and batches confirmed together
// ([broker.BatchPublisher]). See the package documentation for what maps
// to what on the server.
//
// A Broker owns one connection and a goroutine that watches it: when the
// connection drops, calls that need the server fail with an error
// matching [nova.ErrTransient] while the goroutine dials again with
// backoff, and once it is back every subscription resumes on its own.
// Every method is safe for concurrent use. Close ends every subscription,
// waits for their handlers and for the broker's goroutines, and closes
// the connection.
type Broker struct {
	cfg   Config
	names names
	log   *slog.Logger

	// stop is cancelled by Close: the supervisor stops redialling.
	stop       context.Context
	cancelStop context.CancelFunc
	// wg holds the supervisor, the publishers' return readers and every
	// subscription's goroutine.
	wg sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	conn     *amqp.Connection // nil while disconnected
	up       chan struct{}    // closed while conn is set, a fresh one while disconnected
	pub      *publisher       // the confirm channel on conn; nil until needed, or after it broke
	declared map[string]bool  // queues declared on conn (cleared when it drops)
	queues   map[string]bool  // durable queues declared by this broker, ever
	subs     map[*subscription]struct{}

	pubMu  sync.Mutex    // serializes opening the publishing channel
	declMu sync.Mutex    // serializes declarations on declCh
	declCh *amqp.Channel // reopened after a channel error
	pollMu sync.Mutex    // serializes Poll and PollDLQ on pollCh
	pollCh *amqp.Channel
}

var (
	_ broker.Broker          = (*Broker)(nil)
	_ broker.BatchPublisher  = (*Broker)(nil)
	_ broker.GroupSubscriber = (*Broker)(nil)
	_ broker.Guarantor       = (*Broker)(nil)
)

// errNotConnected is returned, marked transient, while the connection is
// down.
var errNotConnected = errors.New("not connected to the server")

// New connects to the server at cfg.URL and declares the namespace's
// exchanges. The zero cfg means the defaults; an invalid cfg returns an
// error matching [nova.ErrInvalid] that names the field. ctx bounds the
// first connection (with [Config.DialTimeout]); a server that cannot be
// reached returns an error matching [nova.ErrTransient].
func New(ctx context.Context, cfg Config) (*Broker, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: connect: %w", pkg, err)
	}
	b := &Broker{
		cfg:      cfg,
		names:    names{cfg.Namespace},
		log:      cfg.Logger.With("broker", pkg, "namespace", cfg.Namespace),
		up:       make(chan struct{}),
		declared: make(map[string]bool),
		queues:   make(map[string]bool),
		subs:     make(map[*subscription]struct{}),
	}
	conn, closed, err := b.connect(ctx)
	if err != nil {
		return nil, err
	}
	b.stop, b.cancelStop = context.WithCancel(context.Background())
	b.conn = conn
	close(b.up)
	b.wg.Go(func() { b.supervise(closed) })
	return b, nil
}

// connect dials the server, declares the exchanges and returns the
// connection with the channel that reports its end.
func (b *Broker) connect(ctx context.Context) (*amqp.Connection, chan *amqp.Error, error) {
	timeout := b.cfg.DialTimeout
	if deadline, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(deadline))
	}
	if timeout <= 0 {
		return nil, nil, fmt.Errorf("%s: connect: %w", pkg, context.DeadlineExceeded)
	}
	conn, err := amqp.DialConfig(b.cfg.URL, amqp.Config{
		Dial:       amqp.DefaultDial(timeout),
		Heartbeat:  10 * time.Second,
		Properties: amqp.Table{"connection_name": "nova " + b.cfg.Namespace},
	})
	if err != nil {
		return nil, nil, nova.Transient(fmt.Errorf("%s: connect to %s: %s", pkg, redactURL(b.cfg.URL), redactErr(err, b.cfg.URL)))
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	if err := b.declareExchanges(conn); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, closed, nil
}

// declareExchanges declares the namespace's three exchanges and the
// binding that copies every envelope to the poll exchange.
func (b *Broker) declareExchanges(conn *amqp.Connection) error {
	ch, err := conn.Channel()
	if err != nil {
		return wrap("open a channel", err)
	}
	defer ch.Close()
	n := b.names
	for _, x := range []struct{ name, kind string }{{n.topics(), amqp.ExchangeTopic}, {n.poll(), amqp.ExchangeDirect}, {n.dlx(), amqp.ExchangeDirect}} {
		if err := ch.ExchangeDeclare(x.name, x.kind, true, false, false, false, nil); err != nil {
			return wrap("declare exchange "+x.name, err)
		}
	}
	if err := ch.ExchangeBind(n.poll(), "#", n.topics(), false, nil); err != nil {
		return wrap("bind exchange "+n.poll()+" to "+n.topics(), err)
	}
	return nil
}

// supervise owns the connection: when it drops, it marks the broker
// disconnected and dials again with backoff until it succeeds or Close
// stops it. Subscriptions wait for the new connection on their own
// (waitUp) and set up their consumers again.
func (b *Broker) supervise(closed chan *amqp.Error) {
	for {
		select {
		case <-b.stop.Done():
			return
		case err := <-closed:
			b.markDown(err)
		}
		for n := 1; ; n++ {
			if backoff.Sleep(b.stop, backoff.Full(b.cfg.ReconnectMinBackoff, b.cfg.ReconnectMaxBackoff, n)) != nil {
				return
			}
			conn, c, err := b.connect(b.stop)
			if err != nil {
				b.log.Warn("novarabbitmq: reconnect failed", "attempt", n, "err", err)
				continue
			}
			if !b.markUp(conn) {
				conn.Close()
				return
			}
			b.log.Info("novarabbitmq: reconnected", "attempts", n)
			closed = c
			break
		}
	}
}

// markDown records that the connection dropped.
func (b *Broker) markDown(err *amqp.Error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.log.Warn("novarabbitmq: connection lost", "err", err)
	b.conn = nil
	b.up = make(chan struct{})
	b.pub = nil
	clear(b.declared)
}

// markUp installs a new connection, or reports false after Close.
func (b *Broker) markUp(conn *amqp.Connection) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.conn = conn
	clear(b.declared)
	close(b.up)
	return true
}

// connection returns the current connection, or an error while there is
// none or after Close.
func (b *Broker) connection() (*amqp.Connection, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return nil, nova.ErrClosed
	case b.conn == nil || b.conn.IsClosed():
		return nil, nova.Transient(errNotConnected)
	}
	return b.conn, nil
}

// waitUp waits until the broker is connected, and reports false when ctx
// ends first or the broker closes.
func (b *Broker) waitUp(ctx context.Context) bool {
	b.mu.Lock()
	up, closed := b.up, b.closed
	b.mu.Unlock()
	if closed {
		return false
	}
	select {
	case <-up:
		return true
	case <-ctx.Done():
		return false
	}
}

// channel returns *cur when it is open, and otherwise opens a new
// channel on the current connection and stores it there. The caller
// holds the mutex that guards *cur.
func (b *Broker) channel(cur **amqp.Channel) (*amqp.Channel, error) {
	if *cur != nil && !(*cur).IsClosed() {
		return *cur, nil
	}
	*cur = nil
	conn, err := b.connection()
	if err != nil {
		return nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		return nil, wrap("open a channel", err)
	}
	*cur = ch
	return ch, nil
}

// ensureQueue declares the durable quorum queue q with args, bound to
// exchange with key, unless it was declared on this connection already.
func (b *Broker) ensureQueue(q string, args amqp.Table, exchange, key string) error {
	b.mu.Lock()
	done, closed := b.declared[q], b.closed
	b.mu.Unlock()
	switch {
	case closed:
		return nova.ErrClosed
	case done:
		return nil
	}
	b.declMu.Lock()
	defer b.declMu.Unlock()
	b.mu.Lock()
	done = b.declared[q]
	b.mu.Unlock()
	if done {
		return nil
	}
	ch, err := b.channel(&b.declCh)
	if err != nil {
		return err
	}
	a := amqp.Table{amqp.QueueTypeArg: amqp.QueueTypeQuorum}
	for k, v := range args {
		a[k] = v
	}
	if _, err := ch.QueueDeclare(q, true, false, false, false, a); err != nil {
		return wrap("declare queue "+q+" (a queue of that name with other arguments, such as another PollRetention, is refused)", err)
	}
	if err := ch.QueueBind(q, key, exchange, false, nil); err != nil {
		return wrap("bind queue "+q+" to "+exchange, err)
	}
	b.mu.Lock()
	b.declared[q] = true
	b.queues[q] = true
	b.mu.Unlock()
	return nil
}

// forget drops q from the declarations cache, so that the next use
// declares it again.
func (b *Broker) forget(q string) {
	b.mu.Lock()
	delete(b.declared, q)
	b.mu.Unlock()
}

// ensurePollQueue declares topic's poll queue, with the message TTL of
// [Config.PollRetention] when it is set.
func (b *Broker) ensurePollQueue(topic string) error {
	var args amqp.Table
	if r := b.cfg.PollRetention; r > 0 {
		args = amqp.Table{"x-message-ttl": r.Milliseconds()}
	}
	return b.ensureQueue(b.names.pollQueue(topic), args, b.names.poll(), topic)
}

// ensureDLQ declares topic's dead-letter queue.
func (b *Broker) ensureDLQ(topic string) error {
	return b.ensureQueue(b.names.dlq(topic), nil, b.names.dlx(), topic)
}

// Publish implements [broker.Broker.Publish]: it returns once the server
// has confirmed the envelope, persisted in every queue it was routed to.
// While the connection is down it returns an error matching
// [nova.ErrTransient]; when the connection drops before the confirmation
// it returns such an error too, and the envelope may or may not have
// been published.
func (b *Broker) Publish(ctx context.Context, e broker.Envelope) error {
	return b.PublishBatch(ctx, []broker.Envelope{e})
}

// PublishBatch implements [broker.BatchPublisher]: it validates every
// envelope first, so bad input publishes none, publishes them all in
// order on the confirm channel and then waits for all the server's
// confirmations, one round trip for the batch instead of one per
// envelope. On an error some envelopes may have been published; RabbitMQ
// does not deduplicate, so publishing the batch again delivers those
// twice.
func (b *Broker) PublishBatch(ctx context.Context, envelopes []broker.Envelope) error {
	for i, e := range envelopes {
		err := e.Validate()
		if err == nil {
			err = checkRoutingKey(e.Topic)
		}
		if err != nil {
			if len(envelopes) == 1 {
				return err
			}
			return nova.Invalidf(pkg, "envelope %d: %v", i, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: publish: %w", pkg, err)
	}
	if len(envelopes) == 0 {
		return nil
	}
	now := time.UnixMilli(time.Now().UnixMilli())
	items := make([]outgoing, len(envelopes))
	for i, e := range envelopes {
		if i == 0 || e.Topic != envelopes[i-1].Topic {
			if err := b.ensurePollQueue(e.Topic); err != nil {
				return fmt.Errorf("%s: publish %q to %s: %w", pkg, e.ID, e.Topic, err)
			}
		}
		if e.Timestamp.IsZero() {
			e.Timestamp = now
		}
		items[i] = outgoing{exchange: b.names.topics(), key: e.Topic, msg: encode(e), what: fmt.Sprintf("envelope %q on %s", e.ID, e.Topic)}
	}
	err := b.send(ctx, items)
	for _, it := range items {
		if it.returned {
			// Nothing took it, not even the topic's poll queue: that
			// queue was deleted behind the broker's back. Declare it
			// again next time.
			b.forget(b.names.pollQueue(it.key))
		}
	}
	if err != nil {
		if b.isClosed() {
			return fmt.Errorf("%s: publish: %w (%v)", pkg, nova.ErrClosed, err)
		}
		return fmt.Errorf("%s: publish: %w", pkg, err)
	}
	return nil
}

func (b *Broker) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// Poll implements [broker.Broker.Poll]: basic.get on the topic's poll
// queue (declared first, so that envelopes published from then on are
// kept), acknowledged together before Poll returns. An error returns the
// envelopes taken to the queue. A message there that is not a Nova
// envelope is dead-lettered under the topic with the decoding error as
// its reason.
func (b *Broker) Poll(ctx context.Context, topic string, max int) ([]broker.Envelope, error) {
	if err := b.checkTake(ctx, "poll", topic, max); err != nil {
		return nil, err
	}
	if err := b.ensurePollQueue(topic); err != nil {
		return nil, fmt.Errorf("%s: poll %q: %w", pkg, topic, err)
	}
	out := []broker.Envelope{}
	err := b.take(ctx, b.names.pollQueue(topic), max, func(m message) error {
		e, err := decode(m)
		if err != nil {
			return b.deadLetterRaw(ctx, m, topic, err.Error())
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: poll %q: %w", pkg, topic, err)
	}
	return out, nil
}

// PublishDLQ implements [broker.Broker.PublishDLQ]: it publishes e,
// confirmed, to the dead-letter exchange with topic as the routing key,
// and so to topic's dead-letter queue, with the reason and the time in
// its headers.
func (b *Broker) PublishDLQ(ctx context.Context, topic string, e broker.Envelope, reason string) error {
	if err := broker.ValidateTopic(topic); err != nil {
		return err
	}
	if err := checkRoutingKey(topic); err != nil {
		return err
	}
	if err := e.Validate(); err != nil {
		return err
	}
	if err := checkReason(e.ID, reason); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: dead-letter %q: %w", pkg, e.ID, err)
	}
	if err := b.deadLetter(ctx, topic, e, reason); err != nil {
		return fmt.Errorf("%s: dead-letter %q: %w", pkg, e.ID, err)
	}
	return nil
}

// deadLetter keeps e under topic with reason. e and topic are valid.
func (b *Broker) deadLetter(ctx context.Context, topic string, e broker.Envelope, reason string) error {
	if err := b.ensureDLQ(topic); err != nil {
		return err
	}
	now := time.Now()
	if e.Timestamp.IsZero() {
		e.Timestamp = time.UnixMilli(now.UnixMilli())
	}
	return b.send(ctx, []outgoing{{exchange: b.names.dlx(), key: topic, msg: deadLetterMessage(e, reason, now), what: fmt.Sprintf("dead letter %q under %s", e.ID, topic)}})
}

// deadLetterRaw keeps a message that is not an envelope, as it came,
// under topic when that is a valid topic and under its routing key
// otherwise, with reason. A message with neither is dropped and logged.
func (b *Broker) deadLetterRaw(ctx context.Context, m message, topic, reason string) error {
	if !validTopic(topic) {
		topic = m.routingKey
	}
	if !validTopic(topic) {
		b.log.Error("novarabbitmq: dropped a message that is neither an envelope nor under a valid topic", "routing_key", m.routingKey, "message_id", m.messageID, "reason", reason)
		return nil
	}
	b.log.Warn("novarabbitmq: dead-lettering a message that is not an envelope", "topic", topic, "message_id", m.messageID, "reason", reason)
	if err := b.ensureDLQ(topic); err != nil {
		return err
	}
	h := amqp.Table{}
	for k, v := range m.headers {
		h[k] = v
	}
	now := time.Now()
	h[hdrReason] = truncate(reason, 4096)
	h[hdrDeadAtMS] = now.UnixMilli()
	msg := amqp.Publishing{
		Headers:      h,
		DeliveryMode: amqp.Persistent,
		MessageId:    m.messageID,
		Type:         m.typ,
		Timestamp:    m.timestamp,
		Body:         m.body,
	}
	return b.send(ctx, []outgoing{{exchange: b.names.dlx(), key: topic, msg: msg, what: fmt.Sprintf("message %q under %s", m.messageID, topic)}})
}

// PollDLQ implements [broker.Broker.PollDLQ]: basic.get on topic's
// dead-letter queue, acknowledged together before PollDLQ returns.
func (b *Broker) PollDLQ(ctx context.Context, topic string, max int) ([]broker.DeadLetter, error) {
	if err := b.checkTake(ctx, "poll dead letters of", topic, max); err != nil {
		return nil, err
	}
	if err := b.ensureDLQ(topic); err != nil {
		return nil, fmt.Errorf("%s: poll dead letters of %q: %w", pkg, topic, err)
	}
	out := []broker.DeadLetter{}
	err := b.take(ctx, b.names.dlq(topic), max, func(m message) error {
		out = append(out, readDeadLetter(m, topic, b.cfg.MaxAttempts))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: poll dead letters of %q: %w", pkg, topic, err)
	}
	return out, nil
}

func (b *Broker) checkTake(ctx context.Context, what, topic string, max int) error {
	if err := broker.ValidateTopic(topic); err != nil {
		return err
	}
	if err := checkRoutingKey(topic); err != nil {
		return err
	}
	if max < 1 {
		return nova.Invalidf(pkg, "%s %q: max is %d: want at least 1", what, topic, max)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %s %q: %w", pkg, what, topic, err)
	}
	if b.isClosed() {
		return fmt.Errorf("%s: %s %q: %w", pkg, what, topic, nova.ErrClosed)
	}
	return nil
}

// take gets up to max messages from queue with basic.get, passes each to
// f, and acknowledges them all when every f returned nil; otherwise (or
// when ctx ends) it returns them to the queue.
func (b *Broker) take(ctx context.Context, queue string, max int, f func(message) error) error {
	b.pollMu.Lock()
	defer b.pollMu.Unlock()
	ch, err := b.channel(&b.pollCh)
	if err != nil {
		return err
	}
	var last uint64
	fail := func(err error) error {
		if last > 0 {
			_ = ch.Nack(last, true, true)
		}
		return err
	}
	for n := 0; n < max; n++ {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		d, ok, err := ch.Get(queue, false)
		if err != nil {
			if isNotFound(err) {
				b.forget(queue)
			}
			return fail(wrap("get from "+queue, err))
		}
		if !ok {
			break
		}
		last = d.DeliveryTag
		if err := f(fromDelivery(&d)); err != nil {
			return fail(err)
		}
		if d.MessageCount == 0 {
			break
		}
	}
	if last > 0 {
		if err := ch.Ack(last, true); err != nil {
			return wrap("acknowledge", err)
		}
	}
	return nil
}

// Guarantees reports what RabbitMQ promises here: envelopes, consumer
// groups and what they have not acknowledged are persisted in quorum
// queues (Durable). RabbitMQ has no deduplication, and a consumer group's
// members take envelopes of one key in any order.
func (b *Broker) Guarantees() broker.Guarantees {
	return broker.Guarantees{Durable: true}
}

// Close implements [broker.Broker.Close]: it ends every subscription,
// waits for their handlers, deletes the queues of Subscribe
// subscriptions, stops the supervisor and closes the connection.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.wg.Wait()
		return nil
	}
	b.closed = true
	subs := make([]*subscription, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()
	for _, s := range subs {
		s.cancel()
	}
	for _, s := range subs {
		<-s.done
	}
	b.cancelStop()
	b.mu.Lock()
	conn := b.conn
	b.conn = nil
	b.mu.Unlock()
	var err error
	if conn != nil && !conn.IsClosed() {
		if cerr := conn.Close(); cerr != nil && !errors.Is(cerr, amqp.ErrClosed) {
			err = fmt.Errorf("%s: close: %w", pkg, cerr)
		}
	}
	b.wg.Wait()
	return err
}

// durableQueues returns the names of the durable queues this broker
// declared, for tests that clean up after themselves.
func (b *Broker) durableQueues() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]string, 0, len(b.queues))
	for q := range b.queues {
		out = append(out, q)
	}
	return out
}

// wrap returns err from doing what on the server: transient when the
// connection or the server's state is at fault, as it is for everything
// but the errors a call's own arguments cause (a queue that exists with
// other arguments, access refused, a missing queue).
func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	err = fmt.Errorf("%s: %w", what, err)
	var ae *amqp.Error
	if errors.As(err, &ae) {
		switch ae.Code {
		case amqp.PreconditionFailed, amqp.AccessRefused, amqp.NotFound, amqp.NotAllowed, amqp.ResourceLocked, amqp.SyntaxError, amqp.CommandInvalid, amqp.NotImplemented:
			return err
		}
	}
	return nova.Transient(err)
}

func isNotFound(err error) bool {
	var ae *amqp.Error
	return errors.As(err, &ae) && ae.Code == amqp.NotFound
}

// checkReason validates a dead letter's reason: non-empty, valid UTF-8
// without NUL, at most 4096 bytes, as every broker requires.
func checkReason(id, reason string) error {
	switch {
	case reason == "":
		return nova.Invalidf(pkg, "dead letter %q: empty reason", id)
	case len(reason) > 4096:
		return nova.Invalidf(pkg, "dead letter %q: reason of %d bytes is longer than the limit of 4096", id, len(reason))
	case !utf8Valid(reason):
		return nova.Invalidf(pkg, "dead letter %q: reason %q is not valid UTF-8 or contains a NUL byte", id, reason)
	}
	return nil
}
