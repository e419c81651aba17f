package novakafka

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
)

// pollKey names a poller: the Kafka topic it reads and the Nova topic it
// keeps.
type pollKey struct{ kafka, topic string }

// Poll implements [broker.Broker.Poll]. A topic's poll queue is the
// consumer group "<Namespace>.poll.<topic>" reading the events topic from
// its start and keeping the records of topic: the first Poll of a topic
// joins the group, which then stays joined, with what it fetched, until
// Close. Each Poll reads on until it holds max envelopes or has reached
// the end offsets of its partitions as they were when it was called, and
// commits past what it returns (and past the other topics' records), so
// an envelope it does not return stays for the next Poll. It waits at
// most Config.PollWait. See the package documentation for pollers in
// several processes.
func (b *Broker) Poll(ctx context.Context, topic string, max int) ([]broker.Envelope, error) {
	if err := checkPoll(ctx, topic, max); err != nil {
		return nil, err
	}
	p, err := b.poller(b.events, topic)
	if err != nil {
		return nil, fmt.Errorf("novakafka: poll %q: %w", topic, err)
	}
	out := []broker.Envelope{}
	err = p.poll(ctx, func(r *kgo.Record) (bool, error) {
		if len(out) == max {
			return false, nil
		}
		e, err := decode(r)
		if err != nil {
			reason := fmt.Sprintf("novakafka: record %s/%d@%d is not a valid envelope: %v", r.Topic, r.Partition, r.Offset, err)
			if err := b.deadLetter(ctx, topic, e, reason); err != nil {
				return false, err
			}
			return true, nil
		}
		out = append(out, e)
		return true, nil
	}, func() bool { return len(out) == max })
	if err != nil {
		return nil, fmt.Errorf("novakafka: poll %q: %w", topic, err)
	}
	return out, nil
}

// PollDLQ implements [broker.Broker.PollDLQ], as Poll does on the
// dead-letter topic with the group "<Namespace>.dlqpoll.<topic>".
func (b *Broker) PollDLQ(ctx context.Context, topic string, max int) ([]broker.DeadLetter, error) {
	if err := checkPoll(ctx, topic, max); err != nil {
		return nil, err
	}
	p, err := b.poller(b.dlq, topic)
	if err != nil {
		return nil, fmt.Errorf("novakafka: poll dead letters of %q: %w", topic, err)
	}
	out := []broker.DeadLetter{}
	err = p.poll(ctx, func(r *kgo.Record) (bool, error) {
		if len(out) == max {
			return false, nil
		}
		out = append(out, decodeDead(r))
		return true, nil
	}, func() bool { return len(out) == max })
	if err != nil {
		return nil, fmt.Errorf("novakafka: poll dead letters of %q: %w", topic, err)
	}
	return out, nil
}

func checkPoll(ctx context.Context, topic string, max int) error {
	if err := broker.ValidateTopic(topic); err != nil {
		return err
	}
	if max < 1 {
		return nova.Invalidf("novakafka", "poll of %q: max is %d: want at least 1", topic, max)
	}
	return ctx.Err()
}

// poller returns the poller of topic on Kafka topic kt, creating it on
// first use.
func (b *Broker) poller(kt, topic string) (*poller, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, nova.ErrClosed
	}
	k := pollKey{kt, topic}
	if p := b.pollers[k]; p != nil {
		return p, nil
	}
	kind, hdr := "poll", hdrTopic
	if kt == b.dlq {
		kind, hdr = "dlqpoll", hdrDLQTopic
	}
	p := &poller{
		b:      b,
		group:  b.cfg.Namespace + "." + kind + "." + topic,
		kt:     kt,
		hdr:    hdr,
		topic:  topic,
		joined: make(chan struct{}),
		owned:  make(map[int32]uint64),
		pos:    make(map[int32]int64),
		commit: make(map[int32]int64),
	}
	cl, err := kgo.NewClient(b.clientOpts(
		kgo.ConsumerGroup(p.group),
		kgo.ConsumeTopics(kt),
		kgo.ConsumeStartOffset(kgo.NewOffset().AtStart()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(b.cfg.SessionTimeout),
		kgo.HeartbeatInterval(b.cfg.heartbeat()),
		kgo.OnPartitionsAssigned(p.assigned),
		kgo.AdjustFetchOffsetsFn(p.adjust),
		kgo.OnPartitionsRevoked(p.revoked),
		kgo.OnPartitionsLost(p.revoked),
	)...)
	if err != nil {
		return nil, err
	}
	p.cl = cl
	b.pollers[k] = p
	return p, nil
}

// poller is the group member behind Poll (or PollDLQ) of one topic.
//
// Positions are what make a Poll exact without waiting for records that
// may never come: pos holds, per partition this member owns, the offset
// of the next record to fetch (from the committed offset on assignment,
// then past each record fetched). A Poll lists the end offsets when it
// starts and fetches until every owned partition's position has reached
// its end, so it returns everything that was in the log when it was
// called, and waits for nothing else.
type poller struct {
	b     *Broker
	group string // the Kafka group ID
	kt    string // the Kafka topic
	hdr   string // the header naming a record's Nova topic
	topic string
	cl    *kgo.Client

	mu sync.Mutex // one Poll at a time

	smu        sync.Mutex // the fields below; group callbacks change them
	joined     chan struct{}
	joinedOnce sync.Once
	epoch      uint64
	owned      map[int32]uint64 // partition → the epoch it was assigned in
	pos        map[int32]int64  // partition → next offset to fetch
	commit     map[int32]int64  // partition → last committed offset
	buf        []pending        // fetched records of topic not yet returned
}

