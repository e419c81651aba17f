package novamem_test

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/novamem"
	"github.com/nova-go/nova/novatest"
)

func TestQueryStore(t *testing.T) {
	t.Parallel()
	novatest.RunQueryStore(t, func(t *testing.T) cqrs.QueryStore { return novamem.NewQueryStore() })
}

func TestCQRSStoreQueries(t *testing.T) {
	t.Parallel()
	novatest.RunQueryStore(t, func(t *testing.T) cqrs.QueryStore { return novamem.NewCQRSStore(newStore(t), nil) })
}

func TestQueryStoreZero(t *testing.T) {
	t.Parallel()
	var zero novamem.QueryStore // ready to use
	if err := zero.UpsertRaw(t.Context(), "k", json.RawMessage(`{"a":1}`)); err != nil {
		t.Fatalf("zero store UpsertRaw: %v", err)
	}
	if got, err := zero.GetRaw(t.Context(), "k"); err != nil || string(got) != `{"a":1}` {
		t.Fatalf("zero store GetRaw = %s, %v", got, err)
	}
}

func TestCQRSStoreCommands(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := novamem.NewCQRSStore(newStore(t), nil)
	for v := range uint64(3) {
		res, err := s.SaveEvent(ctx, "order-1", nova.Exact(v), nova.EventData{Type: "order.changed", Data: []byte(`{}`)})
		if err != nil || res.LastVersion != v+1 {
			t.Fatalf("SaveEvent %d = %+v, %v", v, res, err)
		}
	}
	if _, err := s.SaveEvent(ctx, "order-1", nova.Exact(1), nova.EventData{Type: "order.changed"}); !errors.Is(err, nova.ErrConcurrency) {
		t.Fatalf("stale SaveEvent = %v, want nova.ErrConcurrency", err)
	}
	var versions []uint64
	for e, err := range s.Events(ctx, "order-1") {
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, e.Version)
	}
	if !slices.Equal(versions, []uint64{1, 2, 3}) {
		t.Fatalf("Events versions = %v, want [1 2 3]", versions)
	}
}
