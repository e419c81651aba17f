package novamem_test

import (
	"context"
	"fmt"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novamem"
)

func Example() {
	ctx := context.Background()
	store, err := novamem.New(novamem.Config{})
	if err != nil {
		panic(err)
	}
	defer store.Close()

	// Open an account, then deposit, expecting the version the first
	// append returned.
	res, err := store.Append(ctx, "account-1", nova.NoStream,
		nova.EventData{Type: "account.opened", Data: []byte(`{"owner":"ada"}`)})
	if err != nil {
		panic(err)
	}
	_, err = store.Append(ctx, "account-1", nova.Exact(res.LastVersion),
		nova.EventData{Type: "money.deposited", Data: []byte(`{"amount":100}`)})
	if err != nil {
		panic(err)
	}

	// A writer that still believes the account is new loses.
	_, err = store.Append(ctx, "account-1", nova.NoStream,
		nova.EventData{Type: "account.opened", Data: []byte(`{"owner":"bob"}`)})
	fmt.Println(err)

	for ev, err := range store.ReadStream(ctx, "account-1", nova.ReadStreamOptions{}) {
		if err != nil {
			panic(err)
		}
		fmt.Println(ev.Version, ev.Position, ev.Type, string(ev.Data))
	}
	// Output:
	// novamem: append: nova: wrong expected version for stream "account-1": expected no-stream, actual 2
	// 1 1 account.opened {"owner":"ada"}
	// 2 2 money.deposited {"amount":100}
}
