package projection

import (
	"errors"
	"fmt"

	"github.com/nova-go/nova"
)

var (
	// ErrPoison matches a [*PoisonError]: a handler kept failing on one
	// event and the projection stopped there.
	ErrPoison = errors.New("projection: poison event")

	// ErrRunning is returned by [Runner.Start] and [Runner.Reset] when the
	// runner is already running.
	ErrRunning = errors.New("projection: already running")

	// ErrNotRunning is returned by [Runner.WaitFor] when the runner is not
	// running and has not reached the position asked for, so waiting
	// would never end.
	ErrNotRunning = errors.New("projection: not running")
)

// PoisonError names the event a projection could not handle: the handler
// (or the decoding before it) failed on every attempt. It matches
// [ErrPoison] and unwraps to the last handler error.
type PoisonError struct {
	// Projection is the projection's name.
	Projection string
	// EventID, Stream, Version, Type and Position identify the event.
	EventID  string
	Stream   string
	Version  uint64
	Type     string
	Position nova.Position
	// Attempts is how many times the handler ran.
	Attempts int
	// Err is the last handler error.
	Err error
}

func (e *PoisonError) Error() string {
	return fmt.Sprintf("projection: %q failed on event %s (stream %q version %d, type %q, position %s) after %d attempt(s): %v",
		e.Projection, e.EventID, e.Stream, e.Version, e.Type, e.Position, e.Attempts, e.Err)
}

// Unwrap returns the handler's error.
func (e *PoisonError) Unwrap() error { return e.Err }

// Is reports whether target is [ErrPoison].
func (e *PoisonError) Is(target error) bool { return target == ErrPoison }

// invalidf returns this package's error for bad input, an
// [*nova.InvalidError].
func invalidf(format string, args ...any) error {
	return nova.Invalidf("projection", format, args...)
}

// validateName checks a projection name: the rules of a stream ID.
func validateName(name string) error {
	if err := nova.ValidateStream(name); err != nil {
		return invalidf("projection name: %v", err)
	}
	return nil
}
