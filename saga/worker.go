package saga

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/startstop"
)

// Defaults of [WorkerConfig].
const (
	// DefaultConcurrency is the most runs a worker drives at once.
	DefaultConcurrency = 4
	// DefaultPollInterval is how often a worker asks for due runs when
	// nothing tells it sooner.
	DefaultPollInterval = time.Second
)

// maxClaimBackoff caps the pause after failed claims or runs.
const maxClaimBackoff = time.Minute

// WorkerConfig configures a [Worker]. The zero value means the defaults
// given for each field.
type WorkerConfig struct {
	// Concurrency is the most runs the worker drives at once. Default
	// [DefaultConcurrency].
	Concurrency int
	// PollInterval is how often the worker asks the store for due runs
	// when nothing tells it sooner (a run started on its coordinator, a
	// retry it released coming due). Default [DefaultPollInterval].
	PollInterval time.Duration
	// NoRelay, when true, keeps the worker from relaying the outbox to
	// the coordinator's Broker (because a relay runs elsewhere). A worker
	// on a coordinator without a Broker relays nothing either way.
	NoRelay bool
}

// validate reports the first bad field; it changes nothing.
func (c WorkerConfig) validate() error {
	if c.Concurrency < 0 {
		return nova.Invalidf("saga", "negative WorkerConfig.Concurrency %d", c.Concurrency)
	}
	if c.PollInterval < 0 {
		return nova.Invalidf("saga", "negative WorkerConfig.PollInterval %s", c.PollInterval)
	}
	return nil
}

// withDefaults returns c with each zero field set to its default.
func (c WorkerConfig) withDefaults() WorkerConfig {
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	return c
}

// Worker drives the due runs of the sagas registered with it: it claims
// them from the coordinator's [RunStore] with a lease, folds each from its
// stream, and takes its next actions under the lease, renewing it while a
// step runs. Every write is fenced: a worker whose lease expired (or whose
// run an operator changed) fails to record, drops the run and leaves it to
// whoever holds it now. A retry's wait is the run's due time: the worker
// records it, releases the run and claims it again when it is due, so no
// goroutine sleeps through a backoff.
//
// A run interrupted mid-attempt (its worker stopped, crashed or lost its
// lease) is resumed from its stream by the next worker to claim it: the
// interrupted attempt's outcome is unknown, so it is recorded as failed
// with an unknown outcome and the retry policy decides, as after a
// timeout; the step is then compensated if it fails for good. Steps run at
// least once, keyed by their idempotency key.
//
// Create a worker with [NewWorker], add definitions with [Register], then
// [Worker.Start] it; [Worker.Stop] ends it. A stopped worker may be
// started again: it runs one run at a time (see [Worker.Start]).
type Worker struct {
	c     *Coordinator
	cfg   WorkerConfig
	owner string
	// life owns the goroutines of each run: the claim loop, the relay,
	// and every attempt of a step or compensation, those abandoned after
	// a timeout included.
	life startstop.Lifecycle

	mu       sync.Mutex
	handlers map[string]handler
}

// handler drives one claimed run of a registered saga; the attempts it
// starts join group.
type handler func(ctx context.Context, run RunInfo, claimed time.Time, group *sync.WaitGroup) (time.Time, error)

// NewWorker returns a worker on c. Its lease owner ID is c's Owner with a
// suffix unique to the worker, so two workers of one process fence each
// other out as two processes do. Errors match [nova.ErrInvalid].
func NewWorker(c *Coordinator, cfg WorkerConfig) (*Worker, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	c.mu.Lock()
	c.workers++
	owner := fmt.Sprintf("%s/w%d", c.owner, c.workers)
	c.mu.Unlock()
	return &Worker{c: c, cfg: cfg, owner: owner, handlers: map[string]handler{}}, nil
}

// Owner returns the worker's lease owner ID.
func (w *Worker) Owner() string { return w.owner }

// Register adds def to the sagas w drives. It must be called while w is
// not running: a saga registered to a stopped worker is driven from its
// next Start. Registering a saga name twice, or while w runs, returns an
// error matching [nova.ErrInvalid].
func Register[D any](w *Worker, def *Definition[D]) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.life.Running() {
		return nova.Invalidf("saga", "register %q on a running worker", def.name)
	}
	if _, dup := w.handlers[def.name]; dup {
		return nova.Invalidf("saga", "saga %q is already registered", def.name)
	}
	w.handlers[def.name] = func(ctx context.Context, run RunInfo, claimed time.Time, group *sync.WaitGroup) (time.Time, error) {
		x, err := load[D](ctx, w.c.events, def.name, run.RunID)
		if err != nil {
			return time.Time{}, err
		}
		r, err := resume(ctx, w.c, def, x, w.owner, claimed, group)
		if err != nil {
			return time.Time{}, err
		}
		err = r.drive(ctx)
		if errors.Is(err, errWaiting) {
			return r.x.due, nil
		}
		return time.Time{}, err
	}
	return nil
}

