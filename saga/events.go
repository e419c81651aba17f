package saga

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/instrument"
)

// The event types of a run's stream. Each event's data is a JSON [record];
// the fields each type sets are given beside it. The runs table is a
// projection of the last event (status, and a due time from a retry's
// delay_ms), and a worker resumes a run by folding its stream and taking
// the next action. The failure events (retrying, failed) also carry
// unknown when the attempt was interrupted rather than seen to fail.
const (
	// EventRunStarted opens the stream: saga, run_id, steps, data.
	EventRunStarted = "saga.run_started"
	// EventStepStarted is an attempt of a step's action about to run:
	// step, attempt.
	EventStepStarted = "saga.step_started"
	// EventStepRetrying is a failed attempt to be retried: step, attempt,
	// error, timed_out, delay_ms.
	EventStepRetrying = "saga.step_retrying"
	// EventStepSucceeded is a completed step: step, attempt, data.
	EventStepSucceeded = "saga.step_succeeded"
	// EventStepFailed is a step that failed for good: step, attempt, error,
	// timed_out (of the last attempt), started (whether any attempt timed
	// out, so that the step is compensated). Compensation follows.
	EventStepFailed = "saga.step_failed"
	// EventCompensationStarted is an attempt of a compensation about to
	// run: step, attempt.
	EventCompensationStarted = "saga.compensation_started"
	// EventCompensationRetrying is a failed compensation attempt to be
	// retried: step, attempt, error, timed_out, delay_ms.
	EventCompensationRetrying = "saga.compensation_retrying"
	// EventStepCompensated is a compensated step: step, attempt, data.
	EventStepCompensated = "saga.step_compensated"
	// EventCompensationFailed is a compensation given up: step, attempt,
	// error. The run is Stuck.
	EventCompensationFailed = "saga.compensation_failed"
	// EventRunCompleted ends a run whose steps all succeeded.
	EventRunCompleted = "saga.run_completed"
	// EventRunCompensated ends a run whose started steps are compensated.
	EventRunCompensated = "saga.run_compensated"
	// EventRunFailed ends a run whose failed step left nothing to
	// compensate.
	EventRunFailed = "saga.run_failed"
	// EventRunRetried is an operator's retry of a Stuck run: actor,
	// reason. The stuck compensation runs again, with a fresh retry budget.
	EventRunRetried = "saga.run_retried"
	// EventCompensationSkipped is an operator's skip of a Stuck run's
	// compensation: step, actor, reason. Compensation goes on with the
	// steps before it.
	EventCompensationSkipped = "saga.compensation_skipped"
	// EventRunAbandoned is an operator's abandonment of a run that had not
	// ended: actor, reason. The run is Failed; nothing more is undone.
	EventRunAbandoned = "saga.run_abandoned"
)

// errInterrupted is the error recorded for an attempt that started and
// never recorded an outcome: its worker stopped or crashed, or lost its
// lease, mid-attempt.
const errInterrupted = "attempt interrupted: outcome unknown"

