package brokertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nova-go/nova/broker"
)

// Option tunes [Run] for one backend.
type Option func(*options)

type options struct {
	timeout     time.Duration
	settle      time.Duration
	open        func(t testing.TB, namespace string) broker.Broker
	openSpread  func(t testing.TB, namespace string) broker.Broker
	outage      func(t testing.TB, namespace string) (broker.Broker, Outage)
	maxAttempts int
}

// WithTimeout sets how long the suite waits for something that must
// happen (a delivery, a dead letter, a subscription ending, Close
// returning, a reconnection) before failing. Default 10 seconds. A
// backend whose server redelivers an unacknowledged envelope only after
// an acknowledgement deadline (JetStream's AckWait, a Kafka session
// timeout) needs that deadline well below the timeout.
func WithTimeout(d time.Duration) Option {
	return func(o *options) { o.timeout = d }
}

// WithSettle sets how long the suite waits before concluding that nothing
// more will be delivered. Default 100ms. A backend whose deliveries cross
// a network may need longer.
func WithSettle(d time.Duration) Option {
	return func(o *options) { o.settle = d }
}

// WithOpen gives the suite a way to open a broker on a named namespace:
// two brokers opened with the same namespace, in this process or in
// another, share the server's state (topics, poll queues, dead letters,
// consumer groups), and brokers of different namespaces share nothing.
// open is called with a fresh namespace for each case (lowercase ASCII
// letters and digits, at most 16 bytes) and from a child process with
// the parent's namespace; it must register the broker's Close with
// t.Cleanup, and may delete what the namespace holds on the server when
// the test ends. The cases Namespace, Kill and GroupKill need it and skip
// without it.
func WithOpen(open func(t testing.TB, namespace string) broker.Broker) Option {
	return func(o *options) { o.open = open }
}

// WithOpenSpread gives the GroupKill case its own way to open a broker on
// a named namespace, with the same contract as [WithOpen], for a backend
// whose consumer group spreads its work over several members only when
// the namespace is made for it: a Kafka group gives each partition to one
// member, so a namespace of one partition keeps one member idle. Without
// it, GroupKill uses the function given to WithOpen.
func WithOpenSpread(open func(t testing.TB, namespace string) broker.Broker) Option {
	return func(o *options) { o.openSpread = open }
}

// Outage cuts a broker's connection to its server and restores it;
// internal/testenv.Proxy has both methods. Cut closes every connection
// and refuses new ones until Restore.
type Outage interface {
	Cut()
	Restore()
}

// WithOutage gives the suite a broker on a fresh namespace whose
// connection to its server goes through something the suite can cut (a
// TCP proxy). open must register the broker's Close with t.Cleanup. The
// cases BadInputOffline and Reconnect need it and skip without it.
func WithOutage(open func(t testing.TB, namespace string) (broker.Broker, Outage)) Option {
	return func(o *options) { o.outage = open }
}

// WithMaxAttempts tells the suite the backend's attempt limit: how many
// deliveries of an envelope fail before it is dead-lettered. Without it
// the suite learns the limit by watching an envelope rejected every time
// until it is dead-lettered; with it, the suite checks that it sees this
// limit.
func WithMaxAttempts(n int) Option {
	return func(o *options) { o.maxAttempts = n }
}

// suite is one run of Run.
type suite struct {
	newBroker func(t *testing.T) broker.Broker
	options
	name string // the name of the test Run was called with

	limitOnce sync.Once
	limit     int
	limitErr  error
}

