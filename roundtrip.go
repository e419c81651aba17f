package nova

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
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
// without custom JSON or text marshalling, whose data holds no string the
// codec had to repair (invalid UTF-8). The value returned is then v
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
	if t.plainJSON && !bytes.Contains(data, []byte(`\ufffd`)) {
		// JSON writes invalid UTF-8 in a string as \ufffd; a string that
		// holds a backslash followed by "ufffd" lands here too, and is
		// merely decoded.
		rv := reflect.ValueOf(v)
		if rv.Kind() == reflect.Pointer {
			return d, rv.Elem().Interface(), nil
		}
		return d, v, nil
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
// has an IsZero method (which the omitzero option calls).
func customJSON(t reflect.Type) bool {
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

// plainJSON reports whether every value of struct type t encodes with
// encoding/json to data that decodes back to an equal value, provided no
// string in it is invalid UTF-8. It errs on the side of no: a type it
// does not recognise as plain is decoded.
func plainJSON(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && plainJSONValue(t, false)
}

// plainJSONValue is plainJSON for a field's type; omitEmpty reports the
// field's omitempty option.
func plainJSONValue(t reflect.Type, omitEmpty bool) bool {
	if customJSON(t) {
		return false
	}
	switch t.Kind() {
	case reflect.Bool, reflect.String,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return true
	case reflect.Float32, reflect.Float64:
		// Floating-point numbers are written in the shortest form that
		// parses back to the same number; but omitempty drops -0, which
		// decodes as +0.
		return !omitEmpty
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
			fieldOmitEmpty := false
			for opt := range strings.SplitSeq(opts, ",") {
				switch opt {
				case "":
				case "omitempty":
					fieldOmitEmpty = true
				case "omitzero":
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
			if !plainJSONValue(f.Type, fieldOmitEmpty) {
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
