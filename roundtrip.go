package nova

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"
)

// EncodeDecoded encodes v as [Registry.Encode] does and also returns what
// [Registry.Decode] makes of the result (at the type's current shape no
// upcaster runs): the value a later read of the event sees. It fails, as
// Encode would, on a value that cannot be encoded, and with an error
// naming the event on data that does not decode back.
//
// The decode is skipped, with the same result, where the registry can tell
// that decoding gives back a value equal to v: with the default [JSON]
// codec, for a struct type of exported, non-embedded fields of booleans,
// integers, floating-point numbers, strings and structs of the same,
// without custom JSON or text marshalling, and whose strings are valid
// UTF-8 (the codec replaces invalid bytes). The value returned is then v
// itself, or a copy of *v for a pointer. Every other value is decoded.
func (r *Registry) EncodeDecoded(v any, md Metadata) (EventData, any, error) {
	tb := r.tables.Load()
	name, t, err := r.typeName(tb, v)
	if err != nil {
		return EventData{}, nil, err
	}
	data, err := marshal(r.codec, v)
	if err != nil {
		return EventData{}, nil, fmt.Errorf("nova: encode %q: %w", name, err)
	}
	md.Schema = t.current()
	d := EventData{ID: NewEventID(), Type: name, Data: data, Metadata: md}
	if t.plainJSON != nil {
		rv := reflect.ValueOf(v)
		ptr := rv.Kind() == reflect.Pointer
		if ptr {
			rv = rv.Elem()
		}
		if validStrings(rv, t.plainJSON.strings) {
			if ptr {
				return d, rv.Interface(), nil
			}
			return d, v, nil
		}
	}
	p := reflect.New(t.goType)
	if err := unmarshal(r.codec, data, p.Interface()); err != nil {
		return EventData{}, nil, fmt.Errorf("nova: decode %q event %s: %w", name, d.ID, err)
	}
	return d, p.Elem().Interface(), nil
}

// Interfaces through which a type takes its JSON form into its own hands.
var (
	jsonMarshalerType   = reflect.TypeFor[json.Marshaler]()
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// customJSON reports whether t, or *t, marshals or unmarshals itself, or
// has an IsZero method (which the omitzero option calls), or is a type
// encoding/json treats apart.
func customJSON(t reflect.Type) bool {
	if t == reflect.TypeFor[json.Number]() {
		return true // written as a number, and "" as 0
	}
	for _, t := range []reflect.Type{t, reflect.PointerTo(t)} {
		if t.Implements(jsonMarshalerType) || t.Implements(jsonUnmarshalerType) ||
			t.Implements(textMarshalerType) || t.Implements(textUnmarshalerType) {
			return true
		}
		if _, ok := t.MethodByName("IsZero"); ok {
			return true
		}
	}
	return false
}

// plainType describes a struct type whose values encoding/json turns into
// data that decodes back to an equal value, provided no string in them is
// invalid UTF-8 (encoding/json replaces invalid bytes).
type plainType struct {
	// strings are the field index paths of the type's string fields.
	strings [][]int
}

// plainJSON returns the description of struct type t if every value of t
// round-trips through encoding/json, nil if not. It errs on the side of
// no: a type it does not recognise as plain is decoded.
func plainJSON(t reflect.Type) *plainType {
	p := &plainType{}
	if t.Kind() != reflect.Struct || !plainJSONValue(t, false, nil, p) {
		return nil
	}
	return p
}

// validStrings reports whether every string field of v at the index
// paths is valid UTF-8.
func validStrings(v reflect.Value, paths [][]int) bool {
	for _, p := range paths {
		if !utf8.ValidString(v.FieldByIndex(p).String()) {
			return false
		}
	}
	return true
}

// plainJSONValue reports whether t is plain for a field at index path
// (nil for the top), adding the string fields to p; omits reports that
// the field, or a struct it is in, has the omitempty or omitzero option.
func plainJSONValue(t reflect.Type, omits bool, path []int, p *plainType) bool {
	if customJSON(t) {
		return false
	}
	switch t.Kind() {
	case reflect.String:
		p.strings = append(p.strings, slices.Clone(path))
		return true
	case reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return true
	case reflect.Float32, reflect.Float64:
		// Floating-point numbers are written in the shortest form that
		// parses back to the same number; but omitempty and omitzero
		// take -0 for zero and drop it (or the struct holding it), and it
		// decodes as +0.
		return !omits
	case reflect.Struct:
		names := make(map[string]bool, t.NumField())
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() || f.Anonymous {
				return false
			}
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" && opts == "" {
				return false // not encoded
			}
			fieldOmits := omits
			for opt := range strings.SplitSeq(opts, ",") {
				switch opt {
				case "":
				case "omitempty", "omitzero":
					fieldOmits = true
				default:
					return false // ",string" and the like
				}
			}
			if name == "" {
				name = f.Name
			}
			if !plainName(name) || names[name] {
				return false // a name JSON may not use as is; a clash drops both
			}
			names[name] = true
			if !plainJSONValue(f.Type, fieldOmits, append(slices.Clip(path), i), p) {
				return false
			}
		}
		return true
	}
	return false
}

// plainName reports whether name is made only of letters, digits, '_',
// '-' and '.': a key encoding/json takes as given.
func plainName(name string) bool {
	for _, c := range name {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-', c == '.':
		default:
			return false
		}
	}
	return name != ""
}
