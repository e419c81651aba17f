package novanats_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novanats"
)

// exampleURL is the NATS server Example uses.
var exampleURL = "nats://127.0.0.1:4222"

// An event store on a JetStream stream of the NATS server at exampleURL,
// a nats-server 2.12 or later (the first append stores two events at
// once, atomically). In production, URL names the NATS cluster.
func Example() {
	ctx := context.Background()
	store, err := novanats.Open(ctx, novanats.Config{URL: exampleURL, StreamName: "ORDERS", SubjectPrefix: "orders.events"})
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
}

// TestExample runs Example on a private server, where the ORDERS stream
// is new, and checks what it prints. (Example has no Output comment, so
// go test does not run it on its own: it needs a server.)
func TestExample(t *testing.T) {
	exampleURL = startServer(t).url
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	printed := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		printed <- string(b)
	}()
	func() {
		defer func() { os.Stdout = stdout; w.Close() }()
		Example()
	}()
	got := <-printed
	r.Close()
	want := `versions 1 to 2 at position 2
stale version: nova: wrong expected version for stream "order-42": expected 1, actual 2
2 order.paid {"amount":30}
1 order.placed {"total":30}
`
	if got != want {
		t.Errorf("Example printed:\n%s\nwant:\n%s", got, want)
	}
}
