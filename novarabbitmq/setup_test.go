package novarabbitmq

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/internal/testenv"
)

// serverURL returns the test server's URL, or skips t (fails it under
// NOVA_REQUIRE_SERVICES) when nothing listens there.
func serverURL(t testing.TB) string {
	t.Helper()
	return testenv.Need(t, testenv.RabbitMQ)
}

// opened lists, by namespace, the brokers a test opened, so that the
// namespace's cleanup deletes every durable queue any of them declared.
var opened = struct {
	sync.Mutex
	m map[string][]*Broker
}{m: make(map[string][]*Broker)}

// newNamespace returns a fresh namespace on the test server whose
// exchanges and durable queues are deleted when t ends, after the
// brokers opened in it are closed.
func newNamespace(t testing.TB) string {
	t.Helper()
	u := serverURL(t)
	ns := "novatest-" + strings.ToLower(rand.Text()[:12])
	t.Cleanup(func() { deleteNamespace(t, u, ns) })
	return ns
}

// deleteNamespace deletes what the namespace's brokers declared:
// durable queues by name, and the three exchanges. Queues of Subscribe
// subscriptions are deleted by their brokers, or expire.
func deleteNamespace(t testing.TB, serverURL, ns string, extraQueues ...string) {
	opened.Lock()
	brokers := opened.m[ns]
	delete(opened.m, ns)
	opened.Unlock()
	queues := slices.Clone(extraQueues)
	for _, b := range brokers {
		queues = append(queues, b.durableQueues()...)
	}
	slices.Sort(queues)
	queues = slices.Compact(queues)
	conn, err := amqp.Dial(serverURL)
	if err != nil {
		t.Errorf("cleanup of namespace %s: %v", ns, err)
		return
	}
	defer conn.Close()
	n := names{ns}
	var ch *amqp.Channel
	do := func(f func(*amqp.Channel) error) {
		if ch == nil || ch.IsClosed() {
			if ch, err = conn.Channel(); err != nil {
				t.Errorf("cleanup of namespace %s: %v", ns, err)
				return
			}
		}
		if err := f(ch); err != nil && !isNotFound(err) {
			t.Errorf("cleanup of namespace %s: %v", ns, err)
		}
	}
	for _, q := range queues {
		do(func(ch *amqp.Channel) error { _, err := ch.QueueDelete(q, false, false, false); return err })
	}
	for _, x := range n.exchanges() {
		do(func(ch *amqp.Channel) error { return ch.ExchangeDelete(x, false, false) })
	}
}

// testConfig is the configuration of test brokers: short backoffs.
func testConfig(serverURL, ns string) Config {
	return Config{
		URL:                 serverURL,
		Namespace:           ns,
		MinBackoff:          time.Millisecond,
		MaxBackoff:          20 * time.Millisecond,
		ReconnectMinBackoff: 10 * time.Millisecond,
		ReconnectMaxBackoff: 200 * time.Millisecond,
	}
}

// openBroker opens a broker in namespace ns (from newNamespace), closed
// when t ends; f may change its configuration first. It has the shape
// brokertest's open hook takes.
func openBroker(t testing.TB, ns string, f ...func(*Config)) *Broker {
	t.Helper()
	return openURL(t, serverURL(t), ns, f...)
}

