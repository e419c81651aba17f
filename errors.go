package nova

import (
	"errors"
	"fmt"
	"strings"
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
	// ID, an empty event type, invalid UTF-8, bad options or Config fields.
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

// InvalidError reports bad input: a malformed argument, bad options, a
// bad Config field. Every package of Nova reports bad input
// with it, so errors.As finds one *InvalidError wherever the input was
// rejected, and it matches [ErrInvalid]. Its message names the package
// once, then the field when there is one, then what is wrong, as
// [os.PathError] names the operation and then the path:
//
//	novapg: Config.Schema: "pg_x" is reserved by PostgreSQL
//	saga: empty run ID
//
// Build one with [Invalidf]; for an error about one field, set Field
// on the result.
type InvalidError struct {
	// Pkg is the package that rejected the input, such as "nova",
	// "novapg" or "saga". It starts the message.
	Pkg string
	// Field names the bad field or option, such as "Config.Schema", or
	// is empty when the error is about no single field.
	Field string
	// Msg says what is wrong.
	Msg string
	// Err is the error that made the input bad (a parse or encoding
	// error), or nil. Msg already includes its text; Unwrap returns it.
	Err error
}

func (e *InvalidError) Error() string { return e.Pkg + ": " + e.detail() }

// detail is the message without the package prefix.
func (e *InvalidError) detail() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// Unwrap returns Err.
func (e *InvalidError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// Invalidf returns an [*InvalidError] of package pkg whose Msg is the
// formatted text. Like [fmt.Errorf], a %w verb makes the error unwrap to
// its operand (Err). An *InvalidError among args is formatted without
// its package prefix, so that one validation error nested in another
// still gives a message that names one package:
//
//	Invalidf("projection", "name: %w", ValidateStream(""))
//	// projection: name: empty stream ID
func Invalidf(pkg, format string, args ...any) error {
	return newInvalid(pkg, format, args...)
}

func newInvalid(pkg, format string, args ...any) *InvalidError {
	err := fmt.Errorf(format, args...)
	e := &InvalidError{Pkg: pkg, Msg: err.Error()}
	for _, a := range args {
		if ie, ok := a.(*InvalidError); ok {
			e.Msg = strings.Replace(e.Msg, ie.Error(), ie.detail(), 1)
		}
	}
	switch w := err.(type) {
	case interface{ Unwrap() error }:
		e.Err = w.Unwrap()
	case interface{ Unwrap() []error }:
		e.Err = errors.Join(w.Unwrap()...)
	}
	return e
}

// invalidf returns this package's error for bad input.
func invalidf(format string, args ...any) error { return Invalidf("nova", format, args...) }
