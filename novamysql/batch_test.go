package novamysql_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novamysql"
	"github.com/nova-go/nova/novatest"
	"github.com/nova-go/nova/projection"
)

// A value the server refuses only when the batch is written out (too
// deeply nested for MariaDB's JSON_VALID) is the fault of the event whose
// handler wrote it: the runner runs the batch again unbuffered, stops on
// that event, and the events before it are applied.
func TestBatchRefusedAtTheEndPoisonsItsEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, novamysql.Config{})
	qs := newQueryStore(t, s, "deep_views")
	if _, err := s.Append(ctx, "deep", nova.NoStream, novatest.Events("placed", 6)...); err != nil {
		t.Fatal(err)
	}
	var evs []nova.Event
	for e, err := range s.ReadAll(ctx, nova.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	deep := json.RawMessage(strings.Repeat("[", 40) + strings.Repeat("]", 40))
	p, err := projection.New("deep", nova.NewRegistry(nova.RegistryOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	err = projection.OnType(p, "placed", func(ctx context.Context, e nova.Event) error {
		v := json.RawMessage(`1`)
		if e.ID == evs[3].ID {
			v = deep
		}
		return qs.UpsertRaw(ctx, e.ID, v)
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := projection.NewRunner(projection.Config{Store: s, Projection: p, Checkpoints: novamysql.NewCheckpoints(s)})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var pe *projection.PoisonError
	if err := r.Wait(); !errors.As(err, &pe) || pe.Position != evs[3].Position || !errors.Is(err, nova.ErrInvalid) {
		t.Fatalf("Wait = %v, want a poison error matching nova.ErrInvalid at %s", err, evs[3].Position)
	}
	for i, e := range evs {
		_, err := qs.GetRaw(ctx, e.ID)
		if applied := err == nil; applied != (i < 3) {
			t.Errorf("event %d applied: %v (%v)", i, applied, err)
		}
	}
}
