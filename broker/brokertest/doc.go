// Package brokertest is the conformance suite every [broker.Broker]
// passes: the in-memory broker today, the NATS JetStream and RabbitMQ
// adapters when they come. A backend's test calls [Run] with a
// constructor of fresh, empty brokers:
//
//	func TestConformance(t *testing.T) {
//		brokertest.Run(t, func(t *testing.T) broker.Broker {
//			b, err := broker.NewMemory(broker.MemoryConfig{MinBackoff: time.Millisecond})
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { b.Close() })
//			return b
//		})
//	}
//
// The suite checks the contract written on [broker.Broker]: publish and
// poll order per topic and the envelope's fields; wildcard patterns;
// acknowledgement; rejection, redelivery with Attempts one higher each
// time and dead-lettering with the reason once the backend's attempt limit
// is reached (the suite learns the limit by watching, so it needs no
// configuration, but the backend's redelivery backoff should be short in
// tests); handler panics; deduplication by envelope ID on a topic, for a
// backend whose [broker.Guarantees] include Dedup; bad input rejected with
// [nova.ErrInvalid] and nothing published; a cancelled ctx ending a
// subscription; Close ending everything, with no goroutine left behind
// (checked with goleak).
//
// Checking that something does not happen needs a wait: the suite waits
// for a settle time (default 100ms, see [WithSettle]) before concluding
// that no further delivery comes.
package brokertest
