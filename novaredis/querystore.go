package novaredis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/internal/querystore"
	"github.com/nova-go/nova/internal/validate"
)

var _ cqrs.QueryStore = (*QueryStore)(nil)

// DefaultPrefix is the key prefix of a store given none.
const DefaultPrefix = "projection"

// Config configures [Open]. Exactly one of URL and Client is required;
// the zero value of Prefix means its default.
type Config struct {
	// URL is the Redis server's address: a redis:// or rediss:// URL, as
	// redis.ParseURL reads it ("redis://user:password@host:6379/0"), or a
	// plain host:port. The store connects to it and closes the connection
	// on Close.
	URL string

	// Client is a client the caller owns, used instead of URL: a single
	// server, Sentinel or Cluster. The store never closes it.
	Client redis.UniversalClient

	// Prefix starts the Redis key of every projection: the projection
	// under key is the string value of Prefix + ":" + key. It follows the
	// rules of a projection key ([cqrs.QueryStore]). Default
	// [DefaultPrefix].
	Prefix string
}

// validate checks the fields, naming the wrong one; it changes nothing.
func (c Config) validate() error {
	switch {
	case c.URL == "" && c.Client == nil:
		return validate.InvalidFieldf("novaredis", "Config.URL", "one of URL and Client is required")
	case c.URL != "" && c.Client != nil:
		return validate.InvalidFieldf("novaredis", "Config.URL", "set either URL or Client, not both")
	}
	if strings.Contains(c.URL, "://") {
		if _, err := redis.ParseURL(c.URL); err != nil {
			return validate.InvalidFieldf("novaredis", "Config.URL", "%v", err)
		}
	}
	if c.Prefix != "" {
		if err := querystore.ValidateKey(c.Prefix); err != nil {
			return validate.InvalidFieldf("novaredis", "Config.Prefix", "%v", err)
		}
	}
	return nil
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	return c
}

// QueryStore is a [cqrs.QueryStore] in Redis: the projection under key is
// the string value of the Redis key prefix + ":" + key. It is safe for
// concurrent use; Redis applies each upsert atomically, and of concurrent
// upserts of one key the last to arrive wins.
type QueryStore struct {
	client redis.UniversalClient
	prefix string
	owned  bool // Close closes client
}

// Open returns a query store on the server of cfg.URL or on cfg.Client,
// once the server has answered; ctx bounds that check only. A bad cfg
// fails with an error matching nova.ErrInvalid that names the field.
func Open(ctx context.Context, cfg Config) (*QueryStore, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	q := &QueryStore{client: cfg.Client, prefix: cfg.Prefix}
	if cfg.URL != "" {
		opts := &redis.Options{Addr: cfg.URL}
		if strings.Contains(cfg.URL, "://") {
			opts, _ = redis.ParseURL(cfg.URL) // checked by validate
		}
		q.client, q.owned = redis.NewClient(opts), true
	}
	if err := q.client.Ping(ctx).Err(); err != nil {
		q.Close()
		return nil, fmt.Errorf("novaredis: open: %w", err)
	}
	return q, nil
}

// Prefix returns the store's key prefix.
func (q *QueryStore) Prefix() string { return q.prefix }

// Key returns the Redis key holding the projection under key.
func (q *QueryStore) Key(key string) string { return q.prefix + ":" + key }

// Close closes the connection the store made to [Config.URL]; later calls
// fail with nova.ErrClosed. It leaves alone a [Config.Client], which its
// owner closes.
func (q *QueryStore) Close() error {
	if !q.owned {
		return nil
	}
	if err := q.client.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("novaredis: close: %w", err)
	}
	return nil
}

// GetRaw implements [cqrs.QueryStore].
func (q *QueryStore) GetRaw(ctx context.Context, key string) (json.RawMessage, error) {
	if err := querystore.ValidateKey(key); err != nil {
		return nil, fmt.Errorf("novaredis: get projection: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	v, err := q.client.Get(ctx, q.Key(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("novaredis: projection %q: %w", key, nova.ErrNotFound)
	}
	if err != nil {
		return nil, q.error(ctx, "get", key, err)
	}
	return v, nil
}

// UpsertRaw implements [cqrs.QueryStore]. It replaces the Redis key's
// value and drops any expiry set on it.
func (q *QueryStore) UpsertRaw(ctx context.Context, key string, value json.RawMessage) error {
	if err := querystore.ValidateUpsert(key, value); err != nil {
		return fmt.Errorf("novaredis: upsert projection: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := q.client.Set(ctx, q.Key(key), []byte(value), 0).Err(); err != nil {
		return q.error(ctx, "upsert", key, err)
	}
	return nil
}

// error wraps the client's err, leaving as they are the errors callers
// compare with: ctx's, and nova.ErrClosed for a closed client. An error
// a later attempt may cure is marked transient (see [markTransient]).
func (q *QueryStore) error(ctx context.Context, what, key string, err error) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, redis.ErrClosed):
		return nova.ErrClosed
	}
	return markTransient(fmt.Errorf("novaredis: %s projection %q: %w", what, key, err))
}

// markTransient marks err as transient (see [nova.IsTransient]) when a
// later attempt may succeed: the connection broke, could not be made or
// timed out, the client's pool had no connection free in time, or the
// server is loading its data, busy with a script, failing over or without
// a reachable primary.
func markTransient(err error) error {
	if err == nil || nova.IsTransient(err) {
		return err
	}
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, redis.ErrPoolTimeout),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE),
		errors.As(err, &ne):
		return nova.Transient(err)
	}
	for _, prefix := range []string{"LOADING", "BUSY", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN", "READONLY"} {
		if redis.HasErrorPrefix(err, prefix) {
			return nova.Transient(err)
		}
	}
	return err
}
