package novaredis_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/novaredis"
)

// TestConnectionLossIsTransient: reads and writes of a query store whose
// connection to the server breaks, and cannot be made again for now, fail
// with transient errors, which the projection runner waits out; once the
// server can be reached again the store works.
func TestConnectionLossIsTransient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	addr := testenv.HostPort(serverURL(t))
	proxy := testenv.NewProxy(t, addr)
	c := redis.NewClient(&redis.Options{Addr: proxy.Addr(), MaxRetries: 1, DialTimeout: time.Second})
	t.Cleanup(func() { c.Close() })
	admin := newClient(t)
	q, err := novaredis.Open(ctx, novaredis.Config{Client: c, Prefix: scratchPrefix(t, admin)})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.UpsertRaw(ctx, "k", json.RawMessage(`1`)); err != nil {
		t.Fatal(err)
	}
	proxy.Cut()
	if _, err := q.GetRaw(ctx, "k"); !nova.IsTransient(err) {
		t.Errorf("get with the connection cut = %v, want a transient error", err)
	}
	if err := q.UpsertRaw(ctx, "k", json.RawMessage(`2`)); !nova.IsTransient(err) {
		t.Errorf("upsert with the connection cut = %v, want a transient error", err)
	}
	proxy.Restore()
	if v, err := q.GetRaw(ctx, "k"); err != nil || string(v) != "1" {
		t.Fatalf("get after the connection is back = %s, %v, want 1", v, err)
	}
	// A missing key and a closed store are not transient.
	if _, err := q.GetRaw(ctx, "missing"); !errors.Is(err, nova.ErrNotFound) || nova.IsTransient(err) {
		t.Errorf("get of a missing key = %v, want nova.ErrNotFound", err)
	}
}
