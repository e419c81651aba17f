package novarabbitmq

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/nova-go/nova/broker"
)

// The benchmarks run each case through the broker ("target=nova") and
// through amqp091-go by hand doing the same work on the server
// ("target=raw"), in the same namespace, on the server testenv finds:
//
//	go test -run '^$' -bench . -count 5 ./novarabbitmq/ | tee new.txt
//	benchstat -col /target new.txt
//
// Publish: one 1 KB envelope at a time, persistent, mandatory, waiting
// for the server's confirmation, through the topic exchange to the
// topic's quorum queue. PublishBatch100: 100 such envelopes sent
// together, then all confirmations awaited. Consume: a consumer group's
// quorum queue filled beforehand, consumed with the default prefetch and
// acknowledged one by one.

// benchPayload is a JSON value of 1 KB.
var benchPayload = json.RawMessage(`"` + strings.Repeat("p", 1022) + `"`)

const benchTopic = "bench.orders.created"

func benchEnvelope(i int) broker.Envelope {
	return broker.Envelope{
		ID:        fmt.Sprintf("bench-%d", i),
		Topic:     benchTopic,
		EventType: "bench.event",
		Payload:   benchPayload,
		Key:       "k",
		Timestamp: time.UnixMilli(1_700_000_000_000),
	}
}

// rawPublisher is amqp091 with a confirm channel, as an application
// would write it.
type rawPublisher struct {
	ch *amqp.Channel
}

func newRawPublisher(b *testing.B) *rawPublisher {
	ch, err := rawConn(b).Channel()
	if err != nil {
		b.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		b.Fatal(err)
	}
	return &rawPublisher{ch: ch}
}

func (p *rawPublisher) publish(ctx context.Context, exchange string, msgs ...amqp.Publishing) error {
	confirms := make([]*amqp.DeferredConfirmation, len(msgs))
	for i, m := range msgs {
		dc, err := p.ch.PublishWithDeferredConfirmWithContext(ctx, exchange, benchTopic, true, false, m)
		if err != nil {
			return err
		}
		confirms[i] = dc
	}
	for _, dc := range confirms {
		if ok, err := dc.WaitContext(ctx); err != nil || !ok {
			return fmt.Errorf("not confirmed: %v", err)
		}
	}
	return nil
}

func rawMessage(i int) amqp.Publishing {
	return amqp.Publishing{
		ContentType:  "application/json",
		DeliveryMode: amqp.Persistent,
		MessageId:    fmt.Sprintf("bench-%d", i),
		Type:         "bench.event",
		Timestamp:    time.UnixMilli(1_700_000_000_000),
		Body:         benchPayload,
	}
}

func BenchmarkPublish(b *testing.B) {
	ctx := context.Background()
	b.Run("target=nova", func(b *testing.B) {
		nb := openBroker(b, newNamespace(b))
		b.SetBytes(int64(len(benchPayload)))
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if err := nb.Publish(ctx, benchEnvelope(i)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("target=raw", func(b *testing.B) {
		nb := openBroker(b, newNamespace(b))
		if err := nb.ensurePollQueue(benchTopic); err != nil {
			b.Fatal(err)
		}
		p := newRawPublisher(b)
		b.SetBytes(int64(len(benchPayload)))
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if err := p.publish(ctx, nb.names.topics(), rawMessage(i)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkPublishBatch100(b *testing.B) {
	ctx := context.Background()
	const n = 100
	b.Run("target=nova", func(b *testing.B) {
		nb := openBroker(b, newNamespace(b))
		envs := make([]broker.Envelope, n)
		b.SetBytes(n * int64(len(benchPayload)))
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			for j := range envs {
				envs[j] = benchEnvelope(i*n + j)
			}
			if err := nb.PublishBatch(ctx, envs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("target=raw", func(b *testing.B) {
		nb := openBroker(b, newNamespace(b))
		if err := nb.ensurePollQueue(benchTopic); err != nil {
			b.Fatal(err)
		}
		p := newRawPublisher(b)
		msgs := make([]amqp.Publishing, n)
		b.SetBytes(n * int64(len(benchPayload)))
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			for j := range msgs {
				msgs[j] = rawMessage(i*n + j)
			}
			if err := p.publish(ctx, nb.names.topics(), msgs...); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// fillGroup declares group's queue through nb and fills it with n
// envelopes, before the timer starts.
func fillGroup(b *testing.B, nb *Broker, group string, n int) {
	ctx := context.Background()
	sub, err := nb.SubscribeGroup(ctx, group, "bench.>", func(context.Context, broker.Envelope) error { return nil })
	if err != nil {
		b.Fatal(err)
	}
	sub.Unsubscribe()
	envs := make([]broker.Envelope, 0, 500)
	for i := 0; i < n; {
		envs = envs[:0]
		for ; i < n && len(envs) < cap(envs); i++ {
			envs = append(envs, benchEnvelope(i))
		}
		if err := nb.PublishBatch(ctx, envs); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkConsume(b *testing.B) {
	ctx := context.Background()
	b.Run("target=nova", func(b *testing.B) {
		nb := openBroker(b, newNamespace(b))
		fillGroup(b, nb, "bench", b.N)
		var got atomic.Int64
		done := make(chan struct{})
		b.SetBytes(int64(len(benchPayload)))
		b.ReportAllocs()
		b.ResetTimer()
		sub, err := nb.SubscribeGroup(ctx, "bench", "bench.>", func(ctx context.Context, e broker.Envelope) error {
			if got.Add(1) == int64(b.N) {
				close(done)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		<-done
		b.StopTimer()
		sub.Unsubscribe()
	})
	b.Run("target=raw", func(b *testing.B) {
		nb := openBroker(b, newNamespace(b))
		fillGroup(b, nb, "bench", b.N)
		ch, err := rawConn(b).Channel()
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(benchPayload)))
		b.ReportAllocs()
		b.ResetTimer()
		if err := ch.Qos(DefaultPrefetch, 0, false); err != nil {
			b.Fatal(err)
		}
		deliveries, err := ch.Consume(nb.names.group("bench"), "", false, false, false, false, nil)
		if err != nil {
			b.Fatal(err)
		}
		for range b.N {
			d := <-deliveries
			if err := d.Ack(false); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		ch.Close()
	})
}
