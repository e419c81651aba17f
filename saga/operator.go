package saga

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nova-go/nova"
)

// An operator acts on a run by saga name and run ID, without its typed
// definition: the actions below fold the run's stream with raw JSON data,
// check that the action applies to its status, and record one event with
// who acted and why, fenced by the stream's version (a run that moved on
// meanwhile fails with an error matching [nova.ErrConcurrency] and is left
// as it is). The write clears the run's lease, so a worker that held it is
// fenced out and a worker picks the run up again when it is due. The
// action's lifecycle event goes in the outbox with it, in the same
// transaction, as the engine's transitions do (see the package
// documentation): saga.{saga}.saga.retried,
// saga.{saga}.{step}.compensation_skipped or saga.{saga}.saga.abandoned.

// RetryRun retries a Stuck run's compensation: the run is Compensating
// again and due now, and the stuck compensation runs again with a fresh
// retry budget (its attempt numbers go on), then the steps before it. A
// run that is not Stuck returns an error matching [ErrWrongStatus].
func RetryRun(ctx context.Context, runs RunStore, saga, runID, actor, reason string) (RunInfo, error) {
	return operate(ctx, runs, saga, runID, actor, reason, false, EventRunRetried)
}

// SkipCompensation skips a Stuck run's stuck compensation, with a reason
// (required): the step is recorded as skipped, not compensated, and the
// run is Compensating again and due now, going on with the steps before
// it. A run that is not Stuck returns an error matching [ErrWrongStatus].
func SkipCompensation(ctx context.Context, runs RunStore, saga, runID, actor, reason string) (RunInfo, error) {
	return operate(ctx, runs, saga, runID, actor, reason, true, EventCompensationSkipped)
}

// AbandonRun ends a run that has not ended (Running, Compensating or
// Stuck) as Failed, with a reason (required): nothing more is executed or
// compensated. A run that has ended returns an error matching
// [ErrWrongStatus].
func AbandonRun(ctx context.Context, runs RunStore, saga, runID, actor, reason string) (RunInfo, error) {
	return operate(ctx, runs, saga, runID, actor, reason, true, EventRunAbandoned)
}

// operate records an operator's event on a run. Bad input returns an error
// matching [nova.ErrInvalid] and records nothing.
func operate(ctx context.Context, runs RunStore, saga, runID, actor, reason string, needReason bool, typ string) (RunInfo, error) {
	if err := validName("saga name", saga); err != nil {
		return RunInfo{}, err
	}
	if err := validateRunID(saga, runID); err != nil {
		return RunInfo{}, err
	}
	if actor == "" {
		return RunInfo{}, nova.Invalidf("saga", "an operator action needs an actor")
	}
	if needReason && reason == "" {
		return RunInfo{}, nova.Invalidf("saga", "%s needs a reason", typ)
	}
	x, err := load[json.RawMessage](ctx, runs.Events(), saga, runID)
	if err != nil {
		return RunInfo{}, err
	}
	switch {
	case typ == EventRunAbandoned && x.Status.Terminal():
		return RunInfo{}, fmt.Errorf("saga: abandon run %q of %q: it is %s: %w", runID, saga, x.Status, ErrWrongStatus)
	case typ != EventRunAbandoned && x.Status != Stuck:
		return RunInfo{}, fmt.Errorf("saga: %s on run %q of %q: it is %s, not stuck: %w", typ, runID, saga, x.Status, ErrWrongStatus)
	}
	rec := record{Actor: actor, Reason: reason}
	if typ == EventCompensationSkipped {
		rec.Step = x.StuckStep
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return RunInfo{}, err
	}
	now, err := runs.Now(ctx)
	if err != nil {
		return RunInfo{}, fmt.Errorf("saga: read the store's clock: %w", err)
	}
	stream := x.stream
	expected := nova.Exact(x.Version)
	if err := x.apply(nova.Event{Stream: stream, Type: typ, Version: x.Version + 1, Data: b, RecordedAt: now}); err != nil {
		return RunInfo{}, err
	}
	outbox, err := lifecycleEnvelopes(nil, saga, runID, typ, &rec, x.stuck, now)
	if err != nil {
		return RunInfo{}, err
	}
	due := now
	if x.Status.Terminal() {
		due = time.Time{}
	}
	info, err := runs.Record(ctx, Transition{
		Stream:   stream,
		Expected: expected,
		Events:   []nova.EventData{{ID: nova.NewEventID(), Type: typ, Data: b, Metadata: nova.Metadata{CorrelationID: runID}}},
		Run: RunInfo{Saga: saga, RunID: runID, Status: x.Status, Step: x.Step, Attempt: x.Attempt, DueAt: due,
			DeadlineAt: x.Deadline, CreatedAt: x.StartedAt, UpdatedAt: now},
		Outbox: outbox,
	})
	if err != nil {
		return RunInfo{}, fmt.Errorf("saga: %s on run %q of %q: %w", typ, runID, saga, err)
	}
	return info, nil
}

// Entry is one transition of a run, as [Timeline] lists it.
type Entry struct {
	// Version is the event's version in the run's stream, and At when it
	// was recorded.
	Version uint64
	At      time.Time
	// Type is the event type, one of the Event constants.
	Type string
	// Status is the run's status after the transition.
	Status Status
	// Step and Attempt are the step (or compensation) and attempt the
	// transition concerns, if any.
	Step    string
	Attempt int
	// Error is a failed attempt's error; TimedOut and Unknown say that its
	// outcome is unknown, because it timed out or was interrupted.
	Error    string
	TimedOut bool
	Unknown  bool
	// Delay is a retry's wait before the next attempt.
	Delay time.Duration
	// Actor and Reason say who took an operator action and why.
	Actor, Reason string
}

// Timeline returns every transition of a run, oldest first, for people to
// read (the CLI prints it). It needs no typed definition. A run that does
// not exist returns an error matching [nova.ErrNotFound].
func Timeline(ctx context.Context, runs RunStore, saga, runID string) ([]Entry, error) {
	if err := validName("saga name", saga); err != nil {
		return nil, err
	}
	if err := validateRunID(saga, runID); err != nil {
		return nil, err
	}
	var x Execution[json.RawMessage]
	var out []Entry
	_, err := readRun(ctx, runs.Events(), saga, runID, func(e nova.Event, r *record) error {
		if err := x.fold(e, r, nil); err != nil {
			return err
		}
		out = append(out, Entry{
			Version: e.Version, At: e.RecordedAt, Type: e.Type, Status: x.Status, Step: r.Step, Attempt: r.Attempt,
			Error: r.Error, TimedOut: r.TimedOut, Unknown: r.Unknown, Delay: time.Duration(r.DelayMS) * time.Millisecond,
			Actor: r.Actor, Reason: r.Reason,
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
