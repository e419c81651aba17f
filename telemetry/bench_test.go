package telemetry_test

import (
	"context"
	"path/filepath"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novamem"
	"github.com/nova-go/nova/novasqlite"
	"github.com/nova-go/nova/telemetry"
)

// BenchmarkAppend1 appends one event per call to a store used raw
// ("off"), through the telemetry decorator with no SDK installed (the
// API's no-op providers: "noop"), and through it with an SDK that
// samples and records every span and aggregates every metric in memory
// ("sdk"), on novamem (the decorator's cost alone) and on SQLite with
// SyncNormal (a real write). Each event goes to its own stream, so the
// appends never conflict.
//
//	go test -run '^$' -bench Append1 -count 8 ./telemetry | tee /tmp/t.txt
//	benchstat -col /mode /tmp/t.txt
func BenchmarkAppend1(b *testing.B) {
	stores := []struct {
		name string
		open func(b *testing.B) nova.Store
	}{
		{"store=mem", func(b *testing.B) nova.Store {
			s, err := novamem.New(novamem.Config{})
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
		{"store=sqlite", func(b *testing.B) nova.Store {
			s, err := novasqlite.Open(context.Background(), novasqlite.Config{
				Path: filepath.Join(b.TempDir(), "bench.db"), Synchronous: novasqlite.SyncNormal})
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
	}
	modes := []struct {
		name string
		wrap func(b *testing.B, s nova.Store) nova.Store
	}{
		{"mode=off", func(_ *testing.B, s nova.Store) nova.Store { return s }},
		{"mode=noop", func(_ *testing.B, s nova.Store) nova.Store { return telemetry.Store(s) }},
		{"mode=sdk", func(b *testing.B, s nova.Store) nova.Store {
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			b.Cleanup(func() {
				_ = tp.Shutdown(context.Background())
				_ = mp.Shutdown(context.Background())
			})
			return telemetry.StoreWith(s, telemetry.Config{TracerProvider: tp, MeterProvider: mp})
		}},
	}
	for _, st := range stores {
		for _, m := range modes {
			b.Run(st.name+"/"+m.name, func(b *testing.B) {
				inner := st.open(b)
				defer inner.Close()
				s := m.wrap(b, inner)
				ctx := context.Background()
				if m.name == "mode=sdk" {
					// A request's span, as an append in a handler has.
					tp := sdktrace.NewTracerProvider()
					defer tp.Shutdown(context.Background())
					var span trace.Span
					ctx, span = tp.Tracer("bench").Start(ctx, "request")
					defer span.End()
				}
				streams := make([]string, b.N)
				for i := range streams {
					streams[i] = "bench-" + nova.NewEventID()
				}
				data := []byte(`{"sku":"book","qty":1}`)
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					if _, err := s.Append(ctx, streams[i], nova.NoStream, nova.EventData{Type: "ItemAdded", Data: data}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// nullStore is a store whose Append returns at once: under it,
// BenchmarkDecorator measures the decorator's own cost, which the noise
// of a real write would hide on a busy machine.
type nullStore struct{ nova.Store }

func (nullStore) Append(context.Context, string, nova.ExpectedVersion, ...nova.EventData) (nova.AppendResult, error) {
	return nova.AppendResult{FirstVersion: 1, LastVersion: 1}, nil
}

// BenchmarkDecorator is the cost the decorator adds to one append, on a
// store that does nothing, in the three modes of BenchmarkAppend1.
//
//	go test -run '^$' -bench Decorator -count 10 ./telemetry | tee /tmp/d.txt
//	benchstat -col /mode /tmp/d.txt
func BenchmarkDecorator(b *testing.B) {
	for _, mode := range []string{"off", "noop", "sdk"} {
		b.Run("mode="+mode, func(b *testing.B) {
			var s nova.Store = nullStore{}
			ctx := context.Background()
			switch mode {
			case "noop":
				s = telemetry.Store(s)
			case "sdk":
				tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
				mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
				defer tp.Shutdown(context.Background())
				defer mp.Shutdown(context.Background())
				s = telemetry.StoreWith(s, telemetry.Config{TracerProvider: tp, MeterProvider: mp})
				var span trace.Span
				ctx, span = tp.Tracer("bench").Start(ctx, "request")
				defer span.End()
			}
			ev := nova.EventData{ID: nova.NewEventID(), Type: "ItemAdded", Data: []byte(`{"sku":"book","qty":1}`)}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Append(ctx, "bench-1", nova.NoStream, ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
