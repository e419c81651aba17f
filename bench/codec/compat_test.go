package codec_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/bench/codec"
)

// encCase is a value to marshal. Its encoding/json output, when there is
// one, is also decoded back into a new value of the same type.
type encCase struct {
	name string
	v    any
}

// decCase is a raw input to unmarshal into a new value of newT's type.
type decCase struct {
	name string
	in   string
	newT func() any
}

// isolated reports whether a case runs in a child process with a time
// limit: deep nesting may hang a library or overflow its stack.
func (c decCase) isolated() bool { return strings.HasPrefix(c.name, "deep-") }

func ptr[T any](v T) *T { return &v }

func newOf[T any]() func() any { return func() any { return new(T) } }

var zone = time.FixedZone("", 5*3600+30*60)

func encCorpus() []encCase {
	one := 1
	s := "x"
	return []encCase{
		{"omitempty-zero", Omit{}},
		{"omitempty-set", Omit{S: "s", I: 1, F: 0.5, B: true, P: &one, Sl: []int{1}, M: map[string]int{"a": 1}, If: 0, Ms: map[string]string{}}},
		{"omitempty-empty-slice", Omit{Sl: []int{}, M: map[string]int{}}},
		{"omitzero-zero", OmitZero{Z: zeroer{-1}}},
		{"omitzero-set", OmitZero{T: time.Unix(1, 0).UTC(), I: 1, St: Address{City: "x"}, Z: zeroer{0}, Sl: []int{}, P: &one}},
		{"string-option", Stringed{I: -5, U: math.MaxUint64, F: 1.5, B: true, S: `a"b`, P: &one, Sl: []int{1}}},
		{"string-option-nil-ptr", Stringed{}},
		{"string-option-html", Stringed{S: "<>&\u2028\u2029"}},
		{"embedded-promoted", Embedding{Base: Base{ID: "b", Name: "base", Dup: 1}, Other: &Other{Dup: 2, Name: "other"}, Name: "top", Extra: 3}},
		{"embedded-conflict", Conflict{Base: Base{ID: "b", Name: "n", Dup: 1}, Other2: Other2{Dup: 2, Name: 3}}},
		{"embedded-nil-ptr", NilEmbed{X: 1}},
		{"maps-keys-sorted", Maps{
			Int:  map[int]string{10: "ten", -1: "minus", 2: "two", 100: "hundred"},
			Uint: map[uint8]bool{255: true, 0: false, 9: true},
			Text: map[textKey]int{{"b", "1"}: 1, {"a", "2"}: 2, {"a", "10"}: 3},
			Str:  map[string]any{"z": 1, "a": []any{"x", 2.5, nil, true}, "m": map[string]any{"y": "1", "b": nil}, "é": 1, "A": 2},
			Nest: map[string][]int64{"k": {1, 2}},
		}},
		{"bytes-base64", Bytes{B: []byte("hello, \x00\xff world"), E: []byte{}, Raw: json.RawMessage(`{"a": [1, 2]}`), Num: "12345678901234567890.5e3", Arr: [3]byte{1, 2, 3}}},
		{"bytes-empty-number", Bytes{}},
		{"methods", Methods{
			C: 21.5, CP: ptr(Celsius(-3)), PM: PtrMarshaler{1}, PMP: &PtrMarshaler{2}, L: 1, LS: []Level{0, 1},
			LM:    map[Level]int{1: 1, 0: 0},
			Times: []time.Time{time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), time.Date(2026, 1, 2, 3, 4, 5, 0, zone), {}},
			Dur:   time.Second, Any: map[string]any{"n": 1}, Anys: []any{1, "a", nil, Small{2}, []byte("b")},
		}},
		{"addressable-ptr-marshaler", &Methods{PM: PtrMarshaler{1}}},
		{"marshaljson-invalid", struct{ B BadMarshaler }{}},
		{"pointers", Pointers{P: &one, PP: ptr(&s), S: &Small{1}, Sl: []*Small{{1}, nil}, ESl: []int{}, M: map[string]*Small{"a": {1}, "n": nil}}},
		{"pointers-nil", Pointers{}},
		{"nil-ptr-top", (*Small)(nil)},
		{"nil-any", nil},
		{"numbers-max", Numbers{I64: math.MaxInt64, IMin: math.MinInt64, U64: math.MaxUint64, I8: -128, U8: 255, F32: math.MaxFloat32, F64: math.MaxFloat64, Any: int64(math.MaxInt64)}},
		{"float-1e21", []float64{1e20, 1e21, 123456789012345678901234567890.0, 1e-6, 1e-7, 5e-324, 0.1, math.Copysign(0, -1), 100, 1.5e300}},
		{"float32", []float32{0.1, 1e21, 1e-7, 3.4e38, 16777217, float32(math.Copysign(0, -1))}},
		{"float-nan", []float64{math.NaN()}},
		{"float-inf", Numbers{F64: math.Inf(1)}},
		{"float32-inf", []float32{float32(math.Inf(-1))}},
		{"html-escape", map[string]string{"<k>": "<script>&amp;</script>", "s": "\u2028\u2029", "ctl": "\x00\x1f\x7f\t\n"}},
		{"invalid-utf8", []string{"a\xffb", "\xed\xa0\x80", "\xc3", "ok é 😀"}},
		{"invalid-utf8-key", map[string]int{"k\xff": 1}},
		{"unexported-skip", Unexported{Pub: 1, priv: 2, Skip: 3, Dash: 4}},
		{"unsupported-chan", struct{ C chan int }{C: make(chan int)}},
		{"unsupported-func", map[string]any{"f": func() {}}},
		{"unsupported-complex", complex(1, 2)},
		{"nested", func() Nested {
			var n Nested
			n.A.B.C = []map[string][]Small{{"x": {{1}, {2}}}, nil}
			return n
		}()},
		{"event-order", newOrder()},
		{"case-struct", Case{Hello: "h", World: "w", KeyK: 1}},
		{"any-numbers", []any{int8(1), uint16(2), 3.25, float32(0.1), json.Number("7"), "s", true}},
		{"array-struct", [2]Small{{1}, {2}}},
		{"html-in-marshaler", HTMLMethods{A: HTMLMarshaler{}}},
		{"recursive", Tree{V: 1, Kids: []*Tree{{V: 2}, {V: 3, Next: &Tree{V: 4}}}}},
		{"embedded-tag-wins", TagWins{Base: Base{ID: "i", Name: "base", Dup: 1}, Other: Other{Dup: 2, Name: "other"}}},
		{"embedded-named", NamedEmbed{Base: Base{ID: "i"}, X: 1}},
		{"named-types", Named{M: map[myKey]int{"b": 1, "a": 2}, B: myBytes("hi"), PB: ptr([]byte("x"))}},
		{"any-ptr-marshaler", []any{&PtrMarshaler{}, PtrMarshaler{}, ptr(Celsius(1)), Level(1)}},
		{"string-key-int-value-map-order", map[string]int{"b": 1, "a": 2, "aa": 3, "B": 4, "_": 5}},
	}
}

