package novakafka_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/novakafka"
)

// The variables that make the test binary a group member for
// TestKillRedelivers instead of running tests.
const (
	childEnv      = "NOVAKAFKA_CHILD"
	childSeedsEnv = "NOVAKAFKA_CHILD_SEEDS"
	childNSEnv    = "NOVAKAFKA_CHILD_NAMESPACE"
)

// runChild joins group "kill" on the parent's cluster, prints "ready",
// then "got <id>" for each envelope its handler is given. It acknowledges
// every envelope but "block", on which its handler waits until the
// process is killed.
func runChild() {
	ctx := context.Background()
	cfg := testConfig(strings.Split(os.Getenv(childSeedsEnv), ","), os.Getenv(childNSEnv))
	b, err := novakafka.New(ctx, cfg)
	if err != nil {
		fmt.Println("child:", err)
		os.Exit(1)
	}
	_, err = b.SubscribeGroup(ctx, "kill", "kill.>", func(ctx context.Context, e broker.Envelope) error {
		fmt.Printf("got %s\n", e.ID)
		if e.ID == "block" {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	})
	if err != nil {
		fmt.Println("child:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	time.Sleep(time.Hour)
}
