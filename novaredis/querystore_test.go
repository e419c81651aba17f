package novaredis_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/novaredis"
	"github.com/nova-go/nova/novatest"
)

func TestMain(m *testing.M) {
	redis.SetLogger(quiet{}) // TestOpen dials a closed port on purpose
	goleak.VerifyTestMain(testenv.Main(m))
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// serverURL returns the test server's address as a redis:// URL, or
// skips t.
func serverURL(t *testing.T) string {
	t.Helper()
	addr := testenv.Need(t, testenv.Redis)
	if !strings.Contains(addr, "://") {
		addr = "redis://" + addr
	}
	return addr
}

// newClient returns a client of the test server, closed when t ends.
func newClient(t *testing.T) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(serverURL(t))
	if err != nil {
		t.Fatalf("%s: %v", testenv.Redis.Env, err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// scratchPrefix returns a key prefix of t's own; its keys are deleted
// when t ends.
func scratchPrefix(t *testing.T, c *redis.Client) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	prefix := "novatest:" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("delete scratch keys %s:*: %v", prefix, err)
		}
	})
	return prefix
}

func newQueryStore(t *testing.T, c *redis.Client, prefix string) *novaredis.QueryStore {
	t.Helper()
	qs, err := novaredis.NewQueryStore(c, prefix)
	if err != nil {
		t.Fatalf("NewQueryStore(%q): %v", prefix, err)
	}
	return qs
}

func TestQueryStore(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	novatest.RunQueryStore(t, func(t *testing.T) cqrs.QueryStore {
		return newQueryStore(t, c, scratchPrefix(t, c))
	})
}

// Projections live under "{prefix}:{key}", byte for byte.
func TestQueryStoreKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newClient(t)
	prefix := scratchPrefix(t, c)
	qs := newQueryStore(t, c, prefix)
	value := " {\"b\" : 1, \"a\":[ 2 ]}\n"
	if err := qs.UpsertRaw(ctx, "order:1/a", json.RawMessage(value)); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, prefix+":order:1/a").Result(); err != nil || got != value {
		t.Fatalf("Redis GET %s:order:1/a = %q, %v; want %q", prefix, got, err, value)
	}
	if got, err := qs.GetRaw(ctx, "order:1/a"); err != nil || string(got) != value {
		t.Fatalf("GetRaw = %q, %v; want %q byte for byte", got, err, value)
	}
	// Another prefix is another namespace; so is the default one.
	if _, err := newQueryStore(t, c, prefix+"x").GetRaw(ctx, "order:1/a"); !errors.Is(err, nova.ErrNotFound) {
		t.Fatalf("other prefix: GetRaw = %v, want nova.ErrNotFound", err)
	}
	// An upsert drops an expiry set on the key.
	c.Expire(ctx, prefix+":order:1/a", time.Hour)
	if err := qs.UpsertRaw(ctx, "order:1/a", json.RawMessage(`1`)); err != nil {
		t.Fatal(err)
	}
	if ttl, err := c.TTL(ctx, prefix+":order:1/a").Result(); err != nil || ttl != -1 {
		t.Fatalf("TTL after upsert = %v, %v; want none (-1)", ttl, err)
	}
	def := newQueryStore(t, c, "")
	if def.Prefix() != novaredis.DefaultPrefix || def.Key("k") != "projection:k" {
		t.Fatalf("default prefix %q, key %q; want projection, projection:k", def.Prefix(), def.Key("k"))
	}
}

func TestNewQueryStoreBadInput(t *testing.T) {
	t.Parallel()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer c.Close()
	for _, prefix := range []string{"a\nb", "a\x00", "\xff", strings.Repeat("p", cqrs.MaxKeyLen+1)} {
		if _, err := novaredis.NewQueryStore(c, prefix); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("NewQueryStore(prefix %q) = %v, want nova.ErrInvalid", prefix, err)
		}
	}
	for _, tt := range []struct {
		ctx          context.Context
		addr, prefix string
	}{
		{context.Background(), "", ""},
		{context.Background(), "redis://a b:c", ""},
		{context.Background(), "http://127.0.0.1:6379", ""},
		{context.Background(), "127.0.0.1:1", "a\nb"},
	} {
		if qs, err := novaredis.Open(tt.ctx, tt.addr, tt.prefix); !errors.Is(err, nova.ErrInvalid) {
			qs.Close()
			t.Errorf("Open(%q, %q) = %v, want nova.ErrInvalid", tt.addr, tt.prefix, err)
		}
	}
}

func TestOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newClient(t)
	prefix := scratchPrefix(t, c)
	addrs := []string{serverURL(t)}
	if raw := testenv.Redis.Address(); !strings.Contains(raw, "://") {
		addrs = append(addrs, raw) // host:port, as NOVA_TEST_REDIS_ADDR gives it
	}
	for _, addr := range addrs {
		qs, err := novaredis.Open(ctx, addr, prefix)
		if err != nil {
			t.Fatalf("Open(%q): %v", addr, err)
		}
		if err := qs.UpsertRaw(ctx, "k", json.RawMessage(`{"v":1}`)); err != nil {
			t.Fatal(err)
		}
		if err := qs.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := qs.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if _, err := qs.GetRaw(ctx, "k"); !errors.Is(err, nova.ErrClosed) {
			t.Errorf("GetRaw after Close = %v, want nova.ErrClosed", err)
		}
		if err := qs.UpsertRaw(ctx, "k", json.RawMessage(`1`)); !errors.Is(err, nova.ErrClosed) {
			t.Errorf("UpsertRaw after Close = %v, want nova.ErrClosed", err)
		}
	}
	// The store from NewQueryStore leaves the caller's client open.
	qs := newQueryStore(t, c, prefix)
	if err := qs.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := qs.GetRaw(ctx, "k"); err != nil || string(got) != `{"v":1}` {
		t.Fatalf("GetRaw after closing a store on the caller's client = %s, %v", got, err)
	}
	// No server: Open fails and leaves nothing running (goleak checks).
	if qs, err := novaredis.Open(ctx, "127.0.0.1:1", ""); err == nil {
		qs.Close()
		t.Fatal("Open of a closed port succeeded")
	}
}
