package novanats_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novanats"
)

// An event store on a JetStream stream. Here the server runs in the same
// process; in production, URL names the NATS cluster.
func Example() {
	dir, err := os.MkdirTemp("", "novanats-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	srv, err := server.NewServer(&server.Options{Port: server.RANDOM_PORT, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		log.Fatal(err)
	}
	srv.Start()
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	srv.ReadyForConnections(10e9)

	ctx := context.Background()
	store, err := novanats.Open(ctx, novanats.Config{URL: srv.ClientURL(), StreamName: "ORDERS", SubjectPrefix: "orders.events"})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	res, err := store.Append(ctx, "order-42", nova.NoStream,
		nova.EventData{Type: "order.placed", Data: []byte(`{"total":30}`)},
		nova.EventData{Type: "order.paid", Data: []byte(`{"amount":30}`)},
	)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("versions", res.FirstVersion, "to", res.LastVersion, "at position", res.Position)

	_, err = store.Append(ctx, "order-42", nova.Exact(1), nova.EventData{Type: "order.cancelled"})
	fmt.Println("stale version:", err)

	for e, err := range store.ReadStream(ctx, "order-42", nova.ReadStreamOptions{Direction: nova.Backwards}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.Version, e.Type, string(e.Data))
	}
	// Output:
	// versions 1 to 2 at position 2
	// stale version: nova: wrong expected version for stream "order-42": expected 1, actual 2
	// 2 order.paid {"amount":30}
	// 1 order.placed {"total":30}
}
