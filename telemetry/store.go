package telemetry

import (
	"context"
	"errors"
	"iter"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/instrument"
	"github.com/nova-go/nova/projection"
)

// TracedStore is a [nova.Store] that traces and measures another one; see
// [Store].
type TracedStore struct {
	inner nova.Store
	set   *instrument.Set // nil: the one in use at each call
}

var (
	_ nova.Store                       = (*TracedStore)(nil)
	_ projection.HoldReporter          = (*TracedStore)(nil)
	_ interface{ Unwrap() nova.Store } = (*TracedStore)(nil)
)

// Store returns s traced and measured with the providers in use (see
// [Use]): a span per append and per read (ReadStream, ReadAll, Streams;
// a read's span lasts as long as its loop), the append metrics, and the
// trace context of each append written into its events' metadata (see
// [InjectMetadata]) so that whoever reads the events — in this process
// or another — can link to it.
//
// The decorator forwards [projection.HoldReporter] to s (reporting
// nothing when s does not implement it); [TracedStore.Unwrap] returns s
// for the other optional interfaces (an aggregate's snapshot store, the
// backend's own services), which are configured with s itself.
func Store(s nova.Store) *TracedStore { return &TracedStore{inner: s} }

// StoreWith is [Store] with the providers of cfg instead of those in use.
func StoreWith(s nova.Store, cfg Config) *TracedStore {
	return &TracedStore{inner: s, set: instrument.New(instrument.Providers(cfg))}
}

// Unwrap returns the decorated store.
func (s *TracedStore) Unwrap() nova.Store { return s.inner }

func (s *TracedStore) instruments() *instrument.Set {
	if s.set != nil {
		return s.set
	}
	return instrument.Get()
}

// Append appends through the decorated store inside a span "nova.append",
// after writing the span's trace context into each event's metadata
// (a copy; never over a trace context the caller set).
func (s *TracedStore) Append(ctx context.Context, stream string, expected nova.ExpectedVersion, events ...nova.EventData) (nova.AppendResult, error) {
	set := s.instruments()
	start := time.Now()
	ctx, span := set.Tracer.Start(ctx, "nova.append", instrument.ClientSpan...)
	if span.IsRecording() {
		span.SetAttributes(instrument.Stream.String(stream), instrument.Events.Int(len(events)),
			instrument.Expected.String(expected.String()))
	}
	if span.SpanContext().IsValid() && len(events) <= nova.MaxBatch {
		traced := make([]nova.EventData, len(events))
		copy(traced, events)
		for i := range traced {
			set.InjectEvent(ctx, &traced[i])
		}
		events = traced
	}
	res, err := s.inner.Append(ctx, stream, expected, events...)
	outcome := appendOutcome(res, err)
	if span.IsRecording() {
		span.SetAttributes(instrument.Outcome.String(outcome))
		if err == nil {
			span.SetAttributes(instrument.Position.String(res.Position.String()))
		}
	}
	instrument.End(span, err)
	if set.Appends.Enabled(ctx) || set.AppendDuration.Enabled(ctx) {
		o := metric.WithAttributeSet(attribute.NewSet(instrument.Outcome.String(outcome)))
		set.Appends.Add(ctx, 1, o)
		set.AppendDuration.Record(ctx, time.Since(start).Seconds(), o)
	}
	if err == nil && set.AppendEvents.Enabled(ctx) {
		set.AppendEvents.Record(ctx, int64(len(events)))
	}
	if outcome == "conflict" {
		set.AppendConflicts.Add(ctx, 1)
	}
	return res, err
}

// appendOutcome names an append's outcome for metrics, from a small set.
func appendOutcome(res nova.AppendResult, err error) string {
	switch {
	case err == nil && res.Duplicate:
		return "duplicate"
	case err == nil:
		return "ok"
	case errors.Is(err, nova.ErrConcurrency):
		return "conflict"
	case errors.Is(err, nova.ErrInvalid):
		return "invalid"
	}
	return "error"
}

