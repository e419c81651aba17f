package cqrs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/aggregate"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/novamem"
)

// newEvents returns a fresh in-memory event store, closed when t ends.
func newEvents(t *testing.T) *novamem.Store {
	t.Helper()
	s, err := novamem.New(novamem.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// collect reads every event of aggregate id.
func collect(t *testing.T, cs cqrs.CommandStore, id string) []nova.Event {
	t.Helper()
	var out []nova.Event
	for e, err := range cs.Events(t.Context(), id) {
		if err != nil {
			t.Fatalf("Events(%q): %v", id, err)
		}
		out = append(out, e)
	}
	return out
}

func TestEventStore(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cs := cqrs.NewEventCommandStore(newEvents(t), nil)
	if got := collect(t, cs, "order-1"); len(got) != 0 {
		t.Fatalf("Events of a new aggregate = %v, want none", got)
	}
	for i, typ := range []string{"order.placed", "order.paid", "order.shipped"} {
		res, err := cs.SaveEvent(ctx, "order-1", nova.Exact(uint64(i)), nova.EventData{Type: typ, Data: []byte(`{"n":1}`)})
		if err != nil {
			t.Fatalf("SaveEvent %s: %v", typ, err)
		}
		if res.LastVersion != uint64(i+1) {
			t.Fatalf("SaveEvent %s: version %d, want %d", typ, res.LastVersion, i+1)
		}
	}
	_, err := cs.SaveEvent(ctx, "order-1", nova.Exact(1), nova.EventData{Type: "order.cancelled"})
	var ce *nova.ConcurrencyError
	if !errors.As(err, &ce) || ce.Actual != 3 {
		t.Fatalf("stale SaveEvent = %v, want a ConcurrencyError at version 3", err)
	}
	got := collect(t, cs, "order-1")
	var types []string
	for i, e := range got {
		types = append(types, e.Type)
		// The fields of the compatible StoredEvent, on nova.Event.
		if e.Stream != "order-1" || e.Version != uint64(i+1) || string(e.Data) != `{"n":1}` || e.RecordedAt.IsZero() {
			t.Fatalf("event %d = %+v", i, e)
		}
	}
	if want := []string{"order.placed", "order.paid", "order.shipped"}; !slices.Equal(types, want) {
		t.Fatalf("types = %v, want %v", types, want)
	}
	// Stopping early ends the read.
	for range cs.Events(ctx, "order-1") {
		break
	}
}

func TestEventStoreBadInput(t *testing.T) {
	t.Parallel()
	store := newEvents(t)
	cs := cqrs.NewEventCommandStore(store, nil)
	ctx := t.Context()
	ok := nova.EventData{Type: "order.placed"}
	tests := []struct {
		name string
		id   string
		ev   nova.EventData
	}{
		{"empty aggregate ID", "", ok},
		{"control character in ID", "a\nb", ok},
		{"empty type", "a", nova.EventData{}},
		{"bad event ID", "a", nova.EventData{ID: "nope", Type: "t"}},
	}
	for _, tt := range tests {
		if _, err := cs.SaveEvent(ctx, tt.id, nova.Any, tt.ev); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("%s: SaveEvent = %v, want nova.ErrInvalid", tt.name, err)
		}
		if tt.ev.Type == "" || tt.ev.ID != "" {
			continue
		}
		n := 0
		for _, err := range cs.Events(ctx, tt.id) {
			n++
			if !errors.Is(err, nova.ErrInvalid) {
				t.Errorf("%s: Events = %v, want nova.ErrInvalid", tt.name, err)
			}
		}
		if n != 1 {
			t.Errorf("%s: Events yielded %d times, want one error", tt.name, n)
		}
	}
	for e, err := range store.ReadAll(ctx, nova.ReadAllOptions{}) {
		t.Fatalf("rejected saves wrote %+v, %v", e, err)
	}
}

func TestProjectionHelpers(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	qs := novamem.NewQueryStore()
	want := orderView{Order: "7", Lines: 2, Status: "placed"}
	if err := cqrs.UpsertProjection(ctx, qs, "order:7", want); err != nil {
		t.Fatal(err)
	}
	got, err := cqrs.GetProjection[orderView](ctx, qs, "order:7")
	if err != nil || got != want {
		t.Fatalf("GetProjection = %+v, %v", got, err)
	}
	if _, err := cqrs.GetProjection[int](ctx, qs, "order:7"); err == nil || errors.Is(err, nova.ErrNotFound) {
		t.Fatalf("GetProjection into the wrong type = %v, want a decode error", err)
	}
	if err := cqrs.UpsertProjection(ctx, qs, "", want); !errors.Is(err, nova.ErrInvalid) {
		t.Fatalf("UpsertProjection(empty key) = %v", err)
	}
}

func TestMetadataContext(t *testing.T) {
	t.Parallel()
	if md := cqrs.MetadataFrom(t.Context()); !md.Equal(nova.Metadata{}) {
		t.Fatalf("MetadataFrom(empty) = %+v", md)
	}
	extra := map[string]string{"tenant": "acme"}
	ctx := cqrs.WithMetadata(t.Context(), nova.Metadata{CorrelationID: "c", CausationID: "k", Extra: extra})
	extra["tenant"] = "changed after"
	md := cqrs.MetadataFrom(ctx)
	md.Extra["tenant"] = "changed by a reader"
	if md := cqrs.MetadataFrom(ctx); md.Extra["tenant"] != "acme" || md.CorrelationID != "c" || md.CausationID != "k" {
		t.Fatalf("MetadataFrom = %+v, want the values as given, unchanged", md)
	}
	stamped := cqrs.StampMetadata(ctx, nova.Metadata{CausationID: "own", Extra: map[string]string{"user": "ada"}})
	want := nova.Metadata{CorrelationID: "c", CausationID: "own", Extra: map[string]string{"tenant": "acme", "user": "ada"}}
	if !stamped.Equal(want) {
		t.Fatalf("StampMetadata = %+v, want %+v", stamped, want)
	}
}

func TestCorrelation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		incoming *nova.Metadata
		id       string
		wantCorr string // "fresh" for a new non-empty ID
		wantCaus string
	}{
		{"starts a conversation with its ID", nil, "cmd-1", "cmd-1", "cmd-1"},
		{"starts one without an ID", nil, "", "fresh", ""},
		{"continues a conversation", &nova.Metadata{CorrelationID: "corr", CausationID: "evt-9"}, "cmd-2", "corr", "cmd-2"},
		{"without an ID keeps the cause", &nova.Metadata{CorrelationID: "corr", CausationID: "evt-9"}, "", "corr", "evt-9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var seen nova.Metadata
			bus := newBus(t, func(ctx context.Context, _ placeOrder) error {
				seen = cqrs.MetadataFrom(ctx)
				return nil
			}, cqrs.Correlation())
			ctx := t.Context()
			if tt.incoming != nil {
				in := *tt.incoming
				in.Extra = map[string]string{"tenant": "acme"}
				ctx = cqrs.WithMetadata(ctx, in)
			}
			if err := bus.Dispatch(ctx, placeOrder{ID: tt.id}); err != nil {
				t.Fatal(err)
			}
			if tt.wantCorr == "fresh" {
				if seen.CorrelationID == "" {
					t.Fatalf("no correlation ID")
				}
			} else if seen.CorrelationID != tt.wantCorr {
				t.Fatalf("correlation = %q, want %q", seen.CorrelationID, tt.wantCorr)
			}
			if seen.CausationID != tt.wantCaus {
				t.Fatalf("causation = %q, want %q", seen.CausationID, tt.wantCaus)
			}
			if tt.incoming != nil && seen.Extra["tenant"] != "acme" {
				t.Fatalf("free keys did not flow on: %v", seen.Extra)
			}
			if md := cqrs.MetadataFrom(ctx); tt.incoming == nil && !md.Equal(nova.Metadata{}) {
				t.Fatalf("the caller's ctx changed: %+v", md)
			}
		})
	}
}

