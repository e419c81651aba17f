package novapg

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/nova-go/nova/projection"
)

var _ projection.HoldReporter = (*Store)(nil)

// Holder is an append of this store's schema that is still running, in
// a transaction not yet committed or rolled back: readers (ReadAll,
// Subscribe, every projection) stop before its events and before every
// event appended after it began, until its transaction ends. That is
// the price of a gap-free log; an append in [Store.AppendTx] whose
// caller keeps the transaction open holds readers for as long.
type Holder struct {
	// PID is the server process of the holding session, for
	// pg_stat_activity or pg_terminate_backend.
	PID int32
	// Application is the session's application_name.
	Application string
	// Since is when its transaction began (zero when the server does
	// not show it).
	Since time.Time
	// State is the session's state: "idle in transaction" means the
	// application holds the transaction open and does nothing in it.
	State string
	// Query is the session's current or last statement.
	Query string
}

// Holder returns the running append that holds this store's readers
// back the furthest, and false when no append is running. A holder seen
// once is normal (every append holds readers while it commits); one that
// stays, with an old Since, is a transaction to look at.
func (s *Store) Holder(ctx context.Context) (Holder, bool, error) {
	if err := s.checkOpen(); err != nil {
		return Holder{}, false, err
	}
	var (
		h     Holder
		guard int64
		since pgtype.Timestamptz
	)
	err := s.pool.QueryRow(ctx, s.sql.holder).Scan(&guard, &h.PID, &h.Application, &since, &h.State, &h.Query)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return Holder{}, false, nil
	case err != nil:
		return Holder{}, false, readError("find the oldest running append", err)
	}
	if since.Valid {
		h.Since = since.Time.UTC()
	}
	return h, true, nil
}

// HeldBy implements projection.HoldReporter: it describes the running
// append that holds readers back, when its transaction began at least
// min ago, or returns "".
func (s *Store) HeldBy(ctx context.Context, min time.Duration) (string, error) {
	h, ok, err := s.Holder(ctx)
	if err != nil || !ok || h.Since.IsZero() || time.Since(h.Since) < min {
		return "", err
	}
	app := ""
	if h.Application != "" {
		app = " (" + h.Application + ")"
	}
	return fmt.Sprintf("an append in a transaction open for %s: server process %d%s, %s", time.Since(h.Since).Round(time.Second), h.PID, app, h.State), nil
}
