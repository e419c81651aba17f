package novakafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
)

// maxReasonLen bounds a dead-letter reason given to PublishDLQ, as every
// broker does.
const maxReasonLen = 4096

// Broker is a [broker.Broker] on a Kafka cluster. Create it with [New];
// every method is safe for concurrent use.
type Broker struct {
	cfg    Config
	events string // the Kafka topic of envelopes
	dlq    string // the Kafka topic of dead letters
	cl     *kgo.Client
	adm    *kadm.Client

	mu      sync.Mutex
	closed  bool
	subs    map[*consumer]struct{}
	pollers map[pollKey]*poller
	wg      sync.WaitGroup // one per running subscription

	closeOnce sync.Once
}

var (
	_ broker.Broker          = (*Broker)(nil)
	_ broker.BatchPublisher  = (*Broker)(nil)
	_ broker.GroupSubscriber = (*Broker)(nil)
	_ broker.Guarantor       = (*Broker)(nil)
)

// New connects to the cluster at cfg.Seeds and creates the namespace's
// two topics when they do not exist (see [Config]). ctx bounds the
// connection and the creation. An invalid cfg returns an error matching
// [nova.ErrInvalid] that names the field.
func New(ctx context.Context, cfg Config) (*Broker, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	b := &Broker{
		cfg:     cfg,
		events:  cfg.Namespace + ".events",
		dlq:     cfg.Namespace + ".dlq",
		subs:    make(map[*consumer]struct{}),
		pollers: make(map[pollKey]*poller),
	}
	cl, err := kgo.NewClient(b.clientOpts(
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchMaxBytes(int32(cfg.MaxMessageBytes)),
		// Publish waits for each record, so lingering would only delay it;
		// concurrent publishes still share a request while one is in flight.
		kgo.ProducerLinger(0),
	)...)
	if err != nil {
		return nil, fmt.Errorf("novakafka: client: %w", err)
	}
	b.cl = cl
	b.adm = kadm.NewClient(cl)
	if err := b.createTopics(ctx); err != nil {
		cl.Close()
		return nil, err
	}
	return b, nil
}

// clientOpts returns the options every client of the broker starts from,
// then extra, then Config.Options.
func (b *Broker) clientOpts(extra ...kgo.Opt) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(b.cfg.Seeds...),
		kgo.WithLogger(kgoLogger{b.cfg.Logger}),
	}
	opts = append(opts, extra...)
	return append(opts, b.cfg.Options...)
}

// createTopics creates the events and dead-letter topics unless they
// exist.
func (b *Broker) createTopics(ctx context.Context) error {
	configs := map[string]*string{"max.message.bytes": kadm.StringPtr(strconv.Itoa(b.cfg.MaxMessageBytes))}
	for k, v := range b.cfg.TopicConfigs {
		configs[k] = kadm.StringPtr(v)
	}
	rf := int16(b.cfg.ReplicationFactor)
	if rf == 0 {
		rf = -1
	}
	resp, err := again(ctx, func() (kadm.CreateTopicResponses, error) {
		return b.adm.CreateTopics(ctx, int32(b.cfg.Partitions), rf, configs, b.events, b.dlq)
	})
	if err != nil {
		return fmt.Errorf("novakafka: create topics %s and %s: %w", b.events, b.dlq, err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("novakafka: create topic %s: %w (%s)", r.Topic, r.Err, r.ErrMessage)
		}
	}
	return nil
}

// Publish implements [broker.Broker.Publish]: it produces one record and
// waits until every in-sync replica has it (acks=all). On an error the
// envelope may or may not have been written.
func (b *Broker) Publish(ctx context.Context, e broker.Envelope) error {
	return b.PublishBatch(ctx, []broker.Envelope{e})
}

