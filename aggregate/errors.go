package aggregate

import (
	"fmt"

	"github.com/nova-go/nova"
)

// invalidError is bad input given to this package; it matches
// nova.ErrInvalid.
type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return "aggregate: " + e.msg }
func (e *invalidError) Is(target error) bool { return target == nova.ErrInvalid }

func invalidf(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}
