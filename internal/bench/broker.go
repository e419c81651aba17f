package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/novasqlite"
)

// BrokerBackend says how to open one message broker for the broker
// scenarios: a Nova adapter ([broker.Broker]) and a [RawBroker] baseline
// beside it, each in a namespace of its own that the runner makes fresh
// for every run and deletes after it.
type BrokerBackend struct {
	// Name names the backend in results, for example "nats".
	Name string
	// Prefix starts the name of every namespace the runner makes: Prefix,
	// "-" and 12 random hex digits. At most [MaxBrokerPrefixLen] letters,
	// digits, '-' and '_'; default [DefaultBrokerPrefix].
	Prefix string
	// NovaFunc opens a Nova broker in namespace ns, which declares what
	// the adapter declares when it opens (a JetStream stream, RabbitMQ
	// exchanges). Required.
	NovaFunc func(ctx context.Context, ns string) (broker.Broker, error)
	// RawFunc opens the baseline on namespace ns, after NovaFunc opened
	// the namespace. Every run opens one on both sides: the nova side's
	// checks what the server holds and deletes the namespace afterwards.
	// Required.
	RawFunc func(ctx context.Context, ns string) (RawBroker, error)
	// Outbox configures the SQLite database that holds the relay
	// scenario's saga runs and outbox; its Path is ignored (every run gets
	// a fresh file in a scratch directory of the system's temporary
	// directory, removed after the run). The zero value means
	// novasqlite's defaults. It is not used when OutboxStore is set.
	Outbox novasqlite.Config
	// OutboxStore, when its NovaFunc is set, holds the relay scenario's
	// saga runs and outbox instead of SQLite: every run takes a fresh
	// store from its NovaFunc (a scratch schema for [Postgres]) and
	// removes it afterwards. It must be a [Postgres] or [MySQL] backend;
	// the caller closes it after the run.
	OutboxStore Backend
}

// outboxName names the relay scenario's outbox in results.
func (b BrokerBackend) outboxName() string {
	if b.OutboxStore.NovaFunc != nil {
		return b.OutboxStore.Name
	}
	return "sqlite"
}

// DefaultBrokerPrefix starts the namespaces of a [BrokerBackend] whose
// Prefix is empty.
const DefaultBrokerPrefix = "novabench"

// MaxBrokerPrefixLen is the longest [BrokerBackend.Prefix]: with the
// random suffix a namespace is then at most 32 bytes, the limit of
// JetStream's.
const MaxBrokerPrefixLen = 19

func (b BrokerBackend) validate() error {
	switch {
	case b.Name == "":
		return nova.Invalidf("bench", "broker backend has no Name")
	case b.NovaFunc == nil:
		return nova.Invalidf("bench", "broker backend %q has no NovaFunc", b.Name)
	case b.RawFunc == nil:
		return nova.Invalidf("bench", "broker backend %q has no RawFunc", b.Name)
	case len(b.Prefix) > MaxBrokerPrefixLen || strings.IndexFunc(b.Prefix, notNameRune) >= 0:
		return nova.Invalidf("bench", "broker backend %q has Prefix %q, want at most %d letters, digits, '-' or '_'", b.Name, b.Prefix, MaxBrokerPrefixLen)
	}
	return nil
}

func notNameRune(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
}

// namespace returns a fresh namespace name.
func (b BrokerBackend) namespace() string {
	prefix := b.Prefix
	if prefix == "" {
		prefix = DefaultBrokerPrefix
	}
	var r [6]byte
	_, _ = rand.Read(r[:])
	return prefix + "-" + hex.EncodeToString(r[:])
}