// ReadStream reads through the decorated store inside a span
// "nova.read_stream" that lasts as long as the loop.
func (s *TracedStore) ReadStream(ctx context.Context, stream string, opts nova.ReadStreamOptions) iter.Seq2[nova.Event, error] {
	return traced(s.instruments(), ctx, "nova.read_stream", "stream", []attribute.KeyValue{instrument.Stream.String(stream)},
		func(ctx context.Context) iter.Seq2[nova.Event, error] { return s.inner.ReadStream(ctx, stream, opts) })
}

// ReadAll reads through the decorated store inside a span
// "nova.read_all" that lasts as long as the loop.
func (s *TracedStore) ReadAll(ctx context.Context, opts nova.ReadAllOptions) iter.Seq2[nova.Event, error] {
	return traced(s.instruments(), ctx, "nova.read_all", "all", []attribute.KeyValue{instrument.Position.String(opts.From.String())},
		func(ctx context.Context) iter.Seq2[nova.Event, error] { return s.inner.ReadAll(ctx, opts) })
}

// Subscribe subscribes through the decorated store, counting the events
// it yields. It makes no span: a subscription lives as long as its
// reader, and its consumers (projection runners, forwarders) trace each
// batch they handle.
func (s *TracedStore) Subscribe(ctx context.Context, opts nova.SubscribeOptions) iter.Seq2[nova.Event, error] {
	set := s.instruments()
	return func(yield func(nova.Event, error) bool) {
		attrs := metric.WithAttributeSet(attribute.NewSet(attribute.String("nova.read", "subscribe")))
		for e, err := range s.inner.Subscribe(ctx, opts) {
			if err == nil {
				set.ReadEvents.Add(ctx, 1, attrs)
			}
			if !yield(e, err) {
				return
			}
		}
	}
}

// Streams lists through the decorated store inside a span
// "nova.streams".
func (s *TracedStore) Streams(ctx context.Context, opts nova.StreamsOptions) iter.Seq2[nova.StreamInfo, error] {
	set := s.instruments()
	return func(yield func(nova.StreamInfo, error) bool) {
		ctx, span := set.Tracer.Start(ctx, "nova.streams", instrument.ClientSpan...)
		var failed error
		defer func() { instrument.End(span, failed) }()
		for si, err := range s.inner.Streams(ctx, opts) {
			if err != nil {
				failed = err
			}
			if !yield(si, err) {
				return
			}
		}
	}
}

// Close closes the decorated store.
func (s *TracedStore) Close() error { return s.inner.Close() }

// HeldBy asks the decorated store, when it is a
// [projection.HoldReporter]; otherwise it reports nothing.
func (s *TracedStore) HeldBy(ctx context.Context, min time.Duration) (string, error) {
	if h, ok := s.inner.(projection.HoldReporter); ok {
		return h.HeldBy(ctx, min)
	}
	return "", nil
}

// traced runs read's loop inside a span named name, counting the events
// it yields under the read attribute kind.
func traced(set *instrument.Set, ctx context.Context, name, kind string, attrs []attribute.KeyValue,
	read func(context.Context) iter.Seq2[nova.Event, error]) iter.Seq2[nova.Event, error] {
	return func(yield func(nova.Event, error) bool) {
		ctx, span := set.Tracer.Start(ctx, name, instrument.ClientSpan...)
		n := 0
		var failed error
		defer func() {
			if span.IsRecording() {
				span.SetAttributes(attrs...)
				span.SetAttributes(instrument.Events.Int(n))
			}
			instrument.End(span, failed)
			if n > 0 {
				set.ReadEvents.Add(ctx, int64(n), metric.WithAttributeSet(attribute.NewSet(attribute.String("nova.read", kind))))
			}
		}()
		for e, err := range read(ctx) {
			if err != nil {
				failed = err
			} else {
				n++
			}
			if !yield(e, err) {
				return
			}
		}
	}
}
