package telemetry_test

import (
	"context"
	"fmt"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novamem"
	"github.com/nova-go/nova/telemetry"
)

// A store wrapped by telemetry.Store traces each append and writes the
// append's trace context into the events, where a reader in any process
// finds it.
func ExampleStore() {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer tp.Shutdown(context.Background())
	telemetry.Use(telemetry.Config{TracerProvider: tp}) // or otel.SetTracerProvider(tp)
	defer telemetry.Use(telemetry.Config{})

	inner, _ := novamem.New(novamem.Config{})
	defer inner.Close()
	store := telemetry.Store(inner)

	ctx, request := tp.Tracer("shop").Start(context.Background(), "place order")
	_, _ = store.Append(ctx, "order-42", nova.NoStream, nova.EventData{Type: "OrderPlaced", Data: []byte(`{}`)})
	request.End()

	for e, err := range inner.ReadStream(context.Background(), "order-42", nova.ReadStreamOptions{}) {
		if err != nil {
			panic(err)
		}
		_, traced := e.Metadata.Extra[telemetry.TraceParent]
		fmt.Println(e.Type, "carries a traceparent:", traced)
	}
	for _, s := range spans.Ended() {
		fmt.Println("span:", s.Name())
	}
	// Output:
	// OrderPlaced carries a traceparent: true
	// span: nova.append
	// span: place order
}
