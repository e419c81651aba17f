package broker_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/nova-go/nova/broker"
)

// sagaEvent is the payload of a saga lifecycle envelope.
type sagaEvent struct {
	SagaID      string `json:"saga_id"`
	Step        string `json:"step"`
	Status      string `json:"status"`
	TimestampMS int64  `json:"timestamp_ms"`
}

// A saga lifecycle envelope, published and polled back, as a test of a
// saga's events does.
func Example() {
	ctx := context.Background()
	b, err := broker.NewMemory(broker.MemoryConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	saga, step, status := "test-saga", "a", "started"
	e, err := broker.NewEnvelope(
		fmt.Sprintf("%s-%s-%s", saga, step, status),
		fmt.Sprintf("saga.%s.%s.%s", saga, step, status),
		"saga.event",
		sagaEvent{SagaID: saga, Step: step, Status: status, TimestampMS: 1_700_000_000_000},
	)
	if err != nil {
		log.Fatal(err)
	}
	if err := b.Publish(ctx, e); err != nil {
		log.Fatal(err)
	}
	// The outbox relay may publish the same envelope again: it is dropped.
	if err := b.Publish(ctx, e); err != nil {
		log.Fatal(err)
	}

	events, err := b.Poll(ctx, "saga.test-saga.a.started", 10)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(events))
	for _, ev := range events {
		fmt.Println(ev.ID, ev.Topic, ev.EventType)
		fmt.Println(string(ev.Payload))
	}
	// Output:
	// 1
	// test-saga-a-started saga.test-saga.a.started saga.event
	// {"saga_id":"test-saga","step":"a","status":"started","timestamp_ms":1700000000000}
}

// A subscription to every saga event: the handler rejects a message once,
// the broker delivers it again with Attempts one higher, and a message
// that keeps failing ends in the dead-letter queue with the reason.
func ExampleMemory_Subscribe() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := broker.NewMemory(broker.MemoryConfig{MaxAttempts: 2, MinBackoff: time.Millisecond})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	seen := make(chan string)
	sub, err := b.Subscribe(ctx, "saga.>", func(ctx context.Context, e broker.Envelope) error {
		seen <- fmt.Sprintf("%s attempt %d", e.ID, e.Attempts)
		if e.ID == "s1-charge-failed" {
			return errors.New("ledger unavailable")
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}

	for _, status := range []string{"started", "failed"} {
		e, err := broker.NewEnvelope("s1-charge-"+status, "saga.s1.charge."+status, "saga.event", map[string]string{"saga_id": "s1"})
		if err != nil {
			log.Fatal(err)
		}
		if err := b.Publish(ctx, e); err != nil {
			log.Fatal(err)
		}
	}
	for range 3 {
		fmt.Println(<-seen)
	}

	// The broker dead-letters the envelope once the handler's second
	// rejection has returned.
	var dead []broker.DeadLetter
	for len(dead) == 0 {
		time.Sleep(time.Millisecond)
		if dead, err = b.PollDLQ(ctx, "saga.s1.charge.failed", 10); err != nil {
			log.Fatal(err)
		}
	}
	sub.Unsubscribe()
	for _, d := range dead {
		fmt.Printf("dead: %s after %d attempts: %s\n", d.Envelope.ID, d.Envelope.Attempts, d.Reason)
	}
	// Output:
	// s1-charge-started attempt 0
	// s1-charge-failed attempt 0
	// s1-charge-failed attempt 1
	// dead: s1-charge-failed after 2 attempts: ledger unavailable
}
