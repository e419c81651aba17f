package saga

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
)

// errWaiting is what a worker's runner returns after recording a retry
// whose delay has not passed: the worker releases the run, and claims it
// again when it is due.
var errWaiting = errors.New("saga: waiting for a retry")

// runner carries one run through its transitions: the next action is
// always decided from the execution folded from the run's stream, so a run
// driven from the start and one resumed after a crash go the same way.
type runner[D any] struct {
	c      *Coordinator
	def    *Definition[D]
	runID  string
	stream string
	// owner is the lease owner writing; inline runners (Run) wait out
	// retry delays while holding the lease, workers release the run.
	owner  string
	inline bool
	x      Execution[D]
	data   []byte        // the data as last recorded
	offset time.Duration // the store's clock minus the local one
	// stepErr is the error of the step that failed for good, when it
	// failed in this runner.
	stepErr  error
	stuckErr *CompensationFailedError
	existing bool // begin found the run already started
	// leased, when set, is when the claim that leased the run to owner
	// was sent; the lease holds at least until leased plus the lease.
	leased time.Time
	// held are transitions folded into x and not yet written, following
	// version heldFrom, with their envelopes; created is whether the run
	// exists under the runner's lease (claimed, or a write succeeded).
	held     []nova.EventData
	heldOut  []broker.Envelope
	heldFrom uint64
	created  bool
	// group, when set, owns the goroutines of the runner's attempts,
	// including those abandoned when they overran their timeout: a
	// worker's, so that Stop waits for them.
	group *sync.WaitGroup
	// outcome names how the current attempt ended (ok, retry, failed),
	// for its span and metrics.
	outcome string
}

func newRunner[D any](c *Coordinator, def *Definition[D], runID, owner string) *runner[D] {
	return &runner[D]{c: c, def: def, runID: runID, stream: StreamName(def.name, runID), owner: owner, inline: true}
}

// resume returns a runner for a run recorded in x, whose attempts' goroutines
// group owns. claimed is when the claim that leased the run to owner was
// sent.
func resume[D any](ctx context.Context, c *Coordinator, def *Definition[D], x Execution[D], owner string, claimed time.Time, group *sync.WaitGroup) (*runner[D], error) {
	r := newRunner(c, def, x.RunID, owner)
	r.group = group
	if x.stream != "" {
		r.stream = x.stream // a legacy name
	}
	r.leased = claimed
	r.inline = false
	r.created = true // and claimed: the lease is the runner's to release
	r.x = x
	raw, err := encode(x.Data)
	if err != nil {
		return nil, err
	}
	r.data = raw
	return r, r.syncClock(ctx)
}

// syncClock measures the store's clock against the local one, so that due
// times and deadlines are the store's without asking it each time.
func (r *runner[D]) syncClock(ctx context.Context) error {
	t, err := r.c.runs.Now(ctx)
	if err != nil {
		return fmt.Errorf("saga: read the store's clock: %w", err)
	}
	r.offset = time.Until(t)
	return nil
}

func (r *runner[D]) now() time.Time { return time.Now().Add(r.offset).UTC() }

// lifecycleStatus maps an event type to the lifecycle events it publishes:
// each a status, whether it is a whole-saga event (step "saga"), and
// whether its attempt is the number of times the run has become Stuck
// (events that happen once per Stuck: becoming Stuck, and the operator's
// retry or skip that answers it) instead of the transition's.
var lifecycleStatus = map[string][]struct {
	status      string
	saga, stuck bool
}{
	EventStepStarted:         {{"started", false, false}},
	EventStepSucceeded:       {{"succeeded", false, false}},
	EventStepFailed:          {{"failed", false, false}},
	EventCompensationStarted: {{"compensating", false, false}},
	EventStepCompensated:     {{"compensated", false, false}},
	EventCompensationFailed:  {{"compensation_failed", false, false}, {statusStuck, true, true}},
	EventRunCompleted:        {{"completed", true, false}},
	EventRunCompensated:      {{"compensated", true, false}},
	EventRunFailed:           {{"compensated", true, false}},
	// The operator's actions (see [RetryRun]).
	EventRunRetried:          {{"retried", true, true}},
	EventCompensationSkipped: {{"compensation_skipped", false, true}},
	EventRunAbandoned:        {{"abandoned", true, false}},
}

