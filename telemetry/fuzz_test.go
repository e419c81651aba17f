package telemetry_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/telemetry"
)

// Trace context read from stored metadata or envelope headers is wire
// input: any value is taken without a panic, and gives either no span
// context or a valid remote one.
func FuzzTraceContext(f *testing.F) {
	f.Add("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "congo=t61rcWkgMzE")
	f.Add("00-00000000000000000000000000000000-b7ad6b7169203331-01", "")
	f.Add("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "a=1,b=2")
	f.Add("", "x")
	f.Add("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", "==")
	f.Fuzz(func(t *testing.T, parent, state string) {
		extra := map[string]string{telemetry.TraceParent: parent, telemetry.TraceState: state}
		for _, ctx := range []context.Context{
			telemetry.EventContext(context.Background(), nova.Event{Metadata: nova.Metadata{Extra: extra}}),
			telemetry.EnvelopeContext(context.Background(), broker.Envelope{Headers: extra}),
		} {
			sc := trace.SpanContextFromContext(ctx)
			if sc.IsValid() && !sc.IsRemote() {
				t.Errorf("traceparent %q gave a local span context", parent)
			}
			if sc.IsValid() && len(parent) < 55 {
				t.Errorf("traceparent %q, shorter than the W3C form, gave %v", parent, sc)
			}
		}
	})
}
