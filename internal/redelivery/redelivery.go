// Package redelivery checks and defaults the redelivery settings that
// every broker adapter's config carries (MaxAttempts, MinBackoff,
// MaxBackoff), so that they mean the same on every broker.
package redelivery

import (
	"time"

	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/internal/validate"
)

// Check validates the settings as a user gave them, zero meaning the
// default. Errors name the fields as prefix+"MaxAttempts" and so on,
// under package pkg, and match nova.ErrInvalid.
func Check(pkg, prefix string, maxAttempts int, minBackoff, maxBackoff time.Duration) error {
	switch {
	case maxAttempts < 0:
		return validate.InvalidFieldf(pkg, prefix+"MaxAttempts", "%d, want 0 (default) or more", maxAttempts)
	case minBackoff < 0:
		return validate.InvalidFieldf(pkg, prefix+"MinBackoff", "%v, want 0 (default) or more", minBackoff)
	case maxBackoff < 0:
		return validate.InvalidFieldf(pkg, prefix+"MaxBackoff", "%v, want 0 (default) or more", maxBackoff)
	}
	if _, lo, hi := Defaults(maxAttempts, minBackoff, maxBackoff); hi < lo {
		return validate.InvalidFieldf(pkg, prefix+"MaxBackoff", "%v is shorter than MinBackoff %v", hi, lo)
	}
	return nil
}

// Defaults returns the settings with each zero replaced by its default:
// [broker.DefaultMaxAttempts], [broker.DefaultMinBackoff], and
// [broker.DefaultMaxBackoff] or minBackoff when that is longer.
func Defaults(maxAttempts int, minBackoff, maxBackoff time.Duration) (int, time.Duration, time.Duration) {
	if maxAttempts == 0 {
		maxAttempts = broker.DefaultMaxAttempts
	}
	if minBackoff == 0 {
		minBackoff = broker.DefaultMinBackoff
	}
	if maxBackoff == 0 {
		maxBackoff = max(broker.DefaultMaxBackoff, minBackoff)
	}
	return maxAttempts, minBackoff, maxBackoff
}
