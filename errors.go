package nova

import (
	"errors"
	"fmt"
)

var (
	// ErrConcurrency is matched by errors.Is when a stream was not at the
	// version the caller expected. The error itself is a [*ConcurrencyError].
	ErrConcurrency = errors.New("nova: wrong expected version")

	// ErrDuplicateEvent is matched when an event ID is already stored with
	// other content or at another place. The error is a
	// [*DuplicateEventError].
	ErrDuplicateEvent = errors.New("nova: event ID already used")

	// ErrInvalid is matched by every error about bad input: an empty stream
	// ID, an empty event type, invalid UTF-8, a nil context, bad options.
	ErrInvalid = errors.New("nova: invalid argument")

	// ErrNotFound is matched when a stream, snapshot or other named thing
	// does not exist.
	ErrNotFound = errors.New("nova: not found")

	// ErrUnknownType is matched when a [Registry] has no Go type for an
	// event type name, or no name for a Go type.
	ErrUnknownType = errors.New("nova: unknown event type")

	// ErrEventTooNew is matched when a [Registry] reads an event whose data
	// has a newer shape than any it knows: written by a newer version of
	// the program, it would be misread. The error is an
	// [*EventTooNewError].
	ErrEventTooNew = errors.New("nova: event shape newer than the registry knows")

	// ErrClosed is returned by a store used after Close.
	ErrClosed = errors.New("nova: store closed")

	// ErrNotImplemented is returned by a backend for an optional capability
	// it does not have.
	ErrNotImplemented = errors.New("nova: not implemented by this backend")
)

// ConcurrencyError reports that a stream was not at the expected version.
type ConcurrencyError struct {
	// Stream is the stream appended to.
	Stream string
	// Expected is what the caller expected.
	Expected ExpectedVersion
	// Actual is the stream's version at the time of the append, 0 when it
	// has no events.
	Actual uint64
}

func (e *ConcurrencyError) Error() string {
	return fmt.Sprintf("nova: wrong expected version for stream %q: expected %s, actual %d", e.Stream, e.Expected, e.Actual)
}

// Is makes errors.Is(err, ErrConcurrency) true.
func (e *ConcurrencyError) Is(target error) bool { return target == ErrConcurrency }

// DuplicateEventError reports an event ID that is already stored with other
// content or at another place.
type DuplicateEventError struct {
	// ID is the reused event ID.
	ID string
	// Stream is the stream the append was for.
	Stream string
	// StoredStream and StoredVersion say where the ID is already stored.
	StoredStream  string
	StoredVersion uint64
}

func (e *DuplicateEventError) Error() string {
	return fmt.Sprintf("nova: event ID %s appended to stream %q is already stored as version %d of stream %q with other content or at another place",
		e.ID, e.Stream, e.StoredVersion, e.StoredStream)
}

// Is makes errors.Is(err, ErrDuplicateEvent) true.
func (e *DuplicateEventError) Is(target error) bool { return target == ErrDuplicateEvent }

// EventTooNewError reports an event whose data has a newer shape
// ([Metadata.Schema]) than the newest its [Registry] knows for the type:
// one past its last upcaster. Code that has not been deployed yet wrote
// it. Decoding it into the older Go type would drop the fields the new
// shape added, or misread those whose meaning changed, so reads refuse it
// unless [RegistryOptions.AllowNewer] is set.
type EventTooNewError struct {
	// ID, Stream and Version say which event it is.
	ID      string
	Stream  string
	Version uint64
	// Type is the event's type.
	Type string
	// Schema is the event's shape; Newest the newest the registry knows.
	Schema, Newest int
}

func (e *EventTooNewError) Error() string {
	return fmt.Sprintf("nova: %q event %s (stream %q version %d) has shape %d, newer than shape %d, the newest this registry knows: "+
		"run the code that knows it (register its upcaster), or set RegistryOptions.AllowNewer to read it as shape %d",
		e.Type, e.ID, e.Stream, e.Version, e.Schema, e.Newest, e.Newest)
}

// Is makes errors.Is(err, ErrEventTooNew) true.
func (e *EventTooNewError) Is(target error) bool { return target == ErrEventTooNew }

// invalidError is bad input; it matches ErrInvalid.
type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return "nova: " + e.msg }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

func invalidf(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

// Invalidf returns an error matching [ErrInvalid] whose message is the
// formatted text after the "nova: " prefix. Backends and other packages use
// it to report bad input the same way the core does.
func Invalidf(format string, args ...any) error { return invalidf(format, args...) }
