package broker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/backoff"
	"github.com/nova-go/nova/internal/validate"
)

// Defaults of [MemoryConfig].
const (
	DefaultMaxAttempts = 5
	DefaultMinBackoff  = 100 * time.Millisecond
	DefaultMaxBackoff  = 10 * time.Second
	DefaultDedupWindow = 2 * time.Minute
	DefaultMaxQueue    = 10_000
)

// MemoryConfig configures a [Memory] broker. The zero value means the
// defaults given for each field.
type MemoryConfig struct {
	// MaxAttempts is how many times a subscription delivers an envelope
	// before it dead-letters it. Default [DefaultMaxAttempts]; 1
	// dead-letters on the first rejection.
	MaxAttempts int
	// MinBackoff is the longest wait before the first redelivery; the
	// bound doubles with each further failure up to MaxBackoff, and the
	// wait is drawn uniformly below it ("full jitter"). Default
	// [DefaultMinBackoff].
	MinBackoff time.Duration
	// MaxBackoff caps the wait before a redelivery. Default
	// [DefaultMaxBackoff], or MinBackoff when that is longer; at least
	// MinBackoff.
	MaxBackoff time.Duration
	// DedupWindow is how long an envelope ID is remembered after it was
	// published: publishing it again within the window is a no-op.
	// Default [DefaultDedupWindow], the default duplicate window of NATS
	// JetStream.
	DedupWindow time.Duration
	// MaxQueue is the most envelopes kept per topic for Poll, the most
	// dead letters kept per topic for PollDLQ, and the most envelopes a
	// consumer group keeps waiting for a member. When a queue is full the
	// oldest entry is discarded to make room, and counted in
	// [Memory.Dropped]. Default [DefaultMaxQueue].
	MaxQueue int
	// NowFunc returns the time used for timestamps, dead letters and the
	// deduplication window. Default time.Now.
	NowFunc func() time.Time
}

// validate reports the first bad field; it changes nothing.
func (c MemoryConfig) validate() error {
	switch {
	case c.MaxAttempts < 0:
		return validate.InvalidFieldf("broker", "MemoryConfig.MaxAttempts", "%d, want 0 (default) or more", c.MaxAttempts)
	case c.MinBackoff < 0:
		return validate.InvalidFieldf("broker", "MemoryConfig.MinBackoff", "%v, want 0 (default) or more", c.MinBackoff)
	case c.MaxBackoff < 0:
		return validate.InvalidFieldf("broker", "MemoryConfig.MaxBackoff", "%v, want 0 (default) or more", c.MaxBackoff)
	case c.DedupWindow < 0:
		return validate.InvalidFieldf("broker", "MemoryConfig.DedupWindow", "%v, want 0 (default) or more", c.DedupWindow)
	case c.MaxQueue < 0:
		return validate.InvalidFieldf("broker", "MemoryConfig.MaxQueue", "%d, want 0 (default) or more", c.MaxQueue)
	}
	if d := c.withDefaults(); d.MaxBackoff < d.MinBackoff {
		return validate.InvalidFieldf("broker", "MemoryConfig.MaxBackoff", "%v is shorter than MinBackoff %v", d.MaxBackoff, d.MinBackoff)
	}
	return nil
}

// withDefaults returns c with each zero field set to its default.
func (c MemoryConfig) withDefaults() MemoryConfig {
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = max(DefaultMaxBackoff, c.MinBackoff)
	}
	if c.DedupWindow == 0 {
		c.DedupWindow = DefaultDedupWindow
	}
	if c.MaxQueue == 0 {
		c.MaxQueue = DefaultMaxQueue
	}
	if c.NowFunc == nil {
		c.NowFunc = time.Now
	}
	return c
}

