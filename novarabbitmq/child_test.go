package novarabbitmq

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/nova-go/nova/broker"
)

// The variables a crash test's child process reads.
const (
	childEnv    = "NOVARABBITMQ_TEST_CHILD" // its role: "member"
	childURLEnv = "NOVARABBITMQ_TEST_URL"
	childNSEnv  = "NOVARABBITMQ_TEST_NAMESPACE"
)

// The consumer group the child joins, and its pattern.
const (
	childGroup   = "workers"
	childPattern = "kill.>"
)

// runChild is a child process's work. As a "member" it joins the
// consumer group, says "ready", and prints "got <id> <attempts>" for each
// envelope it is handed, holding it unacknowledged until the parent kills
// the process.
func runChild(role string) {
	if role != "member" {
		fmt.Fprintf(os.Stderr, "unknown child role %q\n", role)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := New(ctx, testConfig(os.Getenv(childURLEnv), os.Getenv(childNSEnv)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	_, err = b.SubscribeGroup(context.Background(), childGroup, childPattern, func(ctx context.Context, e broker.Envelope) error {
		fmt.Printf("got %s %d\n", e.ID, e.Attempts)
		<-ctx.Done()
		return ctx.Err()
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println("ready")
	time.Sleep(time.Hour)
}