// statusStuck is the status of the whole-saga event of a run that became
// Stuck.
const statusStuck = "stuck"

// lifecycleEnvelopes appends to out the lifecycle envelopes of a
// transition of type typ with data rec, recorded at at; stuck is the
// number of times the run has become Stuck, counting this transition.
func lifecycleEnvelopes(out []broker.Envelope, saga, runID, typ string, rec *record, stuck int, at time.Time) ([]broker.Envelope, error) {
	for _, ls := range lifecycleStatus[typ] {
		step, attempt := rec.Step, rec.Attempt
		if ls.saga {
			step, attempt = sagaStep, 1
		}
		if ls.stuck {
			// A run may become Stuck again after an operator's retry
			// or skip: each time is its own event.
			attempt = stuck
		}
		env, err := lifecycleEnvelope(saga, runID, step, ls.status, attempt, at)
		if err != nil {
			return out, err
		}
		out = append(out, env)
	}
	return out, nil
}

// record appends one transition with the exact expected version, under
// the runner's lease, with its runs-table row (due at due; zero for a run
// no worker should pick up) and its lifecycle envelope, and folds it into
// the execution. After an error the runner must stop.
//
// With hold set, the transition is folded but kept back, and written with
// the next one in one Record: a step's success is always followed at once
// by the next transition (the next step's start, or the run's end), and
// writing the two together halves the transactions of a run without
// changing what the stream says or when. drive writes a held transition
// that nothing followed before it returns.
//
// data, when not nil, is rec.Data decoded.
func (r *runner[D]) record(ctx context.Context, typ string, rec record, due time.Time, hold bool, data *D) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("saga: encode %s: %w", typ, err)
	}
	now := r.now()
	if len(r.held) == 0 {
		r.heldFrom = r.x.Version
	}
	ed := nova.EventData{ID: nova.NewEventID(), Type: typ, Data: b, Metadata: nova.Metadata{CorrelationID: r.runID}}
	traceEvent(ctx, &ed)
	if err := r.x.fold(nova.Event{Stream: r.stream, Type: typ, Version: r.x.Version + 1, Metadata: ed.Metadata, RecordedAt: now}, &rec, data); err != nil {
		return err
	}
	r.held = append(r.held, ed)
	out := len(r.heldOut)
	if r.heldOut, err = lifecycleEnvelopes(r.heldOut, r.def.name, r.runID, typ, &rec, r.x.stuck, now); err != nil {
		return err
	}
	traceEnvelopes(ctx, r.heldOut[out:])
	if rec.Data != nil {
		r.data = rec.Data
	}
	if hold {
		return nil
	}
	return r.write(ctx, typ, rec.Error, due, now)
}