// record is the data of every event of a run's stream.
type record struct {
	Saga     string          `json:"saga,omitempty"`
	RunID    string          `json:"run_id,omitempty"`
	Steps    []string        `json:"steps,omitempty"`
	Step     string          `json:"step,omitempty"`
	Attempt  int             `json:"attempt,omitempty"`
	Error    string          `json:"error,omitempty"`
	TimedOut bool            `json:"timed_out,omitempty"`
	Started  bool            `json:"started,omitempty"`
	DelayMS  int64           `json:"delay_ms,omitempty"`
	Data     json.RawMessage `json:"data,omitempty"`
	// Unknown marks an attempt that was interrupted before its outcome
	// was recorded (see errInterrupted).
	Unknown bool `json:"unknown,omitempty"`
	// DeadlineMS is the saga's overall deadline, in Unix milliseconds, on
	// run_started when the definition has a timeout.
	DeadlineMS int64 `json:"deadline_ms,omitempty"`
	// Actor and Reason say who took an operator action and why.
	Actor  string `json:"actor,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Status is where a run stands.
type Status string

// The statuses of a run. Running, Compensating and Stuck are not terminal.
const (
	// Running: steps are being executed.
	Running Status = "running"
	// Compensating: a step failed for good; started steps are being undone.
	Compensating Status = "compensating"
	// Stuck: a compensation failed past its limit; an operator must act.
	Stuck Status = "stuck"
	// Completed: every step succeeded.
	Completed Status = "completed"
	// Compensated: a step failed and every started step was undone.
	Compensated Status = "compensated"
	// Failed: a step failed and nothing had started that needed undoing.
	Failed Status = "failed"
)

// Terminal reports whether the run has ended for good.
func (s Status) Terminal() bool { return s == Completed || s == Compensated || s == Failed }

// Execution is a run as its stream records it: its status and completed
// steps, with the data and the details needed to resume it.
type Execution[D any] struct {
	// Saga is the saga's name and RunID the run's.
	Saga, RunID string
	// Status is where the run stands.
	Status Status
	// Data is the saga data as last recorded.
	Data D
	// CompletedSteps are the steps that succeeded, in order.
	CompletedSteps []string
	// CompensatedSteps are the steps undone, in the order undone.
	CompensatedSteps []string
	// Step is the step being executed or compensated, or the one that
	// failed or got stuck; empty before the first and after completion.
	Step string
	// Attempt is the last attempt recorded for Step.
	Attempt int
	// FailedStep and Failure name the step that failed for good and its
	// last error's message; empty unless one did.
	FailedStep, Failure string
	// StuckStep and CompensationFailure name the compensation given up and
	// its last error's message; empty unless the run is Stuck.
	StuckStep, CompensationFailure string
	// SkippedSteps are the compensations an operator skipped, in order.
	SkippedSteps []string
	// Deadline, when set, is when the saga's overall timeout ends.
	Deadline time.Time
	// Version is the run stream's version: the expected version of the
	// next transition.
	Version uint64
	// StartedAt and UpdatedAt are when the first and last transitions were
	// recorded.
	StartedAt, UpdatedAt time.Time

	// started are the steps to compensate: completed, or with an attempt
	// whose outcome is unknown.
	started []string
	// comp is whether Step and Attempt refer to a compensation.
	comp bool
	// pending is whether the last event started an attempt whose outcome
	// is not recorded.
	pending bool
	// uncertain is whether an attempt of Step's action had an unknown
	// outcome (timed out or interrupted), so the step must be compensated
	// if it fails for good.
	uncertain bool
	// began is when the first attempt of Step (or of its compensation)
	// started; base is the attempts made before an operator's retry.
	began time.Time
	base  int
	// due is when the next attempt may start after a retry's delay.
	due time.Time
	// lastError is the last recorded attempt's error.
	lastError string
	// stuck counts the times the run became Stuck.
	stuck int
	// stream is the run's stream, when the execution was loaded from it:
	// [StreamName], or the legacy name of a run an older version
	// recorded.
	stream string
	// origin is the trace context recorded with the run's first event
	// (the context that started the run), which the spans of its steps
	// link to.
	origin map[string]string
}

// apply folds one recorded event into x.
func (x *Execution[D]) apply(e nova.Event) error {
	var r record
	if err := json.Unmarshal(e.Data, &r); err != nil {
		return fmt.Errorf("saga: decode event %d of %q: %w", e.Version, e.Stream, err)
	}
	return x.fold(e, &r, nil)
}

// fold folds one event into x, given its decoded record and, when the
// caller has it, the data the record carries (so it is not decoded again).
func (x *Execution[D]) fold(e nova.Event, r *record, data *D) error {
	if e.Version == 1 {
		x.StartedAt = e.RecordedAt
		x.origin = instrument.TraceKeys(nil, e.Metadata.Extra)
	}
	x.UpdatedAt = e.RecordedAt
	x.Version = e.Version
	switch {
	case r.Data == nil:
	case data != nil:
		x.Data = *data
	default:
		var d D
		if err := unmarshal(r.Data, &d); err != nil {
			return fmt.Errorf("saga: decode data of event %d of %q: %w", e.Version, e.Stream, err)
		}
		x.Data = d
	}
	comp := x.comp
	switch e.Type {
	case EventStepStarted, EventStepRetrying, EventStepSucceeded, EventStepFailed:
		comp = false
	case EventCompensationStarted, EventCompensationRetrying, EventStepCompensated, EventCompensationFailed:
		comp = true
	}
	if r.Step != "" {
		if r.Step != x.Step || comp != x.comp {
			// A new step or compensation: its own attempts and clock.
			x.began, x.base, x.uncertain = e.RecordedAt, 0, false
		}
		x.Step, x.Attempt, x.comp = r.Step, r.Attempt, comp
	}
	x.pending, x.due, x.lastError = false, time.Time{}, r.Error
	switch e.Type {
	case EventRunStarted:
		x.Saga, x.RunID, x.Status = r.Saga, r.RunID, Running
		if r.DeadlineMS != 0 {
			x.Deadline = time.UnixMilli(r.DeadlineMS).UTC()
		}
	case EventStepStarted:
		x.Status, x.pending = Running, true
	case EventStepRetrying:
		x.Status = Running
		x.uncertain = x.uncertain || r.TimedOut || r.Unknown
		x.due = e.RecordedAt.Add(time.Duration(r.DelayMS) * time.Millisecond)
	case EventStepSucceeded:
		x.CompletedSteps = append(x.CompletedSteps, r.Step)
		x.started = append(x.started, r.Step)
	case EventStepFailed:
		x.FailedStep, x.Failure = r.Step, r.Error
		if r.Started || r.TimedOut || r.Unknown || x.uncertain {
			x.started = append(x.started, r.Step)
		}
		x.Status = Compensating
	case EventCompensationStarted:
		x.Status, x.pending = Compensating, true
	case EventCompensationRetrying:
		x.Status = Compensating
		x.due = e.RecordedAt.Add(time.Duration(r.DelayMS) * time.Millisecond)
	case EventStepCompensated:
		x.CompensatedSteps = append(x.CompensatedSteps, r.Step)
	case EventCompensationFailed:
		x.StuckStep, x.CompensationFailure = r.Step, r.Error
		x.Status = Stuck
		x.stuck++
	case EventRunCompleted:
		x.Status, x.Step, x.Attempt = Completed, "", 0
	case EventRunCompensated:
		x.Status = Compensated
	case EventRunFailed:
		x.Status = Failed
	case EventRunRetried:
		x.Status, x.StuckStep, x.CompensationFailure = Compensating, "", ""
		x.base = x.Attempt
	case EventCompensationSkipped:
		x.SkippedSteps = append(x.SkippedSteps, r.Step)
		x.Status, x.StuckStep, x.CompensationFailure = Compensating, "", ""
	case EventRunAbandoned:
		x.Status = Failed
		if x.Failure == "" {
			x.Failure = "abandoned: " + r.Reason
		}
	default:
		return fmt.Errorf("saga: unknown event type %q at version %d of %q", e.Type, e.Version, e.Stream)
	}
	return nil
}

// ToCompensate returns the steps that still need undoing, in the order they
// will be undone: every started step (completed, or with an attempt whose
// outcome is unknown) not yet compensated or skipped, last first.
func (x *Execution[D]) ToCompensate() []string {
	done := make(map[string]bool, len(x.CompensatedSteps)+len(x.SkippedSteps))
	for _, s := range x.CompensatedSteps {
		done[s] = true
	}
	for _, s := range x.SkippedSteps {
		done[s] = true
	}
	var out []string
	for i := len(x.started) - 1; i >= 0; i-- {
		if !done[x.started[i]] {
			out = append(out, x.started[i])
		}
	}
	return out
}
