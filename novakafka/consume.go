package novakafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/internal/backoff"
)

// leaveTimeout bounds the commit and the leave of a group member that
// stops, so Close returns when the cluster is gone.
const leaveTimeout = 5 * time.Second

// Subscribe implements [broker.Broker.Subscribe]. The subscription is a
// consumer of its own, outside any group, that starts at the end of every
// partition as they are when Subscribe is called, so it receives every
// envelope published after Subscribe returns; partitions added later are
// not read. Each partition is handled in order on a goroutine of its own,
// and a rejected envelope is retried there, blocking the envelopes behind
// it in its partition (see the package documentation). Unsubscribe must
// not be called from the subscription's own handler.
func (b *Broker) Subscribe(ctx context.Context, pattern string, h broker.Handler) (broker.Subscription, error) {
	if err := checkSubscribe(ctx, pattern, h); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("novakafka: subscribe to %q: %w", pattern, err)
	}
	if b.isClosed() {
		return nil, fmt.Errorf("novakafka: subscribe to %q: %w", pattern, nova.ErrClosed)
	}
	ends, err := again(ctx, func() (kadm.ListedOffsets, error) { return b.adm.ListEndOffsets(ctx, b.events) })
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("novakafka: subscribe to %q: end offsets of %s: %w", pattern, b.events, err)
	}
	start := make(map[int32]kgo.Offset)
	ends.Each(func(o kadm.ListedOffset) { start[o.Partition] = kgo.NewOffset().At(o.Offset) })
	c := b.newConsumer(ctx, "", pattern, h)
	cl, err := kgo.NewClient(b.clientOpts(
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{b.events: start}),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)...)
	if err != nil {
		c.cancel()
		return nil, fmt.Errorf("novakafka: subscribe to %q: %w", pattern, err)
	}
	return b.start(c, cl)
}

// SubscribeGroup implements [broker.GroupSubscriber]: the members of
// group are the members of the Kafka consumer group
// "<Namespace>.group.<group>". The first SubscribeGroup of a group
// commits the end offsets of every partition, so the group receives what
// is published from then on. A handler's acknowledgement marks the
// record, and marked offsets are committed every Config.CommitInterval,
// when a partition moves to another member and when the subscription
// ends; the records after the last commit of a member that dies go to
// the member that takes its partitions, once the group's session timeout
// has passed.
func (b *Broker) SubscribeGroup(ctx context.Context, group, pattern string, h broker.Handler) (broker.Subscription, error) {
	if err := checkSubscribe(ctx, pattern, h); err != nil {
		return nil, err
	}
	if err := checkGroup(group); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("novakafka: subscribe group %q to %q: %w", group, pattern, err)
	}
	if b.isClosed() {
		return nil, fmt.Errorf("novakafka: subscribe group %q to %q: %w", group, pattern, nova.ErrClosed)
	}
	gid := b.cfg.Namespace + ".group." + group
	if err := b.createGroup(ctx, gid); err != nil {
		return nil, fmt.Errorf("novakafka: subscribe group %q to %q: %w", group, pattern, err)
	}
	c := b.newConsumer(ctx, gid, pattern, h)
	cl, err := kgo.NewClient(b.clientOpts(
		kgo.ConsumerGroup(gid),
		kgo.ConsumeTopics(b.events),
		kgo.ConsumeStartOffset(kgo.NewOffset().AtStart()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(b.cfg.CommitInterval),
		kgo.SessionTimeout(b.cfg.SessionTimeout),
		kgo.HeartbeatInterval(b.cfg.heartbeat()),
		kgo.OnPartitionsAssigned(c.assigned),
		kgo.OnPartitionsRevoked(c.revoked),
		kgo.OnPartitionsLost(c.lost),
	)...)
	if err != nil {
		c.cancel()
		return nil, fmt.Errorf("novakafka: subscribe group %q to %q: %w", group, pattern, err)
	}
	return b.start(c, cl)
}

// createGroup commits the end offsets of the events topic for a group
// that has no offsets yet. A group whose members already run refuses the
// commit, which is then not needed.
func (b *Broker) createGroup(ctx context.Context, gid string) error {
	have, err := again(ctx, func() (kadm.OffsetResponses, error) { return b.adm.FetchOffsets(ctx, gid) })
	if errors.Is(err, kerr.GroupIDNotFound) {
		have, err = nil, nil
	}
	if err != nil {
		return fmt.Errorf("offsets of group %s: %w", gid, err)
	}
	if len(have[b.events]) > 0 {
		return nil
	}
	ends, err := again(ctx, func() (kadm.ListedOffsets, error) { return b.adm.ListEndOffsets(ctx, b.events) })
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("end offsets of %s: %w", b.events, err)
	}
	resp, err := again(ctx, func() (kadm.OffsetResponses, error) { return b.adm.CommitOffsets(ctx, gid, ends.Offsets()) })
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		b.cfg.Logger.Info("novakafka: group already running, its offsets kept", "group", gid, "err", err)
	}
	return nil
}

