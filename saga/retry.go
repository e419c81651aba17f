package saga

import (
	"math/rand/v2"
	"time"

	"github.com/nova-go/nova"
)

// Backoff says how long to wait before the next attempt. A Delay that
// panics ends the retries: the attempt's failure is final, and the panic,
// a [*nova.PanicError], is kept with its error.
type Backoff interface {
	// Delay returns the wait after the given failed attempt (1-based).
	Delay(attempt int) time.Duration
}

// Exponential is backoff with full jitter: after attempt n the wait is drawn
// uniformly from [0, min(Cap, Base×2^(n-1))]. It is the default.
type Exponential struct {
	// Base is the bound after the first failure. Default 100ms.
	Base time.Duration
	// Cap bounds every wait. Default 10s.
	Cap time.Duration
}

// Delay implements [Backoff].
func (e Exponential) Delay(attempt int) time.Duration {
	base, limit := e.Base, e.Cap
	if base <= 0 {
		base = 100 * time.Millisecond
	}
	if limit <= 0 {
		limit = 10 * time.Second
	}
	bound := base
	for i := 1; i < attempt && bound < limit; i++ {
		bound *= 2
	}
	bound = min(bound, limit)
	return time.Duration(rand.Int64N(int64(bound) + 1))
}

// Linear waits Unit × attempt after the given attempt: no jitter, no cap.
type Linear struct {
	// Unit is the wait per attempt. Default 100ms.
	Unit time.Duration
}

// Delay implements [Backoff].
func (l Linear) Delay(attempt int) time.Duration {
	unit := l.Unit
	if unit <= 0 {
		unit = 100 * time.Millisecond
	}
	return unit * time.Duration(max(attempt, 1))
}

// RetryPolicy says how often and how patiently a step or a compensation is
// tried. The zero value means the defaults.
type RetryPolicy struct {
	// MaxAttempts is the most attempts, the first included. Default 3;
	// 1 means no retry.
	MaxAttempts int
	// MaxElapsed, when positive, stops retrying once the next attempt
	// would start later than this after the first one began.
	MaxElapsed time.Duration
	// Backoff gives the wait between attempts. Default [Exponential]{}.
	Backoff Backoff
}

// DefaultMaxAttempts is the attempts a zero RetryPolicy allows.
const DefaultMaxAttempts = 3

func (p RetryPolicy) validate(what string) error {
	if p.MaxAttempts < 0 {
		return nova.Invalidf("saga", "%s: negative MaxAttempts %d", what, p.MaxAttempts)
	}
	if p.MaxElapsed < 0 {
		return nova.Invalidf("saga", "%s: negative MaxElapsed %s", what, p.MaxElapsed)
	}
	return nil
}

func (p RetryPolicy) attempts() int {
	if p.MaxAttempts == 0 {
		return DefaultMaxAttempts
	}
	return p.MaxAttempts
}

// next decides after a failed attempt: whether to try again and after how
// long. elapsed is the time since the first attempt began. A Backoff that
// panics allows no retry, and its panic is returned as a [*nova.PanicError].
func (p RetryPolicy) next(attempt int, err error, elapsed time.Duration) (time.Duration, bool, error) {
	if IsPermanent(err) || attempt >= p.attempts() {
		return 0, false, nil
	}
	b := p.Backoff
	if b == nil {
		b = Exponential{}
	}
	var d time.Duration
	if perr := protect("Backoff", func() error { d = max(b.Delay(attempt), 0); return nil }); perr != nil {
		return 0, false, perr
	}
	if p.MaxElapsed > 0 && elapsed+d > p.MaxElapsed {
		return 0, false, nil
	}
	return d, true, nil
}
