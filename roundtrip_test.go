package nova

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

type rtInner struct {
	N int8   `json:"n,omitempty"`
	S string `json:"s,omitzero"`
}

type rtPlain struct {
	B     bool
	I     int64   `json:"i"`
	U     uint64  `json:"u,omitempty"`
	F     float64 `json:"f"`
	F32   float32 `json:"f32"`
	S     string  `json:"s,omitempty"`
	Named rtName  `json:"named"`
	In    rtInner `json:"in,omitempty"`
	Lower string  `json:"Lower"`
	Upper string  `json:"lower"` // differs from Lower's key in case only
}

type rtName string

type rtUnexported struct {
	A int
	b int
}

type rtDropped struct {
	A int
	B int `json:"-"`
}

type rtClash struct {
	A int `json:"B"`
	B int
}

type rtEmbedded struct {
	rtInner
	C int
}

type rtString struct {
	N int `json:",string"`
}

type rtFloatOmitEmpty struct {
	F float64 `json:"f,omitempty"`
}

type rtFloatOmitZero struct {
	F float32 `json:"f,omitzero"`
}

type rtFloatIn struct {
	In struct{ F float64 } `json:"in,omitzero"`
}

type rtNumber struct {
	N json.Number
}

type rtTime struct {
	At time.Time
}

type rtSlice struct {
	P []int
}

type rtPointer struct {
	P *int
}

type rtMap struct {
	M map[string]int
}

// rtUpper marshals itself in upper case, and reads back as given.
type rtUpper string

func (u rtUpper) MarshalJSON() ([]byte, error) { return json.Marshal(strings.ToUpper(string(u))) }

type rtCustom struct {
	U rtUpper
}

type rtIsZero struct {
	Z rtZero `json:"z,omitzero"`
}

// rtZero says it is zero whatever its value.
type rtZero struct{ N int }

func (rtZero) IsZero() bool { return true }

func TestPlainJSON(t *testing.T) {
	plain := []any{rtPlain{}, rtInner{}, struct{}{}}
	for _, v := range plain {
		if plainJSON(reflect.TypeOf(v)) == nil {
			t.Errorf("%T: not plain, want plain", v)
		}
	}
	notPlain := []any{
		rtUnexported{}, rtDropped{}, rtClash{}, rtEmbedded{}, rtString{}, rtFloatOmitEmpty{}, rtFloatOmitZero{}, rtFloatIn{}, rtNumber{},
		rtTime{}, rtSlice{}, rtPointer{}, rtMap{}, rtCustom{}, rtIsZero{}, 0, "",
	}
	for _, v := range notPlain {
		if plainJSON(reflect.TypeOf(v)) != nil {
			t.Errorf("%T: plain, want not", v)
		}
	}
}