func checkSubscribe(ctx context.Context, pattern string, h broker.Handler) error {
	if err := broker.ValidatePattern(pattern); err != nil {
		return err
	}
	return nil
}

// checkGroup accepts the group names every broker backend does
// ([broker.ValidateGroup]).
func checkGroup(group string) error {
	if err := broker.ValidateGroup(group); err != nil {
		return nova.Invalidf("novakafka", "%w", err)
	}
	return nil
}

// consumer is one subscription: a client of its own, a goroutine that
// polls it, and a worker goroutine per partition with records.
type consumer struct {
	b       *Broker
	group   string // the Kafka group ID; "" outside a group
	pattern string
	h       broker.Handler
	cl      *kgo.Client
	ctx     context.Context // ends the subscription
	cancel  context.CancelFunc
	done    chan struct{}

	mu      sync.Mutex
	owned   map[int32]bool // group: the partitions assigned to this member
	workers map[int32]*worker
	wg      sync.WaitGroup // the workers
}

// worker handles one partition's records in order.
type worker struct {
	ch     chan []*kgo.Record
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

func (b *Broker) newConsumer(ctx context.Context, group, pattern string, h broker.Handler) *consumer {
	cctx, cancel := context.WithCancel(ctx)
	return &consumer{
		b:       b,
		group:   group,
		pattern: pattern,
		h:       h,
		ctx:     cctx,
		cancel:  cancel,
		done:    make(chan struct{}),
		owned:   make(map[int32]bool),
		workers: make(map[int32]*worker),
	}
}

// start registers c and starts its goroutine, or closes cl when the
// broker closed meanwhile.
func (b *Broker) start(c *consumer, cl *kgo.Client) (broker.Subscription, error) {
	c.cl = cl
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		c.cancel()
		cl.Close()
		return nil, fmt.Errorf("novakafka: subscribe to %q: %w", c.pattern, nova.ErrClosed)
	}
	b.subs[c] = struct{}{}
	b.wg.Add(1)
	b.mu.Unlock()
	go c.run()
	return c, nil
}

func (c *consumer) Done() <-chan struct{} { return c.done }

func (c *consumer) Unsubscribe() error {
	c.cancel()
	<-c.done
	return nil
}

// run polls records and hands each partition's to its worker until the
// subscription ends; then it stops the workers, commits what they
// acknowledged, leaves the group and closes the client.
func (c *consumer) run() {
	defer c.b.wg.Done()
	defer close(c.done)
	defer func() {
		c.b.mu.Lock()
		delete(c.b.subs, c)
		c.b.mu.Unlock()
	}()
	failures := 0
	for {
		fs := c.cl.PollFetches(c.ctx)
		if c.ctx.Err() != nil || fs.IsClientClosed() {
			break
		}
		failed := false
		fs.EachError(func(topic string, p int32, err error) {
			failed = true
			c.b.cfg.Logger.Warn("novakafka: fetch failed", "topic", topic, "partition", p, "err", err)
		})
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			w := c.worker(p.Partition)
			if w == nil {
				return
			}
			select {
			case w.ch <- p.Records:
			case <-w.ctx.Done():
			}
		})
		if failed && fs.NumRecords() == 0 {
			failures++
			if sleep(c.ctx, c.b.cfg.MinBackoff, c.b.cfg.MaxBackoff, failures) != nil {
				break
			}
		} else {
			failures = 0
		}
	}
	c.cancel()
	c.stop(nil)
	if c.group != "" {
		ctx, cancel := context.WithTimeout(context.Background(), leaveTimeout)
		if err := c.cl.CommitMarkedOffsets(ctx); err != nil {
			c.b.cfg.Logger.Warn("novakafka: commit on leaving failed; the records after the last commit will be delivered again", "group", c.group, "err", err)
		}
		_ = c.cl.LeaveGroupContext(ctx)
		cancel()
	}
	c.cl.Close()
}

// worker returns the worker of partition p, starting it if needed, or nil
// when p is not this member's.
func (c *consumer) worker(p int32) *worker {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx.Err() != nil || (c.group != "" && !c.owned[p]) {
		return nil
	}
	if w := c.workers[p]; w != nil {
		return w
	}
	ctx, cancel := context.WithCancel(c.ctx)
	w := &worker{ch: make(chan []*kgo.Record, 4), ctx: ctx, cancel: cancel, done: make(chan struct{})}
	c.workers[p] = w
	c.wg.Go(func() { c.work(w) })
	return w
}

