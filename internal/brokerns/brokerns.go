// Package brokerns deletes what a broker adapter declared on its server
// for one namespace, for the tests and benchmarks that open brokers in
// scratch namespaces: the JetStream stream of novanats's broker, and the
// queues and exchanges of novarabbitmq's. The names follow those
// packages' documented layouts; short topics and groups only (see
// novarabbitmq's package documentation for the names of long ones).
//
// It uses nats.go and amqp091-go, which the adapters already bring.
package brokerns

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"
)

// JetStreamStream is the stream of a novanats broker in namespace ns.
func JetStreamStream(ns string) string { return "NOVA_BROKER_" + ns }

// DropJetStream deletes the stream of namespace ns, and with it its
// consumers, on the server at url. A stream that is not there is no error.
func DropJetStream(ctx context.Context, url, ns string) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return fmt.Errorf("brokerns: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("brokerns: %w", err)
	}
	if err := js.DeleteStream(ctx, JetStreamStream(ns)); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("brokerns: delete stream %s: %w", JetStreamStream(ns), err)
	}
	return nil
}

// RabbitMQQueues names the durable queues a novarabbitmq broker in
// namespace ns declares for topics (poll and dead-letter queues) and
// consumer groups.
func RabbitMQQueues(ns string, topics, groups []string) []string {
	var queues []string
	for _, t := range topics {
		queues = append(queues, ns+".poll."+t, ns+".dlq."+t)
	}
	for _, g := range groups {
		queues = append(queues, ns+".group."+g)
	}
	return queues
}

// RabbitMQExchanges names the exchanges of namespace ns.
func RabbitMQExchanges(ns string) []string {
	return []string{ns + ".topics", ns + ".poll", ns + ".dlx"}
}

// DropRabbitMQ deletes the queues of topics and groups in namespace ns,
// then its exchanges, on the server at url. One that is not there is an
// error (NOT_FOUND): the caller named what the broker should have
// declared.
func DropRabbitMQ(url, ns string, topics, groups []string) error {
	conn, err := amqp.Dial(url)
	if err != nil {
		return fmt.Errorf("brokerns: %w", err)
	}
	defer conn.Close()
	var errs []error
	// A failed operation closes its channel, so each has one of its own.
	do := func(f func(ch *amqp.Channel) error) {
		ch, err := conn.Channel()
		if err != nil {
			errs = append(errs, err)
			return
		}
		defer ch.Close()
		errs = append(errs, f(ch))
	}
	for _, q := range RabbitMQQueues(ns, topics, groups) {
		do(func(ch *amqp.Channel) error { _, err := ch.QueueDelete(q, false, false, false); return err })
	}
	for _, x := range RabbitMQExchanges(ns) {
		do(func(ch *amqp.Channel) error { return ch.ExchangeDelete(x, false, false) })
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("brokerns: namespace %s: %w", ns, err)
	}
	return nil
}

// NotFoundOK returns nil for RabbitMQ's NOT_FOUND, err otherwise.
func NotFoundOK(err error) error {
	var ae *amqp.Error
	if errors.As(err, &ae) && ae.Code == amqp.NotFound {
		return nil
	}
	return err
}
