package bench_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nova-go/nova/internal/bench"
	"github.com/nova-go/nova/novasqlite"
)

func ExampleScenarioNames() {
	for _, name := range bench.ScenarioNames() {
		fmt.Printf("%s: %s\n", name, bench.ScenarioDoc(name))
	}
	// Output:
	// append-1: 1 event per append, 1 writer
	// append-1-8w: 1 event per append, 8 writers on their own streams
	// append-100: 100 events per append, 1 writer
	// read-10k: ReadStream of a 10,000-event stream
	// readall: ReadAll over 100,000 events
	// saga-3step: durable 3-step sagas of no-op steps, 1 run at a time (sagas/s; no raw side)
	// saga-3step-8: durable 3-step sagas of no-op steps, 8 runs at once (sagas/s; no raw side)
	// saga-procs: durable 3-step sagas of no-op steps, all started first, driven by 1, 2, 3 worker processes of 8 runs at once each (sagas/s, speed-up; no raw side)
	// projection: projection catch-up over 50,000 events into a query-store read model, beside raw ReadAll
	// append-1-64w: 1 event per append, 64 writers on their own streams
	// repo-save-100: aggregate Repository.Save of 100 events, beside Append of the same values encoded by the registry
	// repo-load-10k: aggregate Repository.Load of a 10,000-event aggregate, beside ReadStream and a registry Decode of each event
}

func ExampleBrokerScenarioNames() {
	for _, name := range bench.BrokerScenarioNames() {
		fmt.Printf("%s: %s\n", name, bench.ScenarioDoc(name))
	}
	// Output:
	// broker-publish: 1 KB envelopes, each Publish confirmed by the server before the next
	// broker-publish-batch: 1 KB envelopes in batches of 100 (PublishAll), every confirmation awaited
	// broker-consume: 1 KB envelopes waiting for a consumer group, consumed and acknowledged one at a time
	// relay: saga lifecycle envelopes relayed from an outbox (SQLite, or a PostgreSQL or MySQL store) to the broker (envelopes/s; no raw side)
}

// Measure two scenarios on SQLite beside the raw driver and print a table.
// The rates depend on the machine; the ratios are what to compare.
func ExampleRun() {
	dir, err := os.MkdirTemp("", "nova-bench-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	backend, err := bench.SQLite(filepath.Join(dir, "bench.db"), novasqlite.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer backend.Close()

	results, err := bench.Run(context.Background(), backend, bench.Options{
		Scenarios: []string{"append-1", "read-10k"},
		Scale:     0.01, // a quick look; 1 (the default) for real figures
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = bench.WriteTable(os.Stdout, results)
}
