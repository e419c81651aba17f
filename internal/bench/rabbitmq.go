package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/internal/brokerns"
	"github.com/nova-go/nova/novarabbitmq"
)

// RabbitMQ returns the broker backend of package novarabbitmq
// ([novarabbitmq.New]) on the server at url (amqp://user:pass@host:5672/vhost),
// measured beside a baseline on github.com/rabbitmq/amqp091-go, the client
// the adapter is built on.
//
// Every run, on either side, opens a broker in a fresh namespace; after
// the run the runner deletes the namespace's exchanges (<ns>.topics,
// <ns>.poll, <ns>.dlx) and the durable queues the run's topics and groups
// had (<ns>.poll.<topic>, <ns>.dlq.<topic>, <ns>.group.<group>).
// cfg.Namespace, when set, is the namespaces' prefix
// ([BrokerBackend.Prefix]); cfg.URL is ignored.
//
// The baseline does by hand what the adapter does on the server, in the
// namespace the adapter declared: it publishes each message persistent,
// mandatory, as JSON with its ID, type and timestamp, to the topic
// exchange with the topic as routing key (so that it reaches the topic's
// quorum queue, as the adapter's envelopes do), on a channel in confirm
// mode: one at a time waiting for each confirmation, or a batch and then
// every confirmation. A message the server returns (no queue took it)
// fails the publish, as it does the adapter's. Its consumer group is a
// quorum queue declared with the arguments of the adapter's groups
// (delivery limit, dead-letter exchange, at-least-once dead-lettering,
// reject-publish overflow), bound to the topic, consumed with the same
// prefetch (cfg.Prefetch, default [novarabbitmq.DefaultPrefetch]); it reads
// each delivery's ID and acknowledges it by hand.
func RabbitMQ(url string, cfg novarabbitmq.Config) (BrokerBackend, error) {
	if url == "" {
		return BrokerBackend{}, nova.Invalidf("bench", "empty RabbitMQ URL")
	}
	prefetch, maxAttempts := cfg.Prefetch, cfg.MaxAttempts
	if prefetch == 0 {
		prefetch = novarabbitmq.DefaultPrefetch
	}
	if maxAttempts == 0 {
		maxAttempts = broker.DefaultMaxAttempts
	}
	return BrokerBackend{
		Name:   "rabbitmq",
		Prefix: cfg.Namespace,
		NovaFunc: func(ctx context.Context, ns string) (broker.Broker, error) {
			c := cfg
			c.URL, c.Namespace = url, ns
			return novarabbitmq.New(ctx, c)
		},
		RawFunc: func(ctx context.Context, ns string) (RawBroker, error) {
			return newRabbitRaw(url, ns, prefetch, maxAttempts)
		},
	}, nil
}

// rabbitRaw is the RabbitMQ baseline on a connection of its own.
type rabbitRaw struct {
	conn        *amqp.Connection
	pub         *amqp.Channel // in confirm mode
	returns     chan amqp.Return
	ns          string
	prefetch    int
	maxAttempts int
}

// rabbitDialTimeout bounds the baseline's connecting.
const rabbitDialTimeout = 10 * time.Second

func newRabbitRaw(url, ns string, prefetch, maxAttempts int) (*rabbitRaw, error) {
	conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(rabbitDialTimeout), Heartbeat: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("bench: connect: %w", err)
	}
	pub, err := conn.Channel()
	if err == nil {
		err = pub.Confirm(false)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("bench: open the publishing channel: %w", err)
	}
	// Buffered for a whole batch: the client's reader waits on a full
	// channel, and every publish takes what it finds there.
	returns := pub.NotifyReturn(make(chan amqp.Return, 256))
	return &rabbitRaw{conn: conn, pub: pub, returns: returns, ns: ns, prefetch: prefetch, maxAttempts: maxAttempts}, nil
}

func (r *rabbitRaw) topics() string { return r.ns + ".topics" }

