package broker

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/nova-go/nova/internal/instrument"
)

// maxLinks caps the links of a publish span to its envelopes' traces.
const maxLinks = 128

// publishTraced publishes a relay's batch inside a span
// "nova.relay.publish" linked to the trace context each envelope's
// headers carry (a saga step's, for its lifecycle envelopes), and
// records how many it published and how long each waited in the outbox.
func publishTraced(ctx context.Context, b Broker, envs []Envelope) error {
	if len(envs) == 0 {
		return publishAll(ctx, b, envs)
	}
	set := instrument.Get()
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer)}
	for i := 0; i < len(envs) && i < maxLinks; i++ {
		if l, ok := set.Link(envs[i].Headers); ok {
			opts = append(opts, trace.WithLinks(l))
		}
	}
	ctx, span := set.Tracer.Start(ctx, "nova.relay.publish", opts...)
	if span.IsRecording() {
		span.SetAttributes(instrument.Envelopes.Int(len(envs)))
	}
	err := publishAll(ctx, b, envs)
	instrument.End(span, err)
	if err != nil {
		return err
	}
	set.RelayEnvelopes.Add(ctx, int64(len(envs)))
	if set.RelayLag.Enabled(ctx) {
		now := time.Now()
		for _, e := range envs {
			if !e.Timestamp.IsZero() {
				set.RelayLag.Record(ctx, max(now.Sub(e.Timestamp), 0).Seconds())
			}
		}
	}
	return nil
}
