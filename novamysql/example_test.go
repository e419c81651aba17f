package novamysql_test

import (
	"context"
	"fmt"
	"log"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novamysql"
)

// Open a store from a URL, append and read back. The tables are created
// on first use; a second store in the same database takes another
// TablePrefix.
func Example() {
	ctx := context.Background()
	s, err := novamysql.Open(ctx, novamysql.Config{DSN: "mysql://nova:secret@127.0.0.1:3306/app"})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	res, err := s.Append(ctx, "order-1", nova.NoStream,
		nova.EventData{Type: "order.placed", Data: []byte(`{"total":42}`)})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("appended at", res.Position)
	for e, err := range s.ReadStream(ctx, "order-1", nova.ReadStreamOptions{}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.Version, e.Type)
	}
}

// Append inside a transaction of the application's own, so the events
// commit together with its other writes.
func ExampleStore_AppendTx() {
	ctx := context.Background()
	s, err := novamysql.Open(ctx, novamysql.Config{DSN: "nova:secret@tcp(127.0.0.1:3306)/app"})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE orders SET status = 'placed' WHERE id = 1`); err != nil {
		log.Fatal(err)
	}
	if _, err := s.AppendTx(ctx, tx, "order-1", nova.Exact(3), nova.EventData{Type: "order.placed"}); err != nil {
		log.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		log.Fatal(err)
	}
	s.Notify() // wake this store's subscriptions now rather than at their next poll
}

// Bring the tables to the current schema, as `nova migrate` does.
func ExampleMigrate() {
	v, err := novamysql.Migrate(context.Background(), novamysql.Config{DSN: "mysql://nova:secret@127.0.0.1:3306/app"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("schema version", v)
}
