package projectiondriver_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/projectiondriver"
	"github.com/nova-go/nova/projection"
)

func TestValidateTable(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		wantErr bool
	}{
		{"orders", false}, {"public.order_totals", false}, {"_t9", false},
		{strings.Repeat("t", 54), false}, {strings.Repeat("s", 63) + ".t", false},
		{"", true}, {"9t", true}, {"order-totals", true}, {"t;drop", true}, {"a.b.c", true},
		{strings.Repeat("t", 55), true}, {strings.Repeat("s", 64) + ".t", true},
		{"orders" + projectiondriver.ShadowSuffix, true}, {"s.orders" + projectiondriver.ShadowSuffix, true},
	} {
		err := projectiondriver.ValidateTable(tt.name)
		if (err != nil) != tt.wantErr || err != nil && !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("ValidateTable(%q) = %v, want error %v", tt.name, err, tt.wantErr)
		}
	}
}

func TestValidateCalls(t *testing.T) {
	t.Parallel()
	ttl, zero := time.Second, time.Duration(0)
	p1, p2 := nova.Position{Commit: 1}, nova.Position{Commit: 2}
	for _, tt := range []struct {
		name string
		err  error
		ok   bool
	}{
		{"commit", projectiondriver.ValidateCommit("p", "w", p1, p2), true},
		{"commit same position", projectiondriver.ValidateCommit("p", "", p1, p1), true},
		{"commit backwards", projectiondriver.ValidateCommit("p", "", p2, p1), false},
		{"commit bad owner", projectiondriver.ValidateCommit("p", "w\n", p1, p2), false},
		{"lease", projectiondriver.ValidateLease("p", "w", &ttl), true},
		{"lease no ttl", projectiondriver.ValidateLease("p", "w", nil), true},
		{"lease zero ttl", projectiondriver.ValidateLease("p", "w", &zero), false},
		{"lease empty owner", projectiondriver.ValidateLease("p", "", nil), false},
		{"lease empty name", projectiondriver.ValidateLease("", "w", nil), false},
		{"tables", projectiondriver.ValidateTables([]string{"a", "b"}), true},
		{"no tables", projectiondriver.ValidateTables(nil), false},
		{"swap", projectiondriver.ValidateSwap("p", "p@rebuild", []string{"a"}), true},
		{"swap onto itself", projectiondriver.ValidateSwap("p", "p", []string{"a"}), false},
		{"swap bad table", projectiondriver.ValidateSwap("p", "q", []string{"a-b"}), false},
	} {
		if (tt.err == nil) != tt.ok || tt.err != nil && !errors.Is(tt.err, nova.ErrInvalid) {
			t.Errorf("%s: %v, want ok %v", tt.name, tt.err, tt.ok)
		}
	}
}

// The mark WithRebuild sets is the one projection.Table and
// projection.Rebuilding read.
func TestRebuildMark(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if projection.Rebuilding(ctx) || projection.Table(ctx, "orders") != "orders" {
		t.Fatal("a plain ctx reads as a rebuild's")
	}
	rctx := projectiondriver.WithRebuild(ctx)
	if !projection.Rebuilding(rctx) || !projectiondriver.Rebuilding(rctx) {
		t.Fatal("a rebuild's ctx does not read as one")
	}
	if got, want := projection.Table(rctx, "orders"), "orders"+projectiondriver.ShadowSuffix; got != want {
		t.Fatalf("Table = %q, want %q", got, want)
	}
}
