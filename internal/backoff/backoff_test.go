package backoff_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nova-go/nova/internal/backoff"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestFull(t *testing.T) {
	t.Parallel()
	base, top := 10*time.Millisecond, time.Second
	for n := 1; n <= 100; n++ {
		limit := top
		if n <= 7 {
			limit = base << (n - 1) // 10ms … 640ms
		}
		if b := backoff.Bound(base, top, n); b != limit {
			t.Fatalf("Bound(retry %d) = %v, want %v", n, b, limit)
		}
		var longest time.Duration
		for range 200 {
			d := backoff.Full(base, top, n)
			if d < 0 || d > limit {
				t.Fatalf("Full(retry %d) = %v, want within [0, %v]", n, d, limit)
			}
			longest = max(longest, d)
		}
		if longest < limit/4 {
			t.Fatalf("Full(retry %d): longest of 200 draws %v, want the range up to %v used", n, longest, limit)
		}
	}
	if d := backoff.Full(time.Duration(1<<62), time.Duration(1<<62), 64); d < 0 {
		t.Fatalf("Full overflowed: %v", d)
	}
	if b := backoff.Bound(base, top, 0); b != top {
		t.Fatalf("Bound(retry 0) = %v, want the cap", b)
	}
}

func TestSleep(t *testing.T) {
	t.Parallel()
	if err := backoff.Sleep(t.Context(), time.Millisecond); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := backoff.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep on a done ctx = %v", err)
	}
}
