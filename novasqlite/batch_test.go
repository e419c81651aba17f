package novasqlite_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/projectiondriver"
	"github.com/nova-go/nova/novasqlite"
)

// Inside a projection's batch, TxFromContext writes out the query
// store's buffered writes before handing out the connection: the
// handler's own SQL sees them, and what it writes is read back after.
func TestTxFromContextWritesTheBatchOut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, novasqlite.Config{})
	qs := newQueryStore(t, s, "")
	cp := novasqlite.NewCheckpoints(s)
	rawValue := func(ctx context.Context, key string) (string, error) {
		c, ok := novasqlite.TxFromContext(ctx)
		if !ok {
			return "", errors.New("no connection in the ctx")
		}
		st, _, err := c.Prepare(`SELECT value FROM projections WHERE key = ?`)
		if err != nil {
			return "", err
		}
		defer st.Close()
		if err := st.BindText(1, key); err != nil {
			return "", err
		}
		if !st.Step() {
			return "", errors.Join(fmt.Errorf("no row %q", key), st.Err())
		}
		return st.ColumnText(0), nil
	}
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
		if v, err := rawValue(ctx, "k"); err != nil || v != `{"n":1}` {
			return fmt.Errorf("the handler's own SELECT = %s, %v; want the buffered write", v, err)
		}
		if b.Pending() != 0 {
			return fmt.Errorf("%d writes still buffered after TxFromContext", b.Pending())
		}
		c, _ := novasqlite.TxFromContext(ctx)
		if err := c.Exec(`INSERT INTO projections (key, value, updated_at) VALUES ('other', '"raw"', 0)`); err != nil {
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
