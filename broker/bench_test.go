package broker_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/broker/brokertest"
)

// BenchmarkMemoryPublishPoll publishes saga-sized envelopes and polls them
// back in batches of 100.
func BenchmarkMemoryPublishPoll(b *testing.B) {
	ctx := context.Background()
	m, err := broker.NewMemory(broker.MemoryConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	envs := make([]broker.Envelope, 100)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		e := &envs[i%len(envs)]
		*e = brokertest.Envelope(fmt.Sprint(i), "saga.bench.step.started")
		if err := m.Publish(ctx, *e); err != nil {
			b.Fatal(err)
		}
		if i%len(envs) == len(envs)-1 {
			if got, err := m.Poll(ctx, "saga.bench.step.started", len(envs)); err != nil || len(got) != len(envs) {
				b.Fatalf("Poll = %d, %v", len(got), err)
			}
		}
	}
}

// BenchmarkMemorySubscribe measures publish to delivery through one
// wildcard subscription.
func BenchmarkMemorySubscribe(b *testing.B) {
	ctx := context.Background()
	m, err := broker.NewMemory(broker.MemoryConfig{MaxQueue: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	got := make(chan struct{}, 1024)
	if _, err := m.Subscribe(ctx, "saga.>", func(ctx context.Context, e broker.Envelope) error {
		got <- struct{}{}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := m.Publish(ctx, brokertest.Envelope(fmt.Sprint(i), "saga.bench.step.started")); err != nil {
			b.Fatal(err)
		}
		<-got
	}
}