// write records the held transitions in one Record; typ names the last.
func (r *runner[D]) write(ctx context.Context, typ, lastErr string, due, now time.Time) error {
	t := Transition{
		Stream:   r.stream,
		Expected: nova.Exact(r.heldFrom),
		Events:   r.held,
		Run: RunInfo{
			Saga: r.def.name, RunID: r.runID, Status: r.x.Status, Step: r.x.Step, Attempt: r.x.Attempt,
			Error: lastErr, DueAt: due, DeadlineAt: r.x.Deadline, CreatedAt: r.x.StartedAt, UpdatedAt: now,
		},
		Owner:  r.owner,
		Lease:  r.c.lease,
		Outbox: r.heldOut,
	}
	r.held, r.heldOut = nil, nil
	info, err := r.c.runs.Record(ctx, t)
	if err != nil {
		fenced := errors.Is(err, ErrLeaseLost) || errors.Is(err, nova.ErrConcurrency)
		if r.heldFrom == 0 && fenced {
			// The run's first write met a run already there.
			return fmt.Errorf("saga: start run %q of %q: %w: %w", r.runID, r.def.name, errExists, err)
		}
		if ctx.Err() != nil || fenced {
			return fmt.Errorf("saga: record %s for run %q of %q: %w: %w", typ, r.runID, r.def.name, ErrAborted, err)
		}
		return fmt.Errorf("saga: record %s for run %q of %q: %w", typ, r.runID, r.def.name, err)
	}
	r.created = true
	countRun(ctx, r.def.name, r.x.Status)
	switch {
	case r.x.Status == Stuck:
		r.c.log.ErrorContext(ctx, "saga: run stuck", "saga", r.def.name, "run", r.runID, "step", r.x.StuckStep, "error", r.x.CompensationFailure)
		r.hook(ctx, "OnStuckFunc", r.c.onStuck, info)
		fallthrough
	case r.x.Status.Terminal():
		r.hook(ctx, "OnEndFunc", r.c.onEnd, info)
	}
	return nil
}

// hook calls f, if set, under recover: the transition is recorded, so a
// panic can change nothing but is logged with its stack.
func (r *runner[D]) hook(ctx context.Context, name string, f func(context.Context, RunInfo), info RunInfo) {
	if f == nil {
		return
	}
	if err := protect(name, func() error { f(ctx, info); return nil }); err != nil {
		r.c.log.ErrorContext(ctx, "saga: "+name+" panicked", "saga", r.def.name, "run", r.runID, "status", info.Status, "error", err)
	}
}

// errExists is what a runner's first write returns when the run exists.
var errExists = errors.New("saga: run exists")

func (r *runner[D]) aborted(err error) error {
	return fmt.Errorf("saga: run %q of %q: %w: %w", r.runID, r.def.name, ErrAborted, err)
}

