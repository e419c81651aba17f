package saga

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/internal/instrument"
)

// traceEvent writes ctx's trace context into a transition's metadata:
// the first one's is the run's origin, which later steps link to, in
// this process or any other that resumes the run.
func traceEvent(ctx context.Context, d *nova.EventData) { instrument.Get().InjectEvent(ctx, d) }

// traceEnvelopes writes ctx's trace context into lifecycle envelopes'
// headers, so that a subscriber continues the step's trace.
func traceEnvelopes(ctx context.Context, envs []broker.Envelope) {
	set := instrument.Get()
	for i := range envs {
		envs[i].Headers = set.Inject(ctx, envs[i].Headers)
	}
}

// countRun counts a run that ended or became Stuck.
func countRun(ctx context.Context, saga string, st Status) {
	if st != Stuck && !st.Terminal() {
		return
	}
	set := instrument.Get()
	if set.SagaRuns.Enabled(ctx) {
		set.SagaRuns.Add(ctx, 1, metric.WithAttributes(instrument.Saga.String(saga), instrument.Status.String(string(st))))
	}
}

// traceAttempt starts the span of one attempt of a step's action
// ("nova.saga.step") or compensation ("nova.saga.compensate"): a child
// of ctx's span when there is one (a run driven by [Run] inside a
// command's handler), and linked to the trace context that started the
// run when that is another trace (a worker resuming it). end records
// the attempt's span and metrics; err is what attempt returned, and
// r.outcome how the attempt ended.
func (r *runner[D]) traceAttempt(ctx context.Context, step string, comp bool) (context.Context, func(err error)) {
	set := instrument.Get()
	name := "nova.saga.step"
	if comp {
		name = "nova.saga.compensate"
	}
	attempt := 1
	if r.x.Step == step && r.x.comp == comp {
		attempt = r.x.Attempt + 1
		if r.x.pending {
			attempt = r.x.Attempt
		}
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal)}
	if l, ok := set.Link(r.x.origin); ok && l.SpanContext.TraceID() != trace.SpanContextFromContext(ctx).TraceID() {
		opts = append(opts, trace.WithLinks(l))
	}
	ctx, span := set.Tracer.Start(ctx, name, opts...)
	r.outcome = ""
	start := time.Now()
	return ctx, func(err error) {
		outcome := r.outcome
		if err != nil && outcome == "" {
			outcome = "aborted"
		}
		attrs := []attribute.KeyValue{instrument.Saga.String(r.def.name), instrument.Step.String(step),
			instrument.Compensate.Bool(comp), instrument.Outcome.String(outcome)}
		if span.IsRecording() {
			span.SetAttributes(attrs...)
			span.SetAttributes(instrument.RunID.String(r.runID), instrument.Attempt.Int(attempt))
		}
		if err == nil && outcome == "failed" {
			span.SetStatus(codes.Error, r.x.lastError)
		}
		instrument.End(span, err)
		if set.SagaStepDuration.Enabled(ctx) {
			set.SagaStepDuration.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(attrs...))
		}
		if outcome == "retry" && set.SagaStepRetries.Enabled(ctx) {
			set.SagaStepRetries.Add(ctx, 1, metric.WithAttributes(attrs[:3]...))
		}
	}
}
