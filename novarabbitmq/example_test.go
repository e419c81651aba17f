package novarabbitmq_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"testing"
	"time"

	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/novarabbitmq"
)

// The server and namespace Example uses.
var (
	exampleURL       = novarabbitmq.DefaultURL
	exampleNamespace = "shop"
)

// A consumer group that bills placed orders, the topic's own queue read
// with Poll, and the dead letter of an order the group could not bill,
// on the RabbitMQ server at exampleURL. (It has no Output comment, so go
// test does not run it on its own: it needs a server. TestExample runs
// it and checks what it prints.)
func Example() {
	ctx := context.Background()
	b, err := novarabbitmq.New(ctx, novarabbitmq.Config{
		URL:         exampleURL,
		Namespace:   exampleNamespace,
		MaxAttempts: 2,
		MinBackoff:  10 * time.Millisecond,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	// The group's queue keeps what is published from now on, for
	// whichever process of the group takes it.
	billed := make(chan struct{})
	sub, err := b.SubscribeGroup(ctx, "billing", "orders.*.placed", func(ctx context.Context, e broker.Envelope) error {
		if e.Key == "unpaid" {
			return fmt.Errorf("cannot bill %s", e.ID)
		}
		fmt.Println("billed", e.ID, "on attempt", e.Attempts+1)
		close(billed)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Unsubscribe()

	paid, _ := broker.NewEnvelope("order-1", "orders.eu.placed", "order.placed", map[string]int{"total": 30})
	unpaid, _ := broker.NewEnvelope("order-2", "orders.eu.placed", "order.placed", map[string]int{"total": 99})
	unpaid.Key = "unpaid"
	if err := broker.PublishAll(ctx, b, paid, unpaid); err != nil {
		log.Fatal(err)
	}
	<-billed

	// Every envelope also waits in its topic's queue until polled.
	polled, err := b.Poll(ctx, "orders.eu.placed", 10)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range polled {
		fmt.Println("polled", e.ID, string(e.Payload))
	}

	// The group gave up on order-2 after two attempts.
	for {
		dead, err := b.PollDLQ(ctx, "orders.eu.placed", 10)
		if err != nil {
			log.Fatal(err)
		}
		if len(dead) > 0 {
			d := dead[0]
			fmt.Printf("dead letter %s after %d attempts: %s\n", d.Envelope.ID, d.Envelope.Attempts, d.Reason)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestExample runs Example in a namespace of its own on the test server
// and checks what it prints.
func TestExample(t *testing.T) {
	exampleURL = novarabbitmq.ServerURL(t)
	exampleNamespace = novarabbitmq.NamespaceForTest(t, []string{"orders.eu.placed"}, []string{"billing"})
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
	want := `billed order-1 on attempt 1
polled order-1 {"total":30}
polled order-2 {"total":99}
dead letter order-2 after 2 attempts: cannot bill order-2
`
	if got != want {
		t.Errorf("Example printed:\n%s\nwant:\n%s", got, want)
	}
}
