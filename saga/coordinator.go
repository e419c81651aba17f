package saga

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
)

// Config configures a [Coordinator].
type Config struct {
	// Store keeps every run's stream. Required.
	Store nova.Store
	// Broker receives the lifecycle events; nil publishes none.
	Broker broker.Broker
	// Logger reports failed publishes and retries. Default slog.Default().
	Logger *slog.Logger
}

func (c *Config) validate() error {
	if c.Store == nil {
		return nova.Invalidf("saga: Config.Store is required")
	}
	return nil
}

// Coordinator runs sagas and records them: the seed's SagaCoordinator.
// It holds no state of its own beyond its configuration; every run lives in
// its stream. It is safe for concurrent use.
type Coordinator struct {
	store  nova.Store
	broker broker.Broker
	log    *slog.Logger
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error
}

// NewCoordinator returns a coordinator. Errors match [nova.ErrInvalid].
func NewCoordinator(cfg Config) (*Coordinator, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Coordinator{store: cfg.Store, broker: cfg.Broker, log: log, now: time.Now, sleep: sleepCtx}, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// StreamName returns the stream of a run: "saga-{saga}-{run}".
func StreamName(saga, runID string) string { return "saga-" + saga + "-" + runID }

// maxRunIDLen keeps envelope IDs and stream names within their limits.
const maxRunIDLen = 128

func validateRun[D any](ctx context.Context, c *Coordinator, def *Definition[D], runID string) error {
	if err := nova.ValidateContext(ctx); err != nil {
		return err
	}
	if c == nil {
		return nova.Invalidf("saga: nil coordinator")
	}
	if def == nil {
		return nova.Invalidf("saga: nil definition")
	}
	if runID == "" {
		return nova.Invalidf("saga: empty run ID")
	}
	if len(runID) > maxRunIDLen {
		return nova.Invalidf("saga: run ID longer than %d bytes", maxRunIDLen)
	}
	return nova.ValidateStream(StreamName(def.name, runID))
}

// Load rebuilds a run's [Execution] from its stream. A run that does not
// exist returns an error matching [nova.ErrNotFound].
func Load[D any](ctx context.Context, c *Coordinator, def *Definition[D], runID string) (Execution[D], error) {
	if err := validateRun(ctx, c, def, runID); err != nil {
		return Execution[D]{}, err
	}
	return load(ctx, c, def, runID)
}

func load[D any](ctx context.Context, c *Coordinator, def *Definition[D], runID string) (Execution[D], error) {
	var x Execution[D]
	stream := StreamName(def.name, runID)
	for e, err := range c.store.ReadStream(ctx, stream, nova.ReadStreamOptions{}) {
		if err != nil {
			return Execution[D]{}, fmt.Errorf("saga: read run %q of %q: %w", runID, def.name, err)
		}
		if err := x.apply(e); err != nil {
			return Execution[D]{}, err
		}
	}
	if x.Version == 0 {
		return Execution[D]{}, fmt.Errorf("saga: run %q of %q: %w", runID, def.name, nova.ErrNotFound)
	}
	return x, nil
}

// Run starts run runID of def with the initial data and runs it to its end,
// as the seed's run does: the steps in order, retries per each step's
// policy, and on a step's final failure the compensation of every started
// step in reverse order. It returns the run's [Execution] and, when a step
// failed, that step's error: a [*StepFailedError], or a [*TimeoutError] when
// its last attempt timed out. A run left Stuck returns an error wrapping
// both the step's error and the [*CompensationFailedError].
//
// A run whose stream exists is not run again: Run returns its recorded
// Execution and a nil error, whatever its status. A cancelled ctx stops the
// run at its current transition and returns an error matching [ErrAborted];
// resuming such a run is the later, durable slice's work.
//
// Bad input (nil ctx, coordinator or definition, empty run ID, data that
// does not encode as JSON) returns an error matching [nova.ErrInvalid] and
// records nothing.
func Run[D any](ctx context.Context, c *Coordinator, def *Definition[D], runID string, data D) (Execution[D], error) {
	if err := validateRun(ctx, c, def, runID); err != nil {
		return Execution[D]{}, err
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return Execution[D]{}, nova.Invalidf("saga: encode data of run %q: %v", runID, err)
	}
	r := &runner[D]{c: c, def: def, runID: runID, stream: StreamName(def.name, runID), data: raw}
	err = r.record(ctx, EventRunStarted, record{Saga: def.name, RunID: runID, Steps: def.Steps(), Data: raw})
	if errors.Is(err, nova.ErrConcurrency) {
		return load(ctx, c, def, runID)
	}
	if err != nil {
		return r.x, err
	}
	err = r.run(ctx)
	return r.x, err
}

// runner carries one run through its transitions.
type runner[D any] struct {
	c      *Coordinator
	def    *Definition[D]
	runID  string
	stream string
	data   []byte // the data as last recorded
	x      Execution[D]
}

// record appends one transition with the exact expected version and folds
// it into the execution.
func (r *runner[D]) record(ctx context.Context, typ string, rec record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("saga: encode %s: %w", typ, err)
	}
	ev := nova.EventData{ID: nova.NewEventID(), Type: typ, Data: b, Metadata: nova.Metadata{CorrelationID: r.runID}}
	res, err := r.c.store.Append(ctx, r.stream, nova.Exact(r.x.Version), ev)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("saga: record %s for run %q: %w: %w", typ, r.runID, ErrAborted, err)
		}
		return fmt.Errorf("saga: record %s for run %q: %w", typ, r.runID, err)
	}
	if rec.Data != nil {
		r.data = rec.Data
	}
	return r.x.apply(nova.Event{Stream: r.stream, Type: typ, Version: res.LastVersion, Position: res.Position, Data: b, RecordedAt: r.c.now().UTC()})
}

