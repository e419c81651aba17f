package services_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/services"
	"github.com/nova-go/nova/novamem"
	"github.com/nova-go/nova/novasqlite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestFor(t *testing.T) {
	ctx := context.Background()
	mem, err := novamem.New(novamem.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	lite, err := novasqlite.Open(ctx, novasqlite.Config{Path: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	for _, s := range []nova.Store{mem, lite} {
		svc, err := services.For(s)
		if err != nil {
			t.Fatalf("%T: %v", s, err)
		}
		if svc.Runs == nil || svc.Checkpoints == nil {
			t.Fatalf("%T: services %+v", s, svc)
		}
		qs, err := svc.QueryStore(ctx, "t")
		if err != nil {
			t.Fatalf("%T: query store: %v", s, err)
		}
		if err := qs.UpsertRaw(ctx, "k", []byte(`{"a":1}`)); err != nil {
			t.Fatalf("%T: upsert: %v", s, err)
		}
		if _, err := svc.Runs.Count(ctx, ""); err != nil {
			t.Fatalf("%T: count runs: %v", s, err)
		}
		if got := svc.Table("t"); got != "t" {
			t.Errorf("%T: Table(t) = %q, want t", s, got)
		}
	}
	if _, err := services.For(eventsOnly{}); !errors.Is(err, services.ErrEventsOnly) {
		t.Errorf("events-only store: %v, want ErrEventsOnly", err)
	}
}

// eventsOnly is a store of a backend that serves nothing else.
type eventsOnly struct{ nova.Store }
