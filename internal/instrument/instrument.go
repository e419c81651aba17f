// Package instrument holds the OpenTelemetry tracer, meter instruments
// and trace-context helpers that Nova's packages share. Package
// telemetry is its public face: it documents the span and metric names
// and lets an application choose the providers (see telemetry.Use).
//
// By default every instrument comes from OpenTelemetry's global providers
// (otel.GetTracerProvider, otel.GetMeterProvider), which do nothing until
// the application installs an SDK, and later installing one takes effect
// on instruments made before. Trace context always travels in the W3C
// Trace Context form (traceparent, tracestate) unless another propagator
// is given.
package instrument

import (
	"context"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/nova-go/nova"
)

// Name is the instrumentation scope of every tracer and meter.
const Name = "github.com/nova-go/nova"

// Trace-context keys, as W3C Trace Context names them, under which the
// context travels in event metadata (nova.Metadata.Extra) and envelope
// headers.
const (
	TraceParent = "traceparent"
	TraceState  = "tracestate"
)

// Attribute keys of Nova's spans and metrics.
const (
	Stream      = attribute.Key("nova.stream")
	Expected    = attribute.Key("nova.expected_version")
	Events      = attribute.Key("nova.events")
	Position    = attribute.Key("nova.position")
	Saga        = attribute.Key("nova.saga")
	RunID       = attribute.Key("nova.run_id")
	Step        = attribute.Key("nova.step")
	Attempt     = attribute.Key("nova.attempt")
	Compensate  = attribute.Key("nova.compensation")
	Status      = attribute.Key("nova.status")
	Outcome     = attribute.Key("nova.outcome")
	Projection  = attribute.Key("nova.projection")
	Kind        = attribute.Key("nova.kind")
	MessageType = attribute.Key("nova.message_type")
	Topic       = attribute.Key("nova.topic")
	Envelopes   = attribute.Key("nova.envelopes")
	Component   = attribute.Key("nova.component")
	Forwarder   = attribute.Key("nova.forwarder")
)

// Providers are what a [Set] is made from. A nil field means the global
// one (or, for Propagator, W3C Trace Context).
type Providers struct {
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	Propagator     propagation.TextMapPropagator
}

// Span start options made once: a variadic option built at each call
// costs an allocation, which a no-op tracer should not.
var (
	ClientSpan   = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}
	InternalSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal)}
)

// Set is a tracer, a propagator and Nova's metric instruments.
type Set struct {
	Tracer     trace.Tracer
	Meter      metric.Meter
	Propagator propagation.TextMapPropagator

	Appends          metric.Int64Counter
	AppendDuration   metric.Float64Histogram
	AppendEvents     metric.Int64Histogram
	AppendConflicts  metric.Int64Counter
	ReadEvents       metric.Int64Counter
	GroupCommitSize  metric.Int64Histogram
	DispatchDuration metric.Float64Histogram
	ProjectionEvents metric.Int64Counter
	ProjectionBatch  metric.Float64Histogram
	ProjectionLagAge metric.Float64Gauge
	SagaRuns         metric.Int64Counter
	SagaStepDuration metric.Float64Histogram
	SagaStepRetries  metric.Int64Counter
	RelayEnvelopes   metric.Int64Counter
	RelayLag         metric.Float64Histogram
	ForwardEnvelopes metric.Int64Counter
}

// Metric names, as the instruments are made: the golden list that
// package telemetry documents and tests.
const (
	MetricAppends          = "nova.store.appends"
	MetricAppendDuration   = "nova.store.append.duration"
	MetricAppendEvents     = "nova.store.append.events"
	MetricAppendConflicts  = "nova.store.append.conflicts"
	MetricReadEvents       = "nova.store.read.events"
	MetricGroupCommitSize  = "nova.store.group_commit.size"
	MetricDispatchDuration = "nova.cqrs.dispatch.duration"
	MetricProjectionEvents = "nova.projection.events"
	MetricProjectionBatch  = "nova.projection.batch.duration"
	MetricProjectionLagAge = "nova.projection.lag.age"
	MetricProjectionLag    = "nova.projection.lag.events" // observed by telemetry.ObserveProjection
	MetricSagaRuns         = "nova.saga.runs"
	MetricSagaStepDuration = "nova.saga.step.duration"
	MetricSagaStepRetries  = "nova.saga.step.retries"
	MetricRelayEnvelopes   = "nova.relay.envelopes"
	MetricRelayLag         = "nova.relay.lag"
	MetricOutboxDepth      = "nova.outbox.depth" // observed by telemetry.ObserveOutbox
	MetricForwardEnvelopes = "nova.forwarder.envelopes"
)