type shipOrder struct {
	ID    string
	Order string
}

func (c shipOrder) CommandID() string { return c.ID }

// A command's handler saves an event and dispatches a second command;
// both events, read back from the store, record who caused them and share
// the first command's correlation ID.
func TestCorrelationEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cs := cqrs.NewEventCommandStore(newEvents(t), nil)
	bus := cqrs.NewCommandBus(cqrs.Validation(), cqrs.Correlation())
	if err := cqrs.Handle(bus, func(ctx context.Context, c placeOrder) error {
		if _, err := cs.SaveEvent(ctx, "order-"+c.Order, nova.NoStream, nova.EventData{Type: "order.placed", Data: []byte(`{}`)}); err != nil {
			return err
		}
		return bus.Dispatch(ctx, shipOrder{ID: "ship-" + c.Order, Order: c.Order})
	}); err != nil {
		t.Fatal(err)
	}
	if err := cqrs.Handle(bus, func(ctx context.Context, c shipOrder) error {
		_, err := cs.SaveEvent(ctx, "order-"+c.Order, nova.StreamExists, nova.EventData{
			Type: "order.shipped", Data: []byte(`{}`), Metadata: nova.Metadata{Extra: map[string]string{"carrier": "post"}},
		})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ctx = cqrs.WithMetadata(ctx, nova.Metadata{CorrelationID: "request-1", Extra: map[string]string{"tenant": "acme"}})
	if err := bus.Dispatch(ctx, placeOrder{ID: "place-7", Order: "7", Lines: 1}); err != nil {
		t.Fatal(err)
	}
	got := collect(t, cs, "order-7")
	want := []nova.Metadata{
		{CorrelationID: "request-1", CausationID: "place-7", Extra: map[string]string{"tenant": "acme"}},
		{CorrelationID: "request-1", CausationID: "ship-7", Extra: map[string]string{"tenant": "acme", "carrier": "post"}},
	}
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d", len(got), len(want))
	}
	for i := range want {
		if !got[i].Metadata.Equal(want[i]) {
			t.Errorf("event %d (%s) metadata = %+v, want %+v", i, got[i].Type, got[i].Metadata, want[i])
		}
	}
}

