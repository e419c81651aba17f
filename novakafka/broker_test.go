package novakafka_test

import (
	"testing"
	"time"

	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/broker/brokertest"
)

func TestConformance(t *testing.T) {
	brokertest.Run(t, func(t *testing.T) broker.Broker {
		return open(t, namespace())
	}, brokertest.WithTimeout(30*time.Second), brokertest.WithSettle(300*time.Millisecond),
		brokertest.WithOpen(open),
		brokertest.WithOutage(func(t testing.TB, ns string) (broker.Broker, brokertest.Outage) { return outage(t, ns) }))
}
