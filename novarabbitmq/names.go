package novarabbitmq

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode/utf8"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
)

// pkg is the package name errors start with.
const pkg = "novarabbitmq"

// maxShortString is AMQP's limit on a short string, which routing keys,
// binding keys, queue and exchange names, message IDs and types are.
const maxShortString = 255

// MaxGroupLen is the longest consumer group name, in bytes.
const MaxGroupLen = broker.MaxGroupLen

// names builds the names of a namespace's exchanges and queues.
type names struct{ ns string }

// topics is the topic exchange every envelope is published to, with its
// topic as the routing key.
func (n names) topics() string { return n.ns + ".topics" }

// poll is the direct exchange, bound to topics with "#", that routes each
// envelope to its topic's poll queue by exact routing key.
func (n names) poll() string { return n.ns + ".poll" }

// dlx is the direct dead-letter exchange: dead letters are routed to
// their topic's dead-letter queue by exact routing key.
func (n names) dlx() string { return n.ns + ".dlx" }

func (n names) exchanges() []string { return []string{n.topics(), n.poll(), n.dlx()} }

// pollQueue is the durable quorum queue that keeps topic's envelopes for
// Poll.
func (n names) pollQueue(topic string) string { return n.queue("poll", topic) }

// dlq is the durable queue that keeps topic's dead letters for PollDLQ.
func (n names) dlq(topic string) string { return n.queue("dlq", topic) }

// group is the durable quorum queue of a consumer group.
func (n names) group(group string) string { return n.queue("group", group) }

// sub is the queue of one Subscribe subscription.
func (n names) sub(id string) string { return n.ns + ".sub." + id }

// queue returns <ns>.<kind>.<name>, or, when that is longer than AMQP
// allows, a prefix of name followed by "~" and a hash of all of it, so
// that distinct names stay distinct.
func (n names) queue(kind, name string) string {
	q := n.ns + "." + kind + "." + name
	if len(q) <= maxShortString {
		return q
	}
	sum := sha256.Sum256([]byte(name))
	suffix := "~" + hex.EncodeToString(sum[:16])
	keep := maxShortString - len(n.ns) - len(kind) - 2 - len(suffix)
	for keep > 0 && !utf8.RuneStart(name[keep]) {
		keep--
	}
	return n.ns + "." + kind + "." + name[:keep] + suffix
}

// checkRoutingKey refuses a topic longer than a routing key may be. Nova
// allows topics of [broker.MaxTopicLen] bytes, one more than AMQP.
func checkRoutingKey(topic string) error {
	if len(topic) > maxShortString {
		return nova.Invalidf(pkg, "topic of %d bytes is longer than RabbitMQ's routing key limit of %d", len(topic), maxShortString)
	}
	return nil
}

// bindingKey maps a Nova pattern (broker.ValidatePattern) to a binding
// key of a topic exchange:
//
//   - "*" stays: one word in both.
//   - A final ">" (one or more tokens) becomes "*.#": one word, then
//     RabbitMQ's "#" for zero or more. A bare "#" would also match zero
//     words, so "a.>" as "a.#" would take the topic "a" itself.
//   - A literal "#" token, which Nova allows in topics and patterns but
//     RabbitMQ reads as a wildcard, becomes "*"; the consumer filters
//     with [broker.Match], as it does every delivery.
//
// It returns an error matching nova.ErrInvalid when the key is longer
// than AMQP allows.
func bindingKey(pattern string) (string, error) {
	tokens := strings.Split(pattern, ".")
	for i, t := range tokens {
		switch t {
		case ">":
			tokens[i] = "*.#"
		case "#":
			tokens[i] = "*"
		}
	}
	key := strings.Join(tokens, ".")
	if len(key) > maxShortString {
		return "", nova.Invalidf(pkg, "pattern %q is %d bytes as a binding key (%q), longer than RabbitMQ's limit of %d", pattern, len(key), key, maxShortString)
	}
	return key, nil
}

// checkGroup validates a consumer group name by the rule every broker
// backend shares ([broker.ValidateGroup]).
func checkGroup(group string) error {
	if err := broker.ValidateGroup(group); err != nil {
		return nova.Invalidf(pkg, "%w", err)
	}
	return nil
}

// validTopic reports whether s can be read as a topic.
func validTopic(s string) bool {
	return broker.ValidateTopic(s) == nil && len(s) <= maxShortString
}