func (r *runner[D]) aborted(err error) error {
	return fmt.Errorf("saga: run %q of %q: %w: %w", r.runID, r.def.name, ErrAborted, err)
}

// outcome is what one attempt came to.
type outcome[D any] struct {
	data     D     // the attempt's copy of the data, kept when err is nil
	err      error // the attempt's error
	timedOut bool  // the attempt overran its timeout; its outcome is unknown
	abort    error // the run's own ctx ended
}

// call runs one attempt of f on a fresh copy of the recorded data, bounded
// by timeout. An attempt that overruns is abandoned with its ctx cancelled;
// it owns its copy of the data, so it cannot change the run's.
func (r *runner[D]) call(ctx context.Context, step string, timeout time.Duration, sc StepContext,
	f func(context.Context, StepContext, *D) error) outcome[D] {
	var d D
	if err := json.Unmarshal(r.data, &d); err != nil {
		return outcome[D]{err: fmt.Errorf("saga: decode data of run %q: %w", r.runID, err)}
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("saga: step %q panicked: %v", step, p)
			}
		}()
		done <- f(actx, sc, &d)
	}()
	select {
	case err := <-done:
		switch {
		case err == nil:
			return outcome[D]{data: d}
		case ctx.Err() != nil:
			return outcome[D]{err: err, abort: ctx.Err()}
		case errors.Is(err, context.DeadlineExceeded) && actx.Err() != nil:
			return outcome[D]{err: &TimeoutError{Step: step}, timedOut: true}
		}
		return outcome[D]{err: err}
	case <-actx.Done():
		if ctx.Err() != nil {
			return outcome[D]{err: ctx.Err(), abort: ctx.Err()}
		}
		return outcome[D]{err: &TimeoutError{Step: step}, timedOut: true}
	}
}

func (r *runner[D]) stepContext(step string, attempt int, compensate bool) StepContext {
	key := r.def.name + "/" + r.runID + "/" + step
	if compensate {
		key += "/compensate"
	}
	return StepContext{Saga: r.def.name, RunID: r.runID, Step: step, Attempt: attempt, IdempotencyKey: key}
}

func encode[D any](d D) ([]byte, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("saga: encode data: %w", err)
	}
	return b, nil
}

// run executes the steps, then compensates if one fails for good.
func (r *runner[D]) run(ctx context.Context) error {
	for _, s := range r.def.steps {
		began := time.Now()
		anyTimeout := false
		for attempt := 1; ; attempt++ {
			if err := ctx.Err(); err != nil {
				return r.aborted(err)
			}
			if err := r.record(ctx, EventStepStarted, record{Step: s.Name, Attempt: attempt}); err != nil {
				return err
			}
			r.c.publish(ctx, r.def.name, r.runID, s.Name, "started", attempt)
			o := r.call(ctx, s.Name, s.timeout(), r.stepContext(s.Name, attempt, false), s.Execute)
			err, timedOut := o.err, o.timedOut
			if o.abort != nil {
				return r.aborted(o.abort)
			}
			if err == nil {
				raw, err := encode(o.data)
				if err != nil {
					return err
				}
				if err := r.record(ctx, EventStepSucceeded, record{Step: s.Name, Attempt: attempt, Data: raw}); err != nil {
					return err
				}
				r.c.publish(ctx, r.def.name, r.runID, s.Name, "succeeded", attempt)
				break
			}
			anyTimeout = anyTimeout || timedOut
			if delay, again := s.Retry.next(attempt, err, time.Since(began)); again {
				r.c.log.WarnContext(ctx, "saga: retrying step", "saga", r.def.name, "run", r.runID, "step", s.Name, "attempt", attempt, "delay", delay, "error", err)
				if err := r.record(ctx, EventStepRetrying, record{Step: s.Name, Attempt: attempt, Error: err.Error(), TimedOut: timedOut, DelayMS: delay.Milliseconds()}); err != nil {
					return err
				}
				if err := r.c.sleep(ctx, delay); err != nil {
					return r.aborted(err)
				}
				continue
			}
			var stepErr error = &StepFailedError{Step: s.Name, Err: err}
			if timedOut {
				stepErr = err // already a *TimeoutError naming the step
			}
			if err := r.record(ctx, EventStepFailed, record{Step: s.Name, Attempt: attempt, Error: err.Error(), TimedOut: timedOut, Started: anyTimeout}); err != nil {
				return err
			}
			r.c.publish(ctx, r.def.name, r.runID, s.Name, "failed", attempt)
			return r.compensate(ctx, stepErr)
		}
	}
	if err := r.record(ctx, EventRunCompleted, record{}); err != nil {
		return err
	}
	r.c.publish(ctx, r.def.name, r.runID, sagaStep, "completed", 1)
	return nil
}

