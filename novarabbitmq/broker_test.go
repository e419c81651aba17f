package novarabbitmq

import (
	"testing"
	"time"

	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/broker/brokertest"
)

func TestConformance(t *testing.T) {
	brokertest.Run(t, func(t *testing.T) broker.Broker { return newBroker(t) },
		brokertest.WithSettle(300*time.Millisecond), brokertest.WithTimeout(20*time.Second),
		brokertest.WithOpen(openHook),
		brokertest.WithOutage(func(t testing.TB, ns string) (broker.Broker, brokertest.Outage) { return outageHook(t, ns) }))
}
