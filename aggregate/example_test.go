package aggregate_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/aggregate"
	"github.com/nova-go/nova/novamem"
)

// Events are plain structs, registered under stable names.
type CartOpened struct{ Customer string }
type ItemAdded struct {
	SKU   string
	Price int64
}

// Cart is the state: its pointer folds events in.
type Cart struct {
	Customer string
	Items    []string
	Total    int64
}

func (c *Cart) Apply(event any) error {
	switch e := event.(type) {
	case CartOpened:
		c.Customer = e.Customer
	case ItemAdded:
		c.Items = append(c.Items, e.SKU)
		c.Total += e.Price
	}
	return nil
}

// AddItem is a decision: it checks the rules and returns new events.
func (c *Cart) AddItem(sku string, price int64) ([]any, error) {
	if c.Customer == "" {
		return nil, errors.New("cart: not opened")
	}
	return []any{ItemAdded{SKU: sku, Price: price}}, nil
}

func Example() {
	ctx := context.Background()
	reg := nova.NewRegistry(nova.RegistryOptions{})
	nova.MustRegister[CartOpened](reg, "cart.opened")
	nova.MustRegister[ItemAdded](reg, "cart.item_added")

	store, err := novamem.New(novamem.Config{}) // or novasqlite, novapg, ...
	if err != nil {
		panic(err)
	}
	defer store.Close()

	carts, err := aggregate.NewRepository[Cart](aggregate.Config{Store: store, Registry: reg, Category: "cart"})
	if err != nil {
		panic(err)
	}

	// Create: a fresh root at version 0, saved with its first event.
	cart, _ := carts.New("7")
	if _, err := carts.Save(ctx, cart, []any{CartOpened{Customer: "ada"}}, nil); err != nil {
		panic(err)
	}

	// Handle a command: load, decide, save; retried on a conflict.
	_, err = carts.Update(ctx, "7", func(c *Cart) ([]any, error) { return c.AddItem("book", 1200) }, nil)
	if err != nil {
		panic(err)
	}

	cart, err = carts.Load(ctx, "7")
	if err != nil {
		panic(err)
	}
	fmt.Printf("stream %s at version %d: %s has %v for %d\n", carts.StreamID("7"), cart.Version, cart.State.Customer, cart.State.Items, cart.State.Total)

	_, err = carts.Load(ctx, "8")
	fmt.Println("cart 8 exists:", !errors.Is(err, nova.ErrNotFound))
	// Output:
	// stream cart-7 at version 2: ada has [book] for 1200
	// cart 8 exists: false
}
