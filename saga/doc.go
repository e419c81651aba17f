// Package saga runs sagas: a named sequence of steps, each with an action
// and a compensation, that either completes or undoes every step it started.
// It is the Go port of the seed's saga module, with typed data shared by the
// steps and a run's whole history kept as events in a [nova.Store].
//
// # Definitions and data
//
// [Define] builds a [Definition] from a name and ordered [Step] values. The
// saga's data is a Go type D chosen by the caller: every step receives a
// *D, and what a step writes into it is recorded when the step succeeds, so
// later steps and the step's own compensation see it. Each attempt works on
// a fresh copy decoded from the last recorded state, so an abandoned attempt
// (one that timed out) cannot change what the run holds.
//
// Each call receives a [StepContext] with the run ID, the attempt number and
// a stable idempotency key, "{saga}/{run}/{step}" for the action and
// "{saga}/{run}/{step}/compensate" for its compensation, to pass to the
// systems the step calls: steps run at least once.
//
// # Running
//
// [Run] is the seed's synchronous run: the steps in order, each attempt
// bounded by the step's timeout (default 30 s), failures retried per the
// step's [RetryPolicy] (exponential backoff with full jitter and a cap by
// default, the seed's 100 ms × attempt with [Linear]; [Permanent] skips
// retries). When a step fails for good, every step that started is
// compensated in reverse order, each compensation with its own policy, and
// Run returns the failed step's error, as the seed's run does: a
// [*StepFailedError] or, when the last attempt timed out, a [*TimeoutError]
// naming the step. A step "started" when it completed or when one of its
// attempts timed out: a timed-out attempt's outcome is unknown, so it is
// compensated like a completed step. Unlike the seed, a timed-out attempt is
// retried like any other failure, as the step's idempotency key makes safe.
//
// A compensation that fails past its policy's limit leaves the run Stuck:
// compensation stops there (earlier steps are not undone before a later one),
// the run's status says Stuck and Run's error wraps both the step's failure
// and the [*CompensationFailedError]. Nothing is swallowed.
//
// Run IDs are the caller's business keys. Many runs of one saga may go at
// once; starting a run whose stream exists runs nothing and returns the
// recorded [Execution].
//
// # The run's stream
//
// Every transition is an event appended to the run's own stream,
// "saga-{name}-{run}", with the exact expected version, before the next
// action is taken: run started (with the steps' names and the initial data),
// attempt started, attempt failed and retry scheduled (with the delay),
// step succeeded (with the data), step failed (whether it timed out),
// compensation started, retried, succeeded (with the data) or given up, and
// run completed, compensated or failed. [Load] folds the stream back into an
// [Execution], data and completed steps included; Run folds the same events
// as it appends them, so the two always agree. The event types and their
// JSON fields are listed in events.go.
//
// # Lifecycle events
//
// After a transition is recorded, the coordinator publishes the seed's
// lifecycle event to its [broker.Broker]: topic "saga.{saga}.{step}.{status}"
// with status started, succeeded, failed, compensating, compensated or
// compensation_failed, and step "saga" with completed or compensated; event
// type "saga.event"; payload {saga_id, step, status, timestamp_ms} plus
// run_id and attempt. The seed's envelope ID "{saga}-{step}-{status}" is the
// same for every run of a saga, and the broker drops an ID it has seen
// within its deduplication window, so the second run's events would vanish.
// The ID here is "{saga}-{run}-{step}-{status}-{attempt}": the seed's form
// with the run and attempt added, unique per event, and the same when the
// same transition is published again, which is what an at-least-once relay
// needs. As in the seed, a failed publish is logged and does not stop the
// saga.
//
// # Status
//
// This is the first, server-free slice of issue 4: definitions, retry
// policies, timeouts, typed errors, the synchronous coordinator, the run's
// stream and Load, and lifecycle events published directly. Not yet built,
// and due in a later session: the durable runs table on SQLite and
// PostgreSQL (status, due time, lease owner and expiry, written in the
// transaction of each append), workers that claim due runs with a lease and
// resume an interrupted run from its stream (a Running or Compensating
// execution from Load says exactly where: the next step, the attempt, and
// the steps still to compensate), retries waiting on a due time instead of
// a sleeping goroutine, the outbox that writes each lifecycle envelope with
// its transition and relays it at least once, operator actions on Stuck
// runs (retry, skip, abandon), per-step and per-saga overall timeouts, the
// crash test, and the CLI. Until then a run interrupted mid-way (a cancelled
// ctx returns [ErrAborted]) stays at its recorded status, and starting it
// again returns it without resuming it.
package saga
