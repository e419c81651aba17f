// Package telemetry traces and measures Nova with OpenTelemetry, and
// carries trace context with the work: into stored event metadata, saga
// runs and envelope headers, so that a trace follows a command across
// processes.
//
// # What is instrumented
//
// Nova's packages depend on the OpenTelemetry API only
// (go.opentelemetry.io/otel, its trace, metric and propagation packages),
// never on an SDK: with no SDK installed every span and instrument is a
// no-op, which costs a few nanoseconds per call (see docs/BENCHMARKS.md,
// "Telemetry overhead"). An application that installs an SDK
// (otel.SetTracerProvider, otel.SetMeterProvider) gets, with nothing
// else to configure:
//
//   - "nova.command" and "nova.query": one span per dispatch on a
//     cqrs bus, with nova.kind, nova.message_type and nova.outcome; the
//     handler runs in its context.
//   - "nova.saga.step" and "nova.saga.compensate": one span per attempt of
//     a step's action or compensation, with nova.saga, nova.run_id,
//     nova.step, nova.attempt, nova.compensation and nova.outcome (ok,
//     retry, failed, aborted). The run records the trace context that
//     started it with its first event; a step run inside that context
//     ([saga.Run] in a command handler) is its child, and one a worker
//     runs later, in this process or another, links to it.
//   - "nova.projection.batch": one span per batch a projection runner (or
//     a bridge forwarder) handles, linked to the trace context recorded
//     with each of its events (up to 128 links).
//   - "nova.relay.publish" and "nova.forwarder.publish": one span per batch
//     published, linked to the envelopes' trace contexts; "nova.inbox.handle"
//     for each message a bridge inbox takes, a child of the trace context in
//     its headers.
//   - Through the [Store] decorator: "nova.append", "nova.read_stream",
//     "nova.read_all" and "nova.streams", with nova.stream, nova.events,
//     nova.expected_version, nova.position and nova.outcome.
//
// and the metrics below.
//
// # Trace context on the wire
//
// The trace context travels in the W3C Trace Context form, under the keys
// "traceparent" and "tracestate", whatever the global propagator:
//
//   - [Store] writes the append span's context into every event's
//     nova.Metadata.Extra (a copy of the caller's map; a traceparent the
//     caller set is kept, and an event that the two keys would take past
//     nova.MaxMetadataLen is left without them). Every backend treats
//     these keys as outside an event's content when it decides whether an
//     append with stored IDs is an idempotent retry, so a retry made under
//     another trace is still one.
//   - A saga writes the context of each transition into its event's
//     metadata, and into the headers of its lifecycle envelopes, which
//     the outbox relay publishes as they are.
//   - A bridge forwarder copies an event's keys into its envelope's
//     headers; a bridge inbox extracts them. Other consumers use
//     [EventContext] and [EnvelopeContext].
//
// # Metrics
//
// Instruments, by name (the Prometheus exporter writes dots as
// underscores and adds the unit: nova_store_append_duration_seconds):
//
//	nova.store.appends            counter   {append}   nova.outcome: ok, duplicate, conflict, invalid, error
//	nova.store.append.duration    histogram s          nova.outcome
//	nova.store.append.events      histogram {event}    events per successful append
//	nova.store.append.conflicts   counter   {append}   failed expected-version checks
//	nova.store.read.events        counter   {event}    nova.read: stream, all, subscribe
//	nova.store.group_commit.size  histogram {append}   nova.component: novasqlite, novamysql
//	nova.cqrs.dispatch.duration   histogram s          nova.kind, nova.message_type, nova.outcome
//	nova.projection.events        counter   {event}    nova.projection
//	nova.projection.batch.duration histogram s         nova.projection
//	nova.projection.lag.age       gauge     s          age of the last event handled, per batch
//	nova.projection.lag.events    gauge     {event}    by ObserveLag, at each collection
//	nova.projection.lag.time      gauge     s          by ObserveLag
//	nova.saga.runs                counter   {run}      nova.saga, nova.status: ended or stuck runs
//	nova.saga.step.duration       histogram s          nova.saga, nova.step, nova.compensation, nova.outcome
//	nova.saga.step.retries        counter   {attempt}  nova.saga, nova.step, nova.compensation
//	nova.relay.envelopes          counter   {envelope}
//	nova.relay.lag                histogram s          envelope creation to publication
//	nova.outbox.depth             gauge     {envelope} by ObserveOutbox, at each collection
//	nova.forwarder.envelopes      counter   {envelope} nova.forwarder
//
// Attributes are kept to a bounded set of values: no stream names or run
// IDs on metrics (they are on spans).
//
// # Logs
//
// [LogHandler] wraps a slog.Handler to add trace_id and span_id to each
// record logged with a context that carries a span; Nova's packages log
// with the context of the work they report on.
//
// # Providers
//
// By default the instruments come from the global providers, and
// installing an SDK after Nova's components were made still takes
// effect. [Use] makes Nova use other providers instead, process-wide;
// [StoreWith] decorates one store with its own.
package telemetry
