package novamongo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/nova-go/nova/internal/readmodel"
)

// maxDepth is the deepest nesting of arrays and objects stored as BSON;
// MongoDB allows 100 levels in a document, the projection's own and the
// value field's included.
const maxDepth = 90

// errNotBSON says that a JSON value has no faithful BSON form here.
var errNotBSON = errors.New("no faithful BSON form")

// toBSON returns value, valid JSON, as a BSON value whose conversion back
// by [toJSON] means the same: objects as documents, keys in order;
// arrays; strings; integers that fit int64 as int64, other numbers as
// doubles; true, false and null. It fails with errNotBSON for a value the
// MongoDB API cannot hold as it is: an object key that is empty, starts
// with '$', holds '.' or NUL, or repeats in its object; a number beyond a
// double's range; a \u escape of a lone surrogate (which Go would decode
// to U+FFFD); nesting deeper than maxDepth.
func toBSON(value []byte) (any, error) {
	if _, lone := readmodel.Escapes(value); lone {
		return nil, errNotBSON
	}
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	return decodeValue(dec, 0)
}

func decodeValue(dec *json.Decoder, depth int) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok := tok.(type) {
	case json.Delim:
		if depth >= maxDepth {
			return nil, errNotBSON
		}
		if tok == '[' {
			a := bson.A{}
			for dec.More() {
				v, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			_, err := dec.Token() // ']'
			return a, err
		}
		d := bson.D{}
		seen := make(map[string]bool)
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k := kt.(string)
			if k == "" || k[0] == '$' || strings.ContainsAny(k, ".\x00") || seen[k] {
				return nil, errNotBSON
			}
			seen[k] = true
			v, err := decodeValue(dec, depth+1)
			if err != nil {
				return nil, err
			}
			d = append(d, bson.E{Key: k, Value: v})
		}
		_, err := dec.Token() // '}'
		return d, err
	case json.Number:
		s := string(tok)
		if !strings.ContainsAny(s, ".eE") {
			if i, err := strconv.ParseInt(s, 10, 64); err == nil {
				return i, nil
			}
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, errNotBSON
		}
		return f, nil
	default: // string, bool, nil
		return tok, nil
	}
}

// toJSON appends the JSON form of v, a value stored by [toBSON], to buf.
// Values of BSON types that toBSON never writes (another program's) fail.
func toJSON(buf *bytes.Buffer, v bson.RawValue) error {
	switch v.Type {
	case bson.TypeEmbeddedDocument:
		elems, err := v.Document().Elements()
		if err != nil {
			return err
		}
		buf.WriteByte('{')
		for i, e := range elems {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeString(buf, e.Key())
			buf.WriteByte(':')
			if err := toJSON(buf, e.Value()); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case bson.TypeArray:
		vals, err := v.Array().Values()
		if err != nil {
			return err
		}
		buf.WriteByte('[')
		for i, e := range vals {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := toJSON(buf, e); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case bson.TypeString:
		writeString(buf, v.StringValue())
	case bson.TypeInt32:
		buf.WriteString(strconv.FormatInt(int64(v.Int32()), 10))
	case bson.TypeInt64:
		buf.WriteString(strconv.FormatInt(v.Int64(), 10))
	case bson.TypeDouble:
		f := v.Double()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("the double %v has no JSON form", f)
		}
		b, _ := json.Marshal(f) // finite: encodes, spelt as encoding/json spells numbers
		buf.Write(b)
	case bson.TypeBoolean:
		buf.WriteString(strconv.FormatBool(v.Boolean()))
	case bson.TypeNull:
		buf.WriteString("null")
	default:
		return fmt.Errorf("a BSON %s is not a value this store writes", v.Type)
	}
	return nil
}

// writeString writes s as a JSON string, without the HTML escapes of
// encoding/json.
func writeString(buf *bytes.Buffer, s string) {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)           // a string always encodes
	buf.Truncate(buf.Len() - 1) // the newline Encode adds
}
