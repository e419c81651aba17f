package projection

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/instrument"
)

// maxLinks caps the links of a batch's span to the traces of its events.
const maxLinks = 128

// runBatch handles one batch (in the read model's transaction when there
// is one) inside a span "nova.projection.batch", linked to the trace
// context recorded with each event (the appends that wrote them), and
// records the projection's metrics.
func (r *Runner) runBatch(ctx context.Context, batch []nova.Event) error {
	if len(batch) == 0 {
		return r.handleBatch(ctx, batch)
	}
	set := instrument.Get()
	start := time.Now()
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}
	links := 0
	for _, e := range batch {
		if links == maxLinks {
			break
		}
		if l, ok := set.Link(e.Metadata.Extra); ok {
			opts = append(opts, trace.WithLinks(l))
			links++
		}
	}
	ctx, span := set.Tracer.Start(ctx, "nova.projection.batch", opts...)
	if span.IsRecording() {
		span.SetAttributes(instrument.Projection.String(r.name), instrument.Events.Int(len(batch)),
			attribute.String("nova.from", batch[0].Position.String()),
			instrument.Position.String(batch[len(batch)-1].Position.String()))
	}
	var err error
	if r.tx != nil {
		err = r.commitBatch(ctx, batch)
	} else {
		err = r.handleBatch(ctx, batch)
	}
	instrument.End(span, err)
	if set.ProjectionBatch.Enabled(ctx) || set.ProjectionEvents.Enabled(ctx) || set.ProjectionLagAge.Enabled(ctx) {
		attrs := metric.WithAttributeSet(attribute.NewSet(instrument.Projection.String(r.name)))
		set.ProjectionBatch.Record(ctx, time.Since(start).Seconds(), attrs)
		if err == nil {
			set.ProjectionEvents.Add(ctx, int64(len(batch)), attrs)
			set.ProjectionLagAge.Record(ctx, max(r.now().Sub(batch[len(batch)-1].RecordedAt), 0).Seconds(), attrs)
		}
	}
	return err
}
