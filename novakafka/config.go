package novakafka

import (
	"log/slog"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/nova-go/nova/internal/redelivery"
	"github.com/nova-go/nova/internal/validate"
)

// Defaults used for zero fields of [Config].
const (
	// DefaultNamespace prefixes the Kafka topics and consumer groups.
	DefaultNamespace = "nova"
	// DefaultPartitions is the partition count of the topics the broker
	// creates: one, so every consumer sees envelopes in publish order, as
	// the broker contract says. See [Config.Partitions].
	DefaultPartitions = 1
	// DefaultMaxMessageBytes is the largest record the broker produces,
	// and the max.message.bytes of the topics it creates: 1 MiB, the
	// order of Kafka's own default (1,048,588 bytes).
	DefaultMaxMessageBytes = 1 << 20
	// DefaultSessionTimeout is how long a consumer group member may go
	// without a heartbeat before the group coordinator gives its
	// partitions to another member: Kafka's own default.
	DefaultSessionTimeout = 45 * time.Second
	// DefaultCommitInterval is how often a group subscription commits the
	// offsets of the envelopes its handler acknowledged.
	DefaultCommitInterval = time.Second
	// DefaultPollWait bounds how long Poll and PollDLQ wait to join their
	// consumer group and to fetch the records that were in the log when
	// they were called.
	DefaultPollWait = 10 * time.Second
)

// Limits on [Config] fields.
const (
	// maxNamespaceLen keeps "<namespace>.events" within Kafka's 249
	// bytes for a topic name.
	maxNamespaceLen = 200
	// minMaxMessageBytes is the smallest MaxMessageBytes: room for the
	// record batch and the headers of a small envelope.
	minMaxMessageBytes = 16 << 10
	// maxMaxMessageBytes is the largest MaxMessageBytes, Kafka's limit
	// on a request (socket.request.max.bytes defaults to 100 MiB).
	maxMaxMessageBytes = 100 << 20
)

// Config configures [New]. Seeds is required; the zero value of every
// other field means its default.
type Config struct {
	// Seeds are the host:port addresses of one or more Kafka brokers to
	// bootstrap from. Required.
	Seeds []string

	// Namespace prefixes every Kafka topic and consumer group the broker
	// uses: the topics "<Namespace>.events" and "<Namespace>.dlq", and
	// the groups "<Namespace>.group.<group>", "<Namespace>.poll.<topic>"
	// and "<Namespace>.dlqpoll.<topic>". Brokers with different
	// namespaces share a cluster without seeing each other. Letters,
	// digits, '.', '_' and '-' only, at most 200 bytes. Default
	// [DefaultNamespace].
	Namespace string

	// Partitions is the partition count of the two topics when the broker
	// creates them; topics that exist keep theirs. Default
	// [DefaultPartitions]. With one partition every consumer sees every
	// envelope in publish order. With more, envelopes are spread by key
	// (the envelope's Key, or its topic when the key is empty): order
	// then holds per key — per topic for envelopes without a key — and
	// the members of a consumer group share the partitions.
	Partitions int

	// ReplicationFactor is the replica count of the two topics when the
	// broker creates them. Zero means the cluster's
	// default.replication.factor. Use 3 (with min.insync.replicas 2 in
	// TopicConfigs or on the cluster) for envelopes that survive the loss
	// of a broker.
	ReplicationFactor int

	// TopicConfigs are set on the two topics when the broker creates
	// them, for example {"retention.ms": "604800000",
	// "min.insync.replicas": "2"}. max.message.bytes is set from
	// MaxMessageBytes and may not be given here.
	TopicConfigs map[string]string

	// MaxMessageBytes is the largest record the broker produces: an
	// envelope whose payload, key and headers do not fit is refused with
	// an error matching [nova.ErrInvalid] before any I/O. The topics the
	// broker creates get it as max.message.bytes; topics that exist must
	// allow it. Default [DefaultMaxMessageBytes] (a payload of
	// 1,000,000 bytes fits); at least 16 KiB and at most 100 MiB.
	MaxMessageBytes int

	// MaxAttempts is how many times a subscription delivers an envelope
	// before it dead-letters it. Default [broker.DefaultMaxAttempts]; 1
	// dead-letters on the first rejection.
	MaxAttempts int

	// MinBackoff is the longest wait before the first redelivery; the
	// bound doubles with each further failure up to MaxBackoff, and the
	// wait is drawn uniformly below it. Default [broker.DefaultMinBackoff].
	MinBackoff time.Duration

	// MaxBackoff caps the wait before a redelivery. Default
	// [broker.DefaultMaxBackoff], or MinBackoff when that is longer.
	MaxBackoff time.Duration

	// SessionTimeout is how long a member of a consumer group (group
	// subscriptions and pollers) may go without a heartbeat before the
	// group gives its partitions to another member: how long the
	// envelopes of a killed process wait. It must lie within the
	// cluster's group.min.session.timeout.ms and
	// group.max.session.timeout.ms. Heartbeats are sent every third of
	// it, at most every 3 seconds. Default [DefaultSessionTimeout].
	SessionTimeout time.Duration

	// CommitInterval is how often a group subscription commits the
	// offsets its handler acknowledged; a member also commits when it
	// stops or gives up a partition. After a crash the envelopes
	// acknowledged within the last interval are delivered again. Default
	// [DefaultCommitInterval].
	CommitInterval time.Duration

	// PollWait bounds how long one Poll or PollDLQ waits: to join the
	// topic's consumer group on its first call, and to fetch the records
	// that were in the log when it was called. Default
	// [DefaultPollWait].
	PollWait time.Duration

	// Logger receives what the broker cannot return to a caller: records
	// that are not envelopes, failed commits, retried dead-lettering.
	// Default: discard.
	Logger *slog.Logger

	// Options are passed to every franz-go client the broker creates,
	// after its own, for what Config does not cover: TLS
	// (kgo.DialTLSConfig), SASL (kgo.SASL), a client ID. Options that
	// change what the broker relies on — acks, idempotence, consumer
	// groups, offsets, topics to consume — break its guarantees.
	Options []kgo.Opt
}

