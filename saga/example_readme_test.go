package saga_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/novasqlite"
	"github.com/nova-go/nova/saga"
)

// The README's saga (README.md, "A saga, run by workers") shows the body
// of Example_trip below from its definition on: a test in the root package
// checks that the two stay the same.

var errSoldOut = errors.New("flight sold out")

// book books a hotel room once per idempotency key.
func book(key string) string {
	fmt.Println("book hotel for", key)
	return "H-" + key
}

// cancelHotel cancels a booking.
func cancelHotel(booking string) error {
	fmt.Println("cancel", booking)
	return nil
}

// A trip books a hotel, then a flight; the flight is sold out, so the
// hotel is cancelled. A worker drives the run on a SQLite file.
func Example_trip() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "trip")
	defer os.RemoveAll(dir)
	store, err := novasqlite.Open(ctx, novasqlite.Config{Path: filepath.Join(dir, "trips.db")})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()

	type Trip struct{ Hotel, Flight string }

	trip, _ := saga.Define("trip",
		saga.Step[Trip]{
			Name: "hotel",
			// sc.IdempotencyKey is "trip/{run}/hotel": steps run at least once.
			Execute: func(ctx context.Context, sc saga.StepContext, t *Trip) error {
				t.Hotel = book(sc.IdempotencyKey) // recorded: later steps and the compensation see it
				return nil
			},
			Compensate: func(ctx context.Context, sc saga.StepContext, t *Trip) error { return cancelHotel(t.Hotel) },
		},
		saga.Step[Trip]{
			Name:    "flight",
			Execute: func(ctx context.Context, sc saga.StepContext, t *Trip) error { return saga.Permanent(errSoldOut) },
			Retry:   saga.RetryPolicy{MaxAttempts: 5}, // exponential backoff with full jitter by default
		},
	)

	runs := novasqlite.NewRunStore(store)           // or novapg.NewRunStore: runs table, outbox, leases
	b, _ := broker.NewMemory(broker.MemoryConfig{}) // any broker.Broker: lifecycle events go out through the outbox
	defer b.Close()
	ended := make(chan saga.RunInfo, 1)
	c, _ := saga.NewCoordinator(saga.Config{Runs: runs, Broker: b,
		OnEndFunc: func(ctx context.Context, r saga.RunInfo) { ended <- r }})
	w, _ := saga.NewWorker(c, saga.WorkerConfig{Concurrency: 8})
	saga.Register(w, trip)
	w.Start(ctx) // claims due runs, resumes interrupted ones, relays the outbox
	defer w.Stop(ctx)

	saga.Start(ctx, c, trip, "trip-42", Trip{}) // the run ID is your business key
	r := <-ended
	fmt.Println(r.RunID, r.Status)
	// Output:
	// book hotel for trip/trip-42/hotel
	// cancel H-trip/trip-42/hotel
	// trip-42 compensated
}