func deep(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }

func deepObj(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }

func decCorpus() []decCase {
	return []decCase{
		{"case-insensitive", `{"N":1}`, newOf[Small]()},
		{"case-insensitive-mixed", `{"HELLO":"h","world":"w","KEYK":2}`, newOf[Case]()},
		{"case-insensitive-kelvin", `{"\u212aeyk":3}`, newOf[Case]()},
		{"case-exact-beats-fold", `{"hello":"a","HELLO":"b"}`, newOf[Case]()},
		{"unknown-fields", `{"x":1,"n":2,"y":{"z":[1,2,{"q":null}]}}`, newOf[Small]()},
		{"duplicate-keys", `{"n":1,"n":2}`, newOf[Small]()},
		{"duplicate-keys-map", `{"a":1,"a":2}`, newOf[map[string]int]()},
		{"duplicate-keys-any", `{"a":1,"a":{"b":2}}`, newOf[any]()},
		{"null-into-int", `{"n":null}`, newOf[Small]()},
		{"null-top-struct", `null`, newOf[Small]()},
		{"null-into-slice-map", `{"sl":null,"m":null,"st":null,"t":null,"if":null}`, newOf[Omit]()},
		{"null-into-ptr", `{"s":null,"p":null}`, newOf[Pointers]()},
		{"trailing-garbage", `{"n":1} x`, newOf[Small]()},
		{"trailing-brace", `{"n":1}}`, newOf[Small]()},
		{"trailing-second-value", `{"n":1} {"n":2}`, newOf[Small]()},
		{"trailing-space", "{\"n\":1} \n\t\r", newOf[Small]()},
		{"leading-space", " \n{\"n\":1}", newOf[Small]()},
		{"empty-input", ``, newOf[Small]()},
		{"space-input", `   `, newOf[Small]()},
		{"trailing-comma-obj", `{"n":1,}`, newOf[Small]()},
		{"trailing-comma-arr", `[1,2,]`, newOf[[]int]()},
		{"single-quotes", `{'n':1}`, newOf[Small]()},
		{"leading-zero", `{"n":01}`, newOf[Small]()},
		{"nan-literal", `[NaN]`, newOf[[]float64]()},
		{"infinity-literal", `[Infinity]`, newOf[[]float64]()},
		{"plus-sign", `[+1]`, newOf[[]float64]()},
		{"bad-literal", `[tru]`, newOf[[]any]()},
		{"unquoted-key", `{n:1}`, newOf[Small]()},
		{"comment", `{"n":1 /* c */}`, newOf[Small]()},
		{"string-option-quoted", `{"i":"-5","u":"18446744073709551615","f":"1.5","b":"true","s":"\"x\"","p":"7"}`, newOf[Stringed]()},
		{"string-option-unquoted", `{"i":5}`, newOf[Stringed]()},
		{"string-option-null", `{"i":null,"p":null}`, newOf[Stringed]()},
		{"string-option-quoted-null", `{"p":"null"}`, newOf[Stringed]()},
		{"string-option-string-unquoted", `{"s":"x"}`, newOf[Stringed]()},
		{"embedded-decode", `{"id":"i","Name":"n","Dup":5,"Extra":1}`, newOf[Embedding]()},
		{"embedded-conflict-decode", `{"id":"i","Name":"n","Dup":5}`, newOf[Conflict]()},
		{"embedded-unexported-ptr", `{"X":1}`, newOf[EmbedUnexportedPtr]()},
		{"map-int-keys", `{"1":"a","-2":"b"}`, newOf[map[int]string]()},
		{"map-int-key-bad", `{"x":"a"}`, newOf[map[int]string]()},
		{"map-uint8-key-overflow", `{"256":true}`, newOf[map[uint8]bool]()},
		{"map-text-keys", `{"a:1":1,"b:2":2}`, newOf[map[textKey]int]()},
		{"map-text-key-bad", `{"nocolon":1}`, newOf[map[textKey]int]()},
		{"bytes-base64", `{"b":"aGVsbG8=","e":"","nil":null}`, newOf[Bytes]()},
		{"bytes-base64-unpadded", `{"b":"aGVsbG8"}`, newOf[Bytes]()},
		{"bytes-base64-url", `{"b":"_-8="}`, newOf[Bytes]()},
		{"bytes-base64-newline", `{"b":"aGVs\nbG8="}`, newOf[Bytes]()},
		{"bytes-base64-bad", `{"b":"!!!"}`, newOf[Bytes]()},
		{"bytes-from-array", `{"b":[1,2]}`, newOf[Bytes]()},
		{"rawmessage-verbatim", `{"raw": { "a" : [1, 2 ] } ,"rn":null}`, newOf[Bytes]()},
		{"number-field", `{"num":12345678901234567890.5e3}`, newOf[Bytes]()},
		{"number-field-quoted", `{"num":"12"}`, newOf[Bytes]()},
		{"number-field-quoted-bad", `{"num":"x"}`, newOf[Bytes]()},
		{"unmarshaljson", `{"c":{"celsius":21.5},"cp":{"celsius":-3}}`, newOf[Methods]()},
		{"unmarshaljson-null", `{"cp":null}`, newOf[Methods]()},
		{"unmarshaltext", `{"l":"high","ls":["low","high"],"lm":{"high":1}}`, newOf[Methods]()},
		{"unmarshaltext-bad", `{"l":"mid"}`, newOf[Methods]()},
		{"unmarshaltext-number", `{"l":1}`, newOf[Methods]()},
		{"time-rfc3339", `{"times":["2026-01-02T03:04:05.000000006Z","2026-01-02T03:04:05+05:30"]}`, newOf[Methods]()},
		{"time-bad", `{"times":["2026-01-02"]}`, newOf[Methods]()},
		{"time-number", `{"times":[1]}`, newOf[Methods]()},
		{"interface-float64", `{"any":{"n":1,"f":[1.5,-0,1e400]}}`, newOf[Methods]()},
		{"interface-number-types", `[1,12345678901234567890,1e2,true,null,"s",{"a":[]}]`, newOf[any]()},
		{"interface-big-int", `{"any":9007199254740993}`, newOf[Numbers]()},
		{"int64-max", `{"i64":9223372036854775807,"imin":-9223372036854775808,"u64":18446744073709551615}`, newOf[Numbers]()},
		{"int64-overflow", `{"i64":9223372036854775808}`, newOf[Numbers]()},
		{"uint64-overflow", `{"u64":18446744073709551616}`, newOf[Numbers]()},
		{"uint-negative", `{"u64":-1}`, newOf[Numbers]()},
		{"int8-overflow", `{"i8":128}`, newOf[Numbers]()},
		{"int-from-float", `{"i64":1.5}`, newOf[Numbers]()},
		{"int-from-exponent", `{"i64":1e2}`, newOf[Numbers]()},
		{"int-from-string", `{"n":"1"}`, newOf[Small]()},
		{"float-overflow", `{"f64":1e400}`, newOf[Numbers]()},
		{"float32-overflow", `{"f32":1e39}`, newOf[Numbers]()},
		{"float-precision", `{"f64":0.1,"f32":0.1}`, newOf[Numbers]()},
		{"type-mismatch-continues", `{"n":"x"}`, newOf[Small]()},
		{"type-mismatch-obj-into-slice", `{"esl":{}}`, newOf[Pointers]()},
		{"array-extra", `[{"n":1},{"n":2},{"n":3}]`, newOf[[2]Small]()},
		{"array-short", `[{"n":1}]`, newOf[[2]Small]()},
		{"escapes", `["\u00e9","\ud83d\ude00","\/","\b\f\n\r\t","\u0000"]`, newOf[[]string]()},
		{"lone-surrogate", `["\ud800","\udc00x","\ud800\u0041"]`, newOf[[]string]()},
		{"invalid-utf8-input", "[\"a\xffb\",\"\xed\xa0\x80\",\"\xc3\"]", newOf[[]string]()},
		{"invalid-utf8-key-input", "{\"k\xff\":1}", newOf[map[string]int]()},
		{"control-char-in-string", "[\"a\x01b\"]", newOf[[]string]()},
		{"bad-escape", `["\x"]`, newOf[[]string]()},
		{"bad-escape-unknown-field", `{"x":"\0","n":1}`, newOf[Small]()},
		{"bad-escape-unknown-field-v", `{"x":["a\v"],"n":1}`, newOf[Small]()},
		{"bad-number-unknown-field", `{"x":01,"n":1}`, newOf[Small]()},
		{"control-char-unknown-field", "{\"x\":\"a\x01\",\"n\":1}", newOf[Small]()},
		{"unexported-fields", `{"pub":1,"priv":2,"Skip":3,"-":4}`, newOf[Unexported]()},
		{"deep-9999-any", deep(9999), newOf[any]()},
		{"deep-10001-any", deep(10001), newOf[any]()},
		{"deep-100000-any", deep(100000), newOf[any]()},
		{"deep-obj-10001-struct", deepObj(10001), newOf[Small]()},
		{"deep-10001-unknown-field", `{"x":` + deep(10001) + `}`, newOf[Small]()},
		{"deep-10001-rawmessage", `{"raw":` + deep(10001) + `}`, newOf[Bytes]()},
		{"order-event", func() string { b, _ := json.Marshal(newOrder()); return string(b) }(), newOf[OrderPlaced]()},
		{"order-event-keys-upper", strings.ReplaceAll(func() string { b, _ := json.Marshal(newOrder()); return string(b) }(), `"order_id"`, `"ORDER_ID"`), newOf[OrderPlaced]()},
		{"embedded-ptr-alloc", `{"id":"x","Name":"n","X":1}`, newOf[NilEmbed]()},
		{"embedded-tag-wins-decode", `{"Name":"n","Dup":1}`, newOf[TagWins]()},
		{"escaped-key", `{"\u006e":7}`, newOf[Small]()},
		{"negative-zero-int", `{"n":-0}`, newOf[Small]()},
		{"recursive-decode", `{"v":1,"kids":[{"v":2,"kids":null},null],"next":{"v":3}}`, newOf[Tree]()},
		{"named-types-decode", `{"m":{"a":1},"b":"aGk=","pb":"eA=="}`, newOf[Named]()},
		{"float32-max", `{"f32":3.4028235e+38}`, newOf[Numbers]()},
		{"float32-rounding", `[16777217,0.1,1.00000017881393421514957253748434595763683319091796875]`, newOf[[]float32]()},
		{"float64-rounding", `[0.1,2.2250738585072011e-308,9007199254740993,1e23]`, newOf[[]float64]()},
		{"top-level-string-into-struct", `"x"`, newOf[Small]()},
	}
}

