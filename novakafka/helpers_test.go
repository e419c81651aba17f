package novakafka_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/novakafka"
)

// newCluster starts an in-process cluster of three brokers whose groups
// accept the short session timeouts the tests use.
func newCluster(opts ...kfake.Opt) (*kfake.Cluster, error) {
	return kfake.NewCluster(append([]kfake.Opt{
		kfake.NumBrokers(3),
		kfake.GroupMinSessionTimeout(100 * time.Millisecond),
	}, opts...)...)
}

// namespace returns a namespace no other test uses.
func namespace() string {
	var b [6]byte
	rand.Read(b[:])
	return "t-" + hex.EncodeToString(b[:])
}

// testConfig is the configuration tests start from: short backoffs and a
// session timeout that lets a killed member's partitions move within
// seconds.
func testConfig(seeds []string, ns string) novakafka.Config {
	return novakafka.Config{
		Seeds:          seeds,
		Namespace:      ns,
		MinBackoff:     5 * time.Millisecond,
		MaxBackoff:     50 * time.Millisecond,
		SessionTimeout: 3 * time.Second,
		CommitInterval: 100 * time.Millisecond,
	}
}

// open opens a broker on the shared cluster in namespace ns, closed and
// its namespace deleted when the test ends. Two opens of one namespace
// share its topics and groups. It has the shape of brokertest's WithOpen.
func open(t testing.TB, ns string) broker.Broker {
	return openConfig(t, testConfig(seeds(), ns))
}

// openConfig opens a broker with cfg and registers its Close and the
// deletion of its namespace.
func openConfig(t testing.TB, cfg novakafka.Config) *novakafka.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := novakafka.New(ctx, cfg)
	if err != nil {
		t.Fatalf("novakafka.New: %v", err)
	}
	t.Cleanup(func() {
		b.Close()
		dropNamespace(t, cfg.Seeds, cfg.Namespace)
	})
	return b
}

// dropNamespace deletes the topics and groups of namespace ns.
func dropNamespace(t testing.TB, seeds []string, ns string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Logf("drop namespace %s: %v", ns, err)
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := adm.DeleteTopics(ctx, ns+".events", ns+".dlq"); err != nil {
		t.Logf("drop namespace %s: delete topics: %v", ns, err)
	}
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		return
	}
	var mine []string
	for _, g := range groups.Groups() {
		if strings.HasPrefix(g, ns+".") {
			mine = append(mine, g)
		}
	}
	if len(mine) > 0 {
		adm.DeleteGroups(ctx, mine...)
	}
}

// proxiedListener is a listener that reports another address: the
// cluster advertises the proxy in front of it, so every connection of a
// client goes through the proxy.
type proxiedListener struct {
	net.Listener
	addr net.Addr
}

func (l proxiedListener) Addr() net.Addr { return l.addr }

// outage starts a one-broker cluster of its own behind a testenv.Proxy
// and opens a broker on it in namespace ns. It has the shape of
// brokertest's WithOutage: the proxy's Cut and Restore drop and restore
// every connection of the broker.
func outage(t testing.TB, ns string) (*novakafka.Broker, *testenv.Proxy) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewProxy(t, ln.Addr().String())
	paddr, err := net.ResolveTCPAddr("tcp", proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c, err := newCluster(kfake.NumBrokers(1), kfake.ListenFn(func(string, string) (net.Listener, error) {
		return proxiedListener{ln, paddr}, nil
	}))
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg := testConfig([]string{proxy.Addr()}, ns)
	return openConfig(t, cfg), proxy
}
