package saga

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/nova-go/nova"
)

// The event types of a run's stream. Each event's data is a JSON [record];
// the fields each type sets are given beside it. The later, durable slice
// builds on this format: the runs table is a projection of the last event
// (status, and a due time from a retry's delay_ms), and a worker resumes a
// run by folding its stream with [Load] and taking the next action.
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
)

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

// Execution is a run as its stream records it: the seed's SagaExecution
// with the data and the details needed to resume it.
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
	// Version is the run stream's version: the expected version of the
	// next transition.
	Version uint64
	// StartedAt and UpdatedAt are when the first and last transitions were
	// recorded.
	StartedAt, UpdatedAt time.Time

	// started are the steps to compensate: completed or timed out.
	started []string
}

// apply folds one recorded event into x.
func (x *Execution[D]) apply(e nova.Event) error {
	var r record
	if err := json.Unmarshal(e.Data, &r); err != nil {
		return fmt.Errorf("saga: decode event %d of %q: %w", e.Version, e.Stream, err)
	}
	if e.Version == 1 {
		x.StartedAt = e.RecordedAt
	}
	x.UpdatedAt = e.RecordedAt
	x.Version = e.Version
	if r.Data != nil {
		var d D
		if err := json.Unmarshal(r.Data, &d); err != nil {
			return fmt.Errorf("saga: decode data of event %d of %q: %w", e.Version, e.Stream, err)
		}
		x.Data = d
	}
	if r.Step != "" {
		x.Step, x.Attempt = r.Step, r.Attempt
	}
	switch e.Type {
	case EventRunStarted:
		x.Saga, x.RunID, x.Status = r.Saga, r.RunID, Running
	case EventStepStarted, EventStepRetrying:
		x.Status = Running
	case EventStepSucceeded:
		x.CompletedSteps = append(x.CompletedSteps, r.Step)
		x.started = append(x.started, r.Step)
	case EventStepFailed:
		x.FailedStep, x.Failure = r.Step, r.Error
		if r.Started {
			x.started = append(x.started, r.Step)
		}
		x.Status = Compensating
	case EventCompensationStarted, EventCompensationRetrying:
		x.Status = Compensating
	case EventStepCompensated:
		x.CompensatedSteps = append(x.CompensatedSteps, r.Step)
	case EventCompensationFailed:
		x.StuckStep, x.CompensationFailure = r.Step, r.Error
		x.Status = Stuck
	case EventRunCompleted:
		x.Status, x.Step, x.Attempt = Completed, "", 0
	case EventRunCompensated:
		x.Status = Compensated
	case EventRunFailed:
		x.Status = Failed
	default:
		return fmt.Errorf("saga: unknown event type %q at version %d of %q", e.Type, e.Version, e.Stream)
	}
	return nil
}

// ToCompensate returns the steps that still need undoing, in the order they
// will be undone: every started step (completed, or with a timed-out
// attempt) not yet compensated, last first.
func (x *Execution[D]) ToCompensate() []string {
	done := make(map[string]bool, len(x.CompensatedSteps))
	for _, s := range x.CompensatedSteps {
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