// The pattern for aggregate.Repository: pass StampMetadata's result in
// SaveOptions.
func TestCorrelationWithRepository(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := newEvents(t)
	reg := nova.NewRegistry(nova.RegistryOptions{})
	nova.MustRegister[orderPlaced](reg, "order.placed")
	orders, err := aggregate.NewRepository[orderState](aggregate.Config{Store: store, Registry: reg, Category: "order"})
	if err != nil {
		t.Fatal(err)
	}
	bus := newBus(t, func(ctx context.Context, c placeOrder) error {
		root, err := orders.New(c.Order)
		if err != nil {
			return err
		}
		opts := &aggregate.SaveOptions{Metadata: cqrs.StampMetadata(ctx, nova.Metadata{})}
		_, err = orders.Save(ctx, root, []any{orderPlaced{Lines: c.Lines}}, opts)
		return err
	}, cqrs.Correlation())
	if err := bus.Dispatch(ctx, placeOrder{ID: "place-8", Order: "8", Lines: 3}); err != nil {
		t.Fatal(err)
	}
	var n int
	for e, err := range store.ReadStream(ctx, orders.StreamID("8"), nova.ReadStreamOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if e.Metadata.CorrelationID != "place-8" || e.Metadata.CausationID != "place-8" {
			t.Fatalf("event metadata = %+v, want correlation and causation place-8", e.Metadata)
		}
	}
	if n != 1 {
		t.Fatalf("%d events, want 1", n)
	}
	root, err := orders.Load(ctx, "8")
	if err != nil || root.State.Lines != 3 {
		t.Fatalf("Load = %+v, %v", root, err)
	}
}

type orderPlaced struct{ Lines int }

type orderState struct{ Lines int }

func (s *orderState) Apply(event any) error {
	if e, ok := event.(orderPlaced); ok {
		s.Lines = e.Lines
	}
	return nil
}

func TestEventID(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, cmd := range []string{"a", "b", "a0", "", "注文"} {
		for n := range 3 {
			id := cqrs.EventID(cmd, n)
			if id != cqrs.EventID(cmd, n) {
				t.Fatalf("EventID(%q, %d) is not stable", cmd, n)
			}
			if seen[id] {
				t.Fatalf("EventID(%q, %d) = %s, seen before", cmd, n, id)
			}
			seen[id] = true
			if len(id) != 36 || id[14] != '8' || !strings.ContainsAny(id[19:20], "89ab") {
				t.Fatalf("EventID(%q, %d) = %s, want a version 8 UUID", cmd, n, id)
			}
		}
	}
	// "a"+1 and "a1"+"" must differ: the parts are delimited.
	if cqrs.EventID("a", 10) == cqrs.EventID("a1", 0) {
		t.Fatal("EventID parts run together")
	}
}

