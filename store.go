package nova

import (
	"context"
	"iter"
)

// Store is an event store. Every backend implements it and passes the
// conformance suite in package novatest.
//
// All methods are safe for concurrent use. A Store holds connections and
// background work; Close releases them.
type Store interface {
	// Append adds events to the end of stream, all or none.
	//
	// expected states what the caller believes about the stream; when the
	// stream is not in that state Append fails with a [*ConcurrencyError]
	// matching [ErrConcurrency] and writes nothing. An append of events
	// whose IDs are already stored at the same place in the stream is an
	// idempotent retry: it succeeds, writes nothing and returns the original
	// result. An ID stored elsewhere or with other content fails with a
	// [*DuplicateEventError].
	//
	// Invalid input fails with an error matching [ErrInvalid] before
	// anything is written: a bad stream ID ([ValidateStream]), no events
	// or more than [MaxBatch], an ID that is not a UUID or appears twice,
	// or an event past [MaxTypeLen], [MaxDataLen], [MaxMetadataLen] or
	// [MaxEventLen]. At least one event is required.
	Append(ctx context.Context, stream string, expected ExpectedVersion, events ...EventData) (AppendResult, error)

	// ReadStream reads one stream's events in version order, forwards or
	// backwards, fetching in pages. A stream with no events yields nothing.
	//
	// Every read (ReadStream, ReadAll, Subscribe) hands over events the
	// caller owns: their Data and Metadata stay as they are after the loop
	// moves on, and may be kept or passed to other goroutines (a load
	// decodes them on several).
	ReadStream(ctx context.Context, stream string, opts ReadStreamOptions) iter.Seq2[Event, error]

	// ReadAll reads the global log forwards from just after opts.From, in
	// Position order. It returns only what is committed and gap-free at the
	// time of reading, then ends.
	ReadAll(ctx context.Context, opts ReadAllOptions) iter.Seq2[Event, error]

	// Subscribe reads the global log from just after opts.From (catch-up),
	// then follows new appends as they commit (live). It ends only when ctx
	// is done, yielding ctx.Err(), or on an error, or when the loop stops.
	// Events arrive in strictly increasing Position order, none skipped,
	// none twice.
	Subscribe(ctx context.Context, opts SubscribeOptions) iter.Seq2[Event, error]

	// Streams lists streams with their last versions, ordered by name,
	// starting after opts.After.
	Streams(ctx context.Context, opts StreamsOptions) iter.Seq2[StreamInfo, error]

	// Close releases the store's resources and stops its background work.
	// Reads and subscriptions still running end with an error.
	Close() error
}

// AppendResult describes a successful append.
type AppendResult struct {
	// FirstVersion and LastVersion are the versions given to the first and
	// last appended events. LastVersion is the stream's version after the
	// append: pass Exact(LastVersion) to append next.
	FirstVersion, LastVersion uint64
	// Position is the global position of the last appended event.
	Position Position
	// Duplicate is true when the append was an idempotent retry that wrote
	// nothing.
	Duplicate bool
}

// Direction is the order of a stream read.
type Direction uint8

const (
	// Forwards reads from older to newer versions.
	Forwards Direction = iota
	// Backwards reads from newer to older versions.
	Backwards
)

// ReadStreamOptions tunes [Store.ReadStream]. The zero value reads the whole
// stream forwards.
type ReadStreamOptions struct {
	// Direction is Forwards (the default) or Backwards.
	Direction Direction
	// From is the first version to return, inclusive. Zero means the
	// stream's start when reading forwards and its end when reading
	// backwards. A From past the end yields nothing forwards and starts at
	// the last event backwards.
	From uint64
	// Limit caps the number of events returned; zero means no limit.
	Limit int
}

// ReadAllOptions tunes [Store.ReadAll]. The zero value reads the whole log.
type ReadAllOptions struct {
	// From is exclusive: reading starts just after it. [Start] reads from
	// the first event.
	From Position
	// Limit caps the number of events returned; zero means no limit.
	Limit int
}

// SubscribeOptions tunes [Store.Subscribe].
type SubscribeOptions struct {
	// From is exclusive: the subscription starts just after it, so a
	// subscriber resumes from the last position it handled. [Start]
	// delivers the whole log first.
	From Position
}

// StreamsOptions tunes [Store.Streams]. The zero value lists every stream.
type StreamsOptions struct {
	// After is exclusive: listing starts with the first stream name greater
	// than After.
	After string
	// Limit caps the number of streams returned; zero means no limit.
	Limit int
}

// StreamInfo describes a stream.
type StreamInfo struct {
	// Stream is the stream's ID.
	Stream string
	// Version is the version of its last event.
	Version uint64
}

// Validate checks the options, returning an error matching [ErrInvalid].
func (o ReadStreamOptions) Validate() error {
	if o.Direction != Forwards && o.Direction != Backwards {
		return invalidf("unknown read direction %d", o.Direction)
	}
	if o.Limit < 0 {
		return invalidf("negative limit %d", o.Limit)
	}
	return nil
}

// Validate checks the options, returning an error matching [ErrInvalid].
func (o ReadAllOptions) Validate() error {
	if o.Limit < 0 {
		return invalidf("negative limit %d", o.Limit)
	}
	return nil
}

// Validate checks the options, returning an error matching [ErrInvalid].
func (o StreamsOptions) Validate() error {
	if o.Limit < 0 {
		return invalidf("negative limit %d", o.Limit)
	}
	return nil
}