// Memory is an in-process [Broker] for tests, demos and single-process
// deployments. Nothing survives the process.
//
// Publish never waits for a consumer. Each subscription has its own
// unbounded queue, so a slow handler delays only its own subscription and
// no envelope is lost to it; the price is memory, which grows with the
// backlog of the slowest subscription. Poll queues, dead letters and
// consumer groups' backlogs are bounded by [MemoryConfig.MaxQueue],
// dropping the oldest, so a topic nobody polls — the common case once
// consumers subscribe — or a group whose members are gone cannot grow
// without bound. The deduplication window keeps every ID published
// within it.
//
// The key of deduplication is the ID alone: an ID published within the
// window is dropped whatever its topic.
//
// Memory is a [GroupSubscriber]: a consumer group is created by its first
// SubscribeGroup and lives as long as the Memory, keeping what is
// published to it while no member runs. A member whose subscription ends
// while its handler holds an envelope it has not acknowledged hands the
// envelope back, counted as a failed delivery, to the next member. A
// SubscribeGroup whose pattern is not the group's returns an error
// matching [nova.ErrInvalid].
//
// The zero Memory is not usable; create one with [NewMemory].
//
// Each subscription and each group member runs one goroutine, which the
// broker owns: it stops when the subscription's ctx is done, on
// Unsubscribe and on Close, and Close waits for all of them.
type Memory struct {
	cfg MemoryConfig

	mu      sync.Mutex
	closed  bool
	topics  map[string]*queue[Envelope]
	dlq     map[string]*queue[DeadLetter]
	seen    map[string]time.Time // ID → when published
	seenLog queue[seenEntry]     // the same, oldest first, for pruning
	subs    map[*memSub]struct{} // subscriptions and group members
	groups  map[string]*memGroup // by name
	dropped uint64
	wg      sync.WaitGroup // one per running subscription
}

type seenEntry struct {
	id string
	at time.Time
}

var (
	_ Broker          = (*Memory)(nil)
	_ BatchPublisher  = (*Memory)(nil)
	_ GroupSubscriber = (*Memory)(nil)
	_ Guarantor       = (*Memory)(nil)
)

// NewMemory returns an empty in-memory broker. The zero cfg means the
// defaults; an invalid cfg returns an error matching [nova.ErrInvalid]
// that names the field.
func NewMemory(cfg MemoryConfig) (*Memory, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Memory{
		cfg:    cfg.withDefaults(),
		topics: make(map[string]*queue[Envelope]),
		dlq:    make(map[string]*queue[DeadLetter]),
		seen:   make(map[string]time.Time),
		subs:   make(map[*memSub]struct{}),
		groups: make(map[string]*memGroup),
	}, nil
}

// Publish implements [Broker.Publish].
func (b *Memory) Publish(ctx context.Context, e Envelope) error {
	return b.PublishBatch(ctx, []Envelope{e})
}

