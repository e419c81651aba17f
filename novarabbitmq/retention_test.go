package novarabbitmq

import (
	"strings"
	"testing"
	"time"

	"github.com/nova-go/nova"
)

// With PollRetention set, a poll queue drops what nobody polled in time,
// keeps what is polled in time, and a broker of the same namespace
// declaring the queue without it is refused with an error that says why.
func TestPollRetention(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ns := newNamespace(t)
	const retention = 300 * time.Millisecond
	b := openBroker(t, ns, func(c *Config) { c.PollRetention = retention })

	if err := b.Publish(ctx, envelope("kept", "ret.a")); err != nil {
		t.Fatal(err)
	}
	got, err := b.Poll(ctx, "ret.a", 10)
	if err != nil || len(got) != 1 || got[0].ID != "kept" {
		t.Fatalf("Poll within the retention = %v, %v; want the envelope", got, err)
	}

	if err := b.Publish(ctx, envelope("dropped", "ret.a")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * retention)
	got, err = b.Poll(ctx, "ret.a", 10)
	if err != nil || len(got) != 0 {
		t.Fatalf("Poll after the retention = %v, %v; want nothing", got, err)
	}

	other := openBroker(t, ns)
	err = other.Publish(ctx, envelope("x", "ret.a"))
	if err == nil || nova.IsTransient(err) {
		t.Fatalf("Publish by a broker without PollRetention: %v, want a permanent error", err)
	}
	if !strings.Contains(err.Error(), "PollRetention") {
		t.Fatalf("error %q does not say why", err)
	}
	// The first broker is still usable.
	if err := b.Publish(ctx, envelope("after", "ret.a")); err != nil {
		t.Fatalf("Publish after the other broker's refusal: %v", err)
	}
}