// Run runs the broker conformance suite against the brokers newBroker
// returns. newBroker must return a fresh, empty broker each time it is
// called and register its Close with t.Cleanup; it is called from
// parallel subtests. Options give what the suite cannot find by itself;
// optional capabilities it finds by type assertion on the broker
// ([broker.GroupSubscriber], [broker.Guarantor]).
//
// A test binary that runs Run may be started again by Run as a child
// process (see the Kill case); Run recognises that at its start, plays
// the child's part and returns, so nothing else in the test needs to know.
func Run(t *testing.T, newBroker func(t *testing.T) broker.Broker, opts ...Option) {
	t.Helper()
	o := options{timeout: 10 * time.Second, settle: 100 * time.Millisecond}
	for _, opt := range opts {
		opt(&o)
	}
	if o.timeout <= 0 || o.settle <= 0 {
		t.Fatalf("brokertest: WithTimeout(%v), WithSettle(%v): want positive durations", o.timeout, o.settle)
	}
	if o.maxAttempts < 0 {
		t.Fatalf("brokertest: WithMaxAttempts(%d): want 1 or more", o.maxAttempts)
	}
	s := &suite{newBroker: newBroker, options: o, name: t.Name()}
	if spec, ok := os.LookupEnv(childEnv); ok {
		s.runChild(t, spec)
		return
	}

	// Close watches goroutines, so it runs alone before the parallel
	// cases start.
	t.Run("Close", s.testClose)

	t.Run("PublishPoll", s.testPublishPoll)
	t.Run("PollCompete", s.testPollCompete)
	t.Run("Wildcards", s.testWildcards)
	t.Run("Fanout", s.testFanout)
	t.Run("Ack", s.testAck)
	t.Run("NackDeadLetter", s.testNack)
	t.Run("Panic", s.testPanic)
	t.Run("PublishDLQ", s.testPublishDLQ)
	t.Run("Dedup", s.testDedup)
	t.Run("Payloads", s.testPayloads)
	t.Run("BadInput", s.testBadInput)
	t.Run("Cancel", s.testCancel)
	t.Run("Unsubscribe", s.testUnsubscribe)
	t.Run("Concurrent", s.testConcurrent)
	t.Run("GroupShare", s.testGroupShare)
	t.Run("GroupDurable", s.testGroupDurable)
	t.Run("GroupCopies", s.testGroupCopies)
	t.Run("GroupHandOver", s.testGroupHandOver)
	t.Run("GroupDeadLetter", s.testGroupDeadLetter)
	t.Run("KeyOrder", s.testKeyOrder)
	t.Run("Namespace", s.testNamespace)
	t.Run("Kill", s.testKill)
	t.Run("GroupKill", s.testGroupKill)
	t.Run("BadInputOffline", s.testBadInputOffline)
	t.Run("Reconnect", s.testReconnect)
}

// ctx returns a context that ends with the test or after the timeout.
func (s *suite) ctx(t testing.TB) context.Context {
	return s.ctxFor(t, 1)
}

// ctxFor returns a context that ends with the test or after n timeouts,
// for a case that waits for several things in turn.
func (s *suite) ctxFor(t testing.TB, n int) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Duration(n)*s.timeout)
	t.Cleanup(cancel)
	return ctx
}

// namespace returns a fresh namespace for WithOpen and WithOutage.
func (s *suite) namespace() string {
	b := make([]byte, 7)
	_, _ = rand.Read(b)
	return "bt" + hex.EncodeToString(b)
}

// spreadOpen returns the function that opens brokers for GroupKill.
func (s *suite) spreadOpen() func(t testing.TB, namespace string) broker.Broker {
	if s.openSpread != nil {
		return s.openSpread
	}
	return s.open
}

// groups returns b as a GroupSubscriber, or skips t.
func groups(t *testing.T, b broker.Broker) broker.GroupSubscriber {
	t.Helper()
	g, ok := b.(broker.GroupSubscriber)
	if !ok {
		t.Skipf("brokertest: %T is not a broker.GroupSubscriber", b)
	}
	return g
}

// maxAttempts returns the backend's attempt limit: the one given with
// WithMaxAttempts, or the one learnt once, on a broker of its own, by
// rejecting an envelope until it is dead-lettered.
func (s *suite) maxAttempts(t *testing.T) int {
	t.Helper()
	if s.options.maxAttempts > 0 {
		return s.options.maxAttempts
	}
	s.limitOnce.Do(func() { s.limit, s.limitErr = s.probeLimit(t) })
	if s.limitErr != nil {
		t.Fatalf("brokertest: learning the attempt limit: %v", s.limitErr)
	}
	return s.limit
}

// probeLimit rejects one envelope until it is dead-lettered and returns
// its attempt count.
func (s *suite) probeLimit(t *testing.T) (int, error) {
	ctx := s.ctx(t)
	b := s.newBroker(t)
	sub, err := b.Subscribe(ctx, "probe.>", func(context.Context, broker.Envelope) error {
		return errors.New("rejected to learn the attempt limit")
	})
	if err != nil {
		return 0, err
	}
	defer sub.Unsubscribe()
	if err := b.Publish(ctx, Envelope("probe", "probe.limit")); err != nil {
		return 0, err
	}
	for {
		dl, err := b.PollDLQ(ctx, "probe.limit", 1)
		if err != nil {
			return 0, err
		}
		if len(dl) == 1 {
			return dl[0].Envelope.Attempts, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("no dead letter within %v", s.timeout)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// childEnv names the environment variable that makes a test binary a
// child of the suite: it holds a childSpec as JSON.
const childEnv = "NOVA_BROKERTEST_CHILD"

// childSpec is what a child process does.
type childSpec struct {
	// Test is the name of the test that called Run in the parent.
	Test string
	// Role is the child's part: "kill" (see testKill) or "groupkill"
	// (see testGroupKill).
	Role string
	// Namespace is the parent's namespace, for WithOpen.
	Namespace string
	// Group and Pattern name the consumer group the child joins.
	Group, Pattern string
}

func (c childSpec) encode() string {
	b, _ := json.Marshal(c)
	return string(b)
}
