package projection_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/novasqlite"
	"github.com/nova-go/nova/projection"
)

// The README's projection (README.md, "A projection, exactly once into
// SQL") shows the body of Example_summary below from the query store on: a
// test in the root package checks that the two stay the same.

// Placed is the event the order-summary projection handles.
type Placed struct{ OrderID string }

// Summary is the order-summary read model, one JSON document per order.
type Summary struct{ Status string }

// An order summary kept in a table of the store's SQLite file, written in
// the transaction that moves the projection's checkpoint, and read back
// once the projection has caught up with the append.
func Example_summary() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "summary")
	defer os.RemoveAll(dir)
	store, err := novasqlite.Open(ctx, novasqlite.Config{Path: filepath.Join(dir, "orders.db")})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	reg := nova.NewRegistry(nova.RegistryOptions{})
	nova.MustRegister[Placed](reg, "order.placed")

	summaries, _ := novasqlite.NewQueryStore(ctx, store, "order_summary") // key -> JSON
	p, _ := projection.New("order-summary", reg)
	projection.On(p, func(ctx context.Context, e nova.Event, v Placed) error {
		// ctx carries the batch's transaction: this write commits with the checkpoint.
		return cqrs.UpsertProjection(ctx, summaries, "order:"+v.OrderID, Summary{Status: "placed"})
	})
	checkpoints := novasqlite.NewCheckpoints(store)
	r, _ := projection.NewRunner(projection.Config{
		Store: store, Projection: p, Checkpoints: checkpoints,
		Leaser: checkpoints, Tables: []string{"order_summary"}, // one instance at a time; rebuildable
	})
	r.Start(ctx)
	defer r.Stop(ctx)

	placed, _ := reg.Encode(Placed{OrderID: "1"}, nova.Metadata{})
	res, _ := store.Append(ctx, "order-1", nova.NoStream, placed)
	r.WaitFor(ctx, res.Position) // read your own write
	s, _ := cqrs.GetProjection[Summary](ctx, summaries, "order:1")
	fmt.Println(s.Status)
	// Output:
	// placed
}