func (r *rabbitRaw) send(ctx context.Context, topic string, ms []RawMessage) error {
	now := time.Now()
	confirms := make([]*amqp.DeferredConfirmation, len(ms))
	for i, m := range ms {
		dc, err := r.pub.PublishWithDeferredConfirmWithContext(ctx, r.topics(), topic, true, false, amqp.Publishing{
			ContentType:  "application/json",
			DeliveryMode: amqp.Persistent,
			MessageId:    m.ID,
			Type:         m.Type,
			Timestamp:    now,
			Body:         m.Body,
		})
		if err != nil {
			return err
		}
		confirms[i] = dc
	}
	for i, dc := range confirms {
		ok, err := dc.WaitContext(ctx)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("the server refused message %s (basic.nack)", ms[i].ID)
		}
	}
	// The server returns a message before it confirms it, and the client
	// hands the return over before the confirmation.
	var returned []string
	for {
		select {
		case ret := <-r.returns:
			returned = append(returned, ret.MessageId)
			continue
		default:
		}
		break
	}
	if len(returned) > 0 {
		return fmt.Errorf("no queue took %d messages, such as %s (basic.return)", len(returned), returned[0])
	}
	return nil
}

func (r *rabbitRaw) Publish(ctx context.Context, topic string, m RawMessage) error {
	return r.send(ctx, topic, []RawMessage{m})
}

func (r *rabbitRaw) PublishBatch(ctx context.Context, topic string, ms []RawMessage) error {
	return r.send(ctx, topic, ms)
}

func (r *rabbitRaw) Group(_ context.Context, group, topic string) (RawConsumer, error) {
	ch, err := r.conn.Channel()
	if err != nil {
		return nil, err
	}
	q := r.ns + ".group." + group
	args := amqp.Table{
		amqp.QueueTypeArg:        amqp.QueueTypeQuorum,
		"x-delivery-limit":       int64(r.maxAttempts - 1),
		"x-dead-letter-exchange": r.ns + ".dlx",
		"x-dead-letter-strategy": "at-least-once",
		amqp.QueueOverflowArg:    amqp.QueueOverflowRejectPublish,
	}
	if _, err = ch.QueueDeclare(q, true, false, false, false, args); err == nil {
		if err = ch.QueueBind(q, topic, r.topics(), false, nil); err == nil {
			err = ch.Qos(r.prefetch, 0, false)
		}
	}
	var deliveries <-chan amqp.Delivery
	if err == nil {
		deliveries, err = ch.Consume(q, "", false, false, false, false, nil)
	}
	if err != nil {
		ch.Close()
		return nil, err
	}
	return &rabbitConsumer{ch: ch, deliveries: deliveries}, nil
}

type rabbitConsumer struct {
	ch         *amqp.Channel
	deliveries <-chan amqp.Delivery
}

func (c *rabbitConsumer) Next(ctx context.Context) (string, error) {
	select {
	case d, ok := <-c.deliveries:
		if !ok {
			return "", errors.New("the consumer's channel closed")
		}
		return d.MessageId, d.Ack(false)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (c *rabbitConsumer) Close() error { return c.ch.Close() }

// admin runs f on a channel of its own: a failed operation closes its
// channel.
func (r *rabbitRaw) admin(f func(ch *amqp.Channel) error) error {
	ch, err := r.conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	return f(ch)
}

func (r *rabbitRaw) Held(_ context.Context, topic string) (int, error) {
	var n int
	err := r.admin(func(ch *amqp.Channel) error {
		q, err := ch.QueueDeclarePassive(r.ns+".poll."+topic, true, false, false, false, nil)
		n = q.Messages
		return err
	})
	return n, err
}

// Drop deletes the queues of topics and groups, then the namespace's
// exchanges. The topics and groups of the scenarios are short, so their
// queues have the plain names (see novarabbitmq's package documentation
// for longer ones).
func (r *rabbitRaw) Drop(_ context.Context, topics, groups []string) error {
	var errs []error
	for _, q := range brokerns.RabbitMQQueues(r.ns, topics, groups) {
		errs = append(errs, brokerns.NotFoundOK(r.admin(func(ch *amqp.Channel) error {
			_, err := ch.QueueDelete(q, false, false, false)
			return err
		})))
	}
	for _, x := range brokerns.RabbitMQExchanges(r.ns) {
		errs = append(errs, brokerns.NotFoundOK(r.admin(func(ch *amqp.Channel) error { return ch.ExchangeDelete(x, false, false) })))
	}
	return errors.Join(errs...)
}

func (r *rabbitRaw) Close() error { return r.conn.Close() }
