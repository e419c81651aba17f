package novaredis_test

import (
	"context"
	"fmt"
	"log"

	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/novaredis"
)

type OrderSummary struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Total  int64  `json:"total"`
}

// Keep a read model in Redis and read it back typed. (The example needs a
// Redis server, so it is compiled, not run.)
func Example() {
	ctx := context.Background()
	qs, err := novaredis.Open(ctx, novaredis.Config{URL: "redis://127.0.0.1:6379/0", Prefix: "shop"})
	if err != nil {
		log.Fatal(err)
	}
	defer qs.Close()

	// Stored as the Redis string "shop:order-1".
	if err := cqrs.UpsertProjection(ctx, qs, "order-1", OrderSummary{ID: "order-1", Status: "paid", Total: 4200}); err != nil {
		log.Fatal(err)
	}
	summary, err := cqrs.GetProjection[OrderSummary](ctx, qs, "order-1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(qs.Key("order-1"), summary.Status, summary.Total)
}