// drive takes the run's next actions until it ends, becomes Stuck, must
// wait for a retry (a worker's runner returns errWaiting), or ctx ends. It
// renews the lease while it works, and releases it when it returns.
func (r *runner[D]) drive(ctx context.Context) error {
	from := r.leased
	if from.IsZero() {
		// The run's lease is taken by its first write, after this.
		from = time.Now()
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := r.keepLease(ctx, cancel, from)
	defer stop()
	err := r.steps(ctx)
	bg, bgcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer bgcancel()
	if len(r.held) > 0 && !errors.Is(err, errExists) {
		// A success nothing followed (the run was stopped): keep it, so
		// the step does not run again.
		if werr := r.write(bg, "held transitions", "", r.now(), r.now()); werr != nil && err == nil {
			err = werr
		}
	}
	// A run that goes on (a retry's wait, an interruption) is released, to
	// be claimed again when due; an ended or Stuck one is due for no one,
	// and a lease no longer held is left alone.
	if r.created && r.x.Status != Stuck && !r.x.Status.Terminal() {
		if rerr := r.c.runs.Release(bg, r.def.name, r.runID, r.owner); rerr != nil {
			r.c.log.WarnContext(ctx, "saga: release run", "saga", r.def.name, "run", r.runID, "error", rerr)
		}
	}
	return err
}

// steps takes the run's next actions until there are none or one fails.
func (r *runner[D]) steps(ctx context.Context) error {
	for {
		if ctx.Err() != nil {
			return r.aborted(context.Cause(ctx))
		}
		done, err := r.next(ctx)
		if err != nil || done {
			return err
		}
	}
}

// keepLease renews the run's lease every third of it until the returned
// stop is called. The lease is known to hold until the last successful
// renewal (or, before any, from) plus the lease, counted from before the
// renewal was sent; when that expiry, less a margin of a tenth of the
// lease, comes without a successful renewal (the store is slow, down, or
// said no), ctx is cancelled with [ErrLeaseLost], so the attempt's ctx
// ends before another worker can claim the run.
func (r *runner[D]) keepLease(ctx context.Context, cancel context.CancelCauseFunc, from time.Time) (stop func()) {
	ctx, quit := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		lease := r.c.lease
		every, margin := lease/3, lease/10
		tick := time.NewTimer(time.Until(from.Add(every)))
		defer tick.Stop()
		lost := time.NewTimer(time.Until(from.Add(lease - margin)))
		defer lost.Stop()
		type renewal struct {
			sent time.Time
			err  error
		}
		results := make(chan renewal, 1)
		var wg sync.WaitGroup
		defer wg.Wait() // after ctx ends: the renewal's ctx has ended too
		inflight := false
		for {
			select {
			case <-ctx.Done():
				return
			case <-lost.C:
				r.c.log.WarnContext(ctx, "saga: lease not renewed in time; leaving the run", "saga", r.def.name, "run", r.runID, "owner", r.owner)
				cancel(fmt.Errorf("saga: run %q of %q: lease not renewed in time: %w", r.runID, r.def.name, ErrLeaseLost))
				return
			case <-tick.C:
				if inflight {
					tick.Reset(margin)
					continue
				}
				inflight = true
				sent := time.Now()
				wg.Go(func() { results <- renewal{sent, r.c.runs.Renew(ctx, r.def.name, r.runID, r.owner, lease)} })
			case res := <-results:
				inflight = false
				switch {
				case res.err == nil:
					lost.Reset(time.Until(res.sent.Add(lease - margin)))
					tick.Reset(time.Until(res.sent.Add(every)))
				case errors.Is(res.err, ErrLeaseLost):
					r.c.log.WarnContext(ctx, "saga: lease lost; leaving the run", "saga", r.def.name, "run", r.runID, "owner", r.owner)
					cancel(res.err)
					return
				default:
					if ctx.Err() == nil {
						r.c.log.WarnContext(ctx, "saga: renew lease", "saga", r.def.name, "run", r.runID, "error", res.err)
					}
					tick.Reset(margin) // try again soon, while the lease holds
				}
			}
		}
	}()
	return func() { quit(); <-done }
}

// next takes the run's next action; done reports that there is none left.
func (r *runner[D]) next(ctx context.Context) (done bool, err error) {
	x := &r.x
	switch x.Status {
	case Running:
		i := len(x.CompletedSteps)
		if i >= len(r.def.steps) {
			return true, r.record(ctx, EventRunCompleted, record{}, time.Time{}, false, nil)
		}
		return false, r.attempt(ctx, &r.def.steps[i], false)
	case Compensating:
		todo := x.ToCompensate()
		if len(todo) == 0 {
			end := EventRunCompensated
			if len(x.started) == 0 {
				end = EventRunFailed
			}
			if err := r.record(ctx, end, record{}, time.Time{}, false, nil); err != nil {
				return true, err
			}
			return true, r.result()
		}
		i, ok := r.def.index[todo[0]]
		if !ok {
			return true, fmt.Errorf("saga: run %q of %q: step %q to compensate is not in the definition", r.runID, r.def.name, todo[0])
		}
		return false, r.attempt(ctx, &r.def.steps[i], true)
	case Stuck:
		return true, r.result()
	}
	return true, r.result()
}

// result is the error Run returns for a run that ended or got stuck.
func (r *runner[D]) result() error {
	x := &r.x
	if x.Status == Completed {
		return nil
	}
	stepErr := r.stepErr
	if stepErr == nil && x.FailedStep != "" {
		stepErr = &StepFailedError{Step: x.FailedStep, Err: errors.New(x.Failure)}
	}
	if x.Status == Stuck {
		compErr := r.stuckErr
		if compErr == nil {
			compErr = &CompensationFailedError{Step: x.StuckStep, Err: errors.New(x.CompensationFailure)}
		}
		return fmt.Errorf("saga: run %q of %q is stuck: %w; %w", r.runID, r.def.name, stepErr, compErr)
	}
	return stepErr
}

