package telemetry

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/internal/instrument"
	"github.com/nova-go/nova/projection"
)

// Metric names of the gauges [ObserveLag] and [ObserveOutbox] report.
const (
	MetricProjectionLag     = instrument.MetricProjectionLag
	MetricProjectionLagTime = "nova.projection.lag.time"
	MetricOutboxDepth       = instrument.MetricOutboxDepth
)

// ObserveTimeout bounds the reads one collection of [ObserveLag] or
// [ObserveOutbox] makes.
const ObserveTimeout = 5 * time.Second

// MaxOutboxLimit is the most envelopes [ObserveOutbox] counts: the most an
// outbox's Pending returns at once.
const MaxOutboxLimit = 1000

// Lagger reports how far a consumer of the log is behind:
// *projection.Runner and *bridge.Forwarder are ones.
type Lagger interface {
	Lag(ctx context.Context) (projection.Lag, error)
}

// ObserveLag reports, each time metrics are collected, every lagger's
// lag as the gauges nova.projection.lag.events (events after its
// checkpoint, at most its LagLimit) and nova.projection.lag.time
// (seconds since the oldest event not yet handled was recorded), under
// the attribute nova.projection with its key in laggers. Each collection
// reads the store (Runner.Lag counts up to LagLimit events), so the
// count is taken when metrics are scraped, not on every batch. A
// lagger that fails is left out of that collection. unregister stops
// the reports.
func ObserveLag(laggers map[string]Lagger) (unregister func() error, err error) {
	set := instrument.Get()
	events, err1 := set.Meter.Int64ObservableGauge(MetricProjectionLag, metric.WithUnit("{event}"),
		metric.WithDescription("Events after a projection's checkpoint, at most its LagLimit."))
	age, err2 := set.Meter.Float64ObservableGauge(MetricProjectionLagTime, metric.WithUnit("s"),
		metric.WithDescription("Time since the oldest event a projection has not handled was recorded; 0 when caught up."))
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	reg, err := set.Meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, ObserveTimeout)
		defer cancel()
		for name, l := range laggers {
			lag, err := l.Lag(ctx)
			if err != nil {
				continue
			}
			attrs := metric.WithAttributeSet(attribute.NewSet(instrument.Projection.String(name)))
			o.ObserveInt64(events, int64(lag.Events), attrs)
			o.ObserveFloat64(age, lag.Time.Seconds(), attrs)
		}
		return nil
	}, events, age)
	if err != nil {
		return nil, err
	}
	return reg.Unregister, nil
}

// ObserveOutbox reports, each time metrics are collected, how many
// envelopes wait in outbox as the gauge nova.outbox.depth, counted by
// reading at most limit of them (the gauge then says limit: at least
// that many), under the attribute nova.component=name. limit is 1 to
// [MaxOutboxLimit], 0 meaning the most; another fails with an error
// matching [nova.ErrInvalid]. unregister stops the reports.
func ObserveOutbox(name string, outbox broker.Outbox, limit int) (unregister func() error, err error) {
	switch {
	case limit == 0:
		limit = MaxOutboxLimit
	case limit < 0 || limit > MaxOutboxLimit:
		return nil, nova.Invalidf("telemetry", "ObserveOutbox limit %d, want 0 (default) or 1 to %d", limit, MaxOutboxLimit)
	}
	set := instrument.Get()
	depth, err := set.Meter.Int64ObservableGauge(MetricOutboxDepth, metric.WithUnit("{envelope}"),
		metric.WithDescription("Envelopes waiting in an outbox for the relay, counted up to a limit."))
	if err != nil {
		return nil, err
	}
	attrs := metric.WithAttributeSet(attribute.NewSet(instrument.Component.String(name)))
	reg, err := set.Meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, ObserveTimeout)
		defer cancel()
		msgs, err := outbox.Pending(ctx, limit)
		if err != nil {
			return nil // left out of this collection
		}
		o.ObserveInt64(depth, int64(len(msgs)), attrs)
		return nil
	}, depth)
	if err != nil {
		return nil, err
	}
	return reg.Unregister, nil
}
