package novanats_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/broker/brokertest"
	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/novanats"
)

// testBrokerConfig is what the broker tests run with: short backoffs, so
// that redeliveries and dead letters come quickly, and a short AckWait,
// so that a killed member's envelope reaches another soon.
func testBrokerConfig(url, ns string) novanats.BrokerConfig {
	return novanats.BrokerConfig{
		URL:        url,
		Namespace:  ns,
		Storage:    novanats.MemoryStorage,
		MinBackoff: 5 * time.Millisecond,
		MaxBackoff: 20 * time.Millisecond,
		AckWait:    time.Second,
		Timeout:    5 * time.Second,
	}
}

var namespaces atomic.Int64

// newNamespace returns a namespace no other test uses.
func newNamespace(t testing.TB, url string) string {
	t.Helper()
	ns := fmt.Sprintf("nb%d_%d", time.Now().UnixNano()%1e9, namespaces.Add(1))
	cleanNamespace(t, url, ns)
	return ns
}

// cleaned holds the namespaces whose stream is deleted when their test
// ends.
var cleaned sync.Map

// cleanNamespace deletes ns's stream on the server at url when t ends,
// after the brokers opened on it (whose cleanups are registered later
// and run first). Calling it again for ns does nothing.
func cleanNamespace(t testing.TB, url, ns string) {
	t.Helper()
	if _, dup := cleaned.LoadOrStore(ns, true); dup {
		return
	}
	t.Cleanup(func() { deleteStream(t, url, "NOVA_BROKER_"+ns) })
}