// PublishBatch implements [broker.BatchPublisher]: it validates every
// envelope first, so bad input publishes none, hands all records to the
// producer at once and then waits for all of them. Records of one
// partition are written in order.
func (b *Broker) PublishBatch(ctx context.Context, envelopes []broker.Envelope) error {
	now := time.UnixMilli(time.Now().UnixMilli())
	records := make([]*kgo.Record, len(envelopes))
	for i, e := range envelopes {
		err := e.Validate()
		if err == nil {
			if e.Timestamp.IsZero() {
				e.Timestamp = now
			}
			records[i] = encode(b.events, e)
			err = b.checkSize(e.ID, records[i])
		}
		if err != nil {
			if len(envelopes) == 1 {
				return err
			}
			return nova.Invalidf("novakafka", "envelope %d: %v", i, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("novakafka: publish: %w", err)
	}
	if len(records) == 0 {
		return nil
	}
	if b.isClosed() {
		return fmt.Errorf("novakafka: publish: %w", nova.ErrClosed)
	}
	if err := b.produce(ctx, records); err != nil {
		return fmt.Errorf("novakafka: publish: %w", err)
	}
	return nil
}

// checkSize refuses a record the producer would refuse as too large.
func (b *Broker) checkSize(id string, r *kgo.Record) error {
	if n := recordSize(r); n > b.cfg.MaxMessageBytes {
		return nova.Invalidf("novakafka", "envelope %q: its record takes up to %d bytes, more than Config.MaxMessageBytes %d", id, n, b.cfg.MaxMessageBytes)
	}
	return nil
}

// produce hands records to the producer and waits for all of them, or for
// ctx. A record already sent cannot be taken back: when ctx ends first the
// outcome is unknown, and the error says so.
func (b *Broker) produce(ctx context.Context, records []*kgo.Record) error {
	results := make(chan error, len(records))
	for _, r := range records {
		b.cl.Produce(ctx, r, func(_ *kgo.Record, err error) { results <- err })
	}
	var first error
	for range records {
		select {
		case err := <-results:
			if err != nil && first == nil {
				first = err
			}
		case <-ctx.Done():
			return fmt.Errorf("waiting for the cluster, the outcome is unknown: %w", ctx.Err())
		}
	}
	if errors.Is(first, kgo.ErrClientClosed) {
		return fmt.Errorf("%w: %w", nova.ErrClosed, first)
	}
	return first
}

// PublishDLQ implements [broker.Broker.PublishDLQ]: it produces a record
// to the dead-letter topic with the reason and the time in its headers.
func (b *Broker) PublishDLQ(ctx context.Context, topic string, e broker.Envelope, reason string) error {
	if err := broker.ValidateTopic(topic); err != nil {
		return err
	}
	if err := e.Validate(); err != nil {
		return err
	}
	switch {
	case reason == "":
		return nova.Invalidf("novakafka", "dead letter %q: empty reason", e.ID)
	case len(reason) > maxReasonLen:
		return nova.Invalidf("novakafka", "dead letter %q: reason of %d bytes is longer than the limit of %d", e.ID, len(reason), maxReasonLen)
	case !utf8.ValidString(reason) || strings.IndexByte(reason, 0) >= 0:
		return nova.Invalidf("novakafka", "dead letter %q: reason %q is not valid UTF-8 without NUL bytes", e.ID, reason)
	}
	r := encodeDead(b.dlq, topic, e, reason, time.Now())
	if err := b.checkSize(e.ID, r); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("novakafka: dead-letter %q: %w", e.ID, err)
	}
	if b.isClosed() {
		return fmt.Errorf("novakafka: dead-letter %q: %w", e.ID, nova.ErrClosed)
	}
	if err := b.produce(ctx, []*kgo.Record{r}); err != nil {
		return fmt.Errorf("novakafka: dead-letter %q: %w", e.ID, err)
	}
	return nil
}

// deadLetter keeps e under topic for a consumer, trying again with backoff
// until the cluster has it or ctx ends.
func (b *Broker) deadLetter(ctx context.Context, topic string, e broker.Envelope, reason string) error {
	r := encodeDead(b.dlq, topic, e, reason, time.Now())
	if recordSize(r) > b.cfg.MaxMessageBytes {
		// The reason made it too large: keep the reason's start.
		over := recordSize(r) - b.cfg.MaxMessageBytes
		if over < len(reason) {
			reason = strings.ToValidUTF8(reason[:len(reason)-over], "")
		} else {
			reason = "(reason too long to keep)"
		}
		r = encodeDead(b.dlq, topic, e, reason, time.Now())
	}
	for n := 1; ; n++ {
		err := b.produce(ctx, []*kgo.Record{r})
		if err == nil || ctx.Err() != nil || errors.Is(err, nova.ErrClosed) {
			return err
		}
		b.cfg.Logger.Warn("novakafka: dead-letter failed, trying again", "topic", topic, "id", e.ID, "err", err)
		if err := sleep(ctx, b.cfg.MinBackoff, b.cfg.MaxBackoff, n); err != nil {
			return err
		}
	}
}

// Guarantees reports order per key and durability, without
// deduplication: Kafka's idempotent producer drops only its own retries,
// not an envelope published again.
func (b *Broker) Guarantees() broker.Guarantees {
	return broker.Guarantees{KeyOrder: true, Durable: true}
}

func (b *Broker) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// Close implements [broker.Broker.Close]: it ends every subscription,
// waits for their handlers, commits what group subscriptions
// acknowledged, leaves the consumer groups and closes the clients. A
// concurrent second Close waits as well.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		subs := make([]*consumer, 0, len(b.subs))
		for c := range b.subs {
			subs = append(subs, c)
		}
		pollers := b.pollers
		b.pollers = nil
		b.mu.Unlock()
		for _, c := range subs {
			c.cancel()
		}
		b.wg.Wait()
		var wg sync.WaitGroup
		for _, p := range pollers {
			wg.Go(p.close)
		}
		wg.Wait()
		b.cl.Close()
	})
	return nil
}

// kgoLogger passes franz-go's warnings and errors to a slog.Logger.
type kgoLogger struct{ l *slog.Logger }

func (k kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lv := slog.LevelWarn
	if level == kgo.LogLevelError {
		lv = slog.LevelError
	}
	k.l.Log(context.Background(), lv, "novakafka: kafka client: "+msg, keyvals...)
}
