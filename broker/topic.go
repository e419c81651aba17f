package broker

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxTopicLen is the longest topic or pattern, in bytes.
const MaxTopicLen = 256

// MaxGroupLen is the longest consumer group name, in bytes.
const MaxGroupLen = 128

// ValidateGroup checks the name of a consumer group
// ([GroupSubscriber]): 1 to [MaxGroupLen] ASCII letters, digits, '-' and
// '_'. Every server takes such a name as it is (a JetStream durable
// consumer's name, part of a RabbitMQ queue's name, a Kafka group ID), so
// a group accepted by one backend is accepted by all. Errors match
// [nova.ErrInvalid].
func ValidateGroup(group string) error {
	switch {
	case group == "":
		return invalidf("empty group name")
	case len(group) > MaxGroupLen:
		return invalidf("group name of %d bytes is longer than the limit of %d", len(group), MaxGroupLen)
	}
	for i := 0; i < len(group); i++ {
		switch c := group[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return invalidf("group name %q: want only ASCII letters, digits, '-' and '_'", group)
		}
	}
	return nil
}

// ValidateTopic checks a topic a message is published to: non-empty, at
// most [MaxTopicLen] bytes, valid UTF-8, tokens separated by single dots
// with no empty token, and no white space, control characters or wildcard
// characters ('*', '>') anywhere. Errors match [nova.ErrInvalid].
func ValidateTopic(topic string) error {
	return validateTokens("topic", topic, false)
}

// ValidatePattern checks a subscription pattern: a topic in which a token
// may be "*" (exactly one token) and the last token may be ">" (one or
// more tokens). A wildcard character inside a longer token, such as "a*",
// is refused. Errors match [nova.ErrInvalid].
func ValidatePattern(pattern string) error {
	return validateTokens("pattern", pattern, true)
}

func validateTokens(what, s string, wildcards bool) error {
	switch {
	case s == "":
		return invalidf("empty %s", what)
	case len(s) > MaxTopicLen:
		return invalidf("%s of %d bytes is longer than the limit of %d", what, len(s), MaxTopicLen)
	case !utf8.ValidString(s):
		return invalidf("%s %q is not valid UTF-8", what, s)
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return invalidf("%s %q contains white space or a control character", what, s)
		}
	}
	tokens := strings.Split(s, ".")
	for i, tok := range tokens {
		switch {
		case tok == "":
			return invalidf("%s %q has an empty token", what, s)
		case wildcards && tok == "*":
		case wildcards && tok == ">":
			if i != len(tokens)-1 {
				return invalidf("%s %q has '>' before its last token", what, s)
			}
		case strings.ContainsAny(tok, "*>"):
			if wildcards {
				return invalidf("%s %q has a wildcard inside token %q", what, s, tok)
			}
			return invalidf("%s %q contains a wildcard", what, s)
		}
	}
	return nil
}

// Match reports whether topic matches pattern, with NATS's wildcards: "*"
// matches exactly one token and a final ">" one or more. Both are assumed
// valid ([ValidateTopic], [ValidatePattern]); a pattern without wildcards
// matches only the identical topic.
func Match(pattern, topic string) bool {
	for {
		pt, prest, pmore := strings.Cut(pattern, ".")
		if pt == ">" {
			return topic != ""
		}
		tt, trest, tmore := strings.Cut(topic, ".")
		if pt != "*" && pt != tt {
			return false
		}
		if !pmore || !tmore {
			return pmore == tmore
		}
		pattern, topic = prest, trest
	}
}
