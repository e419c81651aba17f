package broker

import (
	"context"

	"github.com/nova-go/nova"
)

// invalidf returns this package's error for bad input, an
// [*nova.InvalidError].
func invalidf(format string, args ...any) error {
	return nova.Invalidf("broker", format, args...)
}

// checkContext reports a nil ctx as an error matching nova.ErrInvalid.
func checkContext(ctx context.Context) error {
	if ctx == nil {
		return invalidf("nil context")
	}
	return nil
}
