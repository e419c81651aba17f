package main

import (
	"strings"
	"testing"
)

// Bad broker usage exits 2 with a clear message, before connecting to
// anything, and never shows the URL's password.
func TestBrokerCommandsBadInput(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"tail", "saga.>"}, "--broker is required"},
		{[]string{"dlq", "saga.x"}, "--broker is required"},
		{[]string{"tail", "--broker", "nats://127.0.0.1:4222"}, "want one pattern"},
		{[]string{"tail", "a.>.b", "--broker", "nats://127.0.0.1:4222"}, "'>' before its last token"},
		{[]string{"tail", "a", "--broker", "nats://127.0.0.1:4222", "--count", "-1"}, "--count -1"},
		{[]string{"tail", "a", "--broker", "localhost:4222"}, "want a URL"},
		{[]string{"tail", "a", "--broker", "redis://u:hunter2@h:6379"}, `unknown scheme "redis"`},
		{[]string{"dlq", "a.*", "--broker", "nats://127.0.0.1:4222"}, "contains a wildcard"},
		{[]string{"dlq", "a", "b", "--broker", "nats://127.0.0.1:4222"}, "want one topic"},
		{[]string{"dlq", "a", "--broker", "nats://127.0.0.1:4222", "--max", "0"}, "--max 0"},
		{[]string{"dlq", "a", "--broker", "nats://127.0.0.1:4222", "--drain", "--replay"}, "choose one"},
		{[]string{"demo", "--store", "memory:", "--broker", "ftp://u:hunter2@h/"}, `unknown scheme "ftp"`},
		{[]string{"tail", "a", "--broker", "kafka:///"}, "no broker address"},
		{[]string{"tail", "a", "--broker", "kafka://u:hunter2@h:9092"}, "nothing else"},
		{[]string{"tail", "a", "--broker", "kafka://h:9092?acks=1"}, "nothing else"},
	} {
		code, out, stderr := runNova(t, tt.args...)
		if code != 2 || out != "" || !strings.Contains(stderr, tt.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr:\n%s\nwant exit 2 and %q", tt.args, code, out, stderr, tt.want)
		}
		if strings.Contains(stderr, "hunter2") {
			t.Errorf("%q: stderr shows the broker's password:\n%s", tt.args, stderr)
		}
	}
}

func TestTailPatternTakesHash(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"saga.#": "saga.>", "#": ">", "saga.*.x": "saga.*.x", "a.>": "a.>"} {
		if got, err := tailPattern(in); err != nil || got != want {
			t.Errorf("tailPattern(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "a..b", "a.>.b"} {
		if _, err := tailPattern(bad); err == nil {
			t.Errorf("tailPattern(%q) succeeded", bad)
		}
	}
}