// RawBroker is a baseline written directly against a broker's client,
// doing the server work of a broker scenario in one namespace without Nova
// in between. [BrokerBackend.NovaFunc]'s adapter opened the namespace
// first, so the baseline publishes into the layout the adapter declares
// (its stream, its exchanges and its topic's queue). Its methods are
// called from one goroutine at a time.
type RawBroker interface {
	// Publish sends m to topic and returns once the server has confirmed
	// it: stored, or refused with an error.
	Publish(ctx context.Context, topic string, m RawMessage) error
	// PublishBatch sends every message of ms to topic without waiting,
	// then waits until the server has confirmed all of them.
	PublishBatch(ctx context.Context, topic string, ms []RawMessage) error
	// Group creates a durable consumer group on topic with the settings of
	// the adapter's consumer groups and returns a consumer of it that
	// acknowledges by hand. What is published to topic after Group
	// returns is the group's.
	Group(ctx context.Context, group, topic string) (RawConsumer, error)
	// Held returns how many envelopes the server holds on topic for the
	// adapter's Poll: every one published through the adapter or the
	// baseline, until polled.
	Held(ctx context.Context, topic string) (int, error)
	// Drop deletes what the namespace declared, for these topics and
	// groups too: a JetStream stream, or RabbitMQ exchanges and queues.
	// What is missing is no error.
	Drop(ctx context.Context, topics, groups []string) error
	// Close releases the baseline's connections.
	Close() error
}

// RawConsumer consumes a consumer group made by [RawBroker.Group].
type RawConsumer interface {
	// Next waits for the group's next message, acknowledges it and returns
	// its ID (the envelope ID the adapter gave it), failing when ctx ends
	// first.
	Next(ctx context.Context) (string, error)
	// Close stops consuming; the group stays.
	Close() error
}

// RawMessage is a message as a baseline sends it: what a hand-written
// client puts in one (an ID the server deduplicates by where it does, a
// type, the body); each baseline adds the time it was sent.
type RawMessage struct {
	ID   string
	Type string
	Body []byte
}

// brokerKind is what a broker scenario does.
type brokerKind int

const (
	brokerPublish brokerKind = iota
	brokerConsume
	brokerRelay
)

// brokerScenario is one broker workload. Sizes are the full-scale
// defaults.
type brokerScenario struct {
	name, doc string
	kind      brokerKind
	// batch is how many envelopes one publish call carries.
	batch int
	// events is how many envelopes a run publishes, consumes or relays.
	events int
	// slice is how many envelopes each side handles in one slice of a
	// run: the runner alternates nova and raw slice by slice.
	slice int
}

// brokerScenarios are every broker scenario in the order they run by
// default.
var brokerScenarios = []brokerScenario{
	{name: "broker-publish", doc: "1 KB envelopes, each Publish confirmed by the server before the next", kind: brokerPublish, batch: 1, events: 2000, slice: 20},
	{name: "broker-publish-batch", doc: "1 KB envelopes in batches of 100 (PublishAll), every confirmation awaited", kind: brokerPublish, batch: 100, events: 20_000, slice: 200},
	{name: "broker-consume", doc: "1 KB envelopes waiting for a consumer group, consumed and acknowledged one at a time", kind: brokerConsume, batch: 1, events: 5000, slice: 50},
	{name: "relay", doc: "saga lifecycle envelopes relayed from an outbox (SQLite, or a PostgreSQL or MySQL store) to the broker (envelopes/s; no raw side)", kind: brokerRelay, batch: 1, events: 7000, slice: 7000},
}

// BrokerScenarioNames returns the names of the broker scenarios, in the
// order [RunBroker] runs them when none are named.
func BrokerScenarioNames() []string {
	out := make([]string, len(brokerScenarios))
	for i, s := range brokerScenarios {
		out[i] = s.name
	}
	return out
}

func lookupBroker(name string) (brokerScenario, bool) {
	for _, s := range brokerScenarios {
		if s.name == name {
			return s, true
		}
	}
	return brokerScenario{}, false
}

// sized returns how many envelopes a run handles at scale: a whole
// number of batches, at least one.
func (s brokerScenario) sized(scale float64) int {
	n := int(math.Round(float64(s.events) * scale))
	n -= n % s.batch
	return max(n, s.batch)
}

// Topic and group of the publish and consume scenarios.
const (
	brokerTopic = "bench.envelopes"
	brokerGroup = "bench"
)

