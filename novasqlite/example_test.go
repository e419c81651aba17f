package novasqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novasqlite"
)

func Example() {
	dir, err := os.MkdirTemp("", "nova-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	s, err := novasqlite.Open(ctx, novasqlite.Config{Path: filepath.Join(dir, "events.db")})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	res, err := s.Append(ctx, "order-1", nova.NoStream,
		nova.EventData{Type: "order.placed", Data: []byte(`{"total":42}`)},
		nova.EventData{Type: "order.paid", Data: []byte(`{"amount":42}`)},
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("stream at version", res.LastVersion, "log at position", res.Position)

	// A writer that expected the stream to be new loses.
	_, err = s.Append(ctx, "order-1", nova.NoStream, nova.EventData{Type: "order.placed"})
	fmt.Println(err)

	for e, err := range s.ReadStream(ctx, "order-1", nova.ReadStreamOptions{}) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(e.Version, e.Type, string(e.Data))
	}
	// Output:
	// stream at version 2 log at position 2
	// nova: wrong expected version for stream "order-1": expected no-stream, actual 2
	// 1 order.placed {"total":42}
	// 2 order.paid {"amount":42}
}