// openBroker opens a broker in namespace ns of the server at url, edited
// by edit when it is not nil, and closes it when t ends. It has the shape
// of brokertest's open hooks: func(t, ns) broker.Broker.
func openBroker(t testing.TB, url, ns string, edit func(*novanats.BrokerConfig)) *novanats.Broker {
	t.Helper()
	cleanNamespace(t, url, ns)
	cfg := testBrokerConfig(url, ns)
	if edit != nil {
		edit(&cfg)
	}
	b, err := novanats.NewBroker(context.Background(), cfg)
	if err != nil {
		t.Fatalf("NewBroker: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// outageBroker opens a broker on namespace ns of the server at url
// through a proxy that cuts its connection on demand.
func outageBroker(t testing.TB, url, ns string) (*novanats.Broker, *testenv.Proxy) {
	t.Helper()
	proxy := testenv.NewProxy(t, testenv.HostPort(url))
	cleanNamespace(t, url, ns)
	return openBroker(t, "nats://"+proxy.Addr(), ns, nil), proxy
}

// freshBroker returns a broker in a namespace of its own on url.
func freshBroker(t testing.TB, url string) *novanats.Broker {
	t.Helper()
	return openBroker(t, url, newNamespace(t, url), nil)
}

// brokerServers are the servers the broker tests run against: the
// machine's (nats-server 2.9.10 here) and a private current one.
var brokerServers = []struct {
	name string
	url  func(t *testing.T) string
}{
	{"machine", func(t *testing.T) string { return testenv.Need(t, testenv.NATS) }},
	{"private", func(t *testing.T) string { return startServer(t).url }},
}

// brokerURLEnv passes the server's address to the child processes
// brokertest starts, which run the same test and must reach the same
// server (a private one included) rather than start their own.
const brokerURLEnv = "NOVANATS_TEST_BROKER_URL"

// conformanceURL returns the server of a conformance run: the parent's,
// in a child process. Brokers on a namespace the suite names come from
// openBroker(t, url, ns, nil), and brokers it can cut off from
// outageBroker(t, url, ns).
func conformanceURL(t *testing.T, url func(t *testing.T) string) string {
	if u := os.Getenv(brokerURLEnv); u != "" {
		return u
	}
	u := url(t)
	os.Setenv(brokerURLEnv, u) // read by children only; the test is not parallel
	t.Cleanup(func() { os.Unsetenv(brokerURLEnv) })
	return u
}

// TestBrokerConformance runs broker/brokertest against the machine's
// server and a private current one.
func TestBrokerConformance(t *testing.T) {
	for _, srv := range brokerServers {
		t.Run(srv.name, func(t *testing.T) {
			url := conformanceURL(t, srv.url)
			brokertest.Run(t, func(t *testing.T) broker.Broker {
				return freshBroker(t, url)
			},
				brokertest.WithSettle(200*time.Millisecond),
				brokertest.WithTimeout(20*time.Second),
				brokertest.WithOpen(func(t testing.TB, ns string) broker.Broker { return openBroker(t, url, ns, nil) }),
				brokertest.WithOutage(func(t testing.TB, ns string) (broker.Broker, brokertest.Outage) { return outageBroker(t, url, ns) }),
			)
		})
	}
}

// recorder collects deliveries.
type recorder struct {
	ch chan broker.Envelope
}

func newRecorder() *recorder { return &recorder{ch: make(chan broker.Envelope, 1024)} }

func (r *recorder) handle(ctx context.Context, e broker.Envelope) error {
	select {
	case r.ch <- e:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// receive waits for n deliveries.
func receive(t testing.TB, ch <-chan broker.Envelope, n int, within time.Duration) []broker.Envelope {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	var got []broker.Envelope
	for len(got) < n {
		select {
		case e := <-ch:
			got = append(got, e)
		case <-timer.C:
			t.Fatalf("received %d deliveries in %v, want %d: %v", len(got), within, n, envIDs(got))
		}
	}
	return got
}

// quiet fails t if a delivery arrives within d.
func quiet(t testing.TB, ch <-chan broker.Envelope, d time.Duration) {
	t.Helper()
	select {
	case e := <-ch:
		t.Fatalf("unexpected delivery of %s (attempts %d)", e.ID, e.Attempts)
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

func mustPublish(t testing.TB, b broker.Broker, envs ...broker.Envelope) {
	t.Helper()
	for _, e := range envs {
		if err := b.Publish(context.Background(), e); err != nil {
			t.Fatalf("Publish %s: %v", e.ID, err)
		}
	}
}

func subscribe(t testing.TB, b broker.Broker, pattern string, h broker.Handler) broker.Subscription {
	t.Helper()
	sub, err := b.Subscribe(t.Context(), pattern, h)
	if err != nil {
		t.Fatalf("Subscribe %q: %v", pattern, err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	return sub
}

func join(t testing.TB, b *novanats.Broker, group, pattern string, h broker.Handler) broker.Subscription {
	t.Helper()
	sub, err := b.SubscribeGroup(t.Context(), group, pattern, h)
	if err != nil {
		t.Fatalf("SubscribeGroup %q %q: %v", group, pattern, err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	return sub
}

// TestBrokerGroup: members of a group share its envelopes, each handled
// once; the group keeps what is published while no member runs; a
// rejected envelope comes back with Attempts one higher and is
// dead-lettered after MaxAttempts; a second pattern for the group is
// refused.
func TestBrokerGroup(t *testing.T) {
	t.Parallel()
	for _, srv := range brokerServers {
		t.Run(srv.name, func(t *testing.T) {
			t.Parallel()
			url := srv.url(t)
			ns := newNamespace(t, url)
			b1 := openBroker(t, url, ns, nil)
			b2 := openBroker(t, url, ns, nil) // another process, as far as the server can tell

			rec := newRecorder()
			m1 := join(t, b1, "workers", "jobs.>", rec.handle)
			join(t, b2, "workers", "jobs.>", rec.handle)
			const n = 40
			var want []broker.Envelope
			for i := range n {
				want = append(want, brokertest.Envelope(fmt.Sprintf("j%02d", i), fmt.Sprintf("jobs.%d", i%3)))
			}
			if err := broker.PublishAll(t.Context(), b1, want...); err != nil {
				t.Fatal(err)
			}
			got := receive(t, rec.ch, n, 20*time.Second)
			seen := map[string]bool{}
			for _, e := range got {
				if seen[e.ID] || e.Attempts != 0 {
					t.Fatalf("delivery of %s (attempts %d) twice or redelivered: %v", e.ID, e.Attempts, envIDs(got))
				}
				seen[e.ID] = true
			}
			quiet(t, rec.ch, 300*time.Millisecond)

			// Published while no member runs: kept for the group.
			m1.Unsubscribe()
			b2.Close()
			mustPublish(t, b1, brokertest.Envelope("while-away", "jobs.x"))
			m3 := join(t, b1, "workers", "jobs.>", rec.handle)
			if got := receive(t, rec.ch, 1, 10*time.Second); got[0].ID != "while-away" {
				t.Fatalf("after rejoining: %v, want while-away", envIDs(got))
			}

			// Another pattern for the same group is refused, until the
			// group is deleted.
			if _, err := b1.SubscribeGroup(t.Context(), "workers", "other.>", rec.handle); !errors.Is(err, nova.ErrInvalid) {
				t.Fatalf("SubscribeGroup with another pattern: %v, want nova.ErrInvalid", err)
			}
			m3.Unsubscribe()
			for range 2 { // deleting a deleted group is no error
				if err := b1.DeleteGroup(t.Context(), "workers"); err != nil {
					t.Fatalf("DeleteGroup: %v", err)
				}
			}
			join(t, b1, "workers", "other.>", rec.handle)
			mustPublish(t, b1, brokertest.Envelope("old", "jobs.x"), brokertest.Envelope("new", "other.x"))
			if got := receive(t, rec.ch, 1, 10*time.Second); got[0].ID != "new" {
				t.Fatalf("the group made again received %v, want new", envIDs(got))
			}

			// Group names are ASCII letters, digits, '-' and '_'.
			for _, g := range []string{"", "a.b", "a b", "a>", "é", strings.Repeat("g", 129)} {
				if _, err := b1.SubscribeGroup(t.Context(), g, "jobs.>", rec.handle); !errors.Is(err, nova.ErrInvalid) {
					t.Errorf("SubscribeGroup of group %q: %v, want nova.ErrInvalid", g, err)
				}
			}

			// Rejections: Attempts 0, 1, …, then a dead letter with the
			// last error.
			var mu sync.Mutex
			var attempts []int
			join(t, b1, "failing", "fail.>", func(ctx context.Context, e broker.Envelope) error {
				mu.Lock()
				attempts = append(attempts, e.Attempts)
				mu.Unlock()
				return fmt.Errorf("no %d", e.Attempts)
			})
			mustPublish(t, b1, brokertest.Envelope("f1", "fail.a"))
			dl := pollDLQ(t, b1, "fail.a", 1)
			mu.Lock()
			defer mu.Unlock()
			if fmt.Sprint(attempts) != "[0 1 2 3 4]" {
				t.Fatalf("attempts seen = %v, want [0 1 2 3 4]", attempts)
			}
			if d := dl[0]; d.Envelope.ID != "f1" || d.Envelope.Attempts != 5 || d.Reason != "no 4" || d.Topic != "fail.a" {
				t.Fatalf("dead letter = %+v, want f1 with 5 attempts and reason %q", d, "no 4")
			}
		})
	}
}

// TestBrokerGroupDeleted: a member whose group is deleted on the server
// while it runs makes the group again and receives what is published
// from then on, without a new SubscribeGroup.
func TestBrokerGroupDeleted(t *testing.T) {
	t.Parallel()
	url := testenv.Need(t, testenv.NATS)
	b := freshBroker(t, url)
	rec := newRecorder()
	join(t, b, "phoenix", "ph.>", rec.handle)
	if err := b.DeleteGroup(t.Context(), "phoenix"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; ; i++ {
		mustPublish(t, b, brokertest.Envelope(fmt.Sprintf("p%d", i), "ph.a"))
		select {
		case <-rec.ch:
			return
		case <-time.After(250 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the member received nothing within a minute of its group's deletion")
		}
	}
}

// TestBrokerSubscriptionConsumerLost: a subscription whose consumer is
// deleted on the server makes it again from the message after the last
// one it settled, so what was published meanwhile still arrives, once.
func TestBrokerSubscriptionConsumerLost(t *testing.T) {
	t.Parallel()
	url := testenv.Need(t, testenv.NATS)
	ns := newNamespace(t, url)
	b := openBroker(t, url, ns, nil)
	rec := newRecorder()
	subscribe(t, b, "lost.>", rec.handle)
	mustPublish(t, b, brokertest.Envelope("l1", "lost.a"))
	receive(t, rec.ch, 1, 10*time.Second)

	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	st, err := js.Stream(t.Context(), "NOVA_BROKER_"+ns)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for name := range st.ConsumerNames(t.Context()).Name() {
		names = append(names, name)
	}
	if len(names) != 1 || !strings.HasPrefix(names[0], "sub_") {
		t.Fatalf("consumers %v, want the subscription's", names)
	}
	if err := st.DeleteConsumer(t.Context(), names[0]); err != nil {
		t.Fatal(err)
	}
	mustPublish(t, b, brokertest.Envelope("l2", "lost.a"), brokertest.Envelope("l3", "lost.b"))
	got := receive(t, rec.ch, 2, 40*time.Second)
	if got[0].ID != "l2" || got[1].ID != "l3" {
		t.Fatalf("after the consumer was lost: %v, want l2 l3", envIDs(got))
	}
	quiet(t, rec.ch, 300*time.Millisecond)
}

// pollDLQ polls topic's dead letters until n have come.
func pollDLQ(t testing.TB, b broker.Broker, topic string, n int) []broker.DeadLetter {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var got []broker.DeadLetter
	for len(got) < n {
		dl, err := b.PollDLQ(context.Background(), topic, 100)
		if err != nil {
			t.Fatalf("PollDLQ %s: %v", topic, err)
		}
		got = append(got, dl...)
		if time.Now().After(deadline) {
			t.Fatalf("PollDLQ %s: %d dead letters, want %d", topic, len(got), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return got
}

// The child process of TestBrokerGroupKill: a group member that reports
// each envelope it receives on stdout, acknowledges all but "hold", and
// sits on "hold" until it is killed.
const brokerChildEnv = "NOVANATS_BROKER_CHILD"

type childSpec struct {
	URL, Namespace, Group, Pattern string
	AckWait                        time.Duration
}

func brokerChild() int {
	var spec childSpec
	if err := json.Unmarshal([]byte(os.Getenv(brokerChildEnv)), &spec); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	cfg := testBrokerConfig(spec.URL, spec.Namespace)
	cfg.AckWait = spec.AckWait
	b, err := novanats.NewBroker(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var out sync.Mutex
	_, err = b.SubscribeGroup(context.Background(), spec.Group, spec.Pattern, func(ctx context.Context, e broker.Envelope) error {
		out.Lock()
		fmt.Printf("got %s %d\n", e.ID, e.Attempts)
		out.Unlock()
		if e.ID == "hold" {
			<-ctx.Done() // until killed
			return ctx.Err()
		}
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Println("ready")
	select {}
}

// TestBrokerGroupKill: a member killed with SIGKILL while it holds an
// envelope loses nothing it acknowledged, and the envelope it held goes to
// another member after AckWait, with Attempts 1 (the server's delivery
// count, which survived the member).
func TestBrokerGroupKill(t *testing.T) {
	t.Parallel()
	for _, srv := range brokerServers {
		t.Run(srv.name, func(t *testing.T) {
			t.Parallel()
			url := srv.url(t)
			ns := newNamespace(t, url)
			spec, _ := json.Marshal(childSpec{URL: url, Namespace: ns, Group: "kill-group", Pattern: "kill.>", AckWait: time.Second})
			child := testenv.StartChild(t, []string{brokerChildEnv + "=" + string(spec)}, "ready")
			defer child.Stop()

			b := openBroker(t, url, ns, func(c *novanats.BrokerConfig) { c.AckWait = time.Second })
			mustPublish(t, b, brokertest.Envelope("a1", "kill.a"), brokertest.Envelope("a2", "kill.b"), brokertest.Envelope("hold", "kill.a"))
			want := []string{"got a1 0", "got a2 0", "got hold 0"}
			for _, w := range want {
				select {
				case line := <-child.Lines():
					if line != w {
						t.Fatalf("child said %q, want %q; stderr: %s", line, w, child.Stderr())
					}
				case <-time.After(20 * time.Second):
					t.Fatalf("child did not say %q; stderr: %s", w, child.Stderr())
				}
			}
			child.Kill(t, "group member")

			rec := newRecorder()
			join(t, b, "kill-group", "kill.>", rec.handle)
			got := receive(t, rec.ch, 1, 20*time.Second)
			if got[0].ID != "hold" || got[0].Attempts != 1 {
				t.Fatalf("after the kill the group delivered %s with attempts %d, want hold with 1", got[0].ID, got[0].Attempts)
			}
			quiet(t, rec.ch, 1500*time.Millisecond) // a1 and a2 were acknowledged
		})
	}
}

// TestBrokerReconnect: with the connection cut (through a proxy), a
// publish fails and says so; once it is back, the subscription and the
// group member receive again without subscribing anew, and Poll works.
func TestBrokerReconnect(t *testing.T) {
	t.Parallel()
	for _, srv := range brokerServers {
		t.Run(srv.name, func(t *testing.T) {
			t.Parallel()
			url := srv.url(t)
			b, proxy := outageBroker(t, url, newNamespace(t, url))
			subRec, groupRec := newRecorder(), newRecorder()
			subscribe(t, b, "rc.>", subRec.handle)
			join(t, b, "rc", "rc.>", groupRec.handle)

			mustPublish(t, b, brokertest.Envelope("before", "rc.a"))
			receive(t, subRec.ch, 1, 10*time.Second)
			receive(t, groupRec.ch, 1, 10*time.Second)

			proxy.Cut()
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
			err := b.Publish(ctx, brokertest.Envelope("during", "rc.a"))
			cancel()
			if err == nil {
				t.Fatalf("Publish with the connection cut succeeded")
			}
			if !nova.IsTransient(err) && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Publish with the connection cut: %v, want a transient error", err)
			}
			// Longer than a pull's heartbeat interval: the pulls fail and
			// are retried meanwhile.
			time.Sleep(2 * time.Second)
			proxy.Restore()

			deadline := time.Now().Add(30 * time.Second)
			for {
				err := b.Publish(t.Context(), brokertest.Envelope("after", "rc.a"))
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("Publish after the connection is back: %v", err)
				}
				time.Sleep(100 * time.Millisecond)
			}
			// An acknowledgement the cut lost makes the server deliver
			// "before" again: delivery is at least once.
			for name, rec := range map[string]*recorder{"subscription": subRec, "group": groupRec} {
				var got []broker.Envelope
				for len(got) == 0 || got[len(got)-1].ID != "after" {
					got = append(got, receive(t, rec.ch, 1, 30*time.Second)...)
					if id := got[len(got)-1].ID; id != "before" && id != "during" && id != "after" {
						t.Fatalf("%s received %v after the outage, want after", name, envIDs(got))
					}
				}
			}
			polled, err := b.Poll(t.Context(), "rc.a", 10)
			if err != nil || len(polled) == 0 || polled[0].ID != "before" || polled[len(polled)-1].ID != "after" {
				t.Fatalf("Poll after the outage = %v, %v; want before … after", envIDs(polled), err)
			}
		})
	}
}

// payloadOf returns a JSON string payload of exactly n bytes.
func payloadOf(n int) json.RawMessage {
	return json.RawMessage(`"` + strings.Repeat("x", n-2) + `"`)
}

// TestBrokerLargePayload: a payload of 1,000,000 bytes fits the default
// max_payload (1 MiB) as the message body and goes through Publish, Poll,
// Subscribe and the DLQ; one larger than the server's max_payload is
// refused with nova.ErrInvalid, naming max_payload, before anything is
// sent. Both servers run with the default max_payload, 1 MiB.
func TestBrokerLargePayload(t *testing.T) {
	t.Parallel()
	servers := []struct {
		name string
		url  func(t *testing.T) string
	}{
		brokerServers[0],
		{"private", func(t *testing.T) string {
			return startServerWith(t, func(o *serverOptions) { o.MaxPayload = 1 << 20 }).url
		}},
	}
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			t.Parallel()
			url := srv.url(t)
			b := freshBroker(t, url)
			rec := newRecorder()
			subscribe(t, b, "big.>", rec.handle)
			e := brokertest.Envelope("big", "big.one")
			e.Payload = payloadOf(1_000_000)
			mustPublish(t, b, e)
			if got := receive(t, rec.ch, 1, 10*time.Second); len(got[0].Payload) != 1_000_000 {
				t.Fatalf("subscription received %d bytes of payload", len(got[0].Payload))
			}
			polled, err := b.Poll(t.Context(), "big.one", 1)
			if err != nil || len(polled) != 1 || len(polled[0].Payload) != 1_000_000 {
				t.Fatalf("Poll = %d envelopes, %v; want the 1,000,000-byte one", len(polled), err)
			}
			if err := b.PublishDLQ(t.Context(), "big.dlq", e, "too big to handle"); err != nil {
				t.Fatal(err)
			}
			if dl := pollDLQ(t, b, "big.dlq", 1); len(dl[0].Envelope.Payload) != 1_000_000 {
				t.Fatalf("dead letter has %d bytes of payload", len(dl[0].Envelope.Payload))
			}

			over := brokertest.Envelope("over", "big.one")
			over.Payload = payloadOf(broker.MaxPayloadLen) // valid for Nova, over 1 MiB
			for name, call := range map[string]func() error{
				"Publish":      func() error { return b.Publish(t.Context(), over) },
				"PublishBatch": func() error { return broker.PublishAll(t.Context(), b, over, over) },
				"PublishDLQ":   func() error { return b.PublishDLQ(t.Context(), "big.dlq", over, "why") },
			} {
				if err := call(); !errors.Is(err, nova.ErrInvalid) || !strings.Contains(err.Error(), "max_payload") {
					t.Errorf("%s of %d bytes: %v, want nova.ErrInvalid naming max_payload", name, len(over.Payload), err)
				}
			}
			quiet(t, rec.ch, 300*time.Millisecond)
			if got, err := b.Poll(t.Context(), "big.one", 10); err != nil || len(got) != 0 {
				t.Fatalf("Poll after refused publishes = %v, %v; want none", envIDs(got), err)
			}
		})
	}
}

// TestBrokerPayloadLimitFollowsServer: the limit is the server's
// max_payload, read when connecting.
func TestBrokerPayloadLimitFollowsServer(t *testing.T) {
	t.Parallel()
	srv := startServerWith(t, func(o *serverOptions) { o.MaxPayload = 64 << 10 })
	b := freshBroker(t, srv.url)
	e := brokertest.Envelope("p", "limit.a")
	e.Payload = payloadOf(60 << 10)
	mustPublish(t, b, e)
	e.ID, e.Payload = "q", payloadOf(70<<10)
	if err := b.Publish(t.Context(), e); !errors.Is(err, nova.ErrInvalid) || !strings.Contains(err.Error(), fmt.Sprint(64<<10)) {
		t.Fatalf("Publish over a 64 KiB max_payload: %v, want nova.ErrInvalid naming 65536", err)
	}
}

// TestBrokerDeadLetters: the dead letter of an envelope a subscription
// keeps rejecting carries the attempts and the last error; a message on
// a topic's subject that holds no envelope is dead-lettered with a reason
// by Subscribe and by Poll, never handed over, and is not redelivered.
func TestBrokerDeadLetters(t *testing.T) {
	t.Parallel()
	for _, srv := range brokerServers {
		t.Run(srv.name, func(t *testing.T) {
			t.Parallel()
			url := srv.url(t)
			ns := newNamespace(t, url)
			b := openBroker(t, url, ns, func(c *novanats.BrokerConfig) { c.MaxAttempts = 3 })
			var calls atomic.Int64
			rec := newRecorder()
			subscribe(t, b, "dl.>", func(ctx context.Context, e broker.Envelope) error {
				calls.Add(1)
				if e.ID == "bad" {
					return fmt.Errorf("attempt %d failed", e.Attempts)
				}
				return rec.handle(ctx, e)
			})
			bad := brokertest.Envelope("bad", "dl.a")
			bad.Headers = map[string]string{"line\nbreak": " ünïcode "}
			mustPublish(t, b, bad)
			dl := pollDLQ(t, b, "dl.a", 1)
			d := dl[0]
			if d.Envelope.Attempts != 3 || d.Reason != "attempt 2 failed" || d.Topic != "dl.a" || d.Envelope.Topic != "dl.a" || d.At.IsZero() {
				t.Fatalf("dead letter = %+v, want 3 attempts, reason %q", d, "attempt 2 failed")
			}
			if d.Envelope.Headers["line\nbreak"] != " ünïcode " || d.Envelope.Key != bad.Key || d.Envelope.EventType != bad.EventType {
				t.Fatalf("dead letter envelope = %+v, want %+v", d.Envelope, bad)
			}

			// A message that holds no envelope.
			nc, err := nats.Connect(url)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			js, _ := jetstream.New(nc)
			for _, topic := range []string{"dl.raw", "dlpoll.raw"} {
				if _, err := js.PublishMsg(t.Context(), &nats.Msg{Subject: ns + ".t." + topic, Data: []byte("not json"), Header: nats.Header{"X": {"y"}}}); err != nil {
					t.Fatal(err)
				}
			}
			mustPublish(t, b, brokertest.Envelope("good", "dl.b"))
			if got := receive(t, rec.ch, 1, 10*time.Second); got[0].ID != "good" {
				t.Fatalf("received %v, want good", envIDs(got))
			}
			raw := pollDLQ(t, b, "dl.raw", 1)[0]
			if !strings.Contains(raw.Reason, "no valid envelope") || string(raw.Envelope.Payload) != `"not json"` || raw.Envelope.Topic != "dl.raw" {
				t.Fatalf("dead letter of a raw message = %+v", raw)
			}
			if polled, err := b.Poll(t.Context(), "dlpoll.raw", 10); err != nil || len(polled) != 0 {
				t.Fatalf("Poll of a raw message = %v, %v; want none", envIDs(polled), err)
			}
			if raw := pollDLQ(t, b, "dlpoll.raw", 1)[0]; !strings.Contains(raw.Reason, "no valid envelope") {
				t.Fatalf("Poll's dead letter of a raw message = %+v", raw)
			}
			before := calls.Load()
			quiet(t, rec.ch, 500*time.Millisecond)
			if after := calls.Load(); after != before {
				t.Fatalf("the handler was called %d more times after everything settled", after-before)
			}
		})
	}
}

// TestBrokerPollLeavesNothing: polling a topic never published to creates
// no consumer on the server; the first Poll after a publish creates one
// and sees what was published before it; a Poll consumer deleted on the
// server is made again.
func TestBrokerPollLeavesNothing(t *testing.T) {
	t.Parallel()
	url := testenv.Need(t, testenv.NATS)
	ns := newNamespace(t, url)
	b := openBroker(t, url, ns, nil)
	if got, err := b.Poll(t.Context(), "empty.topic", 10); err != nil || len(got) != 0 {
		t.Fatalf("Poll = %v, %v", envIDs(got), err)
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	st, err := js.Stream(t.Context(), "NOVA_BROKER_"+ns)
	if err != nil {
		t.Fatal(err)
	}
	countConsumers := func() int {
		n := 0
		for range st.ConsumerNames(t.Context()).Name() {
			n++
		}
		return n
	}
	if n := countConsumers(); n != 0 {
		t.Fatalf("%d consumers after polling an empty topic, want 0", n)
	}
	mustPublish(t, b, brokertest.Envelope("x", "empty.topic"))
	if got, err := b.Poll(t.Context(), "empty.topic", 10); err != nil || len(got) != 1 {
		t.Fatalf("Poll = %v, %v; want x", envIDs(got), err)
	}
	if n := countConsumers(); n != 1 {
		t.Fatalf("%d consumers after polling a topic, want 1", n)
	}

	// A consumer deleted behind the broker's back is made again, from
	// the oldest envelope the stream holds.
	if err := st.DeleteConsumer(t.Context(), novanats.ConsumerName("poll", "empty.topic")); err != nil {
		t.Fatal(err)
	}
	mustPublish(t, b, brokertest.Envelope("y", "empty.topic"))
	if got, err := b.Poll(t.Context(), "empty.topic", 10); err != nil || len(got) != 2 || got[0].ID != "x" || got[1].ID != "y" {
		t.Fatalf("Poll after the consumer was deleted = %v, %v; want x y", envIDs(got), err)
	}
}

// TestBrokerConfigInvalid: bad configuration names the field and matches
// nova.ErrInvalid, before any connection.
func TestBrokerConfigInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		cfg   novanats.BrokerConfig
		field string
	}{
		{"no URL", novanats.BrokerConfig{}, "BrokerConfig.URL"},
		{"bad URL", novanats.BrokerConfig{URL: "http://x:1"}, "BrokerConfig.URL"},
		{"dotted namespace", novanats.BrokerConfig{URL: "nats://x:1", Namespace: "a.b"}, "BrokerConfig.Namespace"},
		{"long namespace", novanats.BrokerConfig{URL: "nats://x:1", Namespace: strings.Repeat("n", 33)}, "BrokerConfig.Namespace"},
		{"negative attempts", novanats.BrokerConfig{URL: "nats://x:1", MaxAttempts: -1}, "BrokerConfig.MaxAttempts"},
		{"backoffs crossed", novanats.BrokerConfig{URL: "nats://x:1", MinBackoff: time.Second, MaxBackoff: time.Millisecond}, "BrokerConfig.MaxBackoff"},
		{"short ack wait", novanats.BrokerConfig{URL: "nats://x:1", AckWait: time.Millisecond}, "BrokerConfig.AckWait"},
		{"age below window", novanats.BrokerConfig{URL: "nats://x:1", MaxAge: time.Second}, "BrokerConfig.MaxAge"},
		{"storage", novanats.BrokerConfig{URL: "nats://x:1", Storage: 7}, "BrokerConfig.Storage"},
	}
	for _, tt := range tests {
		_, err := novanats.NewBroker(t.Context(), tt.cfg)
		var ie *nova.InvalidError
		if !errors.As(err, &ie) || ie.Field != tt.field {
			t.Errorf("%s: %v, want an InvalidError naming %s", tt.name, err, tt.field)
		}
	}
}

// TestConsumerName: names are valid for JetStream and distinct for
// distinct keys, long keys included.
func TestConsumerName(t *testing.T) {
	t.Parallel()
	keys := []string{"a", "A", "a.b", "a_2eb", "a b", "ä", "_", "-", "x-y", strings.Repeat("z", 66), strings.Repeat("Z", 66), strings.Repeat("q", 300), strings.Repeat("q", 301)}
	seen := map[string]string{}
	for _, k := range keys {
		n := novanats.ConsumerName("group", k)
		if strings.ContainsAny(n, ".*> /\\\t\r\n") || len(n) > 255 {
			t.Errorf("ConsumerName(%q) = %q: not a valid name", k, n)
		}
		if prev, ok := seen[n]; ok {
			t.Errorf("ConsumerName(%q) = ConsumerName(%q) = %q", k, prev, n)
		}
		seen[n] = k
	}
	if n := novanats.ConsumerName("group", "billing-workers"); n != "group_billing-workers" {
		t.Errorf("ConsumerName of a plain name = %q, want it kept readable", n)
	}
}
