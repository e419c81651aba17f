package aggregate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/nova-go/nova"
)

// Applier is implemented by a state type's pointer: Apply folds one event
// into the state. Events arrive as the values a [nova.Registry] decodes (a
// struct value, not a pointer), already upcast. Apply should not fail for
// an event the state's own decisions produced; an error stops the load.
type Applier interface {
	Apply(event any) error
}

// StatePtr is the constraint on a state type's pointer. It is inferred at
// call sites: aggregate.NewRepository[Order](cfg) needs *Order to be an
// [Applier], and says so at compile time.
type StatePtr[T any] interface {
	*T
	Applier
}

// Defaults used by [Config].
const (
	// DefaultSnapshotEvery is the default [Config.SnapshotEvery].
	DefaultSnapshotEvery = 100
	// DefaultMaxAttempts is the default [Config.MaxAttempts].
	DefaultMaxAttempts = 3
	// DefaultSnapshotSchema is the default [Config.SnapshotSchema].
	DefaultSnapshotSchema = 1
)

// Config configures a [Repository]. Store and Registry are required; the
// zero value of every other field means its default.
type Config struct {
	// Store holds the events. Required.
	Store nova.Store
	// Registry encodes events on save and decodes (and upcasts) them on
	// load. Every event type the aggregate produces must be registered.
	// Required.
	Registry *nova.Registry

	// Category, when set, makes the stream ID of aggregate id
	// Category+"-"+id, for example "order-42". Empty means the aggregate ID
	// is the stream ID. Ignored when StreamFunc is set.
	Category string
	// StreamFunc, when set, maps an aggregate ID to its stream ID. It must
	// be deterministic. Default: see Category.
	StreamFunc func(id string) string

	// Snapshots stores snapshots of the state. Nil (the default) means no
	// snapshots: every load replays the whole stream.
	Snapshots SnapshotStore
	// SnapshotEvery is how many events apart snapshots are taken: a save
	// that takes the stream past a multiple of it stores a snapshot.
	// Default [DefaultSnapshotEvery].
	SnapshotEvery int
	// SnapshotSchema is the version of the state's shape. Snapshots of any
	// other shape are ignored. Bump it when the state type, or what Apply
	// makes of events, changes. Default [DefaultSnapshotSchema].
	SnapshotSchema int
	// Codec encodes the state for snapshots. The state must round-trip
	// through it (with the default, JSON: exported fields). Default
	// [nova.JSON].
	Codec nova.Codec
	// ErrorFunc is told about failures that do not fail the call: a
	// snapshot that could not be saved, loaded or decoded. It must be safe
	// for concurrent use. Default: a warning on [slog.Default].
	ErrorFunc func(ctx context.Context, err error)

	// MaxAttempts bounds how many times [Repository.Update] loads and
	// decides when saves keep failing with [nova.ErrConcurrency]. Default
	// [DefaultMaxAttempts].
	MaxAttempts int

	// LoadDecoders is how many goroutines decode a long stream's events
	// on load, ahead of applying them in order on the caller's goroutine
	// (a stream shorter than 256 events is always decoded on the
	// caller's). 1 decodes everything on the caller's goroutine. Default
	// GOMAXPROCS.
	LoadDecoders int
}

// validate reports the first bad field; it changes nothing.
func (c Config) validate() error {
	switch {
	case c.Store == nil:
		return invalidf("config: Store is nil")
	case c.Registry == nil:
		return invalidf("config: Registry is nil")
	case c.SnapshotEvery < 0:
		return invalidf("config: negative SnapshotEvery %d", c.SnapshotEvery)
	case c.SnapshotSchema < 0:
		return invalidf("config: negative SnapshotSchema %d", c.SnapshotSchema)
	case c.MaxAttempts < 0:
		return invalidf("config: negative MaxAttempts %d", c.MaxAttempts)
	case c.LoadDecoders < 0:
		return invalidf("config: negative LoadDecoders %d", c.LoadDecoders)
	}
	return nil
}

