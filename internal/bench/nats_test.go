package bench_test

import (
	"context"
	"errors"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/bench"
	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/novanats"
)

func TestNATSBadInput(t *testing.T) {
	t.Parallel()
	for _, url := range []string{"", "http://x", "nats://h:4222?storage=tape"} {
		if _, err := bench.NATS(url, novanats.Config{}); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("NATS(%q): %v, want nova.ErrInvalid", url, err)
		}
	}
}

// TestNATS runs the single-event scenarios, small, on the machine's
// server: both sides append and agree, and the scratch streams go away.
func TestNATS(t *testing.T) {
	t.Parallel()
	url := testenv.Need(t, testenv.NATS)
	be, err := bench.NATS(url, novanats.Config{Storage: novanats.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	res, err := bench.Run(context.Background(), be, bench.Options{
		Scenarios: []string{"append-1", "append-1-8w"}, Runs: 1, Warmup: -1, Scale: 0.02,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.NovaPerSec <= 0 || r.RawPerSec <= 0 || r.Backend != "nats" {
			t.Errorf("result %+v", r)
		}
	}
}
