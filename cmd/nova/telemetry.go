package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/nova-go/nova/internal/instrument"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// The CLI is the one place that picks an OpenTelemetry SDK (the library
// packages use the API only, see package telemetry):
//
//   - metrics go to a Prometheus registry of the process's own, which
//     metricsHandler serves in the text format (for `nova serve` at
//     /metrics);
//   - traces are exported over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT
//     or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (the exporter reads the
//     other OTEL_EXPORTER_OTLP_* variables itself), and not recorded
//     otherwise.

// metrics is the process's meter provider and the registry its
// Prometheus exporter writes to, made once by installMetrics.
var metrics struct {
	once     sync.Once
	registry *prometheus.Registry
	provider *sdkmetric.MeterProvider
	err      error
}

// serviceResource names the process in exported telemetry; the
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES variables override it.
func serviceResource() *resource.Resource {
	r, err := resource.Merge(resource.NewSchemaless(attribute.String("service.name", "nova")), resource.Environment())
	if err != nil {
		return resource.NewSchemaless(attribute.String("service.name", "nova"))
	}
	return r
}

// installMetrics makes the global meter provider one that a Prometheus
// registry reads, once per process.
func installMetrics() (*prometheus.Registry, error) {
	metrics.once.Do(func() {
		reg := prometheus.NewRegistry()
		exp, err := otelprom.New(otelprom.WithRegisterer(reg))
		if err != nil {
			metrics.err = fmt.Errorf("prometheus exporter: %w", err)
			return
		}
		metrics.registry = reg
		metrics.provider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(serviceResource()))
		otel.SetMeterProvider(metrics.provider)
	})
	return metrics.registry, metrics.err
}

// metricsHandler serves Nova's metrics in the Prometheus text format. The
// first call installs the global meter provider it reads; instruments
// made before that (Nova's are made lazily) report through it all the
// same.
func metricsHandler() http.Handler {
	reg, err := installMetrics()
	if err != nil {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "nova: metrics unavailable: "+err.Error(), http.StatusInternalServerError)
		})
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// tracingEnabled reports whether the environment asks for OTLP traces.
func tracingEnabled(getenv func(string) string) bool {
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// startTelemetry installs the SDK for this process: the metrics (see
// metricsHandler) and, when the environment asks for it, an OTLP/HTTP
// trace exporter with W3C trace-context propagation. The returned
// function flushes and stops both, waiting at most a few seconds; a
// failure to set up is reported on stderr and leaves telemetry off, as a
// command must run without it.
func startTelemetry(ctx context.Context, stderr io.Writer) (shutdown func()) {
	if _, err := installMetrics(); err != nil {
		fmt.Fprintf(stderr, "nova: telemetry: %v\n", err)
	}
	var tp *sdktrace.TracerProvider
	if tracingEnabled(os.Getenv) {
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "nova: telemetry: OTLP trace exporter: %v\n", err)
		} else {
			tp = sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(serviceResource()))
			otel.SetTracerProvider(tp)
			otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
		}
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		if tp != nil {
			err = tp.Shutdown(ctx)
		}
		if metrics.provider != nil {
			err = errors.Join(err, metrics.provider.Shutdown(ctx))
		}
		if err != nil {
			fmt.Fprintf(stderr, "nova: telemetry: shut down: %v\n", err)
		}
	}
}

// startTraced runs start, which starts a demo order's saga run, inside a
// span "nova.demo.order": the request the run's steps link to.
func startTraced[X any](ctx context.Context, orderID string, start func(context.Context) (X, error)) (X, error) {
	ctx, span := instrument.Get().Tracer.Start(ctx, "nova.demo.order",
		trace.WithAttributes(attribute.String("nova.order", orderID)))
	x, err := start(ctx)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
	return x, err
}
