package bridge_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/bridge"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/internal/brokerns"
	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/novanats"
	"github.com/nova-go/nova/novarabbitmq"
	"github.com/nova-go/nova/novasqlite"
)

// BenchmarkForwardLag appends events to a SQLite store at a steady rate
// (lagRate events/s, in appends of 10) for as many events as b.N, while a
// Forwarder publishes them to a broker and a consumer group receives
// them. It reports, p50 and p99 in ms, the forwarding lag (from each
// append's return to the forwarder's checkpoint passing it, which it
// moves once the broker has confirmed the event) and the end-to-end lag
// (to the event's arrival at the consumer, which also measures the
// consumer), and the rate the writer reached. One iteration is one event.
//
//	go test -run '^$' -bench ForwardLag -benchtime 20000x -count 5 ./bridge/
func BenchmarkForwardLag(b *testing.B) {
	for _, be := range []struct {
		name string
		open func(b *testing.B, ns string) broker.Broker
	}{
		{"memory", func(b *testing.B, ns string) broker.Broker {
			br, err := broker.NewMemory(broker.MemoryConfig{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { br.Close() })
			return br
		}},
		{"jetstream", func(b *testing.B, ns string) broker.Broker {
			url := testenv.Need(b, testenv.NATS)
			br, err := novanats.NewBroker(b.Context(), novanats.BrokerConfig{URL: url, Namespace: ns, Storage: novanats.MemoryStorage})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() {
				br.Close()
				if err := brokerns.DropJetStream(context.Background(), url, ns); err != nil {
					b.Errorf("cleanup: %v", err)
				}
			})
			return br
		}},
		{"rabbitmq", func(b *testing.B, ns string) broker.Broker {
			url := testenv.Need(b, testenv.RabbitMQ)
			br, err := novarabbitmq.New(b.Context(), novarabbitmq.Config{URL: url, Namespace: ns})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() {
				br.Close()
				if err := brokerns.DropRabbitMQ(url, ns, []string{"events.order.Placed"}, []string{"lag"}); err != nil {
					b.Errorf("cleanup: %v", err)
				}
			})
			return br
		}},
	} {
		b.Run(be.name, func(b *testing.B) { forwardLag(b, be.open) })
	}
}

const lagRate = 5000 // events per second

func forwardLag(b *testing.B, open func(b *testing.B, ns string) broker.Broker) {
	ctx := b.Context()
	ns := "bench-" + strconv.FormatUint(rand.Uint64(), 36)
	br := open(b, ns)
	store, err := novasqlite.Open(ctx, novasqlite.Config{Path: filepath.Join(b.TempDir(), "lag.db"), Synchronous: novasqlite.SyncNormal})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()

	var mu sync.Mutex
	sent := map[string]time.Time{}
	var lags []time.Duration
	got := make(chan struct{}, 1)
	sub, err := br.(broker.GroupSubscriber).SubscribeGroup(ctx, "lag", "events.>", func(_ context.Context, e broker.Envelope) error {
		now := time.Now()
		mu.Lock()
		if at, ok := sent[e.ID]; ok {
			lag := now.Sub(at)
			if at.IsZero() {
				lag = 0 // it came before its Append returned
			}
			lags = append(lags, lag)
			delete(sent, e.ID)
		}
		mu.Unlock()
		select {
		case got <- struct{}{}:
		default:
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe()
	f, err := bridge.NewForwarder(bridge.ForwarderConfig{Store: store, Broker: br, Checkpoints: novasqlite.NewCheckpoints(store)})
	if err != nil {
		b.Fatal(err)
	}
	if err := f.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer f.Stop(context.Background())

	// The forwarding lag: from an append's return to the checkpoint
	// passing it, which the forwarder moves once the broker confirmed.
	type mark struct {
		pos nova.Position
		at  time.Time
	}
	marks := make(chan mark, b.N)
	var fwdLags []time.Duration
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for m := range marks {
			for f.Status().Checkpoint.Less(m.pos) {
				time.Sleep(200 * time.Microsecond)
			}
			fwdLags = append(fwdLags, time.Since(m.at))
		}
	}()

	const per = 10
	tick := time.NewTicker(time.Second * per / lagRate)
	defer tick.Stop()
	b.ResetTimer()
	start := time.Now()
	for n := 0; n < b.N; n += per {
		<-tick.C
		batch := make([]nova.EventData, min(per, b.N-n))
		for i := range batch {
			batch[i] = nova.EventData{ID: nova.NewEventID(), Type: "Placed", Data: []byte(`{"total":1250}`)}
		}
		mu.Lock()
		for _, e := range batch {
			sent[e.ID] = time.Time{}
		}
		mu.Unlock()
		res, err := store.Append(ctx, fmt.Sprintf("order-%d", n%64), nova.Any, batch...)
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		marks <- mark{res.Position, now}
		mu.Lock()
		for _, e := range batch {
			if _, waiting := sent[e.ID]; waiting {
				sent[e.ID] = now
			}
		}
		mu.Unlock()
	}
	wrote := time.Since(start)
	close(marks)
	<-watched
	deadline := time.Now().Add(time.Minute)
	for {
		mu.Lock()
		left := len(sent)
		mu.Unlock()
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d events not at the consumer a minute after the last append", left)
		}
		select {
		case <-got:
		case <-time.After(10 * time.Millisecond):
		}
	}
	b.StopTimer()
	ms := func(xs []time.Duration, q float64) float64 {
		slices.Sort(xs)
		return float64(xs[int(q*float64(len(xs)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(ms(fwdLags, 0.5), "fwd-p50-ms")
	b.ReportMetric(ms(fwdLags, 0.99), "fwd-p99-ms")
	b.ReportMetric(ms(lags, 0.5), "e2e-p50-ms")
	b.ReportMetric(ms(lags, 0.99), "e2e-p99-ms")
	b.ReportMetric(float64(b.N)/wrote.Seconds(), "appended/s")
}
