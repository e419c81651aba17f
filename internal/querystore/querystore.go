// Package querystore holds the input checks every [cqrs.QueryStore]
// backend runs before any I/O, so that all of them accept the same keys
// and values. Applications never call them (they reach a query store
// through cqrs.GetProjection and cqrs.UpsertProjection), so they live
// here rather than in package cqrs. Errors are [*nova.InvalidError]s of
// package cqrs, matching [nova.ErrInvalid].
package querystore

import (
	"encoding/json"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/cqrs"
)

// invalidf returns package cqrs's error for bad input: these are the
// rules of cqrs.QueryStore, whichever backend runs them.
func invalidf(format string, args ...any) error {
	return nova.Invalidf("cqrs", format, args...)
}

// ValidateKey checks a projection key: non-empty, at most
// [cqrs.MaxKeyLen] bytes, valid UTF-8 and free of control characters. Any
// other character is allowed, ':' and '/' included, and stores must keep
// such keys apart (no escaping that makes two keys one).
func ValidateKey(key string) error {
	switch {
	case key == "":
		return invalidf("empty projection key")
	case len(key) > cqrs.MaxKeyLen:
		return invalidf("projection key of %d bytes is longer than the limit of %d", len(key), cqrs.MaxKeyLen)
	case !utf8.ValidString(key):
		return invalidf("projection key %q is not valid UTF-8", key)
	}
	if strings.IndexFunc(key, unicode.IsControl) >= 0 { // C0, DEL and C1
		return invalidf("projection key %q contains a control character", key)
	}
	return nil
}

// ValidateValue checks a projection value: valid JSON in valid UTF-8, of
// at most [cqrs.MaxValueLen] bytes.
func ValidateValue(key string, value json.RawMessage) error {
	switch {
	case len(value) > cqrs.MaxValueLen:
		return invalidf("projection %q: value of %d bytes is larger than the limit of %d", key, len(value), cqrs.MaxValueLen)
	case !utf8.Valid(value):
		return invalidf("projection %q: value is not valid UTF-8", key)
	case !json.Valid(value):
		return invalidf("projection %q: value is not valid JSON", key)
	}
	return nil
}

// ValidateUpsert checks what [cqrs.QueryStore.UpsertRaw] receives: the
// key by [ValidateKey], the value by [ValidateValue].
func ValidateUpsert(key string, value json.RawMessage) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	return ValidateValue(key, value)
}
