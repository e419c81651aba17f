package novapg_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/projectiondriver"
	"github.com/nova-go/nova/novapg"
)

// Inside a projection's batch, TxFromContext writes out the query
// store's buffered writes before handing out the transaction: the
// handler's own SQL sees them, and what it writes is read back after.
func TestTxFromContextWritesTheBatchOut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, newScratch(t).config())
	qs := newQueryStore(t, s, "raw_views")
	cp := novapg.NewCheckpoints(s)
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
		tx, ok := novapg.TxFromContext(ctx)
		if !ok {
			return errors.New("no transaction in the ctx")
		}
		if b.Pending() != 0 {
			return fmt.Errorf("%d writes still buffered after TxFromContext", b.Pending())
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT (value->>'n')::int FROM `+qs.Table()+` WHERE key = 'k'`).Scan(&n); err != nil || n != 1 {
			return fmt.Errorf("the handler's own SELECT = %d, %v; want the buffered write", n, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+qs.Table()+` (key, value) VALUES ('other', '"raw"')`); err != nil {
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
	for key, want := range map[string]string{"k": `{"n": 2}`, "other": `"raw"`} {
		if got, err := qs.GetRaw(ctx, key); err != nil || string(got) != want {
			t.Errorf("GetRaw(%q) = %s, %v; want %s", key, got, err, want)
		}
	}
}