// diff is one disagreement of a candidate with encoding/json.
type diff struct {
	lib, kind, name, std, got string
}

func short(s string) string {
	const n = 70
	if len(s) > n {
		s = s[:n] + "…"
	}
	return fmt.Sprintf("%q", s)
}

func safeMarshal(c nova.Codec, v any) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("PANIC: %v", r)
		}
	}()
	return c.Marshal(v)
}

func safeUnmarshal(c nova.Codec, data []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("PANIC: %v", r)
		}
	}()
	return c.Unmarshal(data, v)
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return "error: " + err.Error()
}

// compareDecode unmarshals in into new values with std and c and reports a
// disagreement, if any.
func compareDecode(c codec.Candidate, kind, name string, in []byte, newT func() any) *diff {
	std := codec.Candidates[0]
	want, got := newT(), newT()
	wantErr := safeUnmarshal(std, in, want)
	gotErr := safeUnmarshal(c, in, got)
	switch {
	case (wantErr == nil) != (gotErr == nil) || gotErr != nil && strings.HasPrefix(gotErr.Error(), "PANIC"):
		return &diff{c.Name, kind, name, errString(wantErr), errString(gotErr)}
	case wantErr == nil && !reflect.DeepEqual(want, got):
		return &diff{c.Name, kind, name, fmt.Sprintf("%+v", reflect.ValueOf(want).Elem()), fmt.Sprintf("%+v", reflect.ValueOf(got).Elem())}
	}
	return nil
}

