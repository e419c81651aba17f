package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/nova-go/nova"
)

// invalidError is bad input given to this package; it matches
// nova.ErrInvalid.
type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return "broker: " + e.msg }
func (e *invalidError) Is(target error) bool { return target == nova.ErrInvalid }

func invalidf(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

// detail is err's message without this package's prefix, for nesting one
// validation error in another.
func detail(err error) string {
	if ie, ok := errors.AsType[*invalidError](err); ok {
		return ie.msg
	}
	return err.Error()
}

// checkContext reports a nil ctx as an error matching nova.ErrInvalid.
func checkContext(ctx context.Context) error {
	if ctx == nil {
		return invalidf("nil context")
	}
	return nil
}