// validate reports the first bad field; it changes nothing.
func (c Config) validate() error {
	if len(c.Seeds) == 0 {
		return validate.InvalidFieldf("novakafka", "Config.Seeds", "no bootstrap brokers")
	}
	for i, s := range c.Seeds {
		if strings.TrimSpace(s) == "" {
			return validate.InvalidFieldf("novakafka", "Config.Seeds", "Seeds[%d] is empty", i)
		}
	}
	if c.Namespace != "" {
		if len(c.Namespace) > maxNamespaceLen {
			return validate.InvalidFieldf("novakafka", "Config.Namespace", "%d bytes, want at most %d", len(c.Namespace), maxNamespaceLen)
		}
		for _, r := range c.Namespace {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
				return validate.InvalidFieldf("novakafka", "Config.Namespace", "%q: want letters, digits, '.', '_' and '-' only", c.Namespace)
			}
		}
		if c.Namespace == "." || c.Namespace == ".." {
			return validate.InvalidFieldf("novakafka", "Config.Namespace", "%q is not a usable topic prefix", c.Namespace)
		}
	}
	switch {
	case c.Partitions < 0 || c.Partitions > 1<<15:
		return validate.InvalidFieldf("novakafka", "Config.Partitions", "%d, want 0 (default) to %d", c.Partitions, 1<<15)
	case c.ReplicationFactor < 0 || c.ReplicationFactor > 1<<14:
		return validate.InvalidFieldf("novakafka", "Config.ReplicationFactor", "%d, want 0 (cluster default) to %d", c.ReplicationFactor, 1<<14)
	case c.MaxMessageBytes != 0 && (c.MaxMessageBytes < minMaxMessageBytes || c.MaxMessageBytes > maxMaxMessageBytes):
		return validate.InvalidFieldf("novakafka", "Config.MaxMessageBytes", "%d, want 0 (default) or %d to %d", c.MaxMessageBytes, minMaxMessageBytes, maxMaxMessageBytes)
	case c.SessionTimeout < 0:
		return validate.InvalidFieldf("novakafka", "Config.SessionTimeout", "%v, want 0 (default) or more", c.SessionTimeout)
	case c.SessionTimeout > 0 && c.SessionTimeout < 100*time.Millisecond:
		return validate.InvalidFieldf("novakafka", "Config.SessionTimeout", "%v, want at least 100ms", c.SessionTimeout)
	case c.CommitInterval < 0:
		return validate.InvalidFieldf("novakafka", "Config.CommitInterval", "%v, want 0 (default) or more", c.CommitInterval)
	case c.PollWait < 0:
		return validate.InvalidFieldf("novakafka", "Config.PollWait", "%v, want 0 (default) or more", c.PollWait)
	}
	for k := range c.TopicConfigs {
		if k == "" || k == "max.message.bytes" {
			return validate.InvalidFieldf("novakafka", "Config.TopicConfigs", "key %q: want a topic config other than max.message.bytes (set MaxMessageBytes)", k)
		}
	}
	for i, o := range c.Options {
		if o == nil {
			return validate.InvalidFieldf("novakafka", "Config.Options", "option %d is nil", i)
		}
	}
	if err := redelivery.Check("novakafka", "Config.", c.MaxAttempts, c.MinBackoff, c.MaxBackoff); err != nil {
		return err
	}
	return nil
}

// withDefaults returns c with each zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	c.MaxAttempts, c.MinBackoff, c.MaxBackoff = redelivery.Defaults(c.MaxAttempts, c.MinBackoff, c.MaxBackoff)
	if c.SessionTimeout == 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = DefaultCommitInterval
	}
	if c.PollWait == 0 {
		c.PollWait = DefaultPollWait
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// heartbeat is the heartbeat interval for the session timeout: a third of
// it, at most kgo's and Kafka's default of 3 seconds.
func (c Config) heartbeat() time.Duration {
	return min(3*time.Second, c.SessionTimeout/3)
}
