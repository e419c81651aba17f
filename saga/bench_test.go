package saga_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nova-go/nova/novasqlite"
	"github.com/nova-go/nova/saga"
)

// noop is a step that does nothing, for measuring the engine itself.
func noop(name string) saga.Step[trip] {
	return saga.Step[trip]{Name: name, Execute: func(context.Context, saga.StepContext, *trip) error { return nil }}
}

// sqliteNormalBackend is a SQLite run store that does not flush each
// commit (synchronous=NORMAL): what is left is the CPU per transition.
func sqliteNormalBackend(t testing.TB, _ *clock) saga.RunStore {
	return openSQLite(t, novasqlite.SyncNormal)
}

// BenchmarkSaga measures durable 3-step sagas of no-op steps: each run
// records 8 transitions (start, 3 × started and succeeded, completed) with
// their runs-table rows and lifecycle envelopes. "run-N" drives N runs at
// once with Run; "worker" starts the runs and lets a worker of
// concurrency 8 drive them.
func BenchmarkSaga(b *testing.B) {
	for _, bk := range append(backends, backend{name: "sqlite-normal", open: sqliteNormalBackend}) {
		def, err := saga.Define("bench", noop("a"), noop("b"), noop("c"))
		if err != nil {
			b.Fatal(err)
		}
		for _, par := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/run-%d", bk.name, par), func(b *testing.B) {
				c, _ := saga.NewCoordinator(saga.Config{Runs: bk.open(b, &clock{}), Logger: quiet})
				var next atomic.Int64
				b.ResetTimer()
				var wg sync.WaitGroup
				for range par {
					wg.Go(func() {
						for {
							i := next.Add(1)
							if i > int64(b.N) {
								return
							}
							if _, err := saga.Run(context.Background(), c, def, fmt.Sprint("r", i), trip{}); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sagas/s")
			})
		}
		b.Run(bk.name+"/worker", func(b *testing.B) {
			var ended atomic.Int64
			done := make(chan struct{})
			c, _ := saga.NewCoordinator(saga.Config{Runs: bk.open(b, &clock{}), Logger: quiet,
				OnEndFunc: func(context.Context, saga.RunInfo) {
					if ended.Add(1) == int64(b.N) {
						close(done)
					}
				}})
			w, _ := saga.NewWorker(c, saga.WorkerConfig{Concurrency: 8})
			_ = saga.Register(w, def)
			if err := w.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			defer func() { _ = w.Stop(context.Background()) }()
			b.ResetTimer()
			for i := range b.N {
				if _, err := saga.Start(context.Background(), c, def, fmt.Sprint("r", i), trip{}); err != nil {
					b.Fatal(err)
				}
			}
			<-done
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sagas/s")
		})
	}
}
