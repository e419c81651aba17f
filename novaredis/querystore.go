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
)

var _ cqrs.QueryStore = (*QueryStore)(nil)

// DefaultPrefix is the key prefix of a store given none.
const DefaultPrefix = "projection"

// QueryStore is a [cqrs.QueryStore] in Redis: the projection under key is
// the string value of the Redis key prefix + ":" + key. It is safe for
// concurrent use; Redis applies each upsert atomically, and of concurrent
// upserts of one key the last to arrive wins.
type QueryStore struct {
	client redis.UniversalClient
	prefix string
	owned  bool // Close closes client
}

// NewQueryStore returns a query store on client, which the caller owns
// and closes, under prefix ("" means [DefaultPrefix]). A prefix follows
// the rules of a projection key ([cqrs.QueryStore]). A bad prefix fails with an error matching nova.ErrInvalid.
func NewQueryStore(client redis.UniversalClient, prefix string) (*QueryStore, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if err := querystore.ValidateKey(prefix); err != nil {
		return nil, fmt.Errorf("novaredis: new query store: prefix: %w", err)
	}
	return &QueryStore{client: client, prefix: prefix}, nil
}

// Open connects to the Redis server at addr, a redis:// or rediss:// URL
// (as redis.ParseURL reads it: "redis://user:password@host:6379/0") or a
// plain host:port, checks that it answers, and returns a query store
// under prefix ("" means [DefaultPrefix]) that owns the connection:
// [QueryStore.Close] closes it. A bad addr or prefix fails with an error
// matching nova.ErrInvalid.
func Open(ctx context.Context, addr, prefix string) (*QueryStore, error) {
	opts := &redis.Options{Addr: addr}
	if strings.Contains(addr, "://") {
		var err error
		if opts, err = redis.ParseURL(addr); err != nil {
			return nil, nova.Invalidf("novaredis", "open: %v", err)
		}
	} else if addr == "" {
		return nil, nova.Invalidf("novaredis", "open: empty address")
	}
	client := redis.NewClient(opts)
	q, err := NewQueryStore(client, prefix)
	if err == nil {
		err = client.Ping(ctx).Err()
		if err != nil {
			err = fmt.Errorf("novaredis: open %s: %w", opts.Addr, err)
		}
	}
	if err != nil {
		client.Close()
		return nil, err
	}
	q.owned = true
	return q, nil
}

// Prefix returns the store's key prefix.
func (q *QueryStore) Prefix() string { return q.prefix }

// Key returns the Redis key holding the projection under key.
func (q *QueryStore) Key(key string) string { return q.prefix + ":" + key }

// Close closes the connection of a store from [Open]; later calls fail
// with nova.ErrClosed. It leaves alone the client given to
// [NewQueryStore], which its owner closes.
func (q *QueryStore) Close() error {
	if q == nil || !q.owned {
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