// attempt takes one attempt of s's action (or compensation) and records
// its outcome: success, a retry, or failure for good. An attempt that
// started and never recorded an outcome is not run again: it is recorded
// as failed with an unknown outcome, and the retry policy decides.
func (r *runner[D]) attempt(ctx context.Context, s *Step[D], comp bool) (err error) {
	ctx, end := r.traceAttempt(ctx, s.Name, comp)
	defer func() { end(err) }()
	x := &r.x
	same := x.Step == s.Name && x.comp == comp
	n, began := 1, r.now()
	if same {
		n, began = x.Attempt+1, x.began
	}
	var o outcome[D]
	if same && x.pending {
		n = x.Attempt
		o = outcome[D]{err: errors.New(errInterrupted), unknown: true}
	} else {
		timeout, scope := s.timeout(), ""
		if !comp {
			now := r.now()
			if s.StepTimeout > 0 {
				if left := began.Add(s.StepTimeout).Sub(now); left < timeout {
					timeout, scope = left, "step"
				}
			}
			if !x.Deadline.IsZero() {
				if left := x.Deadline.Sub(now); left < timeout {
					timeout, scope = left, "saga"
				}
			}
		}
		if timeout <= 0 {
			// Out of time before the attempt: it never starts.
			n--
			o = outcome[D]{err: &TimeoutError{Step: s.Name, Scope: scope}, final: true}
		} else {
			typ := EventStepStarted
			if comp {
				typ = EventCompensationStarted
			}
			if err := r.record(ctx, typ, record{Step: s.Name, Attempt: n}, r.now(), false, nil); err != nil {
				return err
			}
			f := s.Execute
			if comp {
				f = s.Compensate
				if f == nil {
					f = noCompensation[D]
				}
			}
			o = r.call(ctx, s.Name, timeout, scope, r.stepContext(s.Name, n, comp), f)
		}
	}
	if o.abort != nil {
		return r.aborted(o.abort)
	}
	if o.err == nil {
		raw, err := encode(o.data)
		if err != nil {
			// The action ran and what it made of the data cannot be
			// recorded: a failed attempt whose effects are unknown.
			return r.failed(ctx, s, comp, n, began, outcome[D]{err: fmt.Errorf("saga: step %q: %w", s.Name, err), unknown: true})
		}
		typ := EventStepSucceeded
		if comp {
			typ = EventStepCompensated
		}
		r.outcome = "ok"
		return r.record(ctx, typ, record{Step: s.Name, Attempt: n, Data: raw}, r.now(), true, &o.data)
	}
	return r.failed(ctx, s, comp, n, began, o)
}

// failed records a failed attempt: a retry when the policy and the
// deadlines allow one, else the step's failure (the run compensates) or
// the compensation's (the run is Stuck).
func (r *runner[D]) failed(ctx context.Context, s *Step[D], comp bool, n int, began time.Time, o outcome[D]) error {
	policy, what := s.Retry, "step"
	if comp {
		policy, what = s.CompensateRetry, "compensation"
	}
	now := r.now()
	delay, again, perr := policy.next(n-r.x.base, o.err, now.Sub(began))
	if perr != nil {
		// The policy cannot say when to try again: no retry, and both
		// errors are kept.
		o.err = errors.Join(o.err, perr)
	}
	due := now.Add(delay)
	if o.final {
		again = false
	}
	if again && !comp {
		stepEnd := began.Add(s.StepTimeout)
		again = (s.StepTimeout == 0 || due.Before(stepEnd)) && (r.x.Deadline.IsZero() || due.Before(r.x.Deadline))
	}
	rec := record{Step: s.Name, Attempt: n, Error: o.err.Error(), TimedOut: o.timedOut, Unknown: o.unknown}
	if again {
		r.outcome = "retry"
		r.c.log.WarnContext(ctx, "saga: retrying "+what, "saga", r.def.name, "run", r.runID, "step", s.Name, "attempt", n, "delay", delay, "error", o.err)
		rec.DelayMS = delay.Milliseconds()
		typ := EventStepRetrying
		if comp {
			typ = EventCompensationRetrying
		}
		if err := r.record(ctx, typ, rec, due, false, nil); err != nil {
			return err
		}
		if !r.inline {
			return errWaiting
		}
		if err := r.c.sleep(ctx, delay); err != nil {
			return r.aborted(err)
		}
		return nil
	}
	r.outcome = "failed"
	if !comp {
		rec.Started = r.x.uncertain || o.timedOut || o.unknown
		r.stepErr = &StepFailedError{Step: s.Name, Err: o.err}
		var te *TimeoutError
		if errors.As(o.err, &te) {
			r.stepErr = o.err // already a *TimeoutError naming the step
		}
		return r.record(ctx, EventStepFailed, rec, r.now(), false, nil)
	}
	r.stuckErr = &CompensationFailedError{Step: s.Name, Err: o.err}
	return r.record(ctx, EventCompensationFailed, rec, time.Time{}, false, nil)
}