// pending is a fetched record and the assignment it was fetched under.
type pending struct {
	r     *kgo.Record
	epoch uint64
}

func (p *poller) assigned(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	p.smu.Lock()
	defer p.smu.Unlock()
	p.epoch++
	for _, part := range m[p.kt] {
		p.owned[part] = p.epoch
		delete(p.pos, part)
		delete(p.commit, part)
	}
	p.joinedOnce.Do(func() { close(p.joined) })
}

// adjust learns where each newly assigned partition starts: its committed
// offset, or the log start offset when there is none or it fell out of
// the log. It hands the client that exact offset, so pos is right.
func (p *poller) adjust(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	parts := offsets[p.kt]
	if len(parts) == 0 {
		return offsets, nil
	}
	starts, err := again(ctx, func() (kadm.ListedOffsets, error) { return p.b.adm.ListStartOffsets(ctx, p.kt) })
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("novakafka: start offsets of %s: %w", p.kt, err)
	}
	p.smu.Lock()
	defer p.smu.Unlock()
	for part, o := range parts {
		at := o.EpochOffset().Offset
		if s, ok := starts.Lookup(p.kt, part); ok && at < s.Offset {
			at = s.Offset
		}
		if at < 0 {
			at = 0
		}
		parts[part] = kgo.NewOffset().At(at)
		p.pos[part] = at
		p.commit[part] = at
	}
	return offsets, nil
}

// revoked forgets partitions that went to another member: their pending
// records are dropped (by epoch) and nothing more is committed for them.
func (p *poller) revoked(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	p.smu.Lock()
	defer p.smu.Unlock()
	for _, part := range m[p.kt] {
		delete(p.owned, part)
		delete(p.pos, part)
		delete(p.commit, part)
	}
}

// poll fetches until full reports true or every owned partition has been
// read to the end offset it had when poll started, offering each pending
// record of the topic, in order, to take: true takes it (it is committed),
// false leaves it and every later one for the next poll. Then it commits
// past what was taken. On an error nothing is committed and the pending
// records stay.
func (p *poller) poll(ctx context.Context, take func(*kgo.Record) (bool, error), full func() bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.cl.AllowRebalance()
	wctx, cancel := context.WithTimeout(ctx, p.b.cfg.PollWait)
	defer cancel()
	select {
	case <-p.joined:
	case <-wctx.Done():
		return p.timeout(ctx, wctx, "joining the consumer group")
	}
	ends, err := again(wctx, func() (kadm.ListedOffsets, error) { return p.b.adm.ListEndOffsets(wctx, p.kt) })
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		if wctx.Err() != nil {
			return p.timeout(ctx, wctx, "listing end offsets")
		}
		return p.closedOr(err)
	}
	taken := 0 // p.buf[:taken] were offered and taken
	for {
		stop := false
		for !stop && taken < p.lenBuf() {
			pd, owned := p.at(taken)
			if !owned {
				taken++ // its partition moved: the new owner has it
				continue
			}
			ok, err := take(pd.r)
			if err != nil {
				return err
			}
			if !ok {
				stop = true
				break
			}
			taken++
		}
		if stop || full() {
			break
		}
		if err := p.resolve(wctx); err != nil {
			if wctx.Err() != nil {
				return p.timeout(ctx, wctx, "reading the group's offsets")
			}
			return p.closedOr(err)
		}
		if p.caughtUp(ends) {
			break
		}
		fs := p.cl.PollRecords(wctx, 0)
		if fs.IsClientClosed() {
			return nova.ErrClosed
		}
		if wctx.Err() != nil {
			if taken > 0 {
				break // return what there is; the rest comes next time
			}
			return p.timeout(ctx, wctx, "fetching")
		}
		fs.EachError(func(topic string, part int32, err error) {
			p.b.cfg.Logger.Warn("novakafka: poll fetch failed", "topic", topic, "partition", part, "err", err)
		})
		p.add(fs)
	}
	return p.commitTaken(wctx, taken)
}

func (p *poller) lenBuf() int {
	p.smu.Lock()
	defer p.smu.Unlock()
	return len(p.buf)
}

// at returns pending record i and whether its partition is still owned
// under the assignment it was fetched in.
func (p *poller) at(i int) (pending, bool) {
	p.smu.Lock()
	defer p.smu.Unlock()
	pd := p.buf[i]
	e, ok := p.owned[pd.r.Partition]
	return pd, ok && e == pd.epoch
}