func noCompensation[D any](context.Context, StepContext, *D) error { return nil }

// compensate undoes every started step, last first, and returns stepErr,
// or an error wrapping it and the compensation's failure when one gives up.
func (r *runner[D]) compensate(ctx context.Context, stepErr error) error {
	for _, name := range r.x.ToCompensate() {
		s := r.def.steps[r.def.index[name]]
		f := s.Compensate
		if f == nil {
			f = noCompensation[D]
		}
		began := time.Now()
		for attempt := 1; ; attempt++ {
			if err := ctx.Err(); err != nil {
				return r.aborted(err)
			}
			if err := r.record(ctx, EventCompensationStarted, record{Step: name, Attempt: attempt}); err != nil {
				return err
			}
			r.c.publish(ctx, r.def.name, r.runID, name, "compensating", attempt)
			o := r.call(ctx, name, s.timeout(), r.stepContext(name, attempt, true), f)
			err, timedOut := o.err, o.timedOut
			if o.abort != nil {
				return r.aborted(o.abort)
			}
			if err == nil {
				raw, err := encode(o.data)
				if err != nil {
					return err
				}
				if err := r.record(ctx, EventStepCompensated, record{Step: name, Attempt: attempt, Data: raw}); err != nil {
					return err
				}
				r.c.publish(ctx, r.def.name, r.runID, name, "compensated", attempt)
				break
			}
			if delay, again := s.CompensateRetry.next(attempt, err, time.Since(began)); again {
				r.c.log.WarnContext(ctx, "saga: retrying compensation", "saga", r.def.name, "run", r.runID, "step", name, "attempt", attempt, "delay", delay, "error", err)
				if err := r.record(ctx, EventCompensationRetrying, record{Step: name, Attempt: attempt, Error: err.Error(), TimedOut: timedOut, DelayMS: delay.Milliseconds()}); err != nil {
					return err
				}
				if err := r.c.sleep(ctx, delay); err != nil {
					return r.aborted(err)
				}
				continue
			}
			compErr := &CompensationFailedError{Step: name, Err: err}
			if err := r.record(ctx, EventCompensationFailed, record{Step: name, Attempt: attempt, Error: err.Error(), TimedOut: timedOut}); err != nil {
				return err
			}
			r.c.publish(ctx, r.def.name, r.runID, name, "compensation_failed", attempt)
			r.c.log.ErrorContext(ctx, "saga: run stuck", "saga", r.def.name, "run", r.runID, "step", name, "error", err)
			return fmt.Errorf("saga: run %q of %q is stuck: %w; %w", r.runID, r.def.name, stepErr, compErr)
		}
	}
	end := EventRunCompensated
	if len(r.x.CompensatedSteps) == 0 {
		end = EventRunFailed
	}
	if err := r.record(ctx, end, record{}); err != nil {
		return err
	}
	r.c.publish(ctx, r.def.name, r.runID, sagaStep, "compensated", 1)
	return stepErr
}

// lifecycle is the payload of a lifecycle event: the seed's fields plus the
// run and the attempt.
type lifecycle struct {
	SagaID      string `json:"saga_id"`
	RunID       string `json:"run_id"`
	Step        string `json:"step"`
	Status      string `json:"status"`
	Attempt     int    `json:"attempt"`
	TimestampMS int64  `json:"timestamp_ms"`
}

// EnvelopeID returns the ID of a lifecycle event:
// "{saga}-{run}-{step}-{status}-{attempt}".
func EnvelopeID(saga, runID, step, status string, attempt int) string {
	return fmt.Sprintf("%s-%s-%s-%s-%d", saga, runID, step, status, attempt)
}

// Topic returns the topic of a lifecycle event: "saga.{saga}.{step}.{status}".
func Topic(saga, step, status string) string { return "saga." + saga + "." + step + "." + status }

// publish sends a lifecycle event; a failure is logged and ignored, as in
// the seed.
func (c *Coordinator) publish(ctx context.Context, saga, runID, step, status string, attempt int) {
	if c.broker == nil {
		return
	}
	p := lifecycle{SagaID: saga, RunID: runID, Step: step, Status: status, Attempt: attempt, TimestampMS: c.now().UnixMilli()}
	env, err := broker.NewEnvelope(EnvelopeID(saga, runID, step, status, attempt), Topic(saga, step, status), "saga.event", p)
	if err == nil {
		err = c.broker.Publish(ctx, env)
	}
	if err != nil {
		c.log.WarnContext(ctx, "saga: failed to publish saga event", "saga", saga, "run", runID, "step", step, "status", status, "error", err)
	}
}
