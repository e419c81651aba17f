// Package backoff is the one way Nova's components wait before trying
// again: capped exponential backoff with full jitter, as in the AWS
// architecture blog's "Exponential Backoff And Jitter". Waits drawn
// uniformly below a bound that doubles spread out the callers that
// failed together, instead of sending them back in step.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Full returns the wait before retry n (1-based): uniform in
// [0, min(max, base·2ⁿ⁻¹)]. It does not overflow for any n.
func Full(base, max time.Duration, n int) time.Duration {
	return time.Duration(rand.Int64N(int64(Bound(base, max, n)) + 1))
}

// Bound returns the bound [Full] draws below for retry n: min(max,
// base·2ⁿ⁻¹), and max for n < 1.
func Bound(base, max time.Duration, n int) time.Duration {
	if n >= 1 && n-1 < 62 && base <= max>>(n-1) {
		return base << (n - 1)
	}
	return max
}

// Sleep waits d or until ctx is done, whichever comes first, and returns
// ctx's error in the second case (at once when ctx is already done).
func Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
