package projection_test

import (
	"context"
	"fmt"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/novamem"
	"github.com/nova-go/nova/projection"
)

// A projection keeps an order summary in a query store; WaitFor makes the
// query after a write see it.
func Example() {
	ctx := context.Background()
	store, _ := novamem.New(novamem.Config{})
	defer store.Close()
	reg := nova.NewRegistry(nova.RegistryOptions{})
	nova.MustRegister[OrderPlaced](reg, "OrderPlaced")
	views := novamem.NewQueryStore()

	p, _ := projection.New("order-summary", reg)
	_ = projection.On(p, func(ctx context.Context, e nova.Event, v OrderPlaced) error {
		return cqrs.UpsertProjection(ctx, views, v.ID, OrderView{ID: v.ID, Total: v.Total, Status: "placed"})
	})
	r, _ := projection.NewRunner(projection.Config{Store: store, Projection: p})
	if err := r.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer r.Stop(ctx)

	d, _ := reg.Encode(OrderPlaced{ID: "42", Total: 99}, nova.Metadata{})
	res, _ := store.Append(ctx, "order-42", nova.NoStream, d)
	if err := r.WaitFor(ctx, res.Position); err != nil {
		fmt.Println(err)
		return
	}
	view, _ := cqrs.GetProjection[OrderView](ctx, views, "42")
	st := r.Status()
	fmt.Printf("%+v\n%s %s at %s\n", view, st.Name, st.State, st.Checkpoint)
	// Output:
	// {ID:42 Total:99 Status:placed}
	// order-summary running at 1
}