// withDefaults returns c with each zero field set to its default.
func (c Config) withDefaults() Config {
	if c.StreamFunc == nil {
		if cat := c.Category; cat != "" {
			c.StreamFunc = func(id string) string { return cat + "-" + id }
		} else {
			c.StreamFunc = func(id string) string { return id }
		}
	}
	if c.SnapshotEvery == 0 {
		c.SnapshotEvery = DefaultSnapshotEvery
	}
	if c.SnapshotSchema == 0 {
		c.SnapshotSchema = DefaultSnapshotSchema
	}
	if c.Codec == nil {
		c.Codec = nova.JSON
	}
	if c.ErrorFunc == nil {
		c.ErrorFunc = warn
	} else {
		c.ErrorFunc = guardReport(c.ErrorFunc)
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	return c
}

// Repository loads and saves aggregates whose state is T. Build one with
// [NewRepository]; it is safe for concurrent use.
type Repository[T any] struct {
	store     nova.Store
	reg       *nova.Registry
	streamFor func(id string) string
	apply     func(*T, any) error

	snaps    SnapshotStore
	every    uint64
	schema   int
	codec    nova.Codec
	report   func(context.Context, error)
	attempts int
	decoders int // 0: GOMAXPROCS at load time
}

// NewRepository returns a repository for state type T, whose pointer must
// implement [Applier]. Only T is given; the pointer type is inferred:
//
//	repo, err := aggregate.NewRepository[Order](aggregate.Config{Store: store, Registry: reg})
//
// A config that is not valid fails with an error matching
// [nova.ErrInvalid].
func NewRepository[T any, PT StatePtr[T]](cfg Config) (*Repository[T], error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	r := &Repository[T]{
		store:     cfg.Store,
		reg:       cfg.Registry,
		streamFor: cfg.StreamFunc,
		apply: func(s *T, e any) (err error) {
			defer nova.Recover(&err)
			return PT(s).Apply(e)
		},
		snaps:    cfg.Snapshots,
		every:    uint64(cfg.SnapshotEvery),
		schema:   cfg.SnapshotSchema,
		codec:    cfg.Codec,
		report:   cfg.ErrorFunc,
		attempts: cfg.MaxAttempts,
		decoders: cfg.LoadDecoders,
	}
	return r, nil
}

// Root is one aggregate as loaded: its ID, the version of the last event
// applied to its state (0 for an aggregate that has no events yet), and
// the state. Get a Root from [Repository.Load] or [Repository.New] and
// hand it back to [Repository.Save], which advances it. A Root is not safe
// for concurrent use.
type Root[T any] struct {
	// ID is the aggregate's ID.
	ID string
	// Version is the stream version the state includes.
	Version uint64
	// State is the aggregate's state.
	State *T

	// broken is set when a save committed but Apply failed: the state no
	// longer matches the stream and the root must be reloaded.
	broken error
}

// SaveOptions tunes [Repository.Save] and [Repository.Update]. A nil
// *SaveOptions means the zero value.
type SaveOptions struct {
	// Metadata goes with every saved event: correlation ID, causation ID
	// and free keys. Its Schema is set by the registry.
	Metadata nova.Metadata
}

// StreamID returns the stream ID that holds aggregate id's events.
func (r *Repository[T]) StreamID(id string) string {
	s, _ := r.streamOf(id)
	return s
}

// streamOf runs the stream function under recover.
func (r *Repository[T]) streamOf(id string) (s string, err error) {
	defer nova.Recover(&err)
	return r.streamFor(id), nil
}

// stream validates id and returns its stream ID.
func (r *Repository[T]) stream(id string) (string, error) {
	if id == "" {
		return "", invalidf("empty aggregate ID")
	}
	s, err := r.streamOf(id)
	if err != nil {
		return "", fmt.Errorf("aggregate: aggregate ID %q: stream func: %w", id, err)
	}
	if err := nova.ValidateStream(s); err != nil {
		return "", invalidf("aggregate ID %q: %w", id, err)
	}
	return s, nil
}

// New returns a root for an aggregate that has no events yet: a fresh
// state at version 0. Saving it expects the stream not to exist.
func (r *Repository[T]) New(id string) (*Root[T], error) {
	if _, err := r.stream(id); err != nil {
		return nil, err
	}
	return &Root[T]{ID: id, State: new(T)}, nil
}

// Load rebuilds aggregate id: it starts from the latest usable snapshot,
// if any, and applies the events after it, decoded and upcast through the
// registry. A stream with no events fails with an error matching
// [nova.ErrNotFound].
func (r *Repository[T]) Load(ctx context.Context, id string) (*Root[T], error) {
	stream, err := r.stream(id)
	if err != nil {
		return nil, err
	}
	root := &Root[T]{ID: id, State: new(T)}
	if err := r.load(ctx, stream, root); err != nil {
		return nil, err
	}
	if root.Version == 0 {
		return nil, fmt.Errorf("aggregate: load %q: stream %q has no events: %w", id, stream, nova.ErrNotFound)
	}
	return root, nil
}

// load fills root from the snapshot, if a usable one exists, and the
// events after it.
func (r *Repository[T]) load(ctx context.Context, stream string, root *Root[T]) error {
	if s, ok := r.loadSnapshot(ctx, stream, root); ok {
		// Read from the snapshot's own version, to check the stream really
		// has it: a snapshot ahead of its stream is not trusted.
		confirmed := false
		after := func(yield func(nova.Event, error) bool) {
			for ev, err := range r.store.ReadStream(ctx, stream, nova.ReadStreamOptions{From: s.Version}) {
				if err == nil && !confirmed {
					if ev.Version != s.Version {
						return
					}
					confirmed = true
					continue
				}
				if !yield(ev, err) {
					return
				}
			}
		}
		if err := r.replay(root, stream, after); err != nil {
			return err
		}
		if confirmed {
			return nil
		}
		r.report(ctx, fmt.Errorf("aggregate: snapshot of stream %q at version %d ignored: the stream has no event at that version", stream, s.Version))
		root.State, root.Version = new(T), 0
	}
	return r.replay(root, stream, r.store.ReadStream(ctx, stream, nova.ReadStreamOptions{}))
}

// readError is the error of a load whose read of root's stream failed.
func (r *Repository[T]) readError(root *Root[T], stream string, err error) error {
	return fmt.Errorf("aggregate: load %q: read stream %q: %w", root.ID, stream, err)
}

// applyEvent decodes a recorded event and applies it to root.
func (r *Repository[T]) applyEvent(root *Root[T], ev nova.Event) error {
	if ev.Version != root.Version+1 {
		return r.jumpError(root, ev)
	}
	v, err := r.reg.Decode(ev)
	return r.applyDecoded(root, ev, v, err)
}

// applyDecoded applies ev, decoded as v (or failing to decode with
// decodeErr), to root.
func (r *Repository[T]) applyDecoded(root *Root[T], ev nova.Event, v any, decodeErr error) error {
	if ev.Version != root.Version+1 {
		return r.jumpError(root, ev)
	}
	if decodeErr != nil {
		return fmt.Errorf("aggregate: load %q: %w", root.ID, decodeErr)
	}
	if err := r.apply(root.State, v); err != nil {
		return fmt.Errorf("aggregate: load %q: apply %q event %s (stream %q version %d): %w", root.ID, ev.Type, ev.ID, ev.Stream, ev.Version, err)
	}
	root.Version = ev.Version
	return nil
}

func (r *Repository[T]) jumpError(root *Root[T], ev nova.Event) error {
	return fmt.Errorf("aggregate: load %q: stream %q jumps from version %d to %d", root.ID, ev.Stream, root.Version, ev.Version)
}

// Save appends events to root's stream, expecting the stream to be at
// root.Version, so they are numbered root.Version+1 onwards. Then it
// applies them to root.State, as a later load would see them (encoded and
// decoded through the registry), and advances root.Version, so the root
// can be saved again.
//
// Every event is encoded before anything is written: a value of an
// unregistered type fails with an error matching [nova.ErrUnknownType] and
// writes nothing. If the stream has moved past root.Version, Save fails
// with a [*nova.ConcurrencyError] matching [nova.ErrConcurrency], writes
// nothing and leaves root as it was: load again and decide again. Saving no
// events writes nothing and returns root.Version as LastVersion.
//
// When the save takes the stream past a multiple of
// [Config.SnapshotEvery], a snapshot is stored after the append; a failure
// there is reported, not returned.
//
// opts may be nil.
func (r *Repository[T]) Save(ctx context.Context, root *Root[T], events []any, opts *SaveOptions) (nova.AppendResult, error) {
	stream, err := r.stream(root.ID)
	if err != nil {
		return nova.AppendResult{}, err
	}
	if root.broken != nil {
		return nova.AppendResult{}, fmt.Errorf("aggregate: save %q: the root no longer matches its stream, load it again: %w", root.ID, root.broken)
	}
	if len(events) == 0 {
		return nova.AppendResult{LastVersion: root.Version}, nil
	}
	var md nova.Metadata
	if opts != nil {
		md = opts.Metadata
	}
	data := make([]nova.EventData, len(events))
	decoded := make([]any, len(events))
	for i, e := range events {
		if e == nil {
			return nova.AppendResult{}, invalidf("save %q: event %d is nil", root.ID, i)
		}
		// Decode what will be stored, so the state sees exactly what a
		// load will see, and an event that does not round-trip fails here,
		// before anything is written. (The registry skips the decode
		// where it can tell the value would come back equal.)
		d, v, err := r.reg.EncodeDecoded(e, md)
		if err != nil {
			return nova.AppendResult{}, fmt.Errorf("aggregate: save %q: event %d: %w", root.ID, i, err)
		}
		data[i], decoded[i] = d, v
	}
	res, err := r.store.Append(ctx, stream, nova.Exact(root.Version), data...)
	if err != nil {
		return nova.AppendResult{}, fmt.Errorf("aggregate: save %q: %w", root.ID, err)
	}
	before := root.Version
	for i, v := range decoded {
		if err := r.apply(root.State, v); err != nil {
			root.Version = res.LastVersion
			root.broken = fmt.Errorf("apply %q event %s (version %d): %w", data[i].Type, data[i].ID, before+uint64(i)+1, err)
			return res, fmt.Errorf("aggregate: save %q: events saved up to version %d, but %w", root.ID, res.LastVersion, root.broken)
		}
	}
	root.Version = res.LastVersion
	if r.snaps != nil && before/r.every < root.Version/r.every {
		r.saveSnapshot(ctx, stream, root)
	}
	return res, nil
}

// warn is the default ErrorFunc: a warning on slog.Default.
func warn(ctx context.Context, err error) {
	slog.Default().WarnContext(ctx, "aggregate: snapshot problem", "error", err)
}

// guardReport runs the user's ErrorFunc under recover: when it panics,
// the report and the panic go to [warn].
func guardReport(report func(context.Context, error)) func(context.Context, error) {
	return func(ctx context.Context, err error) {
		defer func() {
			if v := recover(); v != nil {
				warn(ctx, errors.Join(err, fmt.Errorf("aggregate: ErrorFunc: %w", nova.NewPanicError(v))))
			}
		}()
		report(ctx, err)
	}
}
