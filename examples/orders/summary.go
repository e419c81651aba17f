package orders

import (
	"context"
	"errors"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/projection"
)

// SummaryProjection is the name of the order-summary projection.
const SummaryProjection = "order-summary"

// Summary is the read model of one order, kept by the order-summary
// projection under the key "order:{id}" of a query store.
type Summary struct {
	OrderID  string `json:"order_id"`
	Customer string `json:"customer"`
	Status   Status `json:"status"`
	Items    int    `json:"items"`
	Total    int64  `json:"total"`
	Paid     int64  `json:"paid,omitempty"`
	// Reason is the cancellation reason of a cancelled order.
	Reason string `json:"reason,omitempty"`
	// Version is the order stream's version the summary reflects: an
	// event at or below it is not applied again.
	Version   uint64    `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
}

// SummaryKey returns the query-store key of an order's summary.
func SummaryKey(orderID string) string { return "order:" + orderID }

// NewSummaryProjection returns the order-summary projection: it keeps a
// [Summary] per order in qs. Each handler reads the summary, applies the
// event and writes it back. The summary records the order stream's
// version it reflects and skips an event at or below it, so the
// projection is idempotent even where delivery is at least once; with a
// SQL query store and transactional checkpoints each event is applied
// exactly once anyway.
func NewSummaryProjection(reg *nova.Registry, qs cqrs.QueryStore) (*projection.Projection, error) {
	p, err := projection.New(SummaryProjection, reg)
	if err != nil {
		return nil, err
	}
	err = errors.Join(
		summarize(p, qs, func(s *Summary, e Placed) {
			s.Customer, s.Status, s.Total = e.Customer, StatusPlaced, e.Total
			for _, l := range e.Lines {
				s.Items += l.Quantity
			}
		}),
		summarize(p, qs, func(s *Summary, _ StockReserved) { s.Status = StatusReserved }),
		summarize(p, qs, func(s *Summary, e Paid) { s.Status, s.Paid = StatusPaid, e.Amount }),
		summarize(p, qs, func(s *Summary, _ Shipped) { s.Status = StatusShipped }),
		summarize(p, qs, func(s *Summary, e Cancelled) {
			s.Status, s.Reason = StatusCancelled, e.Reason
			s.Paid -= e.Refund
		}),
	)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// orderID returns the ID of the order an order event belongs to.
func orderID(e nova.Event) string {
	if len(e.Stream) > len(Category)+1 {
		return e.Stream[len(Category)+1:]
	}
	return e.Stream
}

func summarize[T any](p *projection.Projection, qs cqrs.QueryStore, apply func(*Summary, T)) error {
	return projection.On(p, func(ctx context.Context, e nova.Event, v T) error {
		id := orderID(e)
		key := SummaryKey(id)
		s, err := cqrs.GetProjection[Summary](ctx, qs, key)
		if err != nil && !errors.Is(err, nova.ErrNotFound) {
			return err
		}
		if e.Version <= s.Version {
			return nil // applied before
		}
		s.OrderID = id
		apply(&s, v)
		s.Version, s.UpdatedAt = e.Version, e.RecordedAt
		return cqrs.UpsertProjection(ctx, qs, key, s)
	})
}

// GetSummary is the query that reads an order's summary: a cqrs.Query
// run against the query store the projection writes.
type GetSummary struct {
	OrderID string
}

var _ cqrs.Query[Summary] = GetSummary{}

// Execute implements cqrs.Query. An order the projection has not seen
// yet fails with an error matching [ErrNotFound].
func (q GetSummary) Execute(ctx context.Context, qs cqrs.QueryStore) (Summary, error) {
	if err := validateText("order ID", q.OrderID); err != nil {
		return Summary{}, err
	}
	s, err := cqrs.GetProjection[Summary](ctx, qs, SummaryKey(q.OrderID))
	if errors.Is(err, nova.ErrNotFound) {
		return Summary{}, errors.Join(ErrNotFound, err)
	}
	return s, err
}
