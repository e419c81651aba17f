package telemetry_test

import (
	"context"
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/internal/instrument"
	"github.com/nova-go/nova/projection"
	"github.com/nova-go/nova/telemetry"
)

// goldenMetrics is every metric Nova records. Renaming one breaks the
// dashboards and alerts built on it: change this list, the table in the
// package documentation and the release notes together.
var goldenMetrics = []string{
	"nova.cqrs.dispatch.duration",
	"nova.forwarder.envelopes",
	"nova.outbox.depth",
	"nova.projection.batch.duration",
	"nova.projection.events",
	"nova.projection.lag.age",
	"nova.projection.lag.events",
	"nova.projection.lag.time",
	"nova.relay.envelopes",
	"nova.relay.lag",
	"nova.saga.runs",
	"nova.saga.step.duration",
	"nova.saga.step.retries",
	"nova.store.append.conflicts",
	"nova.store.append.duration",
	"nova.store.append.events",
	"nova.store.appends",
	"nova.store.group_commit.size",
	"nova.store.read.events",
}

type fixedLag struct{ lag projection.Lag }

func (f fixedLag) Lag(context.Context) (projection.Lag, error) { return f.lag, nil }

type pending int

func (p pending) Pending(_ context.Context, limit int) ([]broker.OutboxMessage, error) {
	return make([]broker.OutboxMessage, min(int(p), limit)), nil
}
func (pending) MarkSent(context.Context, []int64) error { return nil }
func (pending) Wake() <-chan struct{}                   { return nil }

// Every instrument is made under a name of the golden list, and the list
// has no name that nothing records; the table in the package
// documentation names each.
func TestMetricNamesGolden(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	set := instrument.Get()
	v := reflect.ValueOf(set).Elem()
	for i := range v.NumField() {
		switch in := v.Field(i).Interface().(type) {
		case metric.Int64Counter:
			in.Add(ctx, 1)
		case metric.Float64Histogram:
			in.Record(ctx, 1)
		case metric.Int64Histogram:
			in.Record(ctx, 1)
		case metric.Float64Gauge:
			in.Record(ctx, 1)
		}
	}
	stop1, err := telemetry.ObserveLag(map[string]telemetry.Lagger{"summary": fixedLag{projection.Lag{Events: 7}}})
	if err != nil {
		t.Fatal(err)
	}
	defer stop1()
	stop2, err := telemetry.ObserveOutbox("runs", pending(3), 10)
	if err != nil {
		t.Fatal(err)
	}
	defer stop2()

	m := f.collect(t)
	if got := names(m); !slices.Equal(got, goldenMetrics) {
		t.Errorf("metric names:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(goldenMetrics, "\n"))
	}
	for name, want := range map[string]int64{"nova.projection.lag.events": 7, "nova.outbox.depth": 3} {
		g, ok := m[name].Data.(metricdata.Gauge[int64])
		if !ok || len(g.DataPoints) != 1 || g.DataPoints[0].Value != want {
			t.Errorf("%s = %+v, want one point of %d", name, m[name].Data, want)
		}
	}
	doc := packageDoc(t)
	for _, name := range goldenMetrics {
		if !strings.Contains(doc, "\t"+name+" ") {
			t.Errorf("the package documentation's table lacks %s", name)
		}
	}
}

// packageDoc returns doc.go's text.
func packageDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// An outbox limit no outbox serves is refused at once, not left to fail
// unseen at every collection.
func TestObserveOutboxRefusesABadLimit(t *testing.T) {
	for _, limit := range []int{-1, telemetry.MaxOutboxLimit + 1} {
		if _, err := telemetry.ObserveOutbox("runs", pending(3), limit); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("limit %d: %v, want nova.ErrInvalid", limit, err)
		}
	}
}
