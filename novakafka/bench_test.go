package novakafka_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/broker/brokertest"
)

// The benchmarks run against the in-process cluster, which shares the
// process and its CPU: they measure the client side (Nova's and
// franz-go's), not a Kafka server or a network.

// benchEnvelope returns an envelope with a payload of 1 KB.
func benchEnvelope(i int) broker.Envelope {
	e := brokertest.Envelope(fmt.Sprintf("bench-%d", i), "bench.job.done")
	e.Payload = json.RawMessage(`"` + strings.Repeat("p", 1022) + `"`)
	return e
}

// BenchmarkPublish publishes 1 KB envelopes one at a time, each
// acknowledged by every in-sync replica, through Nova and through a
// franz-go client producing the same records with ProduceSync.
func BenchmarkPublish(b *testing.B) {
	ctx := context.Background()
	b.Run("nova", func(b *testing.B) {
		br := open(b, namespace())
		b.SetBytes(1024)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if err := br.Publish(ctx, benchEnvelope(i)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("kgo", func(b *testing.B) {
		ns := namespace()
		open(b, ns) // creates the topics
		cl, err := kgo.NewClient(kgo.SeedBrokers(seeds()...), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0))
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		b.SetBytes(1024)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			e := benchEnvelope(i)
			r := &kgo.Record{Topic: ns + ".events", Key: []byte(e.Key), Value: e.Payload, Headers: []kgo.RecordHeader{
				{Key: "nova-id", Value: []byte(e.ID)},
				{Key: "nova-topic", Value: []byte(e.Topic)},
				{Key: "nova-type", Value: []byte(e.EventType)},
				{Key: "nova-time", Value: []byte("1700000000000")},
				{Key: "nova-key", Value: []byte(e.Key)},
				{Key: "h", Value: []byte(e.ID)},
			}}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkConsume consumes b.N 1 KB envelopes published beforehand in a
// consumer group that commits what it handled: Nova's group
// subscription, and a franz-go group consumer marking each record and
// committing the marks as often (every 100ms and at the end).
func BenchmarkConsume(b *testing.B) {
	ctx := context.Background()
	fill := func(b *testing.B, br broker.Broker, ns, group string) {
		b.Helper()
		var batch []broker.Envelope
		for i := range b.N {
			batch = append(batch, benchEnvelope(i))
			if len(batch) == 500 || i == b.N-1 {
				if err := broker.PublishAll(ctx, br, batch...); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
		// The group starts at the first record, not at the end.
		cl, err := kgo.NewClient(kgo.SeedBrokers(seeds()...))
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		offsets := kadm.Offsets{}
		offsets.Add(kadm.Offset{Topic: ns + ".events", Partition: 0, At: 0, LeaderEpoch: -1})
		if err := kadm.NewClient(cl).CommitAllOffsets(ctx, group, offsets); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("nova", func(b *testing.B) {
		ns := namespace()
		br := open(b, ns)
		fill(b, br, ns, ns+".group.bench")
		var n atomic.Int64
		var first, last time.Time
		done := make(chan struct{})
		b.SetBytes(1024)
		b.ReportAllocs()
		b.ResetTimer()
		sub, err := br.(broker.GroupSubscriber).SubscribeGroup(ctx, "bench", "bench.>", func(ctx context.Context, e broker.Envelope) error {
			k := n.Add(1)
			if k == 1 {
				first = time.Now()
			}
			if k == int64(b.N) {
				last = time.Now()
				close(done)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		<-done
		sub.Unsubscribe()
		b.StopTimer()
		reportPerMsg(b, first, last)
	})
	b.Run("kgo", func(b *testing.B) {
		ns := namespace()
		br := open(b, ns)
		fill(b, br, ns, ns+".raw")
		b.SetBytes(1024)
		b.ReportAllocs()
		b.ResetTimer()
		cl, err := kgo.NewClient(kgo.SeedBrokers(seeds()...),
			kgo.ConsumerGroup(ns+".raw"), kgo.ConsumeTopics(ns+".events"),
			kgo.AutoCommitMarks(), kgo.AutoCommitInterval(100*time.Millisecond))
		if err != nil {
			b.Fatal(err)
		}
		var first, last time.Time
		for n := 0; n < b.N; {
			fs := cl.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				b.Fatal(err)
			}
			fs.EachRecord(func(r *kgo.Record) {
				cl.MarkCommitRecords(r)
				n++
				if n == 1 {
					first = time.Now()
				}
				if n == b.N {
					last = time.Now()
				}
			})
		}
		if err := cl.CommitMarkedOffsets(ctx); err != nil {
			b.Fatal(err)
		}
		cl.Close()
		b.StopTimer()
		reportPerMsg(b, first, last)
	})
}

// reportPerMsg reports the time per envelope from the first handled to
// the last: ns/op includes joining the group, which the short runs of a
// benchmark do not amortize.
func reportPerMsg(b *testing.B, first, last time.Time) {
	if b.N > 1 {
		b.ReportMetric(float64(last.Sub(first).Nanoseconds())/float64(b.N-1), "ns/msg")
	}
}