// roundTripRegistry registers every test type under its Go name.
func roundTripRegistry(t *testing.T, opts RegistryOptions) *Registry {
	t.Helper()
	r := NewRegistry(opts)
	for _, err := range []error{
		Register[rtPlain](r, "rt.plain"), Register[rtInner](r, "rt.inner"),
		Register[rtUnexported](r, "rt.unexported"), Register[rtDropped](r, "rt.dropped"),
		Register[rtClash](r, "rt.clash"), Register[rtEmbedded](r, "rt.embedded"),
		Register[rtString](r, "rt.string"), Register[rtFloatOmitEmpty](r, "rt.float"),
		Register[rtFloatOmitZero](r, "rt.float32"), Register[rtFloatIn](r, "rt.floatin"),
		Register[rtNumber](r, "rt.number"), Register[rtTime](r, "rt.time"), Register[rtSlice](r, "rt.slice"),
		Register[rtPointer](r, "rt.pointer"), Register[rtMap](r, "rt.map"),
		Register[rtCustom](r, "rt.custom"), Register[rtIsZero](r, "rt.iszero"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// checkEncodeDecoded checks that EncodeDecoded gives what Encode gives and
// the value Decode makes of its data, to the bit (-0 is not +0, and
// strings compare byte by byte).
func checkEncodeDecoded(t *testing.T, r *Registry, v any) {
	t.Helper()
	md := Metadata{CorrelationID: "c"}
	d, got, err := r.EncodeDecoded(v, md)
	if err != nil {
		t.Fatalf("%#v: %v", v, err)
	}
	want, err := r.Decode(Event{ID: d.ID, Type: d.Type, Data: d.Data, Metadata: d.Metadata})
	if err != nil {
		t.Fatalf("%#v: decode: %v", v, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("EncodeDecoded(%#v) = %#v, Decode gives %#v", v, got, want)
	}
	// %#v tells -0 from +0; it prints addresses, so not with pointers.
	if g, w := fmt.Sprintf("%#v", got), fmt.Sprintf("%#v", want); g != w && reflect.TypeOf(want) != reflect.TypeFor[rtPointer]() {
		t.Errorf("EncodeDecoded(%#v) = %s, Decode gives %s", v, g, w)
	}
	enc, err := r.Encode(v, md)
	if err != nil {
		t.Fatal(err)
	}
	if enc.Type != d.Type || string(enc.Data) != string(d.Data) || !enc.Metadata.Equal(d.Metadata) || d.ID == "" {
		t.Errorf("EncodeDecoded(%#v) encodes %+v, Encode %+v", v, d, enc)
	}
}

func TestEncodeDecodedMatchesDecode(t *testing.T) {
	one := 1
	values := []any{
		rtPlain{}, &rtPlain{I: -3},
		rtPlain{B: true, I: math.MinInt64, U: math.MaxUint64, F: math.Copysign(0, -1), F32: float32(math.Copysign(0, -1)),
			S: "héllo \u2028 <&> \"q\" \\ufffd", Named: "n", In: rtInner{N: -1, S: "x"}, Lower: "a", Upper: "b"},
		rtPlain{F: math.MaxFloat64, F32: math.SmallestNonzeroFloat32, S: "\xff\xfe invalid"},
		rtPlain{F: 1e21, S: "\ufffd valid replacement"},
		rtPlain{In: rtInner{S: "bad \xc3"}},
		rtUnexported{A: 1, b: 2}, rtDropped{A: 1, B: 2}, rtClash{A: 1, B: 2}, rtEmbedded{rtInner{N: 1}, 2},
		rtString{N: 7}, rtFloatOmitEmpty{F: math.Copysign(0, -1)}, rtFloatOmitZero{F: float32(math.Copysign(0, -1))},
		rtFloatIn{In: struct{ F float64 }{math.Copysign(0, -1)}},
		rtNumber{}, rtNumber{N: "1.50"},
		rtTime{At: time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))},
		rtSlice{}, rtSlice{P: []int{}}, rtSlice{P: []int{1}}, rtPointer{P: &one}, rtMap{M: map[string]int{"a": 1}},
		rtCustom{U: "abc"}, rtIsZero{Z: rtZero{N: 3}},
	}
	r := roundTripRegistry(t, RegistryOptions{})
	for _, v := range values {
		checkEncodeDecoded(t, r, v)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		checkEncodeDecoded(t, r, rtPlain{
			B: rnd.IntN(2) == 1, I: int64(rnd.Uint64()), U: rnd.Uint64() >> rnd.IntN(64),
			F:   finite64(math.Float64frombits(rnd.Uint64())),
			F32: finite32(math.Float32frombits(rnd.Uint32())),
			S:   randString(rnd), Named: rtName(randString(rnd)), In: rtInner{N: int8(rnd.Uint32()), S: randString(rnd)},
		})
	}
}

// finite32 returns f, or 1 for an infinity or NaN, which JSON cannot
// write.
func finite32(f float32) float32 {
	if math.IsInf(float64(f), 0) || math.IsNaN(float64(f)) {
		return 1
	}
	return f
}

// finite64 is finite32 for a float64.
func finite64(f float64) float64 {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return 1
	}
	return f
}

// randString returns a short string of arbitrary bytes, valid UTF-8 or
// not.
func randString(rnd *rand.Rand) string {
	b := make([]byte, rnd.IntN(8))
	for i := range b {
		b[i] = byte(rnd.Uint32())
	}
	return string(b)
}

// shoutingCodec is JSON that reads every plain string field in upper case:
// the registry cannot know what a codec other than its default does, so
// it must decode.
type shoutingCodec struct{}

func (shoutingCodec) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

func (shoutingCodec) Unmarshal(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return err
	}
	if p, ok := v.(*rtPlain); ok {
		p.S = strings.ToUpper(p.S)
	}
	return nil
}

func TestEncodeDecodedDecodesWithOtherCodecs(t *testing.T) {
	r := roundTripRegistry(t, RegistryOptions{Codec: shoutingCodec{}})
	_, got, err := r.EncodeDecoded(rtPlain{S: "abc"}, Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	if got.(rtPlain).S != "ABC" {
		t.Errorf("EncodeDecoded gives %#v, want the codec's reading", got)
	}
}

// rtBroken encodes to data it cannot read back.
type rtBroken struct{}

func (rtBroken) MarshalJSON() ([]byte, error) { return []byte(`1`), nil }

func TestEncodeDecodedFailsOnDataThatDoesNotDecode(t *testing.T) {
	r := NewRegistry(RegistryOptions{})
	MustRegister[rtBroken](r, "rt.broken")
	if _, _, err := r.EncodeDecoded(rtBroken{}, Metadata{}); err == nil || !strings.Contains(err.Error(), `nova: decode "rt.broken" event`) {
		t.Errorf("err = %v, want a decode error", err)
	}
	if _, _, err := r.EncodeDecoded(3, Metadata{}); err == nil {
		t.Error("an unregistered type encoded")
	}
}
