package bench

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/nova-go/nova"
)

// Benchmark runs the named scenario as two sub-benchmarks of b,
// "target=nova" and "target=raw", each on a fresh target of be, and reports
// events/s with b.ReportMetric, so `benchstat -col /target` sets the two
// side by side. A backend's
// bench_test.go calls it once per scenario:
//
//	func BenchmarkAppend1(b *testing.B) { bench.Benchmark(b, backend(b), "append-1") }
//
// An operation is one append for the append scenarios (ns/op is per
// append; append-1-8w runs its eight writers with b.RunParallel, so there
// it is per event across all writers) and one full read of the stream or
// log for the read scenarios, whose data is written before the timer
// starts. Sizes are the scenarios' full sizes; -benchtime sets how many
// operations run.
func Benchmark(b *testing.B, be Backend, scenario string) {
	b.Helper()
	sc, ok := lookup(scenario)
	if !ok {
		b.Fatalf("bench: unknown scenario %q, want one of %v", scenario, ScenarioNames())
	}
	if err := be.validate(); err != nil {
		b.Fatal(err)
	}
	for _, s := range []side{sideNova, sideRaw} {
		b.Run("target="+s.String(), func(b *testing.B) {
			if sc.kind == kindSaga && s == sideRaw {
				b.Skip("sagas have no raw baseline")
			}
			t := openTarget(b, be, sc, s)
			switch {
			case sc.kind == kindAppend && sc.writers > 1:
				benchParallelAppend(b, t, sc)
			case sc.kind == kindAppend:
				benchAppend(b, t, sc)
			default:
				benchSlices(b, be, t, sc)
			}
		})
	}
}

// openTarget opens a fresh target of side s, closed when b ends.
func openTarget(b *testing.B, be Backend, sc scenario, s side) target {
	b.Helper()
	ctx := b.Context()
	t, cleanup, err := openFor(ctx, be, sc, s)
	if err != nil {
		b.Fatalf("bench: open %s target: %v", s, err)
	}
	b.Cleanup(func() {
		if err := cleanup(); err != nil {
			b.Errorf("bench: clean up %s target: %v", s, err)
		}
	})
	return t
}

// benchAppend appends sc.batch events per operation to one stream. Events
// are generated in chunks with the timer stopped.
func benchAppend(b *testing.B, t target, sc scenario) {
	ctx := b.Context()
	const stream = "bench-0"
	var version uint64
	var queue [][]nova.EventData
	for b.Loop() {
		if len(queue) == 0 {
			b.StopTimer()
			queue = make([][]nova.EventData, max(1, 256/sc.batch))
			for i := range queue {
				queue[i] = Events(sc.batch)
			}
			b.StartTimer()
		}
		evs := queue[0]
		queue = queue[1:]
		if err := t.Append(ctx, stream, version, evs); err != nil {
			b.Fatalf("bench: append to %s: %v", stream, err)
		}
		version += uint64(len(evs))
	}
	reportRate(b, int(version))
}

// benchParallelAppend runs sc.writers goroutines (rounded up to a multiple
// of GOMAXPROCS), each appending to its own stream.
func benchParallelAppend(b *testing.B, t target, sc scenario) {
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((sc.writers + procs - 1) / procs)
	ctx := b.Context()
	var writers, events atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		stream := fmt.Sprintf("bench-%d", writers.Add(1))
		var version uint64
		for pb.Next() {
			evs := Events(sc.batch)
			if err := t.Append(ctx, stream, version, evs); err != nil {
				b.Errorf("bench: append to %s: %v", stream, err)
				return
			}
			version += uint64(len(evs))
		}
		events.Add(int64(version))
	})
	reportRate(b, int(events.Load()))
}

// benchSlices prepares the scenario (writing the stream or log to read),
// then runs one slice per operation: one full read of the stream or log,
// one projection catch-up over the log, or one slice of sagas.
func benchSlices(b *testing.B, be Backend, t target, sc scenario) {
	ctx := b.Context()
	j, err := sc.prepare(ctx, be, t, sizes{events: sc.events, reads: 1})
	if errors.Is(err, nova.ErrNotImplemented) {
		b.Skip(err)
	}
	if err != nil {
		b.Fatalf("bench: %v", err)
	}
	n, op := 0, 0
	for b.Loop() {
		k, err := j.slice(ctx, op)
		if err != nil {
			b.Fatalf("bench: %v", err)
		}
		n += k
		op++
	}
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(n)/s, sc.unit()+"/s")
	}
}

func reportRate(b *testing.B, events int) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(events)/s, "events/s")
	}
}

// BenchmarkBroker runs the named broker scenario ([BrokerScenarioNames])
// as two sub-benchmarks of b, "target=nova" and "target=raw" (the relay
// has no raw one), each in a fresh namespace of be, and reports
// envelopes/s. An operation is one envelope: b.N of them, rounded up to
// whole batches, are published, consumed or relayed after the untimed
// preparation (the group filled, the outbox filled by sagas), and the
// run's check follows, untimed, failing the benchmark when work was left
// undone:
//
//	func BenchmarkBrokerPublish(b *testing.B) { bench.BenchmarkBroker(b, backend(b), "broker-publish") }
func BenchmarkBroker(b *testing.B, be BrokerBackend, scenario string) {
	b.Helper()
	sc, ok := lookupBroker(scenario)
	if !ok {
		b.Fatalf("bench: unknown broker scenario %q, want one of %v", scenario, BrokerScenarioNames())
	}
	if err := be.validate(); err != nil {
		b.Fatal(err)
	}
	for _, s := range []side{sideNova, sideRaw} {
		b.Run("target="+s.String(), func(b *testing.B) {
			if sc.kind == brokerRelay && s == sideRaw {
				b.Skip("the relay has no raw baseline")
			}
			ctx := b.Context()
			n := (b.N + sc.batch - 1) / sc.batch * sc.batch
			j, cleanup, err := be.open(ctx, sc, s, n)
			if cleanup != nil {
				b.Cleanup(func() {
					if err := cleanup(); err != nil {
						b.Errorf("bench: clean up %s: %v", s, err)
					}
				})
			}
			if errors.Is(err, nova.ErrNotImplemented) {
				b.Skip(err)
			}
			if err != nil {
				b.Fatalf("bench: %v", err)
			}
			b.ResetTimer()
			done := 0
			for i := range j.slices {
				k, err := j.slice(ctx, i)
				if err != nil {
					b.Fatalf("bench: %v", err)
				}
				done += k
			}
			b.StopTimer()
			if j.check != nil {
				if err := j.check(ctx); err != nil {
					b.Fatalf("bench: %v", err)
				}
			}
			if s := b.Elapsed().Seconds(); s > 0 {
				b.ReportMetric(float64(done)/s, "envelopes/s")
			}
		})
	}
}
