package broker_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
)

func TestMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, topic string
		want           bool
	}{
		{"a", "a", true},
		{"a", "b", false},
		{"a", "a.b", false},
		{"a.b", "a", false},
		{"a.b", "a.b", true},
		{"ab", "a.b", false},
		{"*", "a", true},
		{"*", "a.b", false},
		{"a.*", "a.b", true},
		{"a.*", "a", false},
		{"a.*", "a.b.c", false},
		{"*.b", "a.b", true},
		{"*.*", "a.b", true},
		{"a.*.c", "a.x.c", true},
		{"a.*.c", "a.x.d", false},
		{">", "a", true},
		{">", "a.b.c", true},
		{"a.>", "a", false},
		{"a.>", "a.b", true},
		{"a.>", "a.b.c", true},
		{"a.>", "b.c", false},
		{"*.>", "a.b", true},
		{"*.>", "a", false},
		{"saga.>", "saga.order-1.charge.failed", true},
		{"saga.*.*.failed", "saga.order-1.charge.failed", true},
		{"saga.*.*.failed", "saga.order-1.charge.succeeded", false},
		{"saga.*.saga.*", "saga.order-1.saga.completed", true},
		{"sagas.>", "saga.order-1.charge.failed", false},
	}
	for _, tt := range tests {
		if got := broker.Match(tt.pattern, tt.topic); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.topic, got, tt.want)
		}
	}
}

func TestValidateTopicAndPattern(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s                  string
		topicOK, patternOK bool
	}{
		{"a", true, true},
		{"saga.order-42.charge.started", true, true},
		{"ünïcode.トピック", true, true},
		{"a_b-c.d:e", true, true},
		{"*", false, true},
		{">", false, true},
		{"a.*.c", false, true},
		{"a.>", false, true},
		{"*.>", false, true},
		{"", false, false},
		{".", false, false},
		{"a..b", false, false},
		{".a", false, false},
		{"a.", false, false},
		{"a b", false, false},
		{"a\tb", false, false},
		{"a\nb", false, false},
		{"a\u00a0b", false, false},
		{"a\x00b", false, false},
		{"a\x7fb", false, false},
		{"a\xffb", false, false},
		{"a*", false, false},
		{"a.b*", false, false},
		{"a.>.b", false, false},
		{">.a", false, false},
		{"a.>>", false, false},
		{"a.**", false, false},
		{strings.Repeat("a", broker.MaxTopicLen), true, true},
		{strings.Repeat("a", broker.MaxTopicLen+1), false, false},
	}
	for _, tt := range tests {
		check := func(name string, err error, ok bool) {
			t.Helper()
			if ok && err != nil {
				t.Errorf("%s(%q): %v, want nil", name, tt.s, err)
			}
			if !ok && !errors.Is(err, nova.ErrInvalid) {
				t.Errorf("%s(%q): %v, want an error matching nova.ErrInvalid", name, tt.s, err)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "broker: ") {
				t.Errorf("%s(%q): %q does not start with the package name", name, tt.s, err)
			}
		}
		check("ValidateTopic", broker.ValidateTopic(tt.s), tt.topicOK)
		check("ValidatePattern", broker.ValidatePattern(tt.s), tt.patternOK)
	}
}

func FuzzMatch(f *testing.F) {
	f.Add("a.*.>", "a.b.c.d")
	f.Add(">", "x")
	f.Fuzz(func(t *testing.T, pattern, topic string) {
		if broker.ValidatePattern(pattern) != nil || broker.ValidateTopic(topic) != nil {
			return
		}
		got := broker.Match(pattern, topic)
		if want := matchTokens(strings.Split(pattern, "."), strings.Split(topic, ".")); got != want {
			t.Fatalf("Match(%q, %q) = %v, want %v", pattern, topic, got, want)
		}
		if broker.Match(topic, topic) != true {
			t.Fatalf("Match(%q, itself) = false", topic)
		}
	})
}

// matchTokens is the obvious recursive reference for Match.
func matchTokens(p, s []string) bool {
	switch {
	case len(p) == 0:
		return len(s) == 0
	case p[0] == ">":
		return len(s) > 0
	case len(s) == 0:
		return false
	case p[0] == "*" || p[0] == s[0]:
		return matchTokens(p[1:], s[1:])
	}
	return false
}

func TestValidateGroup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		group string
		ok    bool
	}{
		{"orders", true},
		{"Orders_v2-eu", true},
		{"0", true},
		{strings.Repeat("g", broker.MaxGroupLen), true},
		{"", false},
		{strings.Repeat("g", broker.MaxGroupLen+1), false},
		{"a.b", false},
		{"a b", false},
		{"a*", false},
		{"a>", false},
		{"a/b", false},
		{"é", false},
		{"a\x00", false},
		{"\xff", false},
	}
	for _, tt := range tests {
		err := broker.ValidateGroup(tt.group)
		if tt.ok && err != nil {
			t.Errorf("ValidateGroup(%q) = %v, want nil", tt.group, err)
		}
		if !tt.ok && !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("ValidateGroup(%q) = %v, want an error matching nova.ErrInvalid", tt.group, err)
		}
	}
}