func openURL(t testing.TB, u, ns string, f ...func(*Config)) *Broker {
	t.Helper()
	cfg := testConfig(u, ns)
	for _, f := range f {
		f(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := New(ctx, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	opened.Lock()
	opened.m[ns] = append(opened.m[ns], b)
	opened.Unlock()
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

// openThroughProxy opens a broker in ns whose connection goes through a
// proxy the test can cut (testenv.Proxy: Cut and Restore), the shape
// brokertest's outage hook takes.
func openThroughProxy(t testing.TB, ns string, f ...func(*Config)) (*Broker, *testenv.Proxy) {
	t.Helper()
	u := serverURL(t)
	p := testenv.NewProxy(t, testenv.HostPort(u))
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	pu.Host = p.Addr()
	return openURL(t, pu.String(), ns, f...), p
}

// newBroker is brokertest's constructor: a broker in a namespace of its
// own.
func newBroker(t *testing.T) *Broker {
	t.Helper()
	return openBroker(t, newNamespace(t))
}

// recorder is a handler that sends each delivery on a channel.
type recorder chan broker.Envelope

func newRecorder() recorder { return make(recorder, 1024) }

func (r recorder) handle(ctx context.Context, e broker.Envelope) error {
	select {
	case r <- e:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// receive waits for n deliveries.
func (r recorder) receive(t testing.TB, n int) []broker.Envelope {
	t.Helper()
	timer := time.NewTimer(20 * time.Second)
	defer timer.Stop()
	var got []broker.Envelope
	for len(got) < n {
		select {
		case e := <-r:
			got = append(got, e)
		case <-timer.C:
			t.Fatalf("received %d envelopes, want %d: %v", len(got), n, envIDs(got))
		}
	}
	return got
}

// quiet fails t when a delivery arrives within d.
func (r recorder) quiet(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case e := <-r:
		t.Fatalf("unexpected delivery of %s on %s (attempts %d)", e.ID, e.Topic, e.Attempts)
	case <-time.After(d):
	}
}

func envIDs(envs []broker.Envelope) []string {
	out := make([]string, len(envs))
	for i, e := range envs {
		out[i] = e.ID
	}
	return out
}

// envelope returns a valid envelope with payload {"id": id}.
func envelope(id, topic string) broker.Envelope {
	return broker.Envelope{
		ID:        id,
		Topic:     topic,
		EventType: "test.event",
		Payload:   json.RawMessage(fmt.Sprintf(`{"id":%q}`, id)),
		Headers:   map[string]string{"h": id},
		Timestamp: time.UnixMilli(1_700_000_000_123),
	}
}

func mustPublish(t testing.TB, ctx context.Context, b broker.Broker, envs ...broker.Envelope) {
	t.Helper()
	for _, e := range envs {
		if err := b.Publish(ctx, e); err != nil {
			t.Fatalf("Publish %s to %s: %v", e.ID, e.Topic, err)
		}
	}
}

// subscribed returns a function that fails t on a subscribe error and
// otherwise unsubscribes when t ends:
// subscribed(t)(b.Subscribe(ctx, pattern, h)).
func subscribed(t testing.TB) func(broker.Subscription, error) broker.Subscription {
	return func(sub broker.Subscription, err error) broker.Subscription {
		t.Helper()
		if err != nil {
			t.Fatalf("subscribe: %v", err)
		}
		t.Cleanup(func() { sub.Unsubscribe() })
		return sub
	}
}

// pollDLQ polls topic's dead letters until n have come.
func pollDLQ(t testing.TB, ctx context.Context, b broker.Broker, topic string, n int) []broker.DeadLetter {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var got []broker.DeadLetter
	for {
		dl, err := b.PollDLQ(ctx, topic, 100)
		if err != nil {
			t.Fatalf("PollDLQ %s: %v", topic, err)
		}
		got = append(got, dl...)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("PollDLQ %s: %d dead letters, want %d", topic, len(got), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testCtx returns a context that ends with t or after 30 seconds.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// rawConn returns a plain amqp091 connection to the test server, closed
// when t ends.
func rawConn(t testing.TB) *amqp.Connection {
	t.Helper()
	conn, err := amqp.Dial(serverURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// cleaned lists the namespaces whose deletion a test has registered.
var cleaned sync.Map

// openHook opens a broker in namespace ns, which need not come from
// newNamespace: the first open of ns registers its deletion with t. Its
// shape is the one brokertest's open hook takes.
func openHook(t testing.TB, ns string) broker.Broker {
	t.Helper()
	claimNamespace(t, ns)
	return openBroker(t, ns)
}

// outageHook opens a broker in ns through a proxy, and returns the proxy
// to cut its connection with (Cut, Restore): the shape of brokertest's
// outage hook.
func outageHook(t testing.TB, ns string) (broker.Broker, *testenv.Proxy) {
	t.Helper()
	claimNamespace(t, ns)
	return openThroughProxy(t, ns)
}

// claimNamespace registers the deletion of ns with t, unless a test did
// already.
func claimNamespace(t testing.TB, ns string) {
	u := serverURL(t)
	if _, loaded := cleaned.LoadOrStore(ns, true); !loaded {
		t.Cleanup(func() {
			deleteNamespace(t, u, ns)
			cleaned.Delete(ns)
		})
	}
}
