package brokertest_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/broker/brokertest"
	"github.com/nova-go/nova/internal/testenv"
)

// remoteAddrEnv holds the address of the test's server, for the child
// processes the suite starts: they connect to their parent's server.
const remoteAddrEnv = "NOVA_BROKERTEST_REMOTE_ADDR"

// TestRemote runs the suite on remoteBroker, a broker.Memory served over
// TCP: with WithOpen, whose brokers share a namespace across processes,
// and WithOutage, through a proxy the suite cuts. It is how the suite's
// cross-process and outage cases, and its child process, are exercised
// without a broker server.
func TestRemote(t *testing.T) {
	addr, child := lookupEnv(remoteAddrEnv)
	if !child {
		addr = startServer(t).addr()
		t.Setenv(remoteAddrEnv, addr)
	}
	open := func(t testing.TB, namespace string) broker.Broker { return dialRemote(t, addr, namespace) }
	brokertest.Run(t, func(t *testing.T) broker.Broker { return open(t, rand.Text()) },
		brokertest.WithOpen(open),
		brokertest.WithOutage(func(t testing.TB, namespace string) (broker.Broker, brokertest.Outage) {
			p := testenv.NewProxy(t, addr)
			return dialRemote(t, p.Addr(), namespace), p
		}),
		brokertest.WithTimeout(20*time.Second),
	)
}

func lookupEnv(name string) (string, bool) {
	v, ok := os.LookupEnv(name)
	return v, ok && v != ""
}

// TestOrdered runs the suite on ordered, a broker that keeps order per
// key and has no consumer groups: the KeyOrder case runs, and the group
// cases skip.
func TestOrdered(t *testing.T) {
	brokertest.Run(t, func(t *testing.T) broker.Broker {
		m, err := broker.NewMemory(broker.MemoryConfig{MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return ordered{Broker: m, limit: 3}
	})
}

// ordered wraps a broker.Memory that dead-letters on the first rejection
// and retries in its subscriptions' handlers instead, up to limit times,
// before the next envelope: a redelivery is never overtaken, so order per
// key holds. It hides Memory's consumer groups.
type ordered struct {
	broker.Broker
	limit int
}

func (o ordered) Guarantees() broker.Guarantees {
	return broker.Guarantees{Dedup: true, KeyOrder: true}
}

func (o ordered) Subscribe(ctx context.Context, pattern string, h broker.Handler) (broker.Subscription, error) {
	return o.Broker.Subscribe(ctx, pattern, func(ctx context.Context, e broker.Envelope) error {
		var err error
		for attempt := range o.limit {
			e.Attempts = attempt
			if err = callHandler(ctx, h, e.Clone()); err == nil || ctx.Err() != nil {
				return err
			}
		}
		e.Attempts = o.limit
		reason := err.Error()
		if reason == "" {
			reason = "rejected"
		}
		return o.Broker.PublishDLQ(context.WithoutCancel(ctx), e.Topic, e, reason)
	})
}

// callHandler calls h, turning a panic into an error.
func callHandler(ctx context.Context, h broker.Handler, e broker.Envelope) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("ordered: handler panicked: %v", p)
		}
	}()
	return h(ctx, e)
}