// latencyBuckets are histogram boundaries in seconds, from 100 µs to a
// minute: appends and steps run from sub-millisecond to long.
var latencyBuckets = metric.WithExplicitBucketBoundaries(
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

// sizeBuckets are histogram boundaries for counts of events or requests.
var sizeBuckets = metric.WithExplicitBucketBoundaries(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

// New returns a Set made from p. An instrument the meter cannot make
// (it never fails with the API's or the SDK's meters for these names) is
// a no-op one.
func New(p Providers) *Set {
	tp, mp, prop := p.TracerProvider, p.MeterProvider, p.Propagator
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if prop == nil {
		prop = propagation.TraceContext{}
	}
	m := mp.Meter(Name)
	s := &Set{Tracer: tp.Tracer(Name), Meter: m, Propagator: prop}
	s.Appends, _ = m.Int64Counter(MetricAppends, metric.WithUnit("{append}"),
		metric.WithDescription("Appends to the event store, by outcome (ok, duplicate, conflict, invalid, error)."))
	s.AppendDuration, _ = m.Float64Histogram(MetricAppendDuration, metric.WithUnit("s"), latencyBuckets,
		metric.WithDescription("Time an append took, by outcome."))
	s.AppendEvents, _ = m.Int64Histogram(MetricAppendEvents, metric.WithUnit("{event}"), sizeBuckets,
		metric.WithDescription("Events per append."))
	s.AppendConflicts, _ = m.Int64Counter(MetricAppendConflicts, metric.WithUnit("{append}"),
		metric.WithDescription("Appends that failed their expected-version check."))
	s.ReadEvents, _ = m.Int64Counter(MetricReadEvents, metric.WithUnit("{event}"),
		metric.WithDescription("Events read, by read (stream, all, subscribe)."))
	s.GroupCommitSize, _ = m.Int64Histogram(MetricGroupCommitSize, metric.WithUnit("{append}"), sizeBuckets,
		metric.WithDescription("Appends committed together in one transaction by a group-committing store."))
	s.DispatchDuration, _ = m.Float64Histogram(MetricDispatchDuration, metric.WithUnit("s"), latencyBuckets,
		metric.WithDescription("Time a command or query took to handle, by kind, message type and outcome."))
	s.ProjectionEvents, _ = m.Int64Counter(MetricProjectionEvents, metric.WithUnit("{event}"),
		metric.WithDescription("Events a projection handled and checkpointed."))
	s.ProjectionBatch, _ = m.Float64Histogram(MetricProjectionBatch, metric.WithUnit("s"), latencyBuckets,
		metric.WithDescription("Time a projection batch took, handlers and checkpoint."))
	s.ProjectionLagAge, _ = m.Float64Gauge(MetricProjectionLagAge, metric.WithUnit("s"),
		metric.WithDescription("Age of the last event a projection handled, when it handled it."))
	s.SagaRuns, _ = m.Int64Counter(MetricSagaRuns, metric.WithUnit("{run}"),
		metric.WithDescription("Saga runs that ended or became stuck, by saga and status."))
	s.SagaStepDuration, _ = m.Float64Histogram(MetricSagaStepDuration, metric.WithUnit("s"), latencyBuckets,
		metric.WithDescription("Time a saga step's attempt (or compensation's) took, by saga, step and outcome."))
	s.SagaStepRetries, _ = m.Int64Counter(MetricSagaStepRetries, metric.WithUnit("{attempt}"),
		metric.WithDescription("Saga step attempts (or compensations') scheduled again after a failure."))
	s.RelayEnvelopes, _ = m.Int64Counter(MetricRelayEnvelopes, metric.WithUnit("{envelope}"),
		metric.WithDescription("Envelopes the outbox relay published."))
	s.RelayLag, _ = m.Float64Histogram(MetricRelayLag, metric.WithUnit("s"), latencyBuckets,
		metric.WithDescription("Time from an envelope's creation to its publication by the relay."))
	s.ForwardEnvelopes, _ = m.Int64Counter(MetricForwardEnvelopes, metric.WithUnit("{envelope}"),
		metric.WithDescription("Envelopes a forwarder published, by forwarder."))
	return s
}

var current atomic.Pointer[Set]

// Get returns the Set in use: the one [Use] installed, else one made from
// the global providers.
func Get() *Set {
	if s := current.Load(); s != nil {
		return s
	}
	current.CompareAndSwap(nil, New(Providers{}))
	return current.Load()
}

// Use makes s the Set in use; nil goes back to the global providers.
func Use(s *Set) { current.Store(s) }

// MapCarrier adapts a string map to a propagation carrier that never
// overwrites a key already set.
type mapCarrier struct {
	m   map[string]string
	set bool // a key was written
}

func (c *mapCarrier) Get(key string) string { return c.m[key] }

func (c *mapCarrier) Set(key, value string) {
	if _, ok := c.m[key]; ok {
		return
	}
	if c.m == nil {
		c.m = make(map[string]string, 2)
	}
	c.m[key] = value
	c.set = true
}

func (c *mapCarrier) Keys() []string {
	keys := make([]string, 0, len(c.m))
	for k := range c.m {
		keys = append(keys, k)
	}
	return keys
}

// Inject returns extra with ctx's trace context added (a copy when it
// adds something, so the caller's map is never changed). A trace context
// the map already holds is kept: the caller's choice wins. Without a
// valid span context in ctx it returns extra unchanged.
func (s *Set) Inject(ctx context.Context, extra map[string]string) map[string]string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return extra
	}
	if _, ok := extra[TraceParent]; ok {
		return extra
	}
	c := mapCarrier{m: make(map[string]string, len(extra)+2)}
	for k, v := range extra {
		c.m[k] = v
	}
	s.Propagator.Inject(ctx, &c)
	if !c.set {
		return extra
	}
	return c.m
}

