package broker

import "github.com/nova-go/nova"

// invalidf returns this package's error for bad input, an
// [*nova.InvalidError].
func invalidf(format string, args ...any) error {
	return nova.Invalidf("broker", format, args...)
}