// A command run again after its ID record was lost (a fresh bus, say,
// after a restart) saves nothing new when its events carry EventIDs.
func TestRegisterCommandRerun(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	events := newEvents(t)
	store := novamem.NewCQRSStore(events, nil)
	for run := range 2 {
		bus := new(cqrs.CommandBus)
		if err := cqrs.RegisterCommand[PlaceOrder](bus, store); err != nil {
			t.Fatal(err)
		}
		id, err := cqrs.DispatchResult[string](ctx, bus, PlaceOrder{ID: "cmd-1", Order: "5", Customer: "ada"})
		if err != nil || id != "order-5" {
			t.Fatalf("run %d: DispatchResult = %q, %v", run, id, err)
		}
	}
	key, _ := cqrs.KeyOf(PlaceOrder{ID: "cmd-1"})
	if got := collect(t, store, "order-5"); len(got) != 1 || got[0].ID != key.EventID(0) {
		t.Fatalf("events after two runs = %+v, want one with the derived ID", got)
	}
	// RegisterQuery registers once.
	qbus := new(cqrs.QueryBus)
	if err := cqrs.RegisterQuery[GetOrderSummary](qbus, store); err != nil {
		t.Fatal(err)
	}
	if err := cqrs.RegisterQuery[GetOrderSummary](qbus, store); !errors.Is(err, cqrs.ErrHandlerExists) {
		t.Fatalf("second RegisterQuery = %v", err)
	}
	if err := cqrs.UpsertProjection(ctx, store, "order-summary:5", OrderSummary{Order: "5", Customer: "ada", Events: 1}); err != nil {
		t.Fatal(err)
	}
	if v, err := cqrs.Ask[OrderSummary](ctx, qbus, GetOrderSummary{Order: "5"}); err != nil || v.Customer != "ada" {
		t.Fatalf("Ask = %+v, %v", v, err)
	}
}

// totalled is an event whose shape 2 holds a total in units; totalOrder
// sums them.
type totalled struct {
	Total int `json:"total"`
}

type totalOrder struct{ Total int }

func (o *totalOrder) Apply(e any) error {
	o.Total += e.(totalled).Total
	return nil
}