// compat runs the whole corpus through c, returning the disagreements and
// how many checks were made.
func compat(c codec.Candidate) (diffs []diff, checks int) {
	std := codec.Candidates[0]
	for _, tc := range encCorpus() {
		checks++
		want, wantErr := safeMarshal(std, tc.v)
		got, gotErr := safeMarshal(c, tc.v)
		switch {
		case (wantErr == nil) != (gotErr == nil) || gotErr != nil && strings.HasPrefix(gotErr.Error(), "PANIC"):
			diffs = append(diffs, diff{c.Name, "marshal", tc.name, errString(wantErr), errString(gotErr)})
		case wantErr == nil && !bytes.Equal(want, got):
			diffs = append(diffs, diff{c.Name, "marshal", tc.name, string(want), string(got)})
		}
		if wantErr == nil && tc.v != nil {
			checks++
			t := reflect.TypeOf(tc.v)
			if d := compareDecode(c, "decode-back", tc.name, want, func() any { return reflect.New(t).Interface() }); d != nil {
				diffs = append(diffs, *d)
			}
		}
	}
	for _, tc := range decCorpus() {
		checks++
		if tc.isolated() {
			if d := compareIsolated(c, tc.name); d != nil {
				diffs = append(diffs, *d)
			}
			continue
		}
		if d := compareDecode(c, "unmarshal", tc.name, []byte(tc.in), tc.newT); d != nil {
			diffs = append(diffs, *d)
		}
	}
	return diffs, checks
}

