package novapg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/nova-go/nova"
)

// TestTransient: the errors a later attempt may cure (connection loss,
// admin shutdown 57P01..57P03, serialization failure 40001, deadlock
// 40P01, a connection left closed) are marked transient for the
// projection runner and the saga workers; the others are left alone.
func TestTransient(t *testing.T) {
	t.Parallel()
	pg := func(code string) error { return &pgconn.PgError{Code: code, Message: code} }
	for _, tc := range []struct {
		err    error
		broken bool
		want   bool
	}{
		{pg("57P01"), false, true},
		{pg("57P02"), false, true},
		{pg("57P03"), false, true},
		{fmt.Errorf("projection: handler failed: %w", pg("40001")), false, true},
		{pg("40P01"), false, true},
		{pg("08006"), false, true},
		{io.ErrUnexpectedEOF, false, true},
		{errors.New("the handler's own words"), true, true},
		{pg("23505"), false, false},
		{errors.New("bad order"), false, false},
		{context.Canceled, true, false},
		{&nova.ConcurrencyError{Stream: "s"}, false, false},
	} {
		got := transient(tc.err, tc.broken)
		if nova.IsTransient(got) != tc.want || !errors.Is(got, tc.err) {
			t.Errorf("transient(%v, broken %v): transient %v, want %v (and the error kept)", tc.err, tc.broken, nova.IsTransient(got), tc.want)
		}
	}
	if transient(nil, true) != nil {
		t.Error("transient(nil) != nil")
	}
}