// stop stops the workers of the partitions ps (all when ps is nil) and
// waits for them: a handler running is cancelled, and its record and
// those queued behind it are left unmarked.
func (c *consumer) stop(ps []int32) {
	c.mu.Lock()
	var stopped []*worker
	for p, w := range c.workers {
		if ps == nil || contains(ps, p) {
			w.cancel()
			stopped = append(stopped, w)
			delete(c.workers, p)
		}
	}
	for _, p := range ps {
		delete(c.owned, p)
	}
	c.mu.Unlock()
	for _, w := range stopped {
		<-w.done
	}
}

func contains(ps []int32, p int32) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// assigned records the partitions the group gave this member.
func (c *consumer) assigned(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range m[c.b.events] {
		c.owned[p] = true
	}
}

// revoked stops the workers of partitions that move to another member
// and commits what they acknowledged, so the next owner starts there.
func (c *consumer) revoked(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
	c.stop(nonNil(m[c.b.events]))
	if c.ctx.Err() != nil {
		return // run commits once the workers are stopped
	}
	if err := cl.CommitMarkedOffsets(ctx); err != nil {
		c.b.cfg.Logger.Warn("novakafka: commit on revoke failed; records after the last commit will be delivered again", "group", c.group, "err", err)
	}
}

// lost stops the workers of partitions this member lost without a
// chance to commit (its session expired).
func (c *consumer) lost(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	c.stop(nonNil(m[c.b.events]))
}

func nonNil(ps []int32) []int32 {
	if ps == nil {
		return []int32{}
	}
	return ps
}

// work handles w's records in order until w is stopped.
func (c *consumer) work(w *worker) {
	defer close(w.done)
	for {
		select {
		case <-w.ctx.Done():
			return
		case rs := <-w.ch:
			for _, r := range rs {
				if !c.handle(w.ctx, r) {
					return
				}
			}
		}
	}
}

// handle settles one record: skips it when its topic does not match,
// dead-letters it when it is not an envelope, and otherwise delivers it
// until the handler acknowledges it or the attempts are used up and it
// is dead-lettered. It marks a settled record for commit and returns
// false when ctx ended before the record was settled.
func (c *consumer) handle(ctx context.Context, r *kgo.Record) bool {
	topic, ok := recordTopic(r, hdrTopic)
	switch {
	case !ok && c.group == "":
		return c.settle(r) // a group dead-letters it, once per group
	case !ok:
		reason := fmt.Sprintf("novakafka: record %s/%d@%d has no valid %s header", r.Topic, r.Partition, r.Offset, hdrTopic)
		e, _ := decode(r)
		if e.ID == "" {
			e.ID = fmt.Sprintf("%s-%d-%d", r.Topic, r.Partition, r.Offset)
		}
		if c.b.deadLetter(ctx, InvalidTopic, e, reason) != nil {
			return false
		}
		return c.settle(r)
	case !broker.Match(c.pattern, topic):
		return c.settle(r)
	}
	env, err := decode(r)
	if err != nil {
		reason := fmt.Sprintf("novakafka: record %s/%d@%d is not a valid envelope: %v", r.Topic, r.Partition, r.Offset, err)
		if c.b.deadLetter(ctx, topic, env, reason) != nil {
			return false
		}
		return c.settle(r)
	}
	cfg := &c.b.cfg
	for failures := 0; ; {
		e := env.Clone()
		e.Attempts = env.Attempts + failures
		err := c.call(ctx, e)
		if err == nil {
			return c.settle(r)
		}
		if ctx.Err() != nil {
			return false
		}
		failures++
		if failures >= cfg.MaxAttempts {
			e.Attempts = env.Attempts + failures
			if c.b.deadLetter(ctx, topic, e, err.Error()) != nil {
				return false
			}
			return c.settle(r)
		}
		if sleep(ctx, cfg.MinBackoff, cfg.MaxBackoff, failures) != nil {
			return false
		}
	}
}

// settle marks r for commit in a group.
func (c *consumer) settle(r *kgo.Record) bool {
	if c.group != "" {
		c.cl.MarkCommitRecords(r)
	}
	return true
}

// call runs the handler, turning a panic into a rejection.
func (c *consumer) call(ctx context.Context, e broker.Envelope) (err error) {
	defer func() {
		if v := recover(); v != nil {
			pe := nova.NewPanicError(v)
			pe.Func = fmt.Sprintf("handler for %q on envelope %q", c.pattern, e.ID)
			err = pe
		}
	}()
	return c.h(ctx, e)
}

// sleep waits the backoff before retry n, or until ctx ends.
func sleep(ctx context.Context, lo, hi time.Duration, n int) error {
	return backoff.Sleep(ctx, backoff.Full(lo, hi, n))
}
