package novakafka_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novakafka"
)

type kgoOpt = kgo.Opt

// TestConfigRejects checks that New refuses each bad field before any
// I/O, naming it.
func TestConfigRejects(t *testing.T) {
	t.Parallel()
	seeds := []string{"127.0.0.1:1"} // nothing listens: validation must come first
	tests := []struct {
		field string
		cfg   novakafka.Config
	}{
		{"Config.Seeds", novakafka.Config{}},
		{"Config.Seeds", novakafka.Config{Seeds: []string{" "}}},
		{"Config.Namespace", novakafka.Config{Seeds: seeds, Namespace: "a b"}},
		{"Config.Namespace", novakafka.Config{Seeds: seeds, Namespace: strings.Repeat("n", 201)}},
		{"Config.Namespace", novakafka.Config{Seeds: seeds, Namespace: ".."}},
		{"Config.Partitions", novakafka.Config{Seeds: seeds, Partitions: -1}},
		{"Config.ReplicationFactor", novakafka.Config{Seeds: seeds, ReplicationFactor: -1}},
		{"Config.MaxMessageBytes", novakafka.Config{Seeds: seeds, MaxMessageBytes: 100}},
		{"Config.MaxMessageBytes", novakafka.Config{Seeds: seeds, MaxMessageBytes: 1 << 30}},
		{"Config.MaxAttempts", novakafka.Config{Seeds: seeds, MaxAttempts: -1}},
		{"Config.MinBackoff", novakafka.Config{Seeds: seeds, MinBackoff: -time.Second}},
		{"Config.MaxBackoff", novakafka.Config{Seeds: seeds, MaxBackoff: -time.Second}},
		{"Config.MaxBackoff", novakafka.Config{Seeds: seeds, MinBackoff: time.Minute, MaxBackoff: time.Second}},
		{"Config.SessionTimeout", novakafka.Config{Seeds: seeds, SessionTimeout: time.Millisecond}},
		{"Config.CommitInterval", novakafka.Config{Seeds: seeds, CommitInterval: -1}},
		{"Config.PollWait", novakafka.Config{Seeds: seeds, PollWait: -1}},
		{"Config.TopicConfigs", novakafka.Config{Seeds: seeds, TopicConfigs: map[string]string{"max.message.bytes": "1"}}},
		{"Config.Options", novakafka.Config{Seeds: seeds, Options: []kgoOpt{nil}}},
	}
	for _, tt := range tests {
		_, err := novakafka.New(context.Background(), tt.cfg)
		var ie *nova.InvalidError
		if !errors.Is(err, nova.ErrInvalid) || !errors.As(err, &ie) || ie.Field != tt.field {
			t.Errorf("New(%+v) = %v, want an error matching nova.ErrInvalid naming %s", tt.cfg, err, tt.field)
		}
	}
}

// TestNewUnreachable gives New a cluster that is not there: it fails
// when its ctx ends.
func TestNewUnreachable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if b, err := novakafka.New(ctx, novakafka.Config{Seeds: []string{"127.0.0.1:1"}}); err == nil {
		b.Close()
		t.Fatal("New with an unreachable cluster succeeded")
	}
}