// PublishBatch implements [BatchPublisher]: it validates every envelope
// first, so bad input publishes none, and then publishes them in order
// under one lock.
func (b *Memory) PublishBatch(ctx context.Context, envelopes []Envelope) error {
	for i, e := range envelopes {
		if err := e.Validate(); err != nil {
			if len(envelopes) == 1 {
				return err
			}
			return invalidf("envelope %d: %v", i, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("broker: publish: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return fmt.Errorf("broker: publish: %w", nova.ErrClosed)
	}
	now := b.cfg.NowFunc()
	b.pruneSeen(now)
	for _, e := range envelopes {
		if _, dup := b.seen[e.ID]; dup {
			continue
		}
		b.seen[e.ID] = now
		b.seenLog.push(seenEntry{e.ID, now})
		e = e.Clone()
		if e.Timestamp.IsZero() {
			e.Timestamp = time.UnixMilli(now.UnixMilli())
		}
		q := b.topics[e.Topic]
		if q == nil {
			q = &queue[Envelope]{}
			b.topics[e.Topic] = q
		}
		if q.len() >= b.cfg.MaxQueue {
			q.pop()
			b.dropped++
		}
		q.push(e)
		for s := range b.subs {
			if s.group == nil && Match(s.pattern, e.Topic) {
				s.q.push(e)
			}
		}
		for _, g := range b.groups {
			if Match(g.pattern, e.Topic) && g.q.push(e) {
				b.dropped++
			}
		}
	}
	return nil
}

// pruneSeen forgets the IDs published before the window. b.mu is held.
func (b *Memory) pruneSeen(now time.Time) {
	cutoff := now.Add(-b.cfg.DedupWindow)
	for b.seenLog.len() > 0 {
		old := b.seenLog.peek()
		if !old.at.Before(cutoff) {
			return
		}
		b.seenLog.pop()
		if at, ok := b.seen[old.id]; ok && at.Equal(old.at) {
			delete(b.seen, old.id)
		}
	}
}

// Poll implements [Broker.Poll].
func (b *Memory) Poll(ctx context.Context, topic string, max int) ([]Envelope, error) {
	if err := checkPoll(ctx, topic, max); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, fmt.Errorf("broker: poll %q: %w", topic, nova.ErrClosed)
	}
	out := []Envelope{}
	q := b.topics[topic]
	for q != nil && q.len() > 0 && len(out) < max {
		out = append(out, q.pop().Clone())
	}
	if q != nil && q.len() == 0 {
		delete(b.topics, topic)
	}
	return out, nil
}

// PublishDLQ implements [Broker.PublishDLQ].
func (b *Memory) PublishDLQ(ctx context.Context, topic string, e Envelope, reason string) error {
	if err := ValidateTopic(topic); err != nil {
		return err
	}
	if err := e.Validate(); err != nil {
		return err
	}
	if reason == "" {
		return invalidf("dead letter %q: empty reason", e.ID)
	}
	if err := checkString("dead letter "+e.ID+" reason", reason, maxStringLen); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("broker: dead-letter %q: %w", e.ID, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return fmt.Errorf("broker: dead-letter %q: %w", e.ID, nova.ErrClosed)
	}
	b.deadLetter(topic, e.Clone(), reason)
	return nil
}

// deadLetter keeps e under topic. b.mu is held.
func (b *Memory) deadLetter(topic string, e Envelope, reason string) {
	q := b.dlq[topic]
	if q == nil {
		q = &queue[DeadLetter]{}
		b.dlq[topic] = q
	}
	if q.len() >= b.cfg.MaxQueue {
		q.pop()
		b.dropped++
	}
	q.push(DeadLetter{Envelope: e, Topic: topic, Reason: reason, At: b.cfg.NowFunc()})
}

// PollDLQ implements [Broker.PollDLQ].
func (b *Memory) PollDLQ(ctx context.Context, topic string, max int) ([]DeadLetter, error) {
	if err := checkPoll(ctx, topic, max); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, fmt.Errorf("broker: poll dead letters of %q: %w", topic, nova.ErrClosed)
	}
	out := []DeadLetter{}
	q := b.dlq[topic]
	for q != nil && q.len() > 0 && len(out) < max {
		d := q.pop()
		d.Envelope = d.Envelope.Clone()
		out = append(out, d)
	}
	if q != nil && q.len() == 0 {
		delete(b.dlq, topic)
	}
	return out, nil
}

func checkPoll(ctx context.Context, topic string, max int) error {
	if err := ValidateTopic(topic); err != nil {
		return err
	}
	if max < 1 {
		return invalidf("poll of %q: max is %d: want at least 1", topic, max)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("broker: poll %q: %w", topic, err)
	}
	return nil
}

// Dropped returns how many envelopes and dead letters were discarded
// because their topic's queue was full (see [MemoryConfig.MaxQueue]).
func (b *Memory) Dropped() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dropped
}

// Subscribe implements [Broker.Subscribe]. Unsubscribe must not be called
// from the subscription's own handler, which would wait for itself; a
// handler that wants to stop returns and cancels the ctx it subscribed
// with.
func (b *Memory) Subscribe(ctx context.Context, pattern string, h Handler) (Subscription, error) {
	if err := ValidatePattern(pattern); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("broker: subscribe to %q: %w", pattern, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, fmt.Errorf("broker: subscribe to %q: %w", pattern, nova.ErrClosed)
	}
	return b.start(ctx, pattern, nil, &memQueue{}, h), nil
}

