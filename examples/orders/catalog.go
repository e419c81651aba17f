package orders

import "fmt"

// Product is something an order can contain.
type Product struct {
	// SKU names the product in order lines and stock levels.
	SKU string
	// Name is for people.
	Name string
	// Price is the unit price, in cents.
	Price int64
}

// Catalog returns the products [SampleOrder] picks from.
func Catalog() []Product {
	return []Product{
		{SKU: "book", Name: "Designing Data-Intensive Applications", Price: 4_500},
		{SKU: "mug", Name: "Mug", Price: 1_200},
		{SKU: "lamp", Name: "Desk lamp", Price: 3_900},
		{SKU: "chair", Name: "Office chair", Price: 24_900},
		{SKU: "pen", Name: "Fountain pen", Price: 2_500},
	}
}

// CatalogStock returns stock levels of n for every catalog product, for
// [NewStock].
func CatalogStock(n int) map[string]int {
	levels := make(map[string]int)
	for _, p := range Catalog() {
		levels[p.SKU] = n
	}
	return levels
}

// SampleOrder returns the i-th of a reproducible series of orders: ID
// fmt.Sprintf("%05d", i), one of a few customers, one to three catalog
// products in quantities of one to three. The same i always gives the
// same order.
func SampleOrder(i int) PlaceOrder {
	h := mix(uint64(i))
	cat := Catalog()
	n := 1 + int(h%3)
	start := int(h >> 8 % uint64(len(cat)))
	cmd := PlaceOrder{
		OrderID:  fmt.Sprintf("%05d", i),
		Customer: fmt.Sprintf("customer-%d", h>>16%7+1),
	}
	for j := range n {
		p := cat[(start+j)%len(cat)]
		q := 1 + int(h>>(24+4*j)%3)
		cmd.Lines = append(cmd.Lines, Line{SKU: p.SKU, Quantity: q, UnitPrice: p.Price})
	}
	return cmd
}

// mix is splitmix64's finaliser: a fixed, well-spread hash of i.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}
