package saga

import (
	"context"
	"time"
)

// SetSleep replaces how c waits out a retry's delay in Run.
func SetSleep(c *Coordinator, f func(ctx context.Context, d time.Duration) error) { c.sleep = f }

// NextDelay is p's decision after a failed attempt.
func NextDelay(p RetryPolicy, attempt int, err error, elapsed time.Duration) (time.Duration, bool) {
	d, again, _ := p.next(attempt, err, elapsed)
	return d, again
}
