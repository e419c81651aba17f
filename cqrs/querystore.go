package cqrs

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nova-go/nova"
)

// Limits every [QueryStore] enforces, so a read model written through one
// backend can be moved to any other.
const (
	// MaxKeyLen is the longest projection key, in bytes.
	MaxKeyLen = 256
	// MaxValueLen is the largest projection value, in bytes.
	MaxValueLen = nova.MaxDataLen
)

// QueryStore keeps read models: JSON documents ("projections") by key,
// read and written raw; [GetProjection] and [UpsertProjection] are its
// typed helpers and work on every implementation.
//
// Implementations are safe for concurrent use and pass
// novatest.RunQueryStore. A key is non-empty, at most [MaxKeyLen] bytes,
// valid UTF-8 and free of control characters; any other character is
// allowed, ':' and '/' included, and keys are kept apart as given. A
// value is valid JSON in valid UTF-8, of at most [MaxValueLen] bytes.
type QueryStore interface {
	// GetRaw returns the value stored under key, a copy the caller may
	// keep and modify. A key with no value fails with an error matching
	// [nova.ErrNotFound]. Backends that store JSON in a native type may
	// return it re-encoded (other spacing or key order), never with
	// another meaning.
	GetRaw(ctx context.Context, key string) (json.RawMessage, error)
	// UpsertRaw stores value under key, replacing what was there. A value
	// that is not valid JSON or a bad key fails with an error matching
	// [nova.ErrInvalid] and writes nothing. Concurrent
	// upserts of one key leave one of the values whole: the last to
	// commit wins.
	UpsertRaw(ctx context.Context, key string, value json.RawMessage) error
}

// GetProjection reads the projection under key into a T. A missing key
// fails with an error matching [nova.ErrNotFound]; a value that does not
// decode into T fails with the decoder's error, wrapped.
func GetProjection[T any](ctx context.Context, qs QueryStore, key string) (T, error) {
	var v T
	raw, err := qs.GetRaw(ctx, key)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, fmt.Errorf("cqrs: decode projection %q into %T: %w", key, v, err)
	}
	return v, nil
}

// UpsertProjection stores v, encoded as JSON, under key. A value that does
// not encode fails with an error matching [nova.ErrInvalid] and writes
// nothing.
func UpsertProjection[T any](ctx context.Context, qs QueryStore, key string, v T) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return invalidf("encode projection %q from %T: %w", key, v, err)
	}
	return qs.UpsertRaw(ctx, key, raw)
}

// invalidf returns this package's error for bad input, an
// [*nova.InvalidError].
func invalidf(format string, args ...any) error {
	return nova.Invalidf("cqrs", format, args...)
}
