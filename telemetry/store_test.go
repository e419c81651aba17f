package telemetry_test

import (
	"context"
	"errors"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novamem"
	"github.com/nova-go/nova/telemetry"
)

func attributeKey(k string) attribute.Key { return attribute.Key(k) }

func newStore(t *testing.T) *novamem.Store {
	t.Helper()
	s, err := novamem.New(novamem.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func event(typ string) nova.EventData {
	return nova.EventData{ID: nova.NewEventID(), Type: typ, Data: []byte(`{}`)}
}

// read returns the events of stream.
func read(t *testing.T, s nova.Store, stream string) []nova.Event {
	t.Helper()
	var out []nova.Event
	for e, err := range s.ReadStream(t.Context(), stream, nova.ReadStreamOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func TestStoreAppendSpanAndTraceContext(t *testing.T) {
	f := setup(t)
	inner := newStore(t)
	s := telemetry.Store(inner)

	ctx, parent := f.tracer.Tracer("test").Start(t.Context(), "request")
	ev := event("a")
	ev.Metadata.Extra = map[string]string{"k": "v"}
	if _, err := s.Append(ctx, "cart-1", nova.NoStream, ev, event("b")); err != nil {
		t.Fatal(err)
	}
	parent.End()
	if _, ok := ev.Metadata.Extra[telemetry.TraceParent]; ok {
		t.Error("Append changed the caller's metadata map")
	}

	spans := f.ended("nova.append")
	if len(spans) != 1 {
		t.Fatalf("%d append spans, want 1", len(spans))
	}
	sp := spans[0]
	if sp.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Errorf("append span's parent = %s, want the caller's span %s", sp.Parent().SpanID(), parent.SpanContext().SpanID())
	}
	want := map[attribute.Key]string{"nova.stream": "cart-1", "nova.events": "2", "nova.outcome": "ok"}
	for _, kv := range sp.Attributes() {
		if w, ok := want[kv.Key]; ok {
			if kv.Value.String() != w {
				t.Errorf("attribute %s = %s, want %s", kv.Key, kv.Value.String(), w)
			}
			delete(want, kv.Key)
		}
	}
	if len(want) > 0 {
		t.Errorf("append span lacks attributes %v", want)
	}

	got := read(t, inner, "cart-1")
	for _, e := range got {
		back := trace.SpanContextFromContext(telemetry.EventContext(context.Background(), e))
		if back.TraceID() != sp.SpanContext().TraceID() || back.SpanID() != sp.SpanContext().SpanID() {
			t.Errorf("event %d carries span %s/%s, want the append span %s/%s (metadata %v)",
				e.Version, back.TraceID(), back.SpanID(), sp.SpanContext().TraceID(), sp.SpanContext().SpanID(), e.Metadata.Extra)
		}
	}
	if got[0].Metadata.Extra["k"] != "v" {
		t.Errorf("the caller's extra key was lost: %v", got[0].Metadata.Extra)
	}
}

func TestStoreKeepsCallersTraceParent(t *testing.T) {
	f := setup(t)
	inner := newStore(t)
	s := telemetry.Store(inner)
	const mine = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	ev := event("a")
	ev.Metadata.Extra = map[string]string{telemetry.TraceParent: mine}
	ctx, span := f.tracer.Tracer("test").Start(t.Context(), "request")
	defer span.End()
	if _, err := s.Append(ctx, "cart-1", nova.Any, ev); err != nil {
		t.Fatal(err)
	}
	if got := read(t, inner, "cart-1")[0].Metadata.Extra[telemetry.TraceParent]; got != mine {
		t.Errorf("traceparent = %q, want the caller's %q", got, mine)
	}
}

// A retry of an append made under another trace (after a crash, by
// another process) is still an idempotent retry: the trace keys are not
// the events' content.
func TestStoreRetryUnderAnotherTraceIsDuplicate(t *testing.T) {
	f := setup(t)
	s := telemetry.Store(newStore(t))
	ev := event("a")
	tr := f.tracer.Tracer("test")
	ctx1, sp1 := tr.Start(t.Context(), "first")
	if _, err := s.Append(ctx1, "cart-1", nova.NoStream, ev); err != nil {
		t.Fatal(err)
	}
	sp1.End()
	ctx2, sp2 := tr.Start(t.Context(), "retry")
	res, err := s.Append(ctx2, "cart-1", nova.NoStream, ev)
	sp2.End()
	if err != nil || !res.Duplicate {
		t.Fatalf("retry under another trace = %+v, %v; want a duplicate", res, err)
	}
	other := ev
	other.Data = []byte(`{"x":1}`)
	if _, err := s.Append(ctx2, "cart-1", nova.NoStream, other); !errors.Is(err, nova.ErrDuplicateEvent) {
		t.Fatalf("reused ID with other data = %v, want ErrDuplicateEvent", err)
	}
	m := f.collect(t)
	if n := sum(t, m["nova.store.appends"], "nova.outcome", "duplicate"); n != 1 {
		t.Errorf("duplicate appends counted %d, want 1", n)
	}
	if n := sum(t, m["nova.store.appends"], "nova.outcome", "ok"); n != 1 {
		t.Errorf("ok appends counted %d, want 1", n)
	}
}

func TestStoreCountsConflicts(t *testing.T) {
	f := setup(t)
	s := telemetry.Store(newStore(t))
	if _, err := s.Append(t.Context(), "cart-1", nova.NoStream, event("a")); err != nil {
		t.Fatal(err)
	}
	_, err := s.Append(t.Context(), "cart-1", nova.NoStream, event("b"))
	if !errors.Is(err, nova.ErrConcurrency) {
		t.Fatalf("Append = %v, want ErrConcurrency", err)
	}
	m := f.collect(t)
	if n := sum(t, m["nova.store.append.conflicts"], "", ""); n != 1 {
		t.Errorf("conflicts = %d, want 1", n)
	}
	if n := sum(t, m["nova.store.appends"], "nova.outcome", "conflict"); n != 1 {
		t.Errorf("appends with outcome conflict = %d, want 1", n)
	}
	sp := f.ended("nova.append")
	if len(sp) != 2 || sp[1].Status().Code.String() != "Error" {
		t.Errorf("the failed append's span status is not an error: %v", sp)
	}
}

func TestStoreWithoutSDKWritesNoTraceContext(t *testing.T) {
	inner := newStore(t)
	s := telemetry.Store(inner)
	if _, err := s.Append(t.Context(), "cart-1", nova.NoStream, event("a")); err != nil {
		t.Fatal(err)
	}
	if extra := read(t, inner, "cart-1")[0].Metadata.Extra; len(extra) != 0 {
		t.Errorf("no SDK, yet metadata extra = %v", extra)
	}
}

func TestStoreReadSpans(t *testing.T) {
	f := setup(t)
	s := telemetry.Store(newStore(t))
	for range 3 {
		if _, err := s.Append(t.Context(), "cart-1", nova.Any, event("a")); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for _, err := range s.ReadAll(t.Context(), nova.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if len(read(t, s, "cart-1")) != 3 || n != 3 {
		t.Fatalf("read %d events", n)
	}
	for _, name := range []string{"nova.read_all", "nova.read_stream"} {
		sp := f.ended(name)
		if len(sp) != 1 {
			t.Fatalf("%d %s spans, want 1", len(sp), name)
		}
		found := false
		for _, kv := range sp[0].Attributes() {
			if kv.Key == "nova.events" && kv.Value.AsInt64() == 3 {
				found = true
			}
		}
		if !found {
			t.Errorf("%s span does not count 3 events: %v", name, sp[0].Attributes())
		}
	}
	if n := sum(t, f.collect(t)["nova.store.read.events"], "nova.read", "all"); n != 3 {
		t.Errorf("read events (all) = %d, want 3", n)
	}
}
