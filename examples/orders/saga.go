package orders

import (
	"context"
	"errors"

	"github.com/nova-go/nova/saga"
)

// SagaName is the name of the fulfilment saga.
const SagaName = "fulfil"

// CompensatedReason is the cancellation reason the fulfilment saga
// records when it undoes an order.
const CompensatedReason = "fulfilment compensated"

// Fulfilment is the data the fulfilment saga's steps share: the order
// placed, then what each step produced.
type Fulfilment struct {
	Order         PlaceOrder `json:"order"`
	ReservationID string     `json:"reservation_id,omitempty"`
	PaymentID     string     `json:"payment_id,omitempty"`
	TrackingID    string     `json:"tracking_id,omitempty"`
}

// FulfilSaga returns the order flow of [Service.Fulfil] as a durable saga:
// place → reserve stock → charge payment → ship. Each step is safe to run
// again (a step runs at least once): it first looks at the order's
// recorded state and the outside systems are keyed by order ID. A refusal
// from the outside world (out of stock, payment declined) is permanent, so
// it is not retried; the saga then compensates the steps done, last
// first: refund the charge, release the stock and cancel the order with
// [CompensatedReason].
//
// Unlike Fulfil, the run survives a crash: a worker resumes it from its
// stream. Use the order ID as the run ID.
func FulfilSaga(svc *Service) (*saga.Definition[Fulfilment], error) {
	return saga.Define(SagaName,
		saga.Step[Fulfilment]{Name: "place", Execute: svc.sagaPlace, Compensate: svc.sagaCancel},
		saga.Step[Fulfilment]{Name: "reserve", Execute: svc.sagaReserve, Compensate: svc.sagaRelease},
		saga.Step[Fulfilment]{Name: "charge", Execute: svc.sagaCharge, Compensate: svc.sagaRefund},
		saga.Step[Fulfilment]{Name: "ship", Execute: svc.sagaShip},
	)
}

func (s *Service) sagaPlace(ctx context.Context, _ saga.StepContext, f *Fulfilment) error {
	if err := f.Order.Validate(); err != nil {
		return saga.Permanent(err)
	}
	_, err := s.Place(ctx, f.Order)
	if errors.Is(err, ErrAlreadyPlaced) {
		return nil // an earlier attempt placed it
	}
	return err
}

func (s *Service) sagaCancel(ctx context.Context, _ saga.StepContext, f *Fulfilment) error {
	_, err := s.update(ctx, f.Order.OrderID, func(o *Order) ([]any, error) {
		if o.Status == StatusCancelled || o.Status == "" {
			return nil, nil
		}
		return o.Cancel(CompensatedReason)
	})
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

func (s *Service) sagaReserve(ctx context.Context, _ saga.StepContext, f *Fulfilment) error {
	o, err := s.Get(ctx, f.Order.OrderID)
	if err != nil {
		return err
	}
	if o.ReservationID != "" {
		f.ReservationID = o.ReservationID
		return nil
	}
	if err := o.CanReserve(); err != nil {
		return saga.Permanent(err)
	}
	resID, err := s.inv.Reserve(ctx, o.ID, o.Lines)
	if errors.Is(err, ErrOutOfStock) {
		return saga.Permanent(err)
	}
	if err != nil {
		return err
	}
	if _, err := s.update(ctx, o.ID, func(o *Order) ([]any, error) { return o.ReserveStock(resID) }); err != nil {
		return err
	}
	f.ReservationID = resID
	return nil
}

func (s *Service) sagaRelease(ctx context.Context, _ saga.StepContext, f *Fulfilment) error {
	return s.inv.Release(ctx, f.Order.OrderID)
}

func (s *Service) sagaCharge(ctx context.Context, _ saga.StepContext, f *Fulfilment) error {
	o, err := s.Get(ctx, f.Order.OrderID)
	if err != nil {
		return err
	}
	if o.PaymentID != "" {
		f.PaymentID = o.PaymentID
		return nil
	}
	if err := o.CanPay(o.Total); err != nil {
		return saga.Permanent(err)
	}
	payID, err := s.pay.Charge(ctx, o.ID, o.Total)
	if errors.Is(err, ErrPaymentDeclined) {
		return saga.Permanent(err)
	}
	if err != nil {
		return err
	}
	if _, err := s.update(ctx, o.ID, func(o *Order) ([]any, error) { return o.Pay(o.Total, payID) }); err != nil {
		return err
	}
	f.PaymentID = payID
	return nil
}

func (s *Service) sagaRefund(ctx context.Context, _ saga.StepContext, f *Fulfilment) error {
	return s.pay.Refund(ctx, f.Order.OrderID)
}

func (s *Service) sagaShip(ctx context.Context, _ saga.StepContext, f *Fulfilment) error {
	o, err := s.Get(ctx, f.Order.OrderID)
	if err != nil {
		return err
	}
	if o.TrackingID != "" {
		f.TrackingID = o.TrackingID
		return nil
	}
	o, err = s.update(ctx, o.ID, func(o *Order) ([]any, error) { return o.Ship("TRK-" + o.ID) })
	if err != nil {
		return err
	}
	f.TrackingID = o.TrackingID
	return nil
}
