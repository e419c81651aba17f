package brokertest

import (
	"context"
	"testing"
	"time"

	"github.com/nova-go/nova/broker"
)

// Option tunes [Run] for one backend.
type Option func(*options)

type options struct {
	timeout time.Duration
	settle  time.Duration
}

// WithTimeout sets how long the suite waits for something that must
// happen (a delivery, a dead letter, a subscription ending, Close
// returning) before failing. Default 10 seconds.
func WithTimeout(d time.Duration) Option {
	return func(o *options) { o.timeout = d }
}

// WithSettle sets how long the suite waits before concluding that nothing
// more will be delivered. Default 100ms. A backend whose deliveries cross
// a network may need longer.
func WithSettle(d time.Duration) Option {
	return func(o *options) { o.settle = d }
}

// suite is one run of Run.
type suite struct {
	newBroker func(t *testing.T) broker.Broker
	options
}

// Run runs the broker conformance suite against the brokers newBroker
// returns. newBroker must return a fresh, empty broker each time it is
// called and register its Close with t.Cleanup; it is called from
// parallel subtests.
func Run(t *testing.T, newBroker func(t *testing.T) broker.Broker, opts ...Option) {
	t.Helper()
	o := options{timeout: 10 * time.Second, settle: 100 * time.Millisecond}
	for _, opt := range opts {
		opt(&o)
	}
	if o.timeout <= 0 || o.settle <= 0 {
		t.Fatalf("brokertest: WithTimeout(%v), WithSettle(%v): want positive durations", o.timeout, o.settle)
	}
	s := &suite{newBroker: newBroker, options: o}

	// Close watches goroutines, so it runs alone before the parallel
	// cases start.
	t.Run("Close", s.testClose)

	t.Run("PublishPoll", s.testPublishPoll)
	t.Run("Wildcards", s.testWildcards)
	t.Run("Ack", s.testAck)
	t.Run("NackDeadLetter", s.testNack)
	t.Run("Panic", s.testPanic)
	t.Run("PublishDLQ", s.testPublishDLQ)
	t.Run("Dedup", s.testDedup)
	t.Run("BadInput", s.testBadInput)
	t.Run("Cancel", s.testCancel)
	t.Run("Unsubscribe", s.testUnsubscribe)
	t.Run("Concurrent", s.testConcurrent)
}

// ctx returns a context that ends with the test or after the timeout.
func (s *suite) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), s.timeout)
	t.Cleanup(cancel)
	return ctx
}
