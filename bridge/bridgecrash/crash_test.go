package bridgecrash_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/bridge"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/internal/brokerns"
	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/novanats"
	"github.com/nova-go/nova/novarabbitmq"
	"github.com/nova-go/nova/novasqlite"
)

// childEnv holds a child's setup, as JSON; the test binary started with
// it is a forwarder process.
const childEnv = "NOVA_BRIDGECRASH_CHILD"

func TestMain(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		os.Exit(child(cfg))
	}
	goleak.VerifyTestMain(testenv.Main(m))
}

// setup is what a forwarder process works on.
type setup struct {
	SQLite    string // the store's file
	Kind      string // "amqp" or "nats"
	URL       string // the broker's server
	Namespace string // the broker's namespace
}

const (
	owner   = "bridgecrash-forwarder" // every child, so a restarted one takes its lease at once
	group   = "collector"
	pattern = "events.>"
)

func openBroker(ctx context.Context, s setup) (broker.Broker, error) {
	switch s.Kind {
	case "amqp":
		return novarabbitmq.New(ctx, novarabbitmq.Config{URL: s.URL, Namespace: s.Namespace})
	case "nats":
		return novanats.NewBroker(ctx, novanats.BrokerConfig{URL: s.URL, Namespace: s.Namespace, Storage: novanats.MemoryStorage, AckWait: time.Second})
	}
	return nil, fmt.Errorf("unknown broker kind %q", s.Kind)
}

