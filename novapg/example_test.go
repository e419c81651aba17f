package novapg_test

import (
	"context"
	"fmt"
	"log"

	"github.com/jackc/pgx/v5"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novapg"
)

// Open a store in its own schema, append, and read the stream back. (The
// examples need a PostgreSQL server, so they are compiled, not run.)
func Example() {
	ctx := context.Background()
	s, err := novapg.Open(ctx, novapg.Config{
		URL:    "postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
		Schema: "orders",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	res, err := s.Append(ctx, "order-1", nova.NoStream,
		nova.EventData{Type: "order.placed", Data: []byte(`{"total":42}`)},
		nova.EventData{Type: "order.paid", Data: []byte(`{}`)},
	)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("appended versions", res.FirstVersion, "to", res.LastVersion)
	for e, err := range s.ReadStream(ctx, "order-1", nova.ReadStreamOptions{}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.Version, e.Type)
	}
}

// Append in the caller's transaction, so the events commit with a read
// model's row, then wake subscribers.
func ExampleStore_AppendTx() {
	ctx := context.Background()
	s, err := novapg.Open(ctx, novapg.Config{URL: "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	err = pgx.BeginFunc(ctx, s.Pool(), func(tx pgx.Tx) error {
		if _, err := s.AppendTx(ctx, tx, "order-2", nova.NoStream, nova.EventData{Type: "order.placed"}); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO order_totals (id, total) VALUES ('order-2', 0)`)
		return err
	})
	if err != nil {
		log.Fatal(err)
	}
	s.Notify() // the commit is done: wake subscribers now rather than at their next poll
}

// Apply the migrations alone, as `nova migrate` does.
func ExampleMigrate() {
	v, err := novapg.Migrate(context.Background(), novapg.Config{URL: "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("schema version", v)
}