// known lists, per candidate, the corpus entries ("kind/name") where it
// disagrees with encoding/json. TestCompat fails when a candidate's
// disagreements change, so a new version of a library is checked again.
var known = map[string][]string{
	"goccy":     {"decode-back/numbers-max", "unmarshal/float32-max", "unmarshal/float32-rounding"},
	"segmentio": {"marshal/omitzero-zero", "marshal/string-option-nil-ptr", "marshal/string-option-html", "marshal/methods", "unmarshal/case-insensitive-kelvin", "unmarshal/number-field-quoted", "unmarshal/deep-10001-any", "unmarshal/deep-100000-any", "unmarshal/deep-obj-10001-struct", "unmarshal/deep-10001-unknown-field", "unmarshal/deep-10001-rawmessage"},
	"sonic":     {"marshal/string-option-html", "unmarshal/embedded-unexported-ptr", "unmarshal/deep-9999-any", "unmarshal/float32-rounding"},
	"jsoniter":  {"marshal/omitzero-zero", "marshal/string-option", "decode-back/string-option", "marshal/string-option-nil-ptr", "marshal/string-option-html", "marshal/bytes-base64", "decode-back/bytes-base64", "decode-back/bytes-empty-number", "marshal/methods", "marshal/addressable-ptr-marshaler", "marshal/marshaljson-invalid", "marshal/float-1e21", "marshal/float32", "marshal/html-in-marshaler", "unmarshal/plus-sign", "unmarshal/string-option-string-unquoted", "unmarshal/embedded-unexported-ptr", "unmarshal/rawmessage-verbatim", "unmarshal/number-field-quoted-bad", "unmarshal/invalid-utf8-input", "unmarshal/invalid-utf8-key-input"},
	"jsonv1":    {"marshal/bytes-base64", "decode-back/bytes-base64", "marshal/bytes-empty-number", "decode-back/bytes-empty-number", "marshal/invalid-utf8", "marshal/invalid-utf8-key", "marshal/any-numbers", "unmarshal/number-field", "unmarshal/number-field-quoted-bad"},
	"jsonv2":    {"marshal/omitempty-zero", "marshal/omitempty-empty-slice", "marshal/string-option", "decode-back/string-option", "marshal/string-option-nil-ptr", "decode-back/string-option-nil-ptr", "marshal/string-option-html", "decode-back/string-option-html", "marshal/maps-keys-sorted", "marshal/bytes-base64", "decode-back/bytes-base64", "marshal/bytes-empty-number", "decode-back/bytes-empty-number", "marshal/methods", "marshal/pointers", "marshal/pointers-nil", "marshal/html-escape", "marshal/invalid-utf8", "marshal/invalid-utf8-key", "marshal/unexported-skip", "decode-back/unexported-skip", "marshal/nested", "marshal/event-order", "marshal/any-numbers", "marshal/html-in-marshaler", "marshal/any-ptr-marshaler", "unmarshal/case-insensitive", "unmarshal/case-insensitive-mixed", "unmarshal/case-insensitive-kelvin", "unmarshal/case-exact-beats-fold", "unmarshal/duplicate-keys", "unmarshal/duplicate-keys-map", "unmarshal/duplicate-keys-any", "unmarshal/string-option-quoted", "unmarshal/string-option-quoted-null", "unmarshal/bytes-base64-newline", "unmarshal/bytes-from-array", "unmarshal/number-field", "unmarshal/number-field-quoted-bad", "unmarshal/array-extra", "unmarshal/array-short", "unmarshal/lone-surrogate", "unmarshal/invalid-utf8-input", "unmarshal/invalid-utf8-key-input", "unmarshal/unexported-fields", "unmarshal/order-event-keys-upper"},
}