// RunBroker measures the broker scenarios opts names (all of
// [BrokerScenarioNames] when none) on backend b and returns one [Result]
// per scenario, in order, with rates in envelopes per second. It runs as
// [Run] does: warm-up runs, then opts.Runs measured ones, each on a fresh
// Nova broker and a fresh baseline in namespaces of their own, the two
// sides alternating slice by slice. Every run checks its work, untimed,
// and fails when it falls short: the server must hold every envelope
// published, and a consumer must have seen every envelope once. The
// relay scenario has no raw side. Invalid options or backend fail with
// an error matching [nova.ErrInvalid] before anything runs; a scenario
// the broker cannot run (the consumer groups of [broker.GroupSubscriber])
// is skipped with a line on opts.Progress.
func RunBroker(ctx context.Context, b BrokerBackend, opts Options) ([]Result, error) {
	if err := b.validate(); err != nil {
		return nil, err
	}
	if err := opts.validate(BrokerScenarioNames()); err != nil {
		return nil, err
	}
	names := opts.Scenarios
	if len(names) == 0 {
		names = BrokerScenarioNames()
	}
	return runAll(ctx, names, opts, func(ctx context.Context, name string) ([]Result, error) {
		sc, _ := lookupBroker(name)
		n := sc.sized(opts.scale())
		res, err := runOne(ctx, opts, measurement{
			scenario: sc.name,
			backend:  b.Name,
			unit:     "envelopes",
			open: func(ctx context.Context, s side) (job, func() error, error) {
				return b.open(ctx, sc, s, n)
			},
		})
		if sc.kind == brokerRelay {
			for i := range res {
				res[i].Outbox = b.outboxName()
			}
		}
		return res, err
	})
}

// brokerRun is one side of one run: its namespace, the Nova broker and
// the baseline in it, and what to delete afterwards.
type brokerRun struct {
	ns     string
	nb     broker.Broker
	raw    RawBroker
	topics []string
	groups []string
	// closers run in reverse order, before the broker closes.
	closers []func() error
}

// open prepares side s of one run of sc with n envelopes and returns its
// timed part and its cleanup.
func (b BrokerBackend) open(ctx context.Context, sc brokerScenario, s side, n int) (job, func() error, error) {
	if sc.kind == brokerRelay && s == sideRaw {
		return job{slices: 1, slice: func(context.Context, int) (int, error) { return 0, nil }}, nil, nil
	}
	r := &brokerRun{ns: b.namespace()}
	raw, err := b.RawFunc(ctx, r.ns)
	if err != nil {
		return job{}, nil, fmt.Errorf("%s: open raw baseline: %w", s, err)
	}
	r.raw = raw
	if r.nb, err = b.NovaFunc(ctx, r.ns); err != nil {
		return job{}, r.cleanup, fmt.Errorf("%s: open broker: %w", s, err)
	}
	var j job
	switch sc.kind {
	case brokerPublish:
		j, err = r.publishJob(ctx, s, sc, n)
	case brokerConsume:
		j, err = r.consumeJob(ctx, s, sc, n)
	default:
		j, err = r.relayJob(ctx, b, n)
	}
	if err != nil {
		err = fmt.Errorf("%s: %w", s, err)
	}
	return j, r.cleanup, err
}

// cleanupTimeout bounds the deletion of a run's namespace.
const cleanupTimeout = time.Minute

