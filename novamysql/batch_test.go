package novamysql_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/projectiondriver"
	"github.com/nova-go/nova/novamysql"
	"github.com/nova-go/nova/novatest"
	"github.com/nova-go/nova/projection"
)

// Inside a projection's batch, TxFromContext writes out the query
// store's buffered writes before handing out the transaction: the
// handler's own SQL sees them, and what it writes is read back after.
func TestTxFromContextWritesTheBatchOut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, novamysql.Config{})
	qs := newQueryStore(t, s, "raw_views")
	cp := novamysql.NewCheckpoints(s)
	err := cp.Commit(ctx, "raw-reader", "", nova.Start, nova.Position{Commit: 1}, func(ctx context.Context) error {
		b := projectiondriver.NewBatch()
		ctx = projectiondriver.WithBatch(ctx, b)
		if err := qs.UpsertRaw(ctx, "k", json.RawMessage(`{"n":1}`)); err != nil {
			return err
		}
		if _, err := qs.GetRaw(ctx, "other"); !errors.Is(err, nova.ErrNotFound) {
			return fmt.Errorf("GetRaw(other) = %v, want not found", err)
		}
		if b.Pending() != 1 {
			return fmt.Errorf("%d writes buffered, want 1", b.Pending())
		}
		tx, ok := novamysql.TxFromContext(ctx)
		if !ok {
			return errors.New("no transaction in the ctx")
		}
		if b.Pending() != 0 {
			return fmt.Errorf("%d writes still buffered after TxFromContext", b.Pending())
		}
		var v string
		if err := tx.QueryRowContext(ctx, "SELECT value FROM raw_views WHERE `key` = 'k'").Scan(&v); err != nil || v != `{"n":1}` {
			return fmt.Errorf("the handler's own SELECT = %s, %v; want the buffered write", v, err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO raw_views (`key`, value, updated_at) VALUES ('other', '\"raw\"', UTC_TIMESTAMP(6))"); err != nil {
			return err
		}
		if got, err := qs.GetRaw(ctx, "other"); err != nil || string(got) != `"raw"` {
			return fmt.Errorf("GetRaw(other) after the handler's own INSERT = %s, %v", got, err)
		}
		if err := qs.UpsertRaw(ctx, "k", json.RawMessage(`{"n":2}`)); err != nil {
			return err
		}
		return b.Flush(ctx)
	})
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"k": `{"n":2}`, "other": `"raw"`} {
		if got, err := qs.GetRaw(ctx, key); err != nil || string(got) != want {
			t.Errorf("GetRaw(%q) = %s, %v; want %s", key, got, err, want)
		}
	}
}

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