// add advances the positions past the fetched records and keeps those of
// the topic.
func (p *poller) add(fs kgo.Fetches) {
	p.smu.Lock()
	defer p.smu.Unlock()
	fs.EachRecord(func(r *kgo.Record) {
		e, ok := p.owned[r.Partition]
		if !ok {
			return
		}
		p.pos[r.Partition] = r.Offset + 1
		if t, ok := header(r, p.hdr); ok && t == p.topic {
			p.buf = append(p.buf, pending{r, e})
		}
	})
}

// resolve learns the position of owned partitions that adjust did not
// see: those without a committed offset, which the client starts at the
// log start. A committed offset found meanwhile wins.
func (p *poller) resolve(ctx context.Context) error {
	p.smu.Lock()
	var unknown []int32
	for part := range p.owned {
		if _, ok := p.pos[part]; !ok {
			unknown = append(unknown, part)
		}
	}
	p.smu.Unlock()
	if len(unknown) == 0 {
		return nil
	}
	committed, err := again(ctx, func() (kadm.OffsetResponses, error) { return p.b.adm.FetchOffsets(ctx, p.group) })
	if errors.Is(err, kerr.GroupIDNotFound) {
		committed, err = nil, nil
	}
	if err == nil {
		err = committed.Error()
	}
	if err != nil {
		return fmt.Errorf("offsets of group %s: %w", p.group, err)
	}
	starts, err := again(ctx, func() (kadm.ListedOffsets, error) { return p.b.adm.ListStartOffsets(ctx, p.kt) })
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return fmt.Errorf("start offsets of %s: %w", p.kt, err)
	}
	p.smu.Lock()
	defer p.smu.Unlock()
	for _, part := range unknown {
		if _, owned := p.owned[part]; !owned {
			continue
		}
		if _, ok := p.pos[part]; ok {
			continue
		}
		at := int64(0)
		if s, ok := starts.Lookup(p.kt, part); ok {
			at = s.Offset
		}
		if c, ok := committed.Lookup(p.kt, part); ok && c.At > at {
			at = c.At
		}
		p.pos[part] = at
		p.commit[part] = -1
	}
	return nil
}

// caughtUp reports whether every owned partition was read to its end
// offset in ends.
func (p *poller) caughtUp(ends kadm.ListedOffsets) bool {
	p.smu.Lock()
	defer p.smu.Unlock()
	for part := range p.owned {
		pos, known := p.pos[part]
		if !known {
			return false
		}
		if end, ok := ends.Lookup(p.kt, part); ok && pos < end.Offset {
			return false
		}
	}
	return true
}

// commitTaken commits, for each owned partition, the offset of its first
// pending record not taken, or its position when it has none, and drops
// the taken records. A failed commit keeps them pending.
func (p *poller) commitTaken(ctx context.Context, taken int) error {
	p.smu.Lock()
	next := make(map[int32]int64)
	for _, pd := range p.buf[taken:] {
		if e, ok := p.owned[pd.r.Partition]; ok && e == pd.epoch {
			if _, seen := next[pd.r.Partition]; !seen {
				next[pd.r.Partition] = pd.r.Offset
			}
		}
	}
	offsets := make(map[int32]kgo.EpochOffset)
	for part := range p.owned {
		at, ok := next[part]
		if !ok {
			if at, ok = p.pos[part]; !ok {
				continue
			}
		}
		if at != p.commit[part] {
			offsets[part] = kgo.EpochOffset{Epoch: -1, Offset: at}
		}
	}
	p.smu.Unlock()
	if len(offsets) > 0 {
		var cerr error
		p.cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{p.kt: offsets},
			func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
				if err != nil {
					cerr = err
					return
				}
				for _, t := range resp.Topics {
					for _, pr := range t.Partitions {
						if err := kerr.ErrorForCode(pr.ErrorCode); err != nil && cerr == nil {
							cerr = fmt.Errorf("partition %d: %w", pr.Partition, err)
						}
					}
				}
			})
		if cerr != nil {
			return p.closedOr(fmt.Errorf("commit: %w", cerr))
		}
	}
	p.smu.Lock()
	defer p.smu.Unlock()
	for part, o := range offsets {
		if _, ok := p.owned[part]; ok {
			p.commit[part] = o.Offset
		}
	}
	p.buf = append(p.buf[:0:0], p.buf[taken:]...)
	return nil
}

// timeout returns ctx's error when the caller's ctx ended, else an error
// saying what did not finish within PollWait.
func (p *poller) timeout(ctx, wctx context.Context, what string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return fmt.Errorf("%s took longer than Config.PollWait %v: %w", what, p.b.cfg.PollWait, wctx.Err())
}

// closedOr returns an error matching nova.ErrClosed when the broker is
// closed, else err.
func (p *poller) closedOr(err error) error {
	if p.b.isClosed() || errors.Is(err, kgo.ErrClientClosed) {
		return fmt.Errorf("%w: %w", nova.ErrClosed, err)
	}
	return err
}

// close leaves the group and closes the client.
func (p *poller) close() {
	ctx, cancel := context.WithTimeout(context.Background(), leaveTimeout)
	defer cancel()
	p.cl.AllowRebalance()
	_ = p.cl.LeaveGroupContext(ctx)
	p.cl.CloseAllowingRebalance()
}
