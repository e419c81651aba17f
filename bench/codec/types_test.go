package codec_test

import (
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// The event types of the benchmarks and of the registry round trips.

// Small is an event with one int field.
type Small struct {
	N int `json:"n"`
}

// Item is one line of an order.
type Item struct {
	SKU        string   `json:"sku"`
	Name       string   `json:"name"`
	Qty        int      `json:"qty"`
	PriceCents int64    `json:"price_cents"`
	Tags       []string `json:"tags,omitempty"`
}

// Address is where an order ships.
type Address struct {
	Name    string `json:"name"`
	Street  string `json:"street"`
	City    string `json:"city"`
	Zip     string `json:"zip"`
	Country string `json:"country"`
}

// OrderPlaced is a typical event of about 1 KB.
type OrderPlaced struct {
	OrderID    string            `json:"order_id"`
	CustomerID string            `json:"customer_id"`
	Email      string            `json:"email"`
	Items      []Item            `json:"items"`
	Attrs      map[string]string `json:"attrs"`
	Shipping   Address           `json:"shipping"`
	TotalCents int64             `json:"total_cents"`
	Currency   string            `json:"currency"`
	Note       string            `json:"note,omitempty"`
	Coupon     *string           `json:"coupon"`
	Gift       bool              `json:"gift"`
	PlacedAt   time.Time         `json:"placed_at"`
}

func newOrder() OrderPlaced {
	coupon := "WINTER-10"
	o := OrderPlaced{
		OrderID:    "ord-01J9Z8Y7X6W5V4T3S2R1Q0P9N8",
		CustomerID: "cus-4821",
		Email:      "ada.lovelace@example.com",
		Attrs: map[string]string{
			"channel": "web", "locale": "en-GB", "campaign": "winter-sale",
			"referrer": "newsletter", "device": "mobile",
		},
		Shipping: Address{
			Name: "Ada Lovelace", Street: "12 St James's Square", City: "London",
			Zip: "SW1Y 4JH", Country: "GB",
		},
		Currency: "EUR",
		Note:     "Leave at the door if nobody answers; \"fragile\" <glass> & china.",
		Coupon:   &coupon,
		Gift:     true,
		PlacedAt: time.Date(2026, 12, 3, 15, 4, 5, 123456789, time.UTC),
	}
	for i := range 6 {
		it := Item{
			SKU:        "SKU-" + strings.Repeat(string(rune('A'+i)), 6),
			Name:       "Widget model " + string(rune('A'+i)) + " with a longer descriptive name",
			Qty:        i + 1,
			PriceCents: int64(1999 + 250*i),
			Tags:       []string{"hardware", "blue"},
		}
		o.Items = append(o.Items, it)
		o.TotalCents += it.PriceCents * int64(it.Qty)
	}
	return o
}

// LineAdded is the event of the 10,000-event load.
type LineAdded struct {
	SKU        string `json:"sku"`
	Qty        int    `json:"qty"`
	PriceCents int64  `json:"price_cents"`
	Note       string `json:"note,omitempty"`
}

// Basket folds LineAdded and OrderPlaced events.
type Basket struct {
	Lines int
	Total int64
}

// Apply folds one event into the basket.
func (b *Basket) Apply(e any) error {
	switch e := e.(type) {
	case LineAdded:
		b.Lines++
		b.Total += e.PriceCents * int64(e.Qty)
	case OrderPlaced:
		b.Total += e.TotalCents
	default:
		return errors.New("basket: unexpected event")
	}
	return nil
}

// The types of the compatibility corpus.

type Omit struct {
	S  string            `json:"s,omitempty"`
	I  int               `json:"i,omitempty"`
	F  float64           `json:"f,omitempty"`
	B  bool              `json:"b,omitempty"`
	P  *int              `json:"p,omitempty"`
	Sl []int             `json:"sl,omitempty"`
	M  map[string]int    `json:"m,omitempty"`
	St Address           `json:"st,omitempty"`
	T  time.Time         `json:"t,omitempty"`
	A  [0]int            `json:"a,omitempty"`
	If any               `json:"if,omitempty"`
	Ms map[string]string `json:"ms"`
}

type zeroer struct{ V int }

func (z zeroer) IsZero() bool { return z.V < 0 }

type OmitZero struct {
	T  time.Time `json:"t,omitzero"`
	I  int       `json:"i,omitzero"`
	St Address   `json:"st,omitzero"`
	Z  zeroer    `json:"z,omitzero"`
	Sl []int     `json:"sl,omitzero"`
	P  *int      `json:"p,omitzero"`
}

type Stringed struct {
	I int     `json:"i,string"`
	U uint64  `json:"u,string"`
	F float64 `json:"f,string"`
	B bool    `json:"b,string"`
	S string  `json:"s,string"`
	P *int    `json:"p,string"`
	//lint:ignore SA5008 encoding/json ignores the option here; the corpus checks that the others do too
	Sl []int `json:"sl,string"`
}

type Base struct {
	ID   string `json:"id"`
	Name string
	Dup  int
}

type Other struct {
	Dup  int
	Name string `json:"Name"`
}

type Embedding struct {
	Base
	*Other
	Name  string // shallower: wins over Base.Name and Other.Name
	Extra int
}

type Conflict struct {
	Base
	Other2
}

type Other2 struct {
	Dup  int // conflicts with Base.Dup: both dropped
	Name int // conflicts with Base.Name: both dropped
}

type NilEmbed struct {
	*Base
	X int
}

type textKey struct{ A, B string }

func (k textKey) MarshalText() ([]byte, error) { return []byte(k.A + ":" + k.B), nil }
func (k *textKey) UnmarshalText(b []byte) error {
	a, c, ok := strings.Cut(string(b), ":")
	if !ok {
		return errors.New("textKey: no colon")
	}
	k.A, k.B = a, c
	return nil
}

type Maps struct {
	Int  map[int]string     `json:"int"`
	Uint map[uint8]bool     `json:"uint"`
	Text map[textKey]int    `json:"text"`
	Str  map[string]any     `json:"str"`
	Nil  map[string]int     `json:"nil"`
	Nest map[string][]int64 `json:"nest"`
}

type Bytes struct {
	B   []byte          `json:"b"`
	Nil []byte          `json:"nil"`
	E   []byte          `json:"e"`
	Raw json.RawMessage `json:"raw"`
	RN  json.RawMessage `json:"rn"`
	Num json.Number     `json:"num"`
	Arr [3]byte         `json:"arr"`
}

// Celsius has a value-receiver MarshalJSON and a pointer UnmarshalJSON.
type Celsius float64

func (c Celsius) MarshalJSON() ([]byte, error) {
	return []byte(`{"celsius":` + strings.TrimRight(strings.TrimRight(jsonFloat(float64(c)), "0"), ".") + `}`), nil
}

func (c *Celsius) UnmarshalJSON(b []byte) error {
	var v struct{ Celsius float64 }
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*c = Celsius(v.Celsius)
	return nil
}

func jsonFloat(f float64) string {
	b, _ := json.Marshal(f)
	return string(b)
}

// PtrMarshaler has MarshalJSON on the pointer only.
type PtrMarshaler struct{ V int }

func (p *PtrMarshaler) MarshalJSON() ([]byte, error) { return []byte(`"ptr"`), nil }

// Level has MarshalText and UnmarshalText.
type Level int

func (l Level) MarshalText() ([]byte, error) { return []byte([]string{"low", "high"}[l&1]), nil }
func (l *Level) UnmarshalText(b []byte) error {
	switch string(b) {
	case "low":
		*l = 0
	case "high":
		*l = 1
	default:
		return errors.New("level: unknown " + string(b))
	}
	return nil
}

// BadMarshaler returns invalid JSON from MarshalJSON.
type BadMarshaler struct{}

func (BadMarshaler) MarshalJSON() ([]byte, error) { return []byte(`{bad`), nil }

// Spaced returns JSON with spaces from MarshalJSON; encoding/json compacts it.
type Spaced struct{}

func (Spaced) MarshalJSON() ([]byte, error) { return []byte(` { "a" : [ 1 , 2 ] } `), nil }

type Methods struct {
	C     Celsius         `json:"c"`
	CP    *Celsius        `json:"cp"`
	PM    PtrMarshaler    `json:"pm"`
	PMP   *PtrMarshaler   `json:"pmp"`
	L     Level           `json:"l"`
	LS    []Level         `json:"ls"`
	LM    map[Level]int   `json:"lm"`
	Sp    Spaced          `json:"sp"`
	Times []time.Time     `json:"times"`
	Dur   time.Duration   `json:"dur"`
	Any   any             `json:"any"`
	Anys  []any           `json:"anys"`
	Err   json.RawMessage `json:"err,omitempty"`
}

type Pointers struct {
	P   *int              `json:"p"`
	PP  **string          `json:"pp"`
	Nil *int              `json:"nil"`
	S   *Small            `json:"s"`
	NS  *Small            `json:"ns"`
	Sl  []*Small          `json:"sl"`
	NSl []int             `json:"nsl"`
	ESl []int             `json:"esl"`
	M   map[string]*Small `json:"m"`
}

type Numbers struct {
	I64  int64   `json:"i64"`
	IMin int64   `json:"imin"`
	U64  uint64  `json:"u64"`
	I8   int8    `json:"i8"`
	U8   uint8   `json:"u8"`
	F32  float32 `json:"f32"`
	F64  float64 `json:"f64"`
	Any  any     `json:"any"`
}

type Unexported struct {
	Pub  int `json:"pub"`
	priv int
	Skip int `json:"-"`
	//lint:ignore SA5008 the field is named "-", as encoding/json documents
	Dash int `json:"-,"`
}

type Nested struct {
	A struct {
		B struct {
			C []map[string][]Small `json:"c"`
		} `json:"b"`
	} `json:"a"`
}

type unexportedBase struct{ X int }

type EmbedUnexportedPtr struct {
	*unexportedBase
}

type Case struct {
	Hello string `json:"hello"`
	World string
	KeyK  int `json:"keyk"`
}

// HTMLMarshaler returns HTML-special characters from MarshalJSON and
// MarshalText; encoding/json escapes them in its output.
type HTMLMarshaler struct{}

func (HTMLMarshaler) MarshalJSON() ([]byte, error) { return []byte(`"<a&b>\u2028"`), nil }

type htmlText struct{}

func (htmlText) MarshalText() ([]byte, error) { return []byte("<a&b>"), nil }

type HTMLMethods struct {
	J HTMLMarshaler `json:"j"`
	T htmlText      `json:"t"`
	A any           `json:"a"`
}

// Tree is a recursive type.
type Tree struct {
	V    int     `json:"v"`
	Kids []*Tree `json:"kids,omitempty"`
	Next *Tree   `json:"next,omitempty"`
}

// TagWins embeds two structs with field Name: the tagged one wins.
type TagWins struct {
	Base
	Other
}

// NamedEmbed embeds a struct under a tag name: it is a named field.
type NamedEmbed struct {
	Base `json:"base"`
	X    int
}

type myKey string

type myBytes []byte

type Named struct {
	M  map[myKey]int `json:"m"`
	B  myBytes       `json:"b"`
	PB *[]byte       `json:"pb"`
}