// SubscribeGroup implements [GroupSubscriber]. As with Subscribe,
// Unsubscribe must not be called from the member's own handler.
func (b *Memory) SubscribeGroup(ctx context.Context, group, pattern string, h Handler) (Subscription, error) {
	if err := ValidateGroup(group); err != nil {
		return nil, err
	}
	if err := ValidatePattern(pattern); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("broker: join group %q: %w", group, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, fmt.Errorf("broker: join group %q: %w", group, nova.ErrClosed)
	}
	g := b.groups[group]
	if g == nil {
		g = &memGroup{name: group, pattern: pattern, q: &memQueue{limit: b.cfg.MaxQueue}}
		b.groups[group] = g
	} else if g.pattern != pattern {
		return nil, invalidf("join group %q with pattern %q: the group's pattern is %q", group, pattern, g.pattern)
	}
	return b.start(ctx, pattern, g, g.q, h), nil
}

// start runs a subscription, or a member of group g, taking its
// deliveries from q. b.mu is held.
func (b *Memory) start(ctx context.Context, pattern string, g *memGroup, q *memQueue, h Handler) *memSub {
	sctx, cancel := context.WithCancel(ctx)
	s := &memSub{
		b:       b,
		pattern: pattern,
		group:   g,
		q:       q,
		h:       h,
		ctx:     sctx,
		cancel:  cancel,
		done:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
	}
	q.join(s.wake)
	b.subs[s] = struct{}{}
	b.wg.Add(1)
	go s.run()
	return s
}

// Close implements [Broker.Close]. It returns once every subscription's
// goroutine has ended; a concurrent second Close waits as well.
func (b *Memory) Close() error {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		for s := range b.subs {
			s.cancel()
		}
		b.topics, b.dlq, b.seen, b.groups = nil, nil, nil, nil
		b.seenLog = queue[seenEntry]{}
	}
	b.mu.Unlock()
	b.wg.Wait()
	return nil
}

// memGroup is a consumer group of a Memory broker: its members share
// one queue.
type memGroup struct {
	name    string
	pattern string
	q       *memQueue
}

// memQueue holds the deliveries waiting for a subscription, or for the
// members of a group.
type memQueue struct {
	limit int // most first deliveries kept; 0: no limit

	mu      sync.Mutex
	ready   queue[delivery] // first deliveries, in publish order
	retry   []delivery      // redeliveries, by due time
	waiters map[chan struct{}]struct{}
}

// delivery is an envelope waiting for a subscription or a group, with
// the failures it has had there.
type delivery struct {
	env      Envelope
	failures int
	due      time.Time // zero for a first delivery
}

// join registers a consumer's wake channel; leave removes it.
func (q *memQueue) join(wake chan struct{}) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.waiters == nil {
		q.waiters = make(map[chan struct{}]struct{})
	}
	q.waiters[wake] = struct{}{}
}

func (q *memQueue) leave(wake chan struct{}) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.waiters, wake)
}

