package novanats_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/novanats"
)

// The broker benchmarks run Nova's broker ("nova") beside nats.go's
// jetstream package doing the same by hand ("raw") on a private
// nats-server with file storage, 1 KB payloads:
//
//	go test -run '^$' -bench 'Broker' -count 5 ./novanats/ | tee broker.txt
//	benchstat broker.txt
//
// Publish: one confirmed publish at a time (the server's acknowledgement
// awaited), and batches of 100 published asynchronously, then every
// acknowledgement awaited. The raw side sends the same messages: subject,
// Nats-Msg-Id and the envelope's headers.
//
// Consume: b.N envelopes wait on the server, then are delivered and
// acknowledged one at a time: "sub" through a subscription (an ephemeral
// consumer with MaxAckPending 1 and a standing pull), "group" through a
// consumer group (a durable consumer, one Fetch of one message at a
// time), the raw side with the same consumer settings and pulls.

var benchPayload = json.RawMessage(`{"data":"` + strings.Repeat("x", 1024-11) + `"}`)

// benchBroker opens a broker on a fresh namespace of url with file
// storage.
func benchBroker(b *testing.B, url string) (*novanats.Broker, string) {
	b.Helper()
	ns := newNamespace(b, url)
	nb := openBroker(b, url, ns, func(c *novanats.BrokerConfig) { c.Storage = novanats.FileStorage })
	return nb, ns
}

// rawJS returns a jetstream client on its own connection to url.
func rawJS(b *testing.B, url string) jetstream.JetStream {
	b.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	return js
}

// rawMsg is the message Nova publishes for envelope i on subj, built by
// hand.
func rawMsg(subj string, run, i int) *nats.Msg {
	h := nats.Header{}
	h.Set("Nats-Msg-Id", fmt.Sprintf("r%d-%d", run, i))
	h.Set("Nova-Event-Type", "bench.event")
	h.Set("Nova-Time", strconv.FormatInt(time.Now().UnixMilli(), 10))
	return &nats.Msg{Subject: subj, Header: h, Data: benchPayload}
}

func benchEnvelope(topic string, run, i int) broker.Envelope {
	return broker.Envelope{ID: fmt.Sprintf("n%d-%d", run, i), Topic: topic, EventType: "bench.event", Payload: benchPayload}
}

var benchRuns atomic.Int64