// child runs a forwarder until it is killed.
func child(raw string) int {
	var s setup
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx := context.Background()
	store, err := novasqlite.Open(ctx, novasqlite.Config{Path: s.SQLite, SkipMigrate: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	b, err := openBroker(ctx, s)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	f, err := bridge.NewForwarder(bridge.ForwarderConfig{
		Store: store, Broker: b, Checkpoints: novasqlite.NewCheckpoints(store),
		Owner: owner, LeaseTTL: 2 * time.Second, BatchSize: 50,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := f.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Println("ready")
	<-f.Stopped()
	fmt.Fprintln(os.Stderr, "forwarder stopped:", f.Wait())
	return 1
}

func size(t *testing.T, env string, def int) int {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", env, v)
	}
	return n
}

// collector counts, by envelope ID, what a consumer group receives.
type collector struct {
	mu   sync.Mutex
	seen map[string]int
}

func (c *collector) handle(_ context.Context, e broker.Envelope) error {
	c.mu.Lock()
	c.seen[e.ID]++
	c.mu.Unlock()
	return nil
}

func (c *collector) counts() (distinct, total int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.seen {
		distinct++
		total += n
	}
	return distinct, total
}

func TestKilledForwarderRabbitMQ(t *testing.T) {
	server := testenv.Need(t, testenv.RabbitMQ)
	ns := "bridgecrash-" + strconv.FormatUint(rand.Uint64(), 36)
	t.Cleanup(func() {
		var topics []string
		for _, cat := range []string{"order", "payment"} {
			for _, typ := range []string{"Placed", "Paid"} {
				topics = append(topics, "events."+cat+"."+typ)
			}
		}
		if err := brokerns.DropRabbitMQ(server, ns, topics, []string{group}); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	killedForwarder(t, setup{Kind: "amqp", URL: server, Namespace: ns}, false)
}

func TestKilledForwarderJetStream(t *testing.T) {
	server := testenv.Need(t, testenv.NATS)
	ns := "bridgecrash-" + strconv.FormatUint(rand.Uint64(), 36)
	t.Cleanup(func() {
		if err := brokerns.DropJetStream(context.Background(), server, ns); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	killedForwarder(t, setup{Kind: "nats", URL: server, Namespace: ns}, true)
}

// killedForwarder appends events while a forwarder process is killed and
// started again, then checks that every event reached the broker, and
// none twice when dedup is set.
func killedForwarder(t *testing.T, s setup, dedup bool) {
	events, kills := size(t, "NOVA_BRIDGECRASH_EVENTS", 3000), size(t, "NOVA_BRIDGECRASH_KILLS", 10)
	ctx := t.Context()
	s.SQLite = filepath.Join(t.TempDir(), "store.db")
	store, err := novasqlite.Open(ctx, novasqlite.Config{Path: s.SQLite, Synchronous: novasqlite.SyncNormal})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	checkpoints := novasqlite.NewCheckpoints(store)

	b, err := openBroker(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	col := &collector{seen: map[string]int{}}
	sub, err := b.(broker.GroupSubscriber).SubscribeGroup(ctx, group, pattern, col.handle)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	// The writer: events in batches of 1 to 5 on 8 streams of two
	// categories, paced so that they span the kills.
	ids := make(map[string]bool, events)
	var idsMu sync.Mutex
	var head nova.Position
	writerDone := make(chan error, 1)
	go func() {
		n := 0
		for n < events {
			k := min(1+rand.IntN(5), events-n)
			batch := make([]nova.EventData, k)
			for i := range batch {
				batch[i] = nova.EventData{ID: nova.NewEventID(), Type: []string{"Placed", "Paid"}[rand.IntN(2)], Data: fmt.Appendf(nil, `{"n":%d}`, n+i)}
			}
			stream := fmt.Sprintf("%s-%d", []string{"order", "payment"}[rand.IntN(2)], rand.IntN(4))
			res, err := store.Append(ctx, stream, nova.Any, batch...)
			if err != nil {
				writerDone <- err
				return
			}
			idsMu.Lock()
			for _, e := range batch {
				ids[e.ID] = true
			}
			head = res.Position
			idsMu.Unlock()
			n += k
			time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
		}
		writerDone <- nil
	}()

	raw, _ := json.Marshal(s)
	env := []string{childEnv + "=" + string(raw)}
	cut := 0
	for round := range kills {
		c := testenv.StartChild(t, env, "ready")
		time.Sleep(time.Duration(100+rand.IntN(400)) * time.Millisecond)
		cp, err := checkpoints.Load(ctx, bridge.DefaultForwarderName)
		if err != nil {
			c.Stop()
			t.Fatal(err)
		}
		idsMu.Lock()
		behind := cp.Less(head)
		idsMu.Unlock()
		c.Kill(t, fmt.Sprintf("round %d: the forwarder", round))
		if behind {
			cut++
		}
	}
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}

	// The last forwarder runs until the checkpoint reaches the head and
	// the group has every event.
	last := testenv.StartChild(t, env, "ready")
	defer last.Stop()
	deadline := time.Now().Add(60 * time.Second)
	for {
		distinct, _ := col.counts()
		cp, err := checkpoints.Load(ctx, bridge.DefaultForwarderName)
		if err != nil {
			t.Fatal(err)
		}
		if cp == head && distinct >= len(ids) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the kills: checkpoint %v of head %v, %d of %d events at the broker; forwarder said: %s",
				cp, head, distinct, len(ids), last.Stderr())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // a repeat in flight arrives by now

	col.mu.Lock()
	defer col.mu.Unlock()
	dups := 0
	for id := range ids {
		switch n := col.seen[id]; {
		case n == 0:
			t.Errorf("event %s never reached the broker", id)
		case n > 1:
			dups += n - 1
		}
	}
	for id := range col.seen {
		if !ids[id] {
			t.Errorf("the broker got %s, which is no event of the store", id)
		}
	}
	t.Logf("%d events, %d kills (%d while the forwarder was behind), %d repeats at the broker", len(ids), kills, cut, dups)
	if dedup && dups > 0 {
		t.Errorf("%d repeats reached the consumer through a broker that drops repeated IDs", dups)
	}
	if cut == 0 {
		t.Errorf("no kill came while the forwarder was behind the log: the test proved nothing")
	}
}