// wakeAll tells every consumer that something was queued. q.mu is held.
func (q *memQueue) wakeAll() {
	for w := range q.waiters {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// push queues e for a first delivery and reports whether the oldest
// waiting one was discarded to make room.
func (q *memQueue) push(e Envelope) (dropped bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.limit > 0 && q.ready.len() >= q.limit {
		q.ready.pop()
		dropped = true
	}
	q.ready.push(delivery{env: e})
	q.wakeAll()
	return dropped
}

// next returns the delivery to make now, or how long until a redelivery
// is due (0: nothing is waiting).
func (q *memQueue) next() (delivery, time.Duration, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := time.Now()
	if len(q.retry) > 0 && !q.retry[0].due.After(now) {
		d := q.retry[0]
		q.retry = q.retry[1:]
		return d, 0, true
	}
	if q.ready.len() > 0 {
		return q.ready.pop(), 0, true
	}
	if len(q.retry) > 0 {
		return delivery{}, max(q.retry[0].due.Sub(now), time.Nanosecond), false
	}
	return delivery{}, 0, false
}

// putBack returns a delivery taken with next and not made: a first
// delivery goes back to the head of the line, a redelivery among the
// others by due time.
func (q *memQueue) putBack(d delivery) {
	if d.due.IsZero() {
		q.mu.Lock()
		q.ready.pushFront(d)
		q.wakeAll()
		q.mu.Unlock()
		return
	}
	q.redeliver(d)
}

// redeliver queues d for a redelivery at d.due.
func (q *memQueue) redeliver(d delivery) {
	q.mu.Lock()
	defer q.mu.Unlock()
	i := len(q.retry)
	for i > 0 && q.retry[i-1].due.After(d.due) {
		i--
	}
	q.retry = append(q.retry, delivery{})
	copy(q.retry[i+1:], q.retry[i:])
	q.retry[i] = d
	q.wakeAll()
}

// memSub is one subscription, or one member of a group, of a Memory
// broker.
type memSub struct {
	b       *Memory
	pattern string
	group   *memGroup // nil for a subscription
	q       *memQueue // its own, or the group's
	h       Handler
	ctx     context.Context // cancelled when the subscription ends
	cancel  context.CancelFunc
	done    chan struct{}
	wake    chan struct{} // capacity 1: something was queued
}

func (s *memSub) Done() <-chan struct{} { return s.done }

func (s *memSub) Unsubscribe() error {
	s.cancel()
	<-s.done
	return nil
}

func (s *memSub) run() {
	defer s.b.wg.Done()
	defer close(s.done)
	defer func() {
		s.q.leave(s.wake)
		s.b.mu.Lock()
		delete(s.b.subs, s)
		s.b.mu.Unlock()
		s.cancel()
	}()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		d, wait, ok := s.q.next()
		if !ok {
			var fire <-chan time.Time
			if wait > 0 {
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
				fire = timer.C
			}
			select {
			case <-s.ctx.Done():
				return
			case <-s.wake:
			case <-fire:
			}
			continue
		}
		if s.ctx.Err() != nil {
			if s.group != nil {
				s.q.putBack(d) // for another member
			}
			return
		}
		s.deliver(d)
	}
}

func (s *memSub) deliver(d delivery) {
	env := d.env.Clone()
	env.Attempts = d.env.Attempts + d.failures
	err := s.call(env)
	if err == nil {
		return // acknowledged
	}
	ended := s.ctx.Err() != nil
	if ended && s.group == nil {
		// The subscription ended under the handler: nobody is left to
		// redeliver to.
		return
	}
	if ended {
		err = fmt.Errorf("broker: member of group %q ended without acknowledging envelope %q: %w", s.group.name, env.ID, err)
	}
	d.failures++
	cfg := &s.b.cfg
	if d.failures >= cfg.MaxAttempts {
		env.Attempts = d.env.Attempts + d.failures
		s.b.mu.Lock()
		if !s.b.closed {
			s.b.deadLetter(env.Topic, env, err.Error())
		}
		s.b.mu.Unlock()
		return
	}
	d.due = time.Now()
	if !ended {
		d.due = d.due.Add(backoff.Full(cfg.MinBackoff, cfg.MaxBackoff, d.failures))
	} // else: at once, for another member of the group
	s.q.redeliver(d)
}

// call runs the handler, turning a panic into a rejection.
func (s *memSub) call(e Envelope) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("broker: handler for %q panicked on envelope %q: %v", s.pattern, e.ID, r)
		}
	}()
	return s.h(s.ctx, e)
}

// queue is a FIFO on a slice.
type queue[T any] struct {
	items []T
	head  int
}

func (q *queue[T]) len() int { return len(q.items) - q.head }

func (q *queue[T]) push(v T) { q.items = append(q.items, v) }

func (q *queue[T]) peek() T { return q.items[q.head] }

// pushFront puts v back at the head.
func (q *queue[T]) pushFront(v T) {
	if q.head > 0 {
		q.head--
		q.items[q.head] = v
		return
	}
	q.items = append(q.items, v)
	copy(q.items[1:], q.items)
	q.items[0] = v
}

func (q *queue[T]) pop() T {
	var zero T
	v := q.items[q.head]
	q.items[q.head] = zero
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	} else if q.head > 1024 && q.head > len(q.items)/2 {
		q.items = append(q.items[:0], q.items[q.head:]...)
		q.head = 0
	}
	return v
}

// Guarantees reports that Memory deduplicates by envelope ID across
// topics and counts deliveries itself (a group member that ends without
// answering counts as a failed delivery). It keeps nothing across a
// restart of the process, and a redelivery may come after envelopes
// published later.
func (b *Memory) Guarantees() Guarantees { return Guarantees{Dedup: true, ServerAttempts: true} }
