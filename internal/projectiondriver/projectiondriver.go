// Package projectiondriver holds what the checkpoint stores of package
// projection share and applications never call: the checks of the
// arguments of projection.TxCheckpoints, projection.Leaser and
// projection.Rebuilder methods, the names a rebuild gives its shadow
// tables and its checkpoint, and the context mark of a rebuild. It is to
// package projection what database/sql/driver is to database/sql: the
// projection runner and the backends of this module meet here, and
// package projection's exported API lists only what applications use.
// Errors are [*nova.InvalidError]s of package projection, matching
// [nova.ErrInvalid].
package projectiondriver

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nova-go/nova"
)

// invalidf returns package projection's error for bad input.
func invalidf(format string, args ...any) error {
	return nova.Invalidf("projection", format, args...)
}

// validateName checks a projection name: the rules of a stream ID.
func validateName(name string) error {
	if err := nova.ValidateStream(name); err != nil {
		return invalidf("projection name: %v", err)
	}
	return nil
}

type rebuildKey struct{}

// ShadowSuffix is appended to a table's name for its rebuild shadow.
const ShadowSuffix = "__rebuild"

// RebuildSuffix is appended to a projection's name for the checkpoint
// (and lease) of its rebuild.
const RebuildSuffix = "@rebuild"

// ValidateTable checks a read-model table name for projection.Config.Tables and
// the backends' Prepare and Swap: an SQL identifier of ASCII letters,
// digits and underscores, not starting with a digit, optionally
// qualified by a schema ("schema.table"), at most 63 bytes for the schema
// and 54 for the table (so that its shadow's name fits PostgreSQL's 63),
// and not a shadow's name. Anything else fails with an error matching
// [nova.ErrInvalid]: the backends splice the name into SQL.
func ValidateTable(name string) error {
	schema, table, qualified := strings.Cut(name, ".")
	if !qualified {
		schema, table = "", name
	} else if !isIdent(schema, 63) {
		return invalidf("table %q: schema %q is not a plain SQL identifier", name, schema)
	}
	if !isIdent(table, 63-len(ShadowSuffix)) {
		return invalidf("table %q: not a plain SQL identifier ([A-Za-z_][A-Za-z0-9_]*, at most %d bytes so that its shadow's name fits)", name, 63-len(ShadowSuffix))
	}
	if strings.HasSuffix(table, ShadowSuffix) {
		return invalidf("table %q: names ending in %q are rebuild shadows", name, ShadowSuffix)
	}
	return nil
}

func isIdent(s string, maxLen int) bool {
	if s == "" || len(s) > maxLen || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '_' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// Rebuilding reports whether ctx is a rebuild's: read-model writes go to
// the shadow tables.
func Rebuilding(ctx context.Context) bool {
	v, _ := ctx.Value(rebuildKey{}).(bool)
	return v
}

// WithRebuild marks ctx as a rebuild's. The runner does this; backends'
// tests use it. projection.Table and projection.Rebuilding read the mark.
func WithRebuild(ctx context.Context) context.Context {
	return context.WithValue(ctx, rebuildKey{}, true)
}

// ValidateCommit checks the arguments of a projection.TxCheckpoints Commit, for
// the backends: a projection name, an owner that is empty or a valid name,
// and to not before from. Anything else fails with an error matching
// [nova.ErrInvalid].
func ValidateCommit(name, owner string, from, to nova.Position) error {
	if err := validateName(name); err != nil {
		return err
	}
	switch {
	case owner != "" && nova.ValidateStream(owner) != nil:
		return invalidf("commit %q: owner: %v", name, nova.ValidateStream(owner))
	case to.Less(from):
		return invalidf("commit %q: %s is before %s", name, to, from)
	}
	return nil
}

// ValidateLease checks the arguments of a projection.Leaser call, for the
// backends: a projection name and an owner's name. ttl is checked when
// not nil: it must be positive. Anything else fails with an error matching
// [nova.ErrInvalid].
func ValidateLease(name, owner string, ttl *time.Duration) error {
	if err := validateName(name); err != nil {
		return err
	}
	if err := nova.ValidateStream(owner); err != nil {
		return invalidf("lease on %q: owner: %v", name, err)
	}
	if ttl != nil && *ttl <= 0 {
		return invalidf("lease on %q: ttl %s is not positive", name, *ttl)
	}
	return nil
}

// ValidateTables checks the arguments of a projection.Rebuilder Prepare or Swap,
// for the backends: at least one table, each valid by [ValidateTable].
// Anything else fails with an error matching [nova.ErrInvalid].
func ValidateTables(tables []string) error {
	if len(tables) == 0 {
		return invalidf("no tables")
	}
	for _, t := range tables {
		if err := ValidateTable(t); err != nil {
			return err
		}
	}
	return nil
}

// ValidateSwap checks the arguments of a projection.Rebuilder Swap, for the
// backends: those of ValidateTables, and two different projection names.
func ValidateSwap(name, shadow string, tables []string) error {
	if err := ValidateTables(tables); err != nil {
		return err
	}
	if err := errors.Join(validateName(name), validateName(shadow)); err != nil {
		return err
	}
	if name == shadow {
		return invalidf("swap %q: the shadow checkpoint is the projection's own", name)
	}
	return nil
}