// InjectEvent sets d's trace context from ctx, as [Set.Inject], unless
// that would take d past [nova.MaxMetadataLen] or [nova.MaxEventLen]:
// tracing never makes a valid append invalid.
func (s *Set) InjectEvent(ctx context.Context, d *nova.EventData) {
	extra := s.Inject(ctx, d.Metadata.Extra)
	if len(extra) == len(d.Metadata.Extra) {
		return
	}
	md := d.Metadata
	md.Extra = extra
	if md.Size() > nova.MaxMetadataLen || len(d.Type)+len(d.Data)+md.Size() > nova.MaxEventLen {
		return
	}
	d.Metadata = md
}

// Extract returns ctx with the remote span context carried in extra, if
// any.
func (s *Set) Extract(ctx context.Context, extra map[string]string) context.Context {
	if extra[TraceParent] == "" {
		return ctx
	}
	return s.Propagator.Extract(ctx, &mapCarrier{m: extra})
}

// Link returns a link to the span context carried in extra; ok is false
// when it carries none.
func (s *Set) Link(extra map[string]string) (l trace.Link, ok bool) {
	if extra[TraceParent] == "" {
		return trace.Link{}, false
	}
	sc := trace.SpanContextFromContext(s.Extract(context.Background(), extra))
	if !sc.IsValid() {
		return trace.Link{}, false
	}
	return trace.Link{SpanContext: sc}, true
}

// TraceKeys copies the trace-context keys of from into to, keeping any
// to already has, and returns to (made when nil and there is something
// to copy).
func TraceKeys(to, from map[string]string) map[string]string {
	for _, k := range [...]string{TraceParent, TraceState} {
		if v, ok := from[k]; ok && v != "" {
			if _, set := to[k]; set {
				continue
			}
			if to == nil {
				to = make(map[string]string, 2)
			}
			to[k] = v
		}
	}
	return to
}

// IsTraceKey reports whether key is one of the trace-context keys.
func IsTraceKey(key string) bool { return key == TraceParent || key == TraceState }

// GroupCommit returns a groupcommit.Config.ObserveFunc that records the
// batch sizes of backend's group commits, with the Set in use at each
// batch.
func GroupCommit(backend string) func(ctx context.Context, size int) {
	attrs := metric.WithAttributeSet(attribute.NewSet(Component.String(backend)))
	return func(ctx context.Context, size int) {
		if h := Get().GroupCommitSize; h.Enabled(ctx) {
			h.Record(ctx, int64(size), attrs)
		}
	}
}

// End ends span, recording err as its status when not nil.
func End(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
