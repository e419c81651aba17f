package bridge

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/internal/instrument"
)

// maxLinks caps the links of a publish span to its envelopes' traces.
const maxLinks = 128

// publishTraced publishes a forwarder's batch inside a span
// "nova.forwarder.publish" linked to the trace context each envelope
// carries (the append that wrote its event), and counts it.
func publishTraced(ctx context.Context, name string, b broker.Broker, batch []broker.Envelope) error {
	set := instrument.Get()
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer)}
	for i := 0; i < len(batch) && i < maxLinks; i++ {
		if l, ok := set.Link(batch[i].Headers); ok {
			opts = append(opts, trace.WithLinks(l))
		}
	}
	ctx, span := set.Tracer.Start(ctx, "nova.forwarder.publish", opts...)
	if span.IsRecording() {
		span.SetAttributes(instrument.Forwarder.String(name), instrument.Envelopes.Int(len(batch)))
	}
	err := broker.PublishAll(ctx, b, batch...)
	instrument.End(span, err)
	if err == nil && set.ForwardEnvelopes.Enabled(ctx) {
		set.ForwardEnvelopes.Add(ctx, int64(len(batch)), metric.WithAttributeSet(attribute.NewSet(instrument.Forwarder.String(name))))
	}
	return err
}

// traceInbox starts the span "nova.inbox.handle" of one message, a child
// of the trace context its headers carry: the command it dispatches, and
// what that appends, continue the publisher's trace.
func traceInbox(ctx context.Context, e broker.Envelope) (context.Context, func(error)) {
	set := instrument.Get()
	ctx = set.Extract(ctx, e.Headers)
	ctx, span := set.Tracer.Start(ctx, "nova.inbox.handle", trace.WithSpanKind(trace.SpanKindConsumer))
	if span.IsRecording() {
		span.SetAttributes(instrument.Topic.String(e.Topic), attribute.String("nova.envelope_id", e.ID))
	}
	return ctx, func(err error) { instrument.End(span, err) }
}
