package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/internal/brokerns"
	"github.com/nova-go/nova/novanats"
)

// NATSBroker returns the broker backend of package novanats
// ([novanats.NewBroker]) on the JetStream server at url (nats://host:port),
// measured beside a baseline on nats.go's jetstream package.
//
// Every run, on either side, opens a broker in a fresh namespace, whose
// stream NOVA_BROKER_<namespace> the broker creates with cfg's settings
// (file storage unless cfg says otherwise) and the runner deletes after
// the run. cfg.Namespace, when set, is the namespaces' prefix
// ([BrokerBackend.Prefix]); cfg.URL and cfg.Conn are ignored.
//
// The baseline does by hand what the broker does on the server, in the
// namespace's stream: it publishes each message to the subject
// "<namespace>.t.<topic>" with the headers Nats-Msg-Id (the server's
// deduplication), a type and a time, expecting the stream by name, as the
// broker's envelopes are; one at a time waiting for each acknowledgement,
// or a batch asynchronously and then every acknowledgement. Its consumer
// group is a durable pull consumer with the settings of the broker's
// groups (deliver new, explicit acknowledgement, cfg's AckWait, no
// delivery limit, no limit on pending acknowledgements), from which it
// fetches one message per request, reads its ID and acknowledges it, as a
// member of the broker's groups does.
func NATSBroker(url string, cfg novanats.BrokerConfig) (BrokerBackend, error) {
	if url == "" {
		return BrokerBackend{}, nova.Invalidf("bench", "empty NATS URL")
	}
	ackWait := cfg.AckWait
	if ackWait == 0 {
		ackWait = novanats.DefaultAckWait
	}
	return BrokerBackend{
		Name:   "nats",
		Prefix: cfg.Namespace,
		NovaFunc: func(ctx context.Context, ns string) (broker.Broker, error) {
			c := cfg
			c.Conn, c.URL, c.Namespace = nil, url, ns
			return novanats.NewBroker(ctx, c)
		},
		RawFunc: func(ctx context.Context, ns string) (RawBroker, error) {
			return newNATSBrokerRaw(url, ns, ackWait)
		},
	}, nil
}

// natsBrokerRaw is the JetStream baseline on a connection of its own.
type natsBrokerRaw struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	ns      string
	stream  string
	ackWait time.Duration
}

func newNATSBrokerRaw(url, ns string, ackWait time.Duration) (*natsBrokerRaw, error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return nil, fmt.Errorf("bench: connect: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("bench: %w", err)
	}
	return &natsBrokerRaw{nc: nc, js: js, ns: ns, stream: brokerns.JetStreamStream(ns), ackWait: ackWait}, nil
}

func (r *natsBrokerRaw) subject(topic string) string { return r.ns + ".t." + topic }

func (r *natsBrokerRaw) msg(topic string, m RawMessage, now time.Time) *nats.Msg {
	h := nats.Header{}
	h.Set(jetstream.MsgIDHeader, m.ID)
	h.Set("Type", m.Type)
	h.Set("Time", strconv.FormatInt(now.UnixMilli(), 10))
	return &nats.Msg{Subject: r.subject(topic), Header: h, Data: m.Body}
}

func (r *natsBrokerRaw) Publish(ctx context.Context, topic string, m RawMessage) error {
	_, err := r.js.PublishMsg(ctx, r.msg(topic, m, time.Now()), jetstream.WithExpectStream(r.stream))
	return err
}

func (r *natsBrokerRaw) PublishBatch(ctx context.Context, topic string, ms []RawMessage) error {
	now := time.Now()
	futures := make([]jetstream.PubAckFuture, len(ms))
	for i, m := range ms {
		f, err := r.js.PublishMsgAsync(r.msg(topic, m, now), jetstream.WithExpectStream(r.stream))
		if err != nil {
			return err
		}
		futures[i] = f
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

// natsPullWait is how long one pull request of the baseline's consumer
// waits for a message, as long as a member of the broker's groups waits.
const natsPullWait = 5 * time.Second

func (r *natsBrokerRaw) Group(ctx context.Context, group, topic string) (RawConsumer, error) {
	cons, err := r.js.CreateConsumer(ctx, r.stream, jetstream.ConsumerConfig{
		Durable:       "group_" + group,
		FilterSubject: r.subject(topic),
		DeliverPolicy: jetstream.DeliverNewPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       r.ackWait,
		MaxDeliver:    -1,
		MaxAckPending: -1,
	})
	if err != nil {
		return nil, err
	}
	return natsConsumer{cons}, nil
}

type natsConsumer struct{ cons jetstream.Consumer }

func (c natsConsumer) Next(ctx context.Context) (string, error) {
	for {
		batch, err := c.cons.Fetch(1, jetstream.FetchMaxWait(natsPullWait))
		if err != nil {
			return "", err
		}
		if m := <-batch.Messages(); m != nil {
			id := m.Headers().Get(jetstream.MsgIDHeader)
			return id, m.Ack()
		}
		if err := batch.Error(); err != nil {
			return "", err
		}
		if err := ctx.Err(); err != nil {
			return "", err
		}
	}
}

func (natsConsumer) Close() error { return nil }

func (r *natsBrokerRaw) Held(ctx context.Context, topic string) (int, error) {
	s, err := r.js.Stream(ctx, r.stream)
	if err != nil {
		return 0, err
	}
	subj := r.subject(topic)
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		return 0, err
	}
	return int(info.State.Subjects[subj]), nil
}

// Drop deletes the namespace's stream, and with it its consumers.
func (r *natsBrokerRaw) Drop(ctx context.Context, _, _ []string) error {
	if err := r.js.DeleteStream(ctx, r.stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return err
	}
	return nil
}

func (r *natsBrokerRaw) Close() error {
	r.nc.Close()
	return nil
}
