package main

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novamem"
	"github.com/nova-go/nova/telemetry"
)

// demoSpanTree is the span tree of one demo order: the order's span
// (the request that starts the run) is linked to by each step of the
// run, which a worker drives in traces of their own; each step's appends
// (and the reads that load the order) are its children; the
// projection's batches link to the appends and to the run's own
// transitions (recorded in the order span and in the steps), and the
// relay's publishes to the steps. Batches are listed once with the
// union of their links, as how the events fall into batches varies.
const demoSpanTree = `nova.demo.order
nova.saga.step place -> nova.demo.order
  nova.read_stream
  nova.append
nova.saga.step reserve -> nova.demo.order
  nova.read_stream
  nova.read_stream
  nova.append
nova.saga.step charge -> nova.demo.order
  nova.read_stream
  nova.read_stream
  nova.append
nova.saga.step ship -> nova.demo.order
  nova.read_stream
  nova.read_stream
  nova.append
nova.projection.batch* -> nova.append<nova.saga.step charge>, nova.append<nova.saga.step place>, nova.append<nova.saga.step reserve>, nova.append<nova.saga.step ship>, nova.demo.order, nova.saga.step charge, nova.saga.step place, nova.saga.step reserve, nova.saga.step ship
nova.relay.publish* -> nova.saga.step charge, nova.saga.step place, nova.saga.step reserve, nova.saga.step ship
`

// demoMetrics are the metrics one demo order on SQLite records.
var demoMetrics = []string{
	"nova.projection.batch.duration",
	"nova.projection.events",
	"nova.projection.lag.age",
	"nova.relay.envelopes",
	"nova.relay.lag",
	"nova.saga.runs",
	"nova.saga.step.duration",
	"nova.store.append.duration",
	"nova.store.append.events",
	"nova.store.appends",
	"nova.store.group_commit.size",
	"nova.store.read.events",
}

// Not parallel: it installs providers for the whole process while the
// demo runs.
func TestDemoOrderSpanTreeAndMetrics(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	telemetry.Use(telemetry.Config{TracerProvider: tp, MeterProvider: mp})
	defer func() {
		telemetry.Use(telemetry.Config{})
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	}()

	db := filepath.Join(t.TempDir(), "traced.db")
	if code, out, stderr := runNova(t, "demo", "--store", db, "--orders", "1"); code != 0 {
		t.Fatalf("demo: exit %d\n%s\n%s", code, out, stderr)
	}
	if got := describeSpans(spans.Ended()); got != demoSpanTree {
		t.Errorf("span tree:\n%s\nwant:\n%s", got, demoSpanTree)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			got = append(got, m.Name)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, demoMetrics) {
		t.Errorf("metrics recorded:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(demoMetrics, "\n"))
	}
}

// describeSpans renders spans as an indented tree, children under their
// parents in start order, each with "-> " and the spans it links to.
// Spans whose name is in aggregated are merged into one line, marked
// with '*', with the union of their links. A span is labelled by its
// name and nova.step; a linked span with a parent by its parent's label
// too, as name<parent>.
func describeSpans(spans []sdktrace.ReadOnlySpan) string {
	aggregated := map[string]bool{"nova.projection.batch": true, "nova.relay.publish": true}
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byID[s.SpanContext().SpanID()] = s
	}
	label := func(s sdktrace.ReadOnlySpan) string {
		l := s.Name()
		for _, kv := range s.Attributes() {
			if kv.Key == "nova.step" {
				l += " " + kv.Value.AsString()
			}
		}
		return l
	}
	linkLabels := func(s sdktrace.ReadOnlySpan) []string {
		var out []string
		for _, l := range s.Links() {
			t, ok := byID[l.SpanContext.SpanID()]
			if !ok {
				out = append(out, "?")
				continue
			}
			ll := label(t)
			if p, ok := byID[t.Parent().SpanID()]; ok && t.Parent().IsValid() {
				ll += "<" + label(p) + ">"
			}
			out = append(out, ll)
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	children := map[trace.SpanID][]sdktrace.ReadOnlySpan{}
	var roots []sdktrace.ReadOnlySpan
	agg := map[string][]string{}
	var aggOrder []string
	for _, s := range spans {
		if aggregated[s.Name()] {
			if _, ok := agg[s.Name()]; !ok {
				aggOrder = append(aggOrder, s.Name())
			}
			agg[s.Name()] = append(agg[s.Name()], linkLabels(s)...)
			continue
		}
		if _, ok := byID[s.Parent().SpanID()]; ok && s.Parent().IsValid() {
			children[s.Parent().SpanID()] = append(children[s.Parent().SpanID()], s)
		} else {
			roots = append(roots, s)
		}
	}
	byStart := func(a, b sdktrace.ReadOnlySpan) int { return a.StartTime().Compare(b.StartTime()) }
	var b strings.Builder
	var write func(s sdktrace.ReadOnlySpan, depth int)
	write = func(s sdktrace.ReadOnlySpan, depth int) {
		b.WriteString(strings.Repeat("  ", depth) + label(s))
		if l := linkLabels(s); len(l) > 0 {
			b.WriteString(" -> " + strings.Join(l, ", "))
		}
		b.WriteString("\n")
		kids := children[s.SpanContext().SpanID()]
		slices.SortFunc(kids, byStart)
		for _, k := range kids {
			write(k, depth+1)
		}
	}
	slices.SortFunc(roots, byStart)
	for _, r := range roots {
		write(r, 0)
	}
	slices.Sort(aggOrder)
	for _, name := range aggOrder {
		l := agg[name]
		slices.Sort(l)
		fmt.Fprintf(&b, "%s* -> %s\n", name, strings.Join(slices.Compact(l), ", "))
	}
	return b.String()
}

// The /metrics handler serves Nova's metrics in the Prometheus text
// format, under their Prometheus names.
func TestMetricsHandlerServesNovaMetrics(t *testing.T) {
	h := metricsHandler() // installs the global meter provider
	s, err := novamem.New(novamem.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	store := telemetry.Store(s)
	if _, err := store.Append(t.Context(), "order-1", nova.NoStream, nova.EventData{Type: "placed"}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Append(t.Context(), "order-1", nova.NoStream, nova.EventData{Type: "placed"}); err == nil {
		t.Fatal("second append to a new stream succeeded")
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	res, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		`nova_store_appends_total{`,
		`nova_outcome="ok"`,
		`nova_outcome="conflict"`,
		`nova_store_append_conflicts_total{`,
		`nova_store_append_duration_seconds_bucket{`,
		`nova_store_append_events_bucket{`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s:\n%s", want, body)
		}
	}
}
