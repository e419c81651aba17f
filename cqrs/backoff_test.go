package cqrs

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	t.Parallel()
	base, max := 10*time.Millisecond, time.Second
	for n := 1; n <= 100; n++ {
		limit := max
		if n <= 7 {
			limit = base << (n - 1) // 10ms … 640ms
		}
		var longest time.Duration
		for range 200 {
			d := backoff(base, max, n)
			if d < 0 || d > limit {
				t.Fatalf("backoff(retry %d) = %v, want within [0, %v]", n, d, limit)
			}
			longest = maxDur(longest, d)
		}
		if longest < limit/4 {
			t.Fatalf("backoff(retry %d): longest of 200 draws %v, want the range up to %v used", n, longest, limit)
		}
	}
	if d := backoff(time.Duration(1<<62), time.Duration(1<<62), 64); d < 0 {
		t.Fatalf("backoff overflowed: %v", d)
	}
}

func maxDur(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}
