package novakafka_test

import (
	"testing"
	"time"

	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/broker/brokertest"
)

// TestConformance runs broker/brokertest on the shared in-process
// cluster; its GroupKill case gets namespaces of four partitions, so that
// the group's two members (one in a child process) each own some.
func TestConformance(t *testing.T) {
	brokertest.Run(t, func(t *testing.T) broker.Broker {
		return open(t, namespace())
	}, brokertest.WithTimeout(30*time.Second), brokertest.WithSettle(300*time.Millisecond),
		brokertest.WithOpen(open),
		brokertest.WithOpenSpread(func(t testing.TB, ns string) broker.Broker {
			cfg := testConfig(seeds(), ns)
			cfg.Partitions = 4
			return openConfig(t, cfg)
		}),
		brokertest.WithOutage(func(t testing.TB, ns string) (broker.Broker, brokertest.Outage) { return outage(t, ns) }))
}
