package saga

import (
	"fmt"
	"time"

	"github.com/nova-go/nova/broker"
)

// lifecycle is the payload of a lifecycle event: saga_id, step, status and
// timestamp_ms, plus the run and the attempt.
type lifecycle struct {
	SagaID      string `json:"saga_id"`
	RunID       string `json:"run_id"`
	Step        string `json:"step"`
	Status      string `json:"status"`
	Attempt     int    `json:"attempt"`
	TimestampMS int64  `json:"timestamp_ms"`
}

// Topic returns the topic of a lifecycle event: "saga.{saga}.{step}.{status}".
func Topic(saga, step, status string) string { return "saga." + saga + "." + step + "." + status }

// lifecycleEnvelope builds the envelope a transition puts in the outbox.
func lifecycleEnvelope(saga, runID, step, status string, attempt int, at time.Time) (broker.Envelope, error) {
	p := lifecycle{SagaID: saga, RunID: runID, Step: step, Status: status, Attempt: attempt, TimestampMS: at.UnixMilli()}
	env, err := broker.NewEnvelope(EnvelopeID(saga, runID, step, status, attempt), Topic(saga, step, status), "saga.event", p)
	if err != nil {
		return broker.Envelope{}, fmt.Errorf("saga: lifecycle event %s/%s of run %q: %w", step, status, runID, err)
	}
	env.Key = runID
	env.Timestamp = time.UnixMilli(at.UnixMilli())
	return env, nil
}
