package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/internal/instrument"
)

// Config chooses the providers Nova's telemetry uses. The zero value means
// OpenTelemetry's global providers and W3C Trace Context.
type Config struct {
	// TracerProvider makes Nova's tracer. Default: otel.GetTracerProvider(),
	// which does nothing until the application installs an SDK.
	TracerProvider trace.TracerProvider
	// MeterProvider makes Nova's instruments. Default:
	// otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
	// Propagator writes and reads the trace context in event metadata and
	// envelope headers. Default: propagation.TraceContext{} (the W3C
	// traceparent and tracestate keys), whatever the global propagator is,
	// so that events written by one process are read by another alike.
	Propagator propagation.TextMapPropagator
}

// Use makes every Nova package in the process (the store decorator, the
// buses, projections, sagas, the relay and forwarders) use cfg's
// providers from now on, instead of the global ones; Use(Config{}) goes
// back to the globals. Call it at start-up, before the components run.
func Use(cfg Config) {
	if cfg.TracerProvider == nil && cfg.MeterProvider == nil && cfg.Propagator == nil {
		instrument.Use(nil)
		return
	}
	instrument.Use(instrument.New(instrument.Providers(cfg)))
}

// Trace-context keys: the W3C names under which Nova writes the trace
// context into event metadata (nova.Metadata.Extra) and envelope headers.
const (
	TraceParent = instrument.TraceParent
	TraceState  = instrument.TraceState
)

// InjectMetadata returns md with ctx's trace context in its Extra map
// (a copy: md's map is not changed), unless md already carries one or ctx
// has no span. The [Store] decorator does this on every append.
func InjectMetadata(ctx context.Context, md nova.Metadata) nova.Metadata {
	md.Extra = instrument.Get().Inject(ctx, md.Extra)
	return md
}

// EventContext returns ctx carrying, as its remote parent, the span
// context recorded in e's metadata, if any: a consumer starts its spans
// from it to continue the trace of the append.
func EventContext(ctx context.Context, e nova.Event) context.Context {
	return instrument.Get().Extract(ctx, e.Metadata.Extra)
}

// InjectHeaders sets ctx's trace context in env's headers (a copy of the
// map), unless they already carry one or ctx has no span.
func InjectHeaders(ctx context.Context, env *broker.Envelope) {
	env.Headers = instrument.Get().Inject(ctx, env.Headers)
}

// EnvelopeContext returns ctx carrying the span context of env's
// headers, if any: a subscriber starts its spans from it to continue the
// trace of whatever published env (the relay copies a saga's trace
// context into its lifecycle envelopes, a forwarder the event's).
func EnvelopeContext(ctx context.Context, env broker.Envelope) context.Context {
	return instrument.Get().Extract(ctx, env.Headers)
}