// cleanup stops what the run started, closes the broker, deletes the
// namespace and closes the baseline.
func (r *brokerRun) cleanup() error {
	var errs []error
	for i := len(r.closers) - 1; i >= 0; i-- {
		errs = append(errs, r.closers[i]())
	}
	if r.nb != nil {
		errs = append(errs, r.nb.Close())
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if err := r.raw.Drop(ctx, r.topics, r.groups); err != nil {
		errs = append(errs, fmt.Errorf("delete namespace %s: %w", r.ns, err))
	}
	errs = append(errs, r.raw.Close())
	return errors.Join(errs...)
}

// envelopes returns n envelopes for topic: fresh IDs, [EventType] and 1 KB
// of JSON of their own, as [Events] makes; no key, no headers, the time
// of publishing.
func envelopes(topic string, n int) []broker.Envelope {
	out := make([]broker.Envelope, n)
	for i := range out {
		id := nova.NewEventID()
		out[i] = broker.Envelope{ID: id, Topic: topic, EventType: EventType, Payload: payload(id)}
	}
	return out
}

// rawMessages returns n messages as a baseline sends the envelopes of
// [envelopes].
func rawMessages(n int) []RawMessage {
	out := make([]RawMessage, n)
	for i := range out {
		id := nova.NewEventID()
		out[i] = RawMessage{ID: id, Type: EventType, Body: payload(id)}
	}
	return out
}

// publishJob returns the timed part of a publish scenario: in each slice,
// sc.slice envelopes published sc.batch at a time, each call waiting for
// the server's confirmation of all it sent. Both sides find the topic
// declared first (Poll declares a RabbitMQ topic's queue), so neither
// times a declaration.
func (r *brokerRun) publishJob(ctx context.Context, s side, sc brokerScenario, n int) (job, error) {
	r.topics = append(r.topics, brokerTopic)
	if _, err := r.nb.Poll(ctx, brokerTopic, 1); err != nil {
		return job{}, fmt.Errorf("declare topic %s: %w", brokerTopic, err)
	}
	calls, perSlice := n/sc.batch, max(sc.slice/sc.batch, 1)
	var publish func(ctx context.Context, c int) error
	if s == sideNova {
		envs := envelopes(brokerTopic, n)
		publish = func(ctx context.Context, c int) error {
			if sc.batch == 1 {
				return r.nb.Publish(ctx, envs[c])
			}
			return broker.PublishAll(ctx, r.nb, envs[c*sc.batch:(c+1)*sc.batch]...)
		}
	} else {
		msgs := rawMessages(n)
		publish = func(ctx context.Context, c int) error {
			if sc.batch == 1 {
				return r.raw.Publish(ctx, brokerTopic, msgs[c])
			}
			return r.raw.PublishBatch(ctx, brokerTopic, msgs[c*sc.batch:(c+1)*sc.batch])
		}
	}
	return job{
		slices: (calls + perSlice - 1) / perSlice,
		slice: func(ctx context.Context, i int) (int, error) {
			from, to := i*perSlice, min((i+1)*perSlice, calls)
			for c := from; c < to; c++ {
				if err := publish(ctx, c); err != nil {
					return 0, fmt.Errorf("publish: %w", err)
				}
			}
			return (to - from) * sc.batch, nil
		},
		check: func(ctx context.Context) error {
			return r.checkHeld(ctx, []string{brokerTopic}, n)
		},
	}, nil
}

// checkHeld fails unless the server holds want envelopes on topics
// together.
func (r *brokerRun) checkHeld(ctx context.Context, topics []string, want int) error {
	held := 0
	for _, t := range topics {
		k, err := r.raw.Held(ctx, t)
		if err != nil {
			return fmt.Errorf("count what the server holds on %s: %w", t, err)
		}
		held += k
	}
	if held != want {
		return fmt.Errorf("the server holds %d envelopes, want %d", held, want)
	}
	return nil
}

// stallTimeout is how long a consume slice waits for the next envelope
// before it fails the run.
const stallTimeout = time.Minute

// fillChunk is how many envelopes one untimed publish carries when a
// consumer group is filled.
const fillChunk = 500

// consumeJob returns the timed part of the consume scenario. Before it,
// a consumer group is made on the topic (the nova side's member joins it
// with SubscribeGroup; the raw side's consumer is its own) and n
// envelopes are published to it through the adapter. In each slice the
// side takes the next sc.slice envelopes, one at a time, and acknowledges
// each: the nova member's handler returns nil, the raw consumer
// acknowledges by hand. See [memberGate] for how the member, which pulls
// on its own goroutine, is held between slices.
func (r *brokerRun) consumeJob(ctx context.Context, s side, sc brokerScenario, n int) (job, error) {
	r.topics = append(r.topics, brokerTopic)
	r.groups = append(r.groups, brokerGroup)
	tally := newTally()
	slices := (n + sc.slice - 1) / sc.slice
	var j job
	if s == sideNova {
		gs, ok := r.nb.(broker.GroupSubscriber)
		if !ok {
			return job{}, fmt.Errorf("the broker has no consumer groups: %w", nova.ErrNotImplemented)
		}
		g := newMemberGate(n, sc.slice, tally)
		sub, err := gs.SubscribeGroup(ctx, brokerGroup, brokerTopic, g.handle)
		if err != nil {
			return job{}, fmt.Errorf("join group: %w", err)
		}
		r.closers = append(r.closers, sub.Unsubscribe)
		j = job{slices: slices, slice: func(ctx context.Context, i int) (int, error) {
			return g.run(ctx, i, sub.Done())
		}}
	} else {
		cons, err := r.raw.Group(ctx, brokerGroup, brokerTopic)
		if err != nil {
			return job{}, fmt.Errorf("make group: %w", err)
		}
		r.closers = append(r.closers, cons.Close)
		j = job{slices: slices, slice: func(ctx context.Context, i int) (int, error) {
			from, to := i*sc.slice, min((i+1)*sc.slice, n)
			ctx, cancel := context.WithTimeout(ctx, stallTimeout)
			defer cancel()
			for k := from; k < to; k++ {
				id, err := cons.Next(ctx)
				if err != nil {
					return 0, fmt.Errorf("envelope %d of %d: %w", k+1, n, err)
				}
				tally.see(id)
			}
			return to - from, nil
		}}
	}
	envs := envelopes(brokerTopic, n)
	for _, e := range envs {
		tally.expect(e.ID)
	}
	for i := 0; i < n; i += fillChunk {
		if err := broker.PublishAll(ctx, r.nb, envs[i:min(i+fillChunk, n)]...); err != nil {
			return job{}, fmt.Errorf("fill the group: %w", err)
		}
	}
	j.check = func(context.Context) error { return tally.check() }
	return j, nil
}

// tally records the envelope IDs a consumer should see, all of them
// before it sees any, and checks that it saw each once.
type tally struct {
	mu      sync.Mutex
	want    map[string]bool // published, not yet seen
	strays  int             // seen twice, or never published
	example string
}

func newTally() *tally { return &tally{want: make(map[string]bool)} }

func (t *tally) expect(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.want[id] = true
}

func (t *tally) see(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.want[id] {
		t.strays++
		t.example = id
		return
	}
	delete(t.want, id)
}

// check fails unless every envelope published was seen, once, and
// nothing else was.
func (t *tally) check() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.strays > 0:
		return fmt.Errorf("%d envelopes seen twice or never published (such as %q)", t.strays, t.example)
	case len(t.want) > 0:
		return fmt.Errorf("%d envelopes published were never seen", len(t.want))
	}
	return nil
}

