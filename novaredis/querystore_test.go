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
	qs, err := novaredis.Open(context.Background(), novaredis.Config{Client: c, Prefix: prefix})
	if err != nil {
		t.Fatalf("Open(Prefix %q): %v", prefix, err)
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

func TestOpenBadConfig(t *testing.T) {
	t.Parallel()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer c.Close()
	for _, tt := range []struct {
		name  string
		cfg   novaredis.Config
		field string
	}{
		{"no URL nor client", novaredis.Config{}, "Config.URL"},
		{"URL and client", novaredis.Config{URL: "127.0.0.1:1", Client: c}, "Config.URL"},
		{"URL with a space", novaredis.Config{URL: "redis://a b:c"}, "Config.URL"},
		{"URL of another scheme", novaredis.Config{URL: "http://127.0.0.1:6379"}, "Config.URL"},
		{"prefix with a newline", novaredis.Config{URL: "127.0.0.1:1", Prefix: "a\nb"}, "Config.Prefix"},
		{"prefix with NUL", novaredis.Config{Client: c, Prefix: "a\x00"}, "Config.Prefix"},
		{"prefix not UTF-8", novaredis.Config{Client: c, Prefix: "\xff"}, "Config.Prefix"},
		{"prefix too long", novaredis.Config{Client: c, Prefix: strings.Repeat("p", cqrs.MaxKeyLen+1)}, "Config.Prefix"},
	} {
		qs, err := novaredis.Open(context.Background(), tt.cfg)
		var ie *nova.InvalidError
		if !errors.As(err, &ie) || ie.Field != tt.field {
			if qs != nil {
				qs.Close()
			}
			t.Errorf("%s: Open = %v, want an *nova.InvalidError naming %s", tt.name, err, tt.field)
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
		qs, err := novaredis.Open(ctx, novaredis.Config{URL: addr, Prefix: prefix})
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
	// A store on Config.Client leaves the caller's client open.
	qs := newQueryStore(t, c, prefix)
	if err := qs.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := qs.GetRaw(ctx, "k"); err != nil || string(got) != `{"v":1}` {
		t.Fatalf("GetRaw after closing a store on the caller's client = %s, %v", got, err)
	}
	// No server: Open fails and leaves nothing running (goleak checks).
	if qs, err := novaredis.Open(ctx, novaredis.Config{URL: "127.0.0.1:1"}); err == nil {
		qs.Close()
		t.Fatal("Open of a closed port succeeded")
	}
}