// outcome is what one attempt came to.
type outcome[D any] struct {
	data     D     // the attempt's copy of the data, kept when err is nil
	err      error // the attempt's error
	timedOut bool  // the attempt overran its timeout; its outcome is unknown
	unknown  bool  // the attempt was interrupted; its outcome is unknown
	final    bool  // no retry: the step's or saga's time is up
	abort    error // the run's own ctx ended
}

// call runs one attempt of f on a fresh copy of the recorded data, bounded
// by timeout. An attempt that overruns is abandoned with its ctx cancelled;
// it owns its copy of the data, so it cannot change the run's.
func (r *runner[D]) call(ctx context.Context, step string, timeout time.Duration, scope string, sc callContext,
	f func(context.Context, StepContext, *D) error) outcome[D] {
	var d D
	if err := unmarshal(r.data, &d); err != nil {
		return outcome[D]{err: fmt.Errorf("saga: decode data of run %q: %w", r.runID, err)}
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	what := fmt.Sprintf("step %q", step)
	if sc.compensating {
		what = fmt.Sprintf("compensation of step %q", step)
	}
	done := make(chan error, 1)
	attempt := func() { done <- protect(what, func() error { return f(actx, sc.StepContext, &d) }) }
	if r.group != nil {
		r.group.Go(attempt)
	} else {
		go attempt() // Run's: it ends when the step honours its ctx
	}
	timedOut := outcome[D]{err: &TimeoutError{Step: step, Scope: scope}, timedOut: true, final: scope != ""}
	select {
	case err := <-done:
		switch {
		case err == nil:
			return outcome[D]{data: d}
		case ctx.Err() != nil:
			return outcome[D]{err: err, abort: context.Cause(ctx)}
		case errors.Is(err, context.DeadlineExceeded) && actx.Err() != nil:
			return timedOut
		}
		return outcome[D]{err: err}
	case <-actx.Done():
		if ctx.Err() != nil {
			return outcome[D]{err: ctx.Err(), abort: context.Cause(ctx)}
		}
		return timedOut
	}
}

// callContext is a call's [StepContext] and whether it is a
// compensation.
type callContext struct {
	StepContext
	compensating bool
}

func (r *runner[D]) stepContext(step string, attempt int, compensate bool) callContext {
	key := IdempotencyKey(r.def.name, r.runID, step, compensate)
	return callContext{StepContext{Saga: r.def.name, RunID: r.runID, Step: step, Attempt: attempt, IdempotencyKey: key}, compensate}
}

func encode[D any](d D) ([]byte, error) {
	b, err := marshal(d)
	if err != nil {
		return nil, fmt.Errorf("saga: encode data: %w", err)
	}
	return b, nil
}

func noCompensation[D any](context.Context, StepContext, *D) error { return nil }
