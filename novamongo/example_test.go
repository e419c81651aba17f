package novamongo_test

import (
	"context"
	"fmt"
	"log"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/novamongo"
)

type OrderSummary struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Total  int64  `json:"total"`
}

// Keep a read model in a MongoDB-API database, read it back typed, and
// query the collection by a field of the views. (The example needs a
// server, so it is compiled, not run.)
func Example() {
	ctx := context.Background()
	qs, err := novamongo.Open(ctx, novamongo.Config{URL: "mongodb://127.0.0.1:27017", Database: "shop", Collection: "order_summaries"})
	if err != nil {
		log.Fatal(err)
	}
	defer qs.Close()

	// Stored as {_id: "order-1", value: {id: "order-1", status: "paid", total: 4200}, updated_at: ...}.
	if err := cqrs.UpsertProjection(ctx, qs, "order-1", OrderSummary{ID: "order-1", Status: "paid", Total: 4200}); err != nil {
		log.Fatal(err)
	}
	summary, err := cqrs.GetProjection[OrderSummary](ctx, qs, "order-1")
	if err != nil {
		log.Fatal(err)
	}
	paid, err := qs.Collection().CountDocuments(ctx, bson.D{{Key: "value.status", Value: "paid"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(summary.Status, summary.Total, paid)
}