// Start starts the worker's goroutines: the claim loop and, when the
// coordinator has a Broker, the outbox relay. They run until [Worker.Stop]
// or until ctx is done. A worker runs once at a time: Start fails while
// it runs, or while a Stop winds it down, with an error matching
// [nova.ErrInvalid]; once it has stopped ([Worker.Stopped] is closed) it
// may be started again, with the sagas registered by then. Starting a
// worker with no saga registered fails the same way.
func (w *Worker) Start(ctx context.Context) error {
	err := w.life.Start(ctx, func(ctx context.Context, group *sync.WaitGroup) error {
		w.mu.Lock()
		handlers := maps.Clone(w.handlers)
		w.mu.Unlock()
		if len(handlers) == 0 {
			return nova.Invalidf("saga", "worker has no saga registered")
		}
		sagas := slices.Sorted(maps.Keys(handlers))
		if w.c.relay != nil && !w.cfg.NoRelay {
			group.Go(func() { _ = w.c.relay.Run(ctx) })
		}
		// Attempts join the group while the loop, in it, waits for their
		// runs: the group's count is never zero before every one has
		// returned.
		group.Go(func() { w.loop(ctx, sagas, handlers, group) })
		return nil
	})
	if errors.Is(err, startstop.ErrRunning) {
		return nova.Invalidf("saga", "start worker %s: already running", w.owner)
	}
	return err
}

// Stop stops the worker and waits until every goroutine it started has
// returned, or ctx is done. Runs in progress are interrupted: their
// steps' ctx is cancelled and their leases released, and the next worker
// to claim them resumes them from their streams. Stop waits for each
// step and compensation it called to return, those abandoned earlier
// because they overran their timeout included, so nothing a worker
// started runs after Stop returns nil. When ctx ends first (a step does
// not honour its ctx), Stop returns ctx's error and the worker still
// owns those goroutines: a later Stop waits for them again, and Start
// fails until they have returned. Stopping a worker that is not running
// returns nil.
func (w *Worker) Stop(ctx context.Context) error {
	return w.life.Stop(ctx)
}

// Stopped returns a channel closed once the worker is not running: when
// the run the last Start began has ended (every goroutine it started has
// returned, after a Stop or once Start's ctx is done), or at once for a
// worker not running.
func (w *Worker) Stopped() <-chan struct{} { return w.life.Stopped() }

// loop claims due runs while it has room and drives each on its own
// goroutine, until ctx is done; then it waits for them.
func (w *Worker) loop(ctx context.Context, sagas []string, handlers map[string]handler, group *sync.WaitGroup) {
	var wg sync.WaitGroup
	defer wg.Wait()
	type result struct {
		due time.Time
		bad bool // the run failed for a reason other than its steps
	}
	finished := make(chan result, w.cfg.Concurrency)
	running := 0
	var next time.Time  // the earliest due time of a run released to wait
	var pause time.Time // no claims before it, after failures
	claimFailures, runFailures := 0, 0
	backoff := func(failures *int) time.Duration {
		*failures++
		return min(w.cfg.PollInterval<<min(*failures, 6), maxClaimBackoff)
	}
	got := func(r result) {
		running--
		if !r.due.IsZero() && (next.IsZero() || r.due.Before(next)) {
			next = r.due
		}
		if !r.bad {
			runFailures = 0
			return
		}
		// A store in trouble: do not claim the run back at once.
		pause = time.Now().Add(backoff(&runFailures))
	}
	for {
		wake := w.c.wakeChan()
		wait := w.cfg.PollInterval
		if d := time.Until(pause); d > 0 {
			wait = min(wait, d)
		} else if free := w.cfg.Concurrency - running; free > 0 {
			claimed := time.Now()
			runs, err := w.c.runs.Claim(ctx, ClaimRequest{Owner: w.owner, Sagas: sagas, Lease: w.c.lease, Limit: free})
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				wait = backoff(&claimFailures)
				w.c.log.WarnContext(ctx, "saga: claim runs", "owner", w.owner, "wait", wait, "error", err)
			default:
				claimFailures = 0
			}
			for _, run := range runs {
				running++
				h := handlers[run.Saga]
				wg.Go(func() {
					due, err := h(ctx, run, claimed, group)
					finished <- result{due, w.report(ctx, run, err)}
				})
			}
			if len(runs) == free && err == nil {
				wait = 0 // more may be due
			}
		}
		if !next.IsZero() {
			if d := time.Until(next); d < wait {
				wait = max(d, 0)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case r := <-finished:
			got(r)
		case <-wake:
		case <-t.C:
			if !next.IsZero() && !time.Now().Before(next) {
				next = time.Time{}
			}
		}
		t.Stop()
	drain:
		for {
			select {
			case r := <-finished:
				got(r)
			default:
				break drain
			}
		}
	}
}

// report logs how driving a run ended, and reports an unexpected failure
// (a store error, an undecodable stream): a run another worker or an
// operator took over, or one interrupted by Stop, is dropped quietly.
func (w *Worker) report(ctx context.Context, run RunInfo, err error) (bad bool) {
	switch {
	case err == nil:
	case ctx.Err() != nil, errors.Is(err, ErrLeaseLost), errors.Is(err, nova.ErrConcurrency):
		w.c.log.DebugContext(ctx, "saga: run left to another worker", "saga", run.Saga, "run", run.RunID, "owner", w.owner, "error", err)
	case errors.Is(err, ErrStepFailed), errors.Is(err, ErrTimeout), errors.Is(err, ErrCompensationFailed):
		// Recorded in the run's stream, and logged when it got stuck.
	case nova.IsTransient(err):
		// The store or the network, as a projection runner sees it: the
		// run is claimed again after a pause.
		w.c.log.WarnContext(ctx, "saga: drive run: transient error, retrying", "saga", run.Saga, "run", run.RunID, "owner", w.owner, "error", err)
		return true
	default:
		w.c.log.ErrorContext(ctx, "saga: drive run", "saga", run.Saga, "run", run.RunID, "owner", w.owner, "error", err)
		return true
	}
	return false
}