// memberGate holds a consumer group member between the slices of a run,
// so that it consumes only while its side is timed. Its handler counts
// envelopes; at the last one of a slice it tells the slice, and waits,
// before returning (and so before the member acknowledges it and pulls
// the next), until the next slice begins. The acknowledgement of a
// slice's last envelope is therefore timed in the next slice, and every
// slice times as many pulls and acknowledgements as it counts envelopes;
// only the first pull of the run happens before the timing, while the
// handler waits for the first slice.
type memberGate struct {
	n, per  int
	tally   *tally
	start   chan struct{} // closed by the first slice
	resume  chan struct{} // one send by each later slice
	reached chan struct{} // the handler took the last envelope of a slice

	mu    sync.Mutex
	count int
}

func newMemberGate(n, per int, t *tally) *memberGate {
	return &memberGate{n: n, per: per, tally: t,
		start: make(chan struct{}), resume: make(chan struct{}, 1), reached: make(chan struct{}, 1)}
}

func (g *memberGate) handle(ctx context.Context, e broker.Envelope) error {
	select {
	case <-g.start:
	case <-ctx.Done():
		return ctx.Err()
	}
	g.tally.see(e.ID)
	g.mu.Lock()
	g.count++
	c := g.count
	g.mu.Unlock()
	if c > g.n || c%g.per != 0 && c != g.n {
		return nil
	}
	select {
	case g.reached <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	if c == g.n {
		return nil
	}
	select {
	case <-g.resume:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run runs slice i: it lets the handler go on and waits until it took the
// slice's last envelope.
func (g *memberGate) run(ctx context.Context, i int, ended <-chan struct{}) (int, error) {
	if i == 0 {
		close(g.start)
	} else {
		g.resume <- struct{}{}
	}
	stall := time.NewTimer(stallTimeout)
	defer stall.Stop()
	select {
	case <-g.reached:
		return min((i+1)*g.per, g.n) - i*g.per, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-ended:
		return 0, errors.New("the group member's subscription ended")
	case <-stall.C:
		g.mu.Lock()
		defer g.mu.Unlock()
		return 0, fmt.Errorf("no envelope for %v: %d of %d handled", stallTimeout, g.count, g.n)
	}
}
