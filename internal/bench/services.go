package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/internal/services"
	"github.com/nova-go/nova/projection"
	"github.com/nova-go/nova/saga"
)

// Services are what a backend serves beside its events, for the saga and
// projection scenarios: saga runs, projection checkpoints and query
// stores, on the store's own database.
type Services = services.Services

// storeServices is the ServicesFunc of the backends that have services.
func storeServices(_ context.Context, s nova.Store) (Services, error) { return services.For(s) }

// errNoServices skips the saga and projection scenarios on a backend
// without [Backend.ServicesFunc].
var errNoServices = fmt.Errorf("the backend keeps no saga runs or checkpoints: %w", nova.ErrNotImplemented)

func (b Backend) services(ctx context.Context, t target) (Services, error) {
	nt, ok := t.(novaTarget)
	if !ok || b.ServicesFunc == nil {
		return Services{}, errNoServices
	}
	return b.ServicesFunc(ctx, nt.s)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type benchSagaData struct{}

func noopStep(name string) saga.Step[benchSagaData] {
	return saga.Step[benchSagaData]{Name: name, Execute: func(context.Context, saga.StepContext, *benchSagaData) error { return nil }}
}

// prepareSaga returns the timed part of a saga scenario on the nova side:
// in each slice, each of s.writers goroutines runs s.slice durable 3-step
// sagas of no-op steps to their end with saga.Run. The raw side has no
// counterpart: a saga's cost is Nova's own.
func (s scenario) prepareSaga(ctx context.Context, b Backend, t target, sz sizes) (job, error) {
	perWriter := sz.events / s.writers
	slices := (perWriter + s.slice - 1) / s.slice
	if _, ok := t.(novaTarget); !ok {
		return job{slices: slices, slice: func(context.Context, int) (int, error) { return 0, nil }}, nil
	}
	svc, err := b.services(ctx, t)
	if err != nil {
		return job{}, err
	}
	def, err := saga.Define("bench", noopStep("a"), noopStep("b"), noopStep("c"))
	if err != nil {
		return job{}, err
	}
	c, err := saga.NewCoordinator(saga.Config{Runs: svc.Runs, Logger: quiet})
	if err != nil {
		return job{}, err
	}
	writer := func(ctx context.Context, w, from, to int) error {
		for i := from; i < to; i++ {
			x, err := saga.Run(ctx, c, def, fmt.Sprintf("w%d-%d", w, i), benchSagaData{})
			if err != nil {
				return err
			}
			if x.Status != saga.Completed {
				return fmt.Errorf("saga run %s ended %s", x.RunID, x.Status)
			}
		}
		return nil
	}
	return job{slices: slices, slice: func(ctx context.Context, i int) (int, error) {
		from, to := i*s.slice, (i+1)*s.slice
		if i < slices {
			to = min(to, perWriter) // past the last, as a go test benchmark asks: more of the same
		}
		errs := make([]error, s.writers)
		var wg sync.WaitGroup
		for w := range s.writers {
			wg.Go(func() { errs[w] = writer(ctx, w, from, to) })
		}
		wg.Wait()
		return (to - from) * s.writers, errors.Join(errs...)
	}}, nil
}

// prepareProjection fills the log as the readall scenario does and returns
// the timed part: on the nova side, each slice catches a fresh projection
// up from the first event into a query-store table of its own, reading
// and upserting one document per stream for every event, with the
// checkpoint committed in the read model's transaction where the backend
// is SQL; on the raw side, each slice reads the whole log.
func (s scenario) prepareProjection(ctx context.Context, b Backend, t target, sz sizes) (job, error) {
	var svc Services
	if _, ok := t.(novaTarget); ok {
		var err error
		if svc, err = b.services(ctx, t); err != nil {
			return job{}, err
		}
	}
	if err := fillLog(ctx, t, sz.events); err != nil {
		return job{}, err
	}
	nt, ok := t.(novaTarget)
	if !ok {
		return readAllJob(t, sz), nil
	}
	var head nova.Position
	for e, err := range nt.s.ReadAll(ctx, nova.ReadAllOptions{}) {
		if err != nil {
			return job{}, err
		}
		head = e.Position
	}
	return job{slices: sz.reads, slice: func(ctx context.Context, i int) (int, error) {
		return catchUp(ctx, nt.s, svc, i, head, sz.events)
	}}, nil
}

type streamCount struct {
	Events int    `json:"events"`
	Last   string `json:"last"`
}

// catchUp runs projection number i from the first event to the head and
// returns how many events it handled.
func catchUp(ctx context.Context, store nova.Store, svc Services, i int, head nova.Position, want int) (int, error) {
	qs, err := svc.QueryStore(ctx, fmt.Sprintf("bench_projection_%d", i))
	if err != nil {
		return 0, err
	}
	p, err := projection.New(fmt.Sprintf("bench-%d", i), nova.NewRegistry(nova.RegistryOptions{}))
	if err != nil {
		return 0, err
	}
	err = projection.OnType(p, EventType, func(ctx context.Context, e nova.Event) error {
		c, err := cqrs.GetProjection[streamCount](ctx, qs, e.Stream)
		if err != nil && !errors.Is(err, nova.ErrNotFound) {
			return err
		}
		c.Events++
		c.Last = e.ID
		return cqrs.UpsertProjection(ctx, qs, e.Stream, c)
	})
	if err != nil {
		return 0, err
	}
	r, err := projection.NewRunner(projection.Config{Store: store, Projection: p, Checkpoints: svc.Checkpoints, BatchSize: 500})
	if err != nil {
		return 0, err
	}
	if err := r.Start(ctx); err != nil {
		return 0, err
	}
	werr := r.WaitFor(ctx, head)
	serr := r.Stop(context.WithoutCancel(ctx))
	if err := errors.Join(werr, serr); err != nil {
		return 0, err
	}
	if st := r.Status(); st.Handled != uint64(want) {
		return 0, fmt.Errorf("projection handled %d events, want %d", st.Handled, want)
	}
	return want, nil
}
