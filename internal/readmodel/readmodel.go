// Package readmodel holds what the SQL query stores (novasqlite,
// novapg, novamysql) share: the default name of their table, the rule
// for table names, and how they report a failed read or write.
package readmodel

import (
	"context"
	"errors"
	"fmt"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/projectiondriver"
)

// DefaultTable is the table a SQL query store uses when given none.
const DefaultTable = "projections"

// MaxTableLen is the longest table name, in bytes: with
// projectiondriver.ShadowSuffix added it stays within the 63 bytes PostgreSQL
// and MySQL allow an identifier.
const MaxTableLen = 63 - len(projectiondriver.ShadowSuffix)

// CheckTable returns table, or [DefaultTable] when it is empty, after
// checking that it is a plain SQL identifier: a lower-case letter or an
// underscore, then lower-case letters, digits or underscores, at most
// [MaxTableLen] bytes. Lower case only, so that the name reads the same
// in every database's own SQL, quoted or not. Errors match
// nova.ErrInvalid and start with pkg.
func CheckTable(pkg, table string) (string, error) {
	if table == "" {
		return DefaultTable, nil
	}
	if len(table) > MaxTableLen {
		return "", nova.Invalidf(pkg, "table name %q is longer than %d bytes", table, MaxTableLen)
	}
	for i := 0; i < len(table); i++ {
		c := table[i]
		switch {
		case c >= 'a' && c <= 'z', c == '_':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return "", nova.Invalidf(pkg, "table name %q: want a lower-case identifier (a-z or _, then a-z, 0-9 or _)", table)
		}
	}
	return table, nil
}

// Error wraps err, from reading or writing the projection under key, as
// "pkg: what projection key: err", leaving as they are the errors
// callers compare with: context errors and nova.ErrClosed.
func Error(pkg, what, key string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nova.ErrClosed) {
		return err
	}
	return fmt.Errorf("%s: %s projection %q: %w", pkg, what, key, err)
}

// NotFound is the error of a read of a key with no value.
func NotFound(pkg, key string) error {
	return fmt.Errorf("%s: projection %q: %w", pkg, key, nova.ErrNotFound)
}

// Escapes reports whether value, valid JSON, holds the escape \u0000,
// and whether it holds a \u escape of a lone UTF-16 surrogate (one not
// part of a high-low pair). Some stores cannot keep such strings as they
// are: PostgreSQL's jsonb neither; Go's decoder turns a lone surrogate
// into U+FFFD.
func Escapes(value []byte) (nul, loneSurrogate bool) {
	high := false // the previous escape was a high surrogate
	for i := 0; i < len(value); i++ {
		if value[i] != '\\' {
			loneSurrogate = loneSurrogate || high
			high = false
			continue
		}
		i++ // value is valid JSON: an escaped character follows
		if value[i] != 'u' {
			loneSurrogate = loneSurrogate || high
			high = false
			continue
		}
		var r rune
		for _, c := range value[i+1 : i+5] {
			r <<= 4
			switch {
			case c >= '0' && c <= '9':
				r |= rune(c - '0')
			case c >= 'a' && c <= 'f':
				r |= rune(c - 'a' + 10)
			default:
				r |= rune(c - 'A' + 10)
			}
		}
		i += 4
		switch {
		case r >= 0xdc00 && r <= 0xdfff:
			loneSurrogate = loneSurrogate || !high
			high = false
		default:
			loneSurrogate = loneSurrogate || high
			high = r >= 0xd800 && r <= 0xdbff
			nul = nul || r == 0
		}
	}
	return nul, loneSurrogate || high
}
