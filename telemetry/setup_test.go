package telemetry_test

import (
	"context"
	"slices"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/nova-go/nova/telemetry"
)

// fixture is an SDK that records spans and metrics in memory, installed
// for Nova with telemetry.Use for one test (tests that use it are not
// parallel).
type fixture struct {
	spans   *tracetest.SpanRecorder
	reader  *sdkmetric.ManualReader
	tracer  *sdktrace.TracerProvider
	metrics *sdkmetric.MeterProvider
}

func setup(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	f.tracer = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(f.spans))
	f.metrics = sdkmetric.NewMeterProvider(sdkmetric.WithReader(f.reader))
	telemetry.Use(telemetry.Config{TracerProvider: f.tracer, MeterProvider: f.metrics})
	t.Cleanup(func() {
		telemetry.Use(telemetry.Config{})
		_ = f.tracer.Shutdown(context.Background())
		_ = f.metrics.Shutdown(context.Background())
	})
	return f
}

// ended returns the ended spans called name.
func (f *fixture) ended(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range f.spans.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// collect returns the metrics recorded so far, by name.
func (f *fixture) collect(t *testing.T) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := f.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// names returns the sorted keys of m.
func names(m map[string]metricdata.Metrics) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// sum returns the sum of an Int64 counter's points whose attribute key
// has value (any point when key is "").
func sum(t *testing.T, m metricdata.Metrics, key, value string) int64 {
	t.Helper()
	s, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("%s is a %T, not an int64 sum", m.Name, m.Data)
	}
	var n int64
	for _, p := range s.DataPoints {
		if key != "" {
			if v, ok := p.Attributes.Value(attributeKey(key)); !ok || v.String() != value {
				continue
			}
		}
		n += p.Value
	}
	return n
}
