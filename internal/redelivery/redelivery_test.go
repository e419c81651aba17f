package redelivery_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/internal/redelivery"
)

func TestCheck(t *testing.T) {
	cases := []struct {
		attempts int
		lo, hi   time.Duration
		want     string // "" for valid
	}{
		{0, 0, 0, ""},
		{1, time.Millisecond, time.Millisecond, ""},
		{0, broker.DefaultMaxBackoff * 2, 0, ""}, // the default max follows a longer min
		{-1, 0, 0, "Config.MaxAttempts"},
		{0, -time.Second, 0, "Config.MinBackoff"},
		{0, 0, -time.Second, "Config.MaxBackoff"},
		{0, time.Second, time.Millisecond, "shorter than MinBackoff"},
	}
	for _, c := range cases {
		err := redelivery.Check("novatest", "Config.", c.attempts, c.lo, c.hi)
		if c.want == "" {
			if err != nil {
				t.Errorf("%d %v %v: %v", c.attempts, c.lo, c.hi, err)
			}
			continue
		}
		if !errors.Is(err, nova.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%d %v %v: %v, want an invalid-input error naming %q", c.attempts, c.lo, c.hi, err, c.want)
		}
	}
}

func TestDefaults(t *testing.T) {
	n, lo, hi := redelivery.Defaults(0, 0, 0)
	if n != broker.DefaultMaxAttempts || lo != broker.DefaultMinBackoff || hi != broker.DefaultMaxBackoff {
		t.Fatalf("defaults %d %v %v", n, lo, hi)
	}
	if n, lo, hi := redelivery.Defaults(2, time.Hour, 0); n != 2 || lo != time.Hour || hi != time.Hour {
		t.Fatalf("a min longer than the default max: %d %v %v", n, lo, hi)
	}
}