func BenchmarkBrokerPublish(b *testing.B) {
	srv := startServer(b)
	ctx := context.Background()
	b.Run("one/target=nova", func(b *testing.B) {
		nb, _ := benchBroker(b, srv.url)
		run := int(benchRuns.Add(1))
		b.SetBytes(int64(len(benchPayload)))
		b.ResetTimer()
		for i := range b.N {
			if err := nb.Publish(ctx, benchEnvelope("bench.pub", run, i)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("one/target=raw", func(b *testing.B) {
		_, ns := benchBroker(b, srv.url) // the same stream, made by the broker
		js := rawJS(b, srv.url)
		run := int(benchRuns.Add(1))
		b.SetBytes(int64(len(benchPayload)))
		b.ResetTimer()
		for i := range b.N {
			if _, err := js.PublishMsg(ctx, rawMsg(ns+".t.bench.pub", run, i)); err != nil {
				b.Fatal(err)
			}
		}
	})
	const batch = 100
	b.Run("batch100/target=nova", func(b *testing.B) {
		nb, _ := benchBroker(b, srv.url)
		run := int(benchRuns.Add(1))
		b.SetBytes(int64(len(benchPayload)))
		envs := make([]broker.Envelope, 0, batch)
		b.ResetTimer()
		for i := 0; i < b.N; i += batch {
			envs = envs[:0]
			for j := i; j < min(i+batch, b.N); j++ {
				envs = append(envs, benchEnvelope("bench.pub", run, j))
			}
			if err := nb.PublishBatch(ctx, envs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("batch100/target=raw", func(b *testing.B) {
		_, ns := benchBroker(b, srv.url)
		js := rawJS(b, srv.url)
		run := int(benchRuns.Add(1))
		b.SetBytes(int64(len(benchPayload)))
		futures := make([]jetstream.PubAckFuture, 0, batch)
		b.ResetTimer()
		for i := 0; i < b.N; i += batch {
			futures = futures[:0]
			for j := i; j < min(i+batch, b.N); j++ {
				f, err := js.PublishMsgAsync(rawMsg(ns+".t.bench.pub", run, j))
				if err != nil {
					b.Fatal(err)
				}
				futures = append(futures, f)
			}
			for _, f := range futures {
				select {
				case <-f.Ok():
				case err := <-f.Err():
					b.Fatal(err)
				}
			}
		}
	})
}

// fill publishes n envelopes to topic, untimed.
func fill(b *testing.B, nb *novanats.Broker, topic string, run, n int) {
	b.Helper()
	b.StopTimer()
	defer b.StartTimer()
	envs := make([]broker.Envelope, n)
	for i := range envs {
		envs[i] = benchEnvelope(topic, run, i)
	}
	if err := broker.PublishAll(context.Background(), nb, envs...); err != nil {
		b.Fatal(err)
	}
}

// gated returns a handler that waits for start, then counts deliveries
// and closes done at the n-th.
func gated(start <-chan struct{}, n int, done chan<- struct{}) broker.Handler {
	var count atomic.Int64
	return func(ctx context.Context, e broker.Envelope) error {
		<-start
		if count.Add(1) == int64(n) {
			close(done)
		}
		return nil
	}
}

func BenchmarkBrokerConsume(b *testing.B) {
	srv := startServer(b)
	ctx := context.Background()
	for _, kind := range []string{"sub", "group"} {
		b.Run(kind+"/target=nova", func(b *testing.B) {
			nb, _ := benchBroker(b, srv.url)
			run := int(benchRuns.Add(1))
			topic := "bench.consume"
			start, done := make(chan struct{}), make(chan struct{})
			h := gated(start, b.N, done)
			var sub broker.Subscription
			var err error
			if kind == "sub" {
				sub, err = nb.Subscribe(ctx, topic, h)
			} else {
				sub, err = nb.SubscribeGroup(ctx, "bench", topic, h)
			}
			if err != nil {
				b.Fatal(err)
			}
			defer sub.Unsubscribe()
			fill(b, nb, topic, run, b.N)
			b.SetBytes(int64(len(benchPayload)))
			b.ResetTimer()
			close(start)
			<-done
			b.StopTimer()
		})
		b.Run(kind+"/target=raw", func(b *testing.B) {
			nb, ns := benchBroker(b, srv.url)
			js := rawJS(b, srv.url)
			run := int(benchRuns.Add(1))
			topic := "bench.consume"
			cfg := jetstream.ConsumerConfig{
				FilterSubject: ns + ".t." + topic,
				DeliverPolicy: jetstream.DeliverNewPolicy,
				AckPolicy:     jetstream.AckExplicitPolicy,
				MaxDeliver:    -1,
			}
			if kind == "sub" {
				cfg.MaxAckPending, cfg.MemoryStorage, cfg.InactiveThreshold = 1, true, time.Minute
			} else {
				cfg.Durable, cfg.MaxAckPending = "bench", -1
			}
			cons, err := js.CreateConsumer(ctx, "NOVA_BROKER_"+ns, cfg)
			if err != nil {
				b.Fatal(err)
			}
			fill(b, nb, topic, run, b.N)
			b.SetBytes(int64(len(benchPayload)))
			b.ResetTimer()
			if kind == "sub" {
				it, err := cons.Messages()
				if err != nil {
					b.Fatal(err)
				}
				defer it.Stop()
				for range b.N {
					m, err := it.Next()
					if err != nil {
						b.Fatal(err)
					}
					if err := m.Ack(); err != nil {
						b.Fatal(err)
					}
				}
			} else {
				for range b.N {
					m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
					if err != nil {
						b.Fatal(err)
					}
					if err := m.Ack(); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
		})
	}
}
