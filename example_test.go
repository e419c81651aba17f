package nova_test

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/nova-go/nova"
)

// CartItemAdded is the current shape (2) of "cart.item_added". Shape 1
// stored the product under "product"; shape 2 calls it "sku".
type CartItemAdded struct {
	SKU string `json:"sku"`
	Qty int    `json:"qty"`
}

// This example registers an event type with one upcaster, encodes a value
// for appending, and decodes both a fresh event and one recorded in the
// old shape.
func ExampleRegistry() {
	reg := nova.NewRegistry(nova.RegistryOptions{})
	if err := nova.Register[CartItemAdded](reg, "cart.item_added"); err != nil {
		fmt.Println(err)
		return
	}
	// Shape 1 → 2: rename "product" to "sku".
	err := reg.Upcast("cart.item_added", 1, func(data []byte) ([]byte, error) {
		return bytes.Replace(data, []byte(`"product":`), []byte(`"sku":`), 1), nil
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	d, err := reg.Encode(CartItemAdded{SKU: "tea", Qty: 2}, nova.Metadata{CorrelationID: "req-1"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("encoded %s shape %d: %s\n", d.Type, d.Metadata.Schema, d.Data)

	// An event as a store recorded it years ago, in shape 1.
	old := nova.Event{
		ID:       "0190a0b0-0000-7000-8000-000000000001",
		Stream:   "cart-7",
		Type:     "cart.item_added",
		Version:  1,
		Data:     []byte(`{"product":"coffee","qty":1}`),
		Metadata: nova.Metadata{Schema: 1},
	}
	v, err := reg.Decode(old)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("decoded %#v\n", v)

	item, err := nova.DecodeAs[CartItemAdded](reg, old)
	fmt.Println(item.SKU, err)

	_, err = reg.Decode(nova.Event{Type: "cart.checked_out", Data: []byte(`{}`)})
	fmt.Println(errors.Is(err, nova.ErrUnknownType))
	// Output:
	// encoded cart.item_added shape 2: {"sku":"tea","qty":2}
	// decoded nova_test.CartItemAdded{SKU:"coffee", Qty:1}
	// coffee <nil>
	// true
}

func ExampleParsePosition() {
	for _, s := range []string{"42", "1007/3", "1/2/3"} {
		p, err := nova.ParsePosition(s)
		if err != nil {
			fmt.Println(errors.Is(err, nova.ErrInvalid), err)
			continue
		}
		fmt.Printf("%s → commit %d, prepare %d\n", p, p.Commit, p.Prepare)
	}
	a, _ := nova.ParsePosition("1007/3")
	b, _ := nova.ParsePosition("1008")
	fmt.Println(a.Less(b), a.Compare(b))
	// Output:
	// 42 → commit 42, prepare 0
	// 1007/3 → commit 1007, prepare 3
	// true nova: invalid position "1/2/3": want COMMIT or COMMIT/PREPARE in decimal
	// true -1
}

func ExampleExact() {
	// The stream's last event is version 5.
	const current = 5
	for _, ev := range []nova.ExpectedVersion{nova.Exact(5), nova.Exact(4), nova.Exact(0)} {
		fmt.Println(ev, ev.Check(current))
	}
	fmt.Println(nova.Exact(0) == nova.NoStream)
	// Output:
	// 5 true
	// 4 false
	// no-stream false
	// true
}

func ExampleExpectedVersion() {
	var zero nova.ExpectedVersion
	for _, ev := range []nova.ExpectedVersion{zero, nova.Any, nova.NoStream, nova.StreamExists, nova.Exact(3)} {
		v, exact := ev.Version()
		fmt.Printf("%-13s empty:%-5v at 3:%-5v version:%d,%v\n", ev, ev.Check(0), ev.Check(3), v, exact)
	}

	// A failed check is reported as a *ConcurrencyError.
	var err error = &nova.ConcurrencyError{Stream: "order-42", Expected: nova.Exact(3), Actual: 4}
	fmt.Println(errors.Is(fmt.Errorf("place order: %w", err), nova.ErrConcurrency))
	fmt.Println(err)
	// Output:
	// any           empty:true  at 3:true  version:0,false
	// any           empty:true  at 3:true  version:0,false
	// no-stream     empty:true  at 3:false version:0,true
	// stream-exists empty:false at 3:true  version:0,false
	// 3             empty:false at 3:true  version:3,true
	// true
	// nova: wrong expected version for stream "order-42": expected 3, actual 4
}