// TestCompat compares each candidate with encoding/json on the corpus:
// marshal output bytes, unmarshal results (reflect.DeepEqual) and whether
// each call fails. Run it with -v for the table of differences.
func TestCompat(t *testing.T) {
	var table strings.Builder
	fmt.Fprintf(&table, "\n| library | differs on | of |\n|---|---|---|\n")
	for _, c := range codec.Candidates[1:] {
		t.Run(c.Name, func(t *testing.T) {
			diffs, checks := compat(c)
			var names []string
			for _, d := range diffs {
				names = append(names, d.kind+"/"+d.name)
				t.Logf("%s %s:\n\tstd: %s\n\tgot: %s", d.kind, d.name, short(d.std), short(d.got))
			}
			fmt.Fprintf(&table, "| %s | %d | %d |\n", c.Name, len(diffs), checks)
			if !slices.Equal(names, known[c.Name]) {
				t.Errorf("differences changed; now:\n\t%q: {%s},", c.Name, quoteAll(names))
			}
		})
	}
	t.Log(table.String())
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// isolateLimit bounds how long one isolated case may run.
const isolateLimit = 10 * time.Second

// compareIsolated runs compareDecode for the decode case name in a child
// process (TestIsolatedCase), which is killed after isolateLimit.
func compareIsolated(c codec.Candidate, name string) *diff {
	ctx, cancel := context.WithTimeout(context.Background(), isolateLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestIsolatedCase$", "-test.count=1")
	cmd.Env = append(os.Environ(), "CODEC_CASE="+name, "CODEC_LIB="+c.Name)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		return &diff{c.Name, "unmarshal", name, "(std result)", fmt.Sprintf("still running after %v: killed", isolateLimit)}
	}
	for line := range strings.Lines(stdout.String()) {
		if rest, ok := strings.CutPrefix(line, "RESULT "); ok {
			var d diff
			if rest == "nil\n" {
				return nil
			}
			parts := strings.SplitN(strings.TrimSuffix(rest, "\n"), "\t", 2)
			d = diff{c.Name, "unmarshal", name, parts[0], parts[1]}
			return &d
		}
	}
	msg := stderr.String() + stdout.String()
	if i := strings.Index(msg, "fatal error:"); i >= 0 {
		msg = msg[i:]
	} else if i := strings.Index(msg, "panic:"); i >= 0 {
		msg = msg[i:]
	}
	first, _, _ := strings.Cut(msg, "\n")
	return &diff{c.Name, "unmarshal", name, "(std result)", fmt.Sprintf("process died (%v): %s", err, first)}
}

// TestIsolatedCase is the child of compareIsolated; it does nothing
// unless CODEC_CASE is set.
func TestIsolatedCase(t *testing.T) {
	name, lib := os.Getenv("CODEC_CASE"), os.Getenv("CODEC_LIB")
	if name == "" {
		t.Skip("runs only as the child process of TestCompat")
	}
	i := slices.IndexFunc(codec.Candidates, func(c codec.Candidate) bool { return c.Name == lib })
	j := slices.IndexFunc(decCorpus(), func(c decCase) bool { return c.name == name })
	if i < 0 || j < 0 {
		t.Fatalf("no candidate %q or case %q", lib, name)
	}
	tc := decCorpus()[j]
	d := compareDecode(codec.Candidates[i], "unmarshal", name, []byte(tc.in), tc.newT)
	if d == nil {
		fmt.Println("RESULT nil")
		return
	}
	fmt.Printf("RESULT %s\t%s\n", strings.ReplaceAll(short(d.std), "\t", " "), strings.ReplaceAll(short(d.got), "\t", " "))
}
