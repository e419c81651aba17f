package nova

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
)

// Codec turns event values into bytes and back. The default is JSON.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// JSON is the default [Codec], backed by encoding/json.
var JSON Codec = jsonCodec{}

type jsonCodec struct{}

func (jsonCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// Upcaster turns the data of one shape version of an event type into the
// next version's data. It must not keep or modify data. The registry
// passes data with no spare capacity, so appending to it is safe: the
// append copies.
type Upcaster func(data []byte) ([]byte, error)

// RegistryOptions configures a [Registry]. The zero value means defaults.
// Every value is valid, so [NewRegistry] returns no error.
type RegistryOptions struct {
	// Codec encodes and decodes event data. Default [JSON].
	Codec Codec
	// AllowUnknown makes [Registry.Decode] return the upcast [Event] itself
	// for a type with no registered Go type, instead of an error matching
	// [ErrUnknownType].
	AllowUnknown bool
	// AllowNewer makes reads accept an event whose shape is newer than the
	// newest the registry knows for its type, as an instance of the old
	// code may meet during a rolling deploy. Such an event is read as the
	// newest known shape: no upcaster runs, [Registry.Upcasted] returns it
	// unchanged, and [Registry.Decode] decodes its data into the
	// registered Go type, so fields the new shape added are dropped and a
	// field whose meaning changed is misread. Set it only when every newer
	// shape merely adds fields the old code may ignore. By default such an
	// event fails every read with an [*EventTooNewError] (matching
	// [ErrEventTooNew]).
	AllowNewer bool
}

// Registry maps event type names to Go types, encodes and decodes event
// data, and runs upcasters. A Registry is safe for concurrent use; register
// types and upcasters at start-up.
//
// Every event carries the version of its data's shape in
// [Metadata.Schema]. An upcaster registered for (type, from) turns shape
// `from` into shape `from+1`; the current shape of a type is one past its
// last upcaster. Encode stamps the current shape; Decode, and everything
// that reads through a registry (aggregate loads, projections, typed
// subscriptions), upcasts older shapes first, so old events never need
// rewriting. An event of a newer shape than the current one of a type the
// registry knows fails those reads with an [*EventTooNewError], unless
// [RegistryOptions.AllowNewer] is set.
type Registry struct {
	codec        Codec
	allowUnknown bool
	allowNewer   bool

	// mu serialises registrations, which replace tables with an updated
	// copy; reads load tables without locking, once per call.
	mu     sync.Mutex
	tables atomic.Pointer[tables]
}

// tables is what the registry knows, never modified once published: a
// registration publishes a new copy.
type tables struct {
	// types holds, by event type name, the Go type and upcasters.
	types map[string]*typeEntry
	// byType maps each registered Go type to its name.
	byType map[reflect.Type]string
}

// typeEntry is what is known of one event type name. It is never modified
// once published.
type typeEntry struct {
	// goType is the registered Go type, nil when only upcasters are.
	goType reflect.Type
	// upcasters[i] turns shape i+1 into shape i+2.
	upcasters []Upcaster
	// plainJSON, when set, says that the codec is the default JSON one
	// and that goType's values decode back equal to what was encoded (see
	// [Registry.EncodeDecoded]).
	plainJSON *plainType
}

// current returns the type's current shape: one past its last upcaster, 1
// when it has none.
func (t *typeEntry) current() int { return len(t.upcasters) + 1 }

// update publishes a copy of the tables with fn applied to it; fn may
// replace entries but not modify them. The caller holds r.mu.
func (r *Registry) update(fn func(*tables)) {
	old := r.tables.Load()
	tb := &tables{types: maps.Clone(old.types), byType: maps.Clone(old.byType)}
	fn(tb)
	r.tables.Store(tb)
}

// withDefaults returns o with each zero field set to its default.
func (o RegistryOptions) withDefaults() RegistryOptions {
	if o.Codec == nil {
		o.Codec = JSON
	}
	return o
}

// NewRegistry returns an empty registry. The zero opts means the
// defaults.
func NewRegistry(opts RegistryOptions) *Registry {
	opts = opts.withDefaults()
	r := &Registry{
		codec:        opts.Codec,
		allowUnknown: opts.AllowUnknown,
		allowNewer:   opts.AllowNewer,
	}
	r.tables.Store(&tables{types: make(map[string]*typeEntry), byType: make(map[reflect.Type]string)})
	return r
}

// Register maps the event type name to the Go type T. T must not be a
// pointer or interface type; values of T and *T both encode as name. Each
// name and each type may be registered once.
func Register[T any](r *Registry, name string) error {
	t := reflect.TypeFor[T]()
	if t.Kind() == reflect.Pointer || t.Kind() == reflect.Interface {
		return invalidf("register %q: type %s must not be a pointer or interface", name, t)
	}
	if err := validateType(name); err != nil {
		return invalidf("register %q: %v", name, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	tb := r.tables.Load()
	if old := tb.types[name]; old != nil && old.goType != nil {
		return invalidf("register %q: name already registered for %s", name, old.goType)
	}
	if old, ok := tb.byType[t]; ok {
		return invalidf("register %q: type %s already registered as %q", name, t, old)
	}
	r.update(func(tb *tables) {
		e := typeEntry{goType: t}
		if _, std := r.codec.(jsonCodec); std {
			e.plainJSON = plainJSON(t)
		}
		if old := tb.types[name]; old != nil {
			e.upcasters = old.upcasters
		}
		tb.types[name] = &e
		tb.byType[t] = name
	})
	return nil
}

// MustRegister is [Register] that panics on error, for package-level set-up
// with constant arguments.
func MustRegister[T any](r *Registry, name string) {
	if err := Register[T](r, name); err != nil {
		panic(err)
	}
}

// Upcast registers fn to turn shape from of event type name into shape
// from+1. Upcasters of one type must be registered in order: 1, 2, ...
func (r *Registry) Upcast(name string, from int, fn Upcaster) error {
	if err := validateType(name); err != nil {
		return invalidf("upcast %q from %d: %v", name, from, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var e typeEntry
	if old := r.tables.Load().types[name]; old != nil {
		e = *old
	}
	if cur := e.current(); from != cur {
		return invalidf("upcast %q from %d: the next upcaster must start from shape %d", name, from, cur)
	}
	// A fresh array, so that tables published before keep theirs.
	e.upcasters = append(slices.Clip(e.upcasters), fn)
	r.update(func(tb *tables) { tb.types[name] = &e })
	return nil
}

// SchemaVersion returns the current shape version of an event type: one
// past its last upcaster, 1 when it has none.
func (r *Registry) SchemaVersion(name string) int {
	if e := r.tables.Load().types[name]; e != nil {
		return e.current()
	}
	return 1
}

// TypeName returns the registered name of v's type (v may be a pointer).
func (r *Registry) TypeName(v any) (string, error) {
	name, _, err := r.typeName(r.tables.Load(), v)
	return name, err
}

// typeName returns the registered name of v's type and its entry.
func (r *Registry) typeName(tb *tables, v any) (string, *typeEntry, error) {
	t := reflect.TypeOf(v)
	if t == nil {
		return "", nil, invalidf("nil event value")
	}
	if t.Kind() == reflect.Pointer {
		if reflect.ValueOf(v).IsNil() {
			return "", nil, invalidf("nil %s event value", t)
		}
		t = t.Elem()
	}
	name, ok := tb.byType[t]
	if !ok {
		return "", nil, fmt.Errorf("%w: Go type %s is not registered", ErrUnknownType, t)
	}
	return name, tb.types[name], nil
}

// Encode turns an event value into [EventData] with a fresh ID, the
// registered type name, the encoded data, md and the type's current shape
// version.
func (r *Registry) Encode(v any, md Metadata) (EventData, error) {
	name, e, err := r.typeName(r.tables.Load(), v)
	if err != nil {
		return EventData{}, err
	}
	data, err := marshal(r.codec, v)
	if err != nil {
		return EventData{}, fmt.Errorf("nova: encode %q: %w", name, err)
	}
	md.Schema = e.current()
	return EventData{ID: NewEventID(), Type: name, Data: data, Metadata: md}, nil
}

// EncodeAll encodes every value with the same metadata. It fails on the
// first value that cannot be encoded, returning nothing.
func (r *Registry) EncodeAll(md Metadata, vs ...any) ([]EventData, error) {
	out := make([]EventData, 0, len(vs))
	for i, v := range vs {
		d, err := r.Encode(v, md)
		if err != nil {
			return nil, fmt.Errorf("nova: encode event %d: %w", i, err)
		}
		out = append(out, d)
	}
	return out, nil
}

// Upcasted returns e with its data brought to the current shape of its
// type by the registered upcasters. An event already current is returned
// as is. An event of a newer shape than the current one fails with an
// [*EventTooNewError], or with [RegistryOptions.AllowNewer] is returned as
// is; so is an event of a type the registry knows nothing of (no Go type,
// no upcaster), whose newest shape it cannot tell.
func (r *Registry) Upcasted(e Event) (Event, error) {
	return r.upcasted(r.tables.Load().types[e.Type], e)
}

// upcasted is [Registry.Upcasted] with the entry of e's type, nil when
// the registry knows nothing of it.
func (r *Registry) upcasted(t *typeEntry, e Event) (Event, error) {
	if t == nil {
		return e, nil // nothing is known of the type
	}
	s := e.Metadata.SchemaVersion()
	if newest := t.current(); s >= newest {
		if s > newest && !r.allowNewer {
			return Event{}, &EventTooNewError{ID: e.ID, Stream: e.Stream, Version: e.Version, Type: e.Type, Schema: s, Newest: newest}
		}
		return e, nil
	}
	for v := s; v < t.current(); v++ {
		// Clipped, so an upcaster that appends to its input copies it
		// rather than writing past it into memory the caller owns.
		data, err := callUpcaster(t.upcasters[v-1], slices.Clip(e.Data))
		if err != nil {
			return Event{}, fmt.Errorf("nova: upcast %q event %s from shape %d: %w", e.Type, e.ID, v, err)
		}
		e.Data = data
		e.Metadata.Schema = v + 1
	}
	return e, nil
}

// Decode upcasts e and decodes its data into a new value of the registered
// Go type, returned by value (T, not *T). For an unregistered type it fails
// with an error matching [ErrUnknownType], or, with
// [RegistryOptions.AllowUnknown], returns the upcast [Event] itself. An
// event of a newer shape than the type's current one fails with an
// [*EventTooNewError] (see [RegistryOptions.AllowNewer]).
func (r *Registry) Decode(e Event) (any, error) {
	t := r.tables.Load().types[e.Type]
	e, err := r.upcasted(t, e)
	if err != nil {
		return nil, err
	}
	if t == nil || t.goType == nil {
		if r.allowUnknown {
			return e, nil
		}
		return nil, fmt.Errorf("%w: %q (event %s, stream %q version %d) has no registered Go type", ErrUnknownType, e.Type, e.ID, e.Stream, e.Version)
	}
	p := reflect.New(t.goType)
	if err := unmarshal(r.codec, e.Data, p.Interface()); err != nil {
		return nil, fmt.Errorf("nova: decode %q event %s (stream %q version %d): %w", e.Type, e.ID, e.Stream, e.Version, err)
	}
	return p.Elem().Interface(), nil
}

// DecodeAs decodes e into a T, failing if e's registered type is not T.
func DecodeAs[T any](r *Registry, e Event) (T, error) {
	var zero T
	v, err := r.Decode(e)
	if err != nil {
		return zero, err
	}
	t, ok := v.(T)
	if !ok {
		return zero, fmt.Errorf("nova: event %s of type %q decodes to %T, not %T", e.ID, e.Type, v, zero)
	}
	return t, nil
}
