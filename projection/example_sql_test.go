package projection_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ncruces/go-sqlite3"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novasqlite"
	"github.com/nova-go/nova/projection"
)

// A read model in the store's own SQLite file: the handler writes through
// the transaction that also moves the checkpoint, so each event counts
// once, and Rebuild swaps in a model rebuilt from the first event.
func Example_sqlReadModel() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	store, err := novasqlite.Open(ctx, novasqlite.Config{Path: filepath.Join(dir, "shop.db")})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	_ = store.WriteTx(ctx, func(c *sqlite3.Conn) error {
		return c.Exec(`CREATE TABLE order_totals (id TEXT PRIMARY KEY, total INTEGER NOT NULL)`)
	})
	reg := nova.NewRegistry(nova.RegistryOptions{})
	nova.MustRegister[OrderPlaced](reg, "OrderPlaced")
	checkpoints := novasqlite.NewCheckpoints(store)

	p, _ := projection.New("order-totals", reg)
	_ = projection.On(p, func(ctx context.Context, e nova.Event, v OrderPlaced) error {
		c, _ := novasqlite.TxFromContext(ctx)
		// Table names the shadow table while a rebuild runs.
		st, _, err := c.Prepare(`INSERT INTO ` + projection.Table(ctx, "order_totals") + ` (id, total) VALUES (?, ?)`)
		if err != nil {
			return err
		}
		defer st.Close()
		_ = st.BindText(1, v.ID)
		_ = st.BindInt(2, v.Total)
		return st.Exec()
	})
	r, _ := projection.NewRunner(projection.Config{
		Store: store, Projection: p, Checkpoints: checkpoints, Tables: []string{"order_totals"},
	})
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
	if err := r.Rebuild(ctx, func(done, total int) { fmt.Printf("rebuilt %d/%d\n", done, total) }); err != nil {
		fmt.Println(err)
		return
	}
	list, _ := checkpoints.List(ctx)
	fmt.Println(list[0].Name, list[0].Position)
	// Output:
	// rebuilt 0/1
	// rebuilt 1/1
	// order-totals 1
}