// SaveEvent stamps each event with its type's current shape from the
// registry the events are read with, as Registry.Encode does: an event
// saved in the current shape is not upcast again when read. Here shape 1
// of order.totalled held the total in tens, shape 2 in units: a total of
// 700 saved now reads back as 700, not 7000. A shape the caller sets is
// kept.
func TestSaveEventStampsTheSchema(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	reg := nova.NewRegistry(nova.RegistryOptions{})
	if err := nova.Register[totalled](reg, "order.totalled"); err != nil {
		t.Fatal(err)
	}
	err := reg.Upcast("order.totalled", 1, func(data []byte) ([]byte, error) {
		var v totalled
		if err := json.Unmarshal(data, &v); err != nil {
			return nil, err
		}
		v.Total *= 10
		return json.Marshal(v)
	})
	if err != nil {
		t.Fatal(err)
	}
	events := newEvents(t)
	cs := cqrs.NewEventCommandStore(events, reg)
	if _, err := cs.SaveEvent(ctx, "order-1", nova.NoStream, nova.EventData{Type: "order.totalled", Data: []byte(`{"total":700}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.SaveEvent(ctx, "order-1", nova.Exact(1), nova.EventData{Type: "order.totalled", Data: []byte(`{"total":70}`), Metadata: nova.Metadata{Schema: 1}}); err != nil {
		t.Fatal(err)
	}
	got := collect(t, cs, "order-1")
	if len(got) != 2 || got[0].Metadata.Schema != 2 || got[1].Metadata.Schema != 1 {
		t.Fatalf("saved events %+v, want shapes 2 (stamped) and 1 (as given)", got)
	}
	for i, e := range got {
		v, err := nova.DecodeAs[totalled](reg, e)
		if err != nil || v.Total != 700 {
			t.Errorf("event %d reads back as %+v, %v; want a total of 700", i+1, v, err)
		}
	}
	// Through an aggregate repository too, which reads with the registry.
	repo, err := aggregate.NewRepository[totalOrder](aggregate.Config{Store: events, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	root, err := repo.Load(ctx, "order-1")
	if err != nil || root.State.Total != 1400 {
		t.Fatalf("Load = %+v, %v; want a total of 1400", root, err)
	}
}

// openTab and closeTab are self-executing commands on one stream whose
// events carry IDs derived from the command's key.
type openTab struct{ ID, Tab string }

func (c openTab) CommandID() string { return c.ID }

func (c openTab) Execute(ctx context.Context, store cqrs.CommandStore) (string, error) {
	key, _ := cqrs.KeyOf(c)
	_, err := store.SaveEvent(ctx, "tab-"+c.Tab, nova.NoStream, nova.EventData{ID: key.EventID(0), Type: "tab.opened"})
	return "tab-" + c.Tab, err
}

type closeTab struct{ ID, Tab string }

func (c closeTab) CommandID() string { return c.ID }

func (c closeTab) Execute(ctx context.Context, store cqrs.CommandStore) (string, error) {
	key, _ := cqrs.KeyOf(c)
	_, err := store.SaveEvent(ctx, "tab-"+c.Tab, nova.Exact(1), nova.EventData{ID: key.EventID(0), Type: "tab.closed"})
	return "tab-" + c.Tab, err
}

// Two commands of different types with one ID both run and both save
// their events, whose IDs derive from type and ID; sent again, on a bus
// that lost its records (a restart), neither saves anything twice.
func TestCommandsOfTwoTypesShareAnID(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := cqrs.NewEventCommandStore(newEvents(t), nil)
	for run := range 2 {
		idem := cqrs.Idempotency(new(cqrs.MemoryHandled))
		bus := cqrs.NewCommandBus(idem)
		if err := cqrs.RegisterCommand[openTab](bus, store); err != nil {
			t.Fatal(err)
		}
		if err := cqrs.RegisterCommand[closeTab](bus, store); err != nil {
			t.Fatal(err)
		}
		for _, cmd := range []any{openTab{ID: "tab-77", Tab: "77"}, closeTab{ID: "tab-77", Tab: "77"}} {
			if err := bus.Dispatch(ctx, cmd); err != nil {
				t.Fatalf("run %d: %T: %v", run, cmd, err)
			}
		}
	}
	got := collect(t, store, "tab-77")
	if len(got) != 2 || got[0].Type != "tab.opened" || got[1].Type != "tab.closed" {
		t.Fatalf("events = %+v, want tab.opened then tab.closed, once each", got)
	}
	openKey, _ := cqrs.KeyOf(openTab{ID: "tab-77"})
	closeKey, _ := cqrs.KeyOf(closeTab{ID: "tab-77"})
	if got[0].ID != openKey.EventID(0) || got[1].ID != closeKey.EventID(0) {
		t.Fatalf("event IDs %s, %s; want the keys' derived IDs", got[0].ID, got[1].ID)
	}
}

func TestCommandKey(t *testing.T) {
	t.Parallel()
	key, ok := cqrs.KeyOf(openTab{ID: "x"})
	if !ok || key != (cqrs.CommandKey{Type: "github.com/nova-go/nova/cqrs_test.openTab", ID: "x"}) {
		t.Fatalf("KeyOf = %+v, %t", key, ok)
	}
	if key, ok := cqrs.KeyOf(&openTab{ID: "x"}); !ok || key.Type != "*github.com/nova-go/nova/cqrs_test.openTab" {
		t.Fatalf("KeyOf of a pointer = %+v, %t", key, ok)
	}
	if _, ok := cqrs.KeyOf(openTab{}); ok {
		t.Fatal("KeyOf of a command without an ID reports a key")
	}
	if _, ok := cqrs.KeyOf(42); ok {
		t.Fatal("KeyOf of a message that is not Identified reports a key")
	}
	seen := map[string]bool{}
	for _, k := range []cqrs.CommandKey{{"a", "b"}, {"a", "c"}, {"b", "b"}, {"ab", ""}, {"", "ab"}} {
		for n := range 3 {
			id := k.EventID(n)
			if id != k.EventID(n) || seen[id] || id == cqrs.EventID(k.ID, n) {
				t.Fatalf("%+v.EventID(%d) = %s: not stable, seen before, or the same as EventID(ID)", k, n, id)
			}
			seen[id] = true
			if len(id) != 36 || id[14] != '8' || !strings.ContainsAny(id[19:20], "89ab") {
				t.Fatalf("%+v.EventID(%d) = %s, want a version 8 UUID", k, n, id)
			}
		}
	}
	// EventID keeps the IDs it has always given, which stored events
	// carry.
	if got := cqrs.EventID("cmd-1", 0); got != "fa372224-1b1f-8643-9a66-e9ad1582f8d2" {
		t.Fatalf("EventID(cmd-1, 0) = %s, no longer the ID stored events carry", got)
	}
}

// countedOrder is a self-executing command that counts the runs of its
// Execute and saves an event with a fresh ID each time.
type countedOrder struct {
	ID, Order, Customer string
	runs                *atomic.Int32
}

func (c countedOrder) CommandID() string { return c.ID }

func (c countedOrder) Validate() error {
	if c.Customer == "" {
		return errors.New("no customer")
	}
	return nil
}

func (c countedOrder) Execute(ctx context.Context, store cqrs.CommandStore) (string, error) {
	c.runs.Add(1)
	_, err := store.SaveEvent(ctx, "counted-"+c.Order, nova.Any, nova.EventData{Type: "order.placed", Data: []byte(`{}`)})
	return "counted-" + c.Order, err
}

// A self-executing command registered with RegisterCommand goes through
// the bus's middleware, as a handler registered with Handle does:
// Validation refuses it before Execute runs, Idempotency runs it once,
// Correlation stamps its events, and middleware of the caller's own sees
// it as a command.
func TestRegisterCommandRunsInMiddleware(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := cqrs.NewEventCommandStore(newEvents(t), nil)
	var seen []string
	record := func(next cqrs.HandlerFunc) cqrs.HandlerFunc {
		return func(ctx context.Context, msg any) (any, error) {
			seen = append(seen, fmt.Sprintf("%s %T", cqrs.KindFrom(ctx), msg))
			return next(ctx, msg)
		}
	}
	idem := cqrs.Idempotency(new(cqrs.MemoryHandled))
	bus := cqrs.NewCommandBus(record, cqrs.Validation(), cqrs.Correlation(), idem)
	if err := cqrs.RegisterCommand[countedOrder](bus, store); err != nil {
		t.Fatal(err)
	}
	var runs atomic.Int32

	err := bus.Dispatch(ctx, countedOrder{ID: "cmd-0", Order: "1", runs: &runs})
	if !errors.Is(err, nova.ErrInvalid) || !strings.Contains(err.Error(), "no customer") {
		t.Fatalf("Dispatch of an invalid command = %v, want Validate's error matching nova.ErrInvalid", err)
	}
	if n := runs.Load(); n != 0 {
		t.Fatalf("Validation let an invalid command's Execute run %d times", n)
	}
	if got := collect(t, store, "counted-1"); len(got) != 0 {
		t.Fatalf("an invalid command saved %+v", got)
	}

	cmd := countedOrder{ID: "cmd-1", Order: "1", Customer: "ada", runs: &runs}
	for i := range 3 {
		id, err := cqrs.DispatchResult[string](ctx, bus, cmd)
		if err != nil || (i == 0 && id != "counted-1") {
			t.Fatalf("dispatch %d: DispatchResult = %q, %v; want counted-1 the first time", i, id, err)
		}
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("Idempotency: Execute ran %d times for one command ID sent three times, want 1", n)
	}
	got := collect(t, store, "counted-1")
	if len(got) != 1 {
		t.Fatalf("events = %+v, want one", got)
	}
	if md := got[0].Metadata; md.CorrelationID != "cmd-1" || md.CausationID != "cmd-1" {
		t.Fatalf("event metadata = %+v, want correlation and causation cmd-1 from Correlation", md)
	}
	want := slices.Repeat([]string{"command cqrs_test.countedOrder"}, 4)
	if !slices.Equal(seen, want) {
		t.Fatalf("the caller's middleware saw %q, want %q", seen, want)
	}
}
