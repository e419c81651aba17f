// Package saga runs sagas: a named sequence of steps, each with an action
// and a compensation, that either completes or undoes every step it started.
// Runs are durable: typed data shared by the steps, a run's whole history
// kept as events, and workers that resume a run after a crash.
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
// systems the step calls: steps run at least once. In each part of a key,
// '%' is written as "%25" and '/' as "%2F", so that a run ID holding '/'
// cannot make two calls share a key: run "r/x" step "compensate" has key
// "s/r%2Fx/compensate", the compensation of run "r" step "x" has
// "s/r/x/compensate". Names without '/' or '%' read as written (see
// [IdempotencyKey]).
//
// # Runs and their store
//
// A [Coordinator] works on a [RunStore] (novamem, novasqlite, novapg),
// which keeps three things on one database: every run's stream, the runs
// table (one row per run: status, step, attempt, last error, due time,
// deadline, lease owner and expiry) and the outbox of lifecycle events.
// Every transition is written by a [RunStore.Record] before the next
// action is taken: the event appended to the run's stream at its exact
// expected version, the row replaced and the lifecycle envelope queued, in
// one transaction. A step's success shares its Record with the transition
// that follows it at once (the next step's start, or the run's end), so a
// three-step run costs four transactions. The stream is the truth; the row is its projection, for claiming
// and listing; the outbox is what the broker will hear.
//
// [Start] records a run's start, due now, and returns; a [Worker] drives
// it. [Run] is the synchronous form: it starts the run leased to the
// coordinator's Owner and drives it to its end on the calling goroutine.
// Run IDs are the caller's business keys; starting a run whose stream
// exists records nothing and returns the recorded [Execution]. Many runs
// of one saga may go at once.
//
// [RunStore] is exported whole, with the types its methods take
// ([Transition], [ClaimRequest]), although an application only hands a
// store to [Config] and to the operator functions and never calls
// Record or Claim itself. A backend outside this module must be able to
// implement it, as it can implement nova.Store, and pass
// novatest.RunSagaStore: moving those types to an internal package would
// close the interface to this module's backends, and splitting it into
// an exported half and a hidden half would turn the compile-time check
// of a backend into a type assertion at run time. What this module's
// backends share beyond the contract (the checks of their input, the
// lease rule of a transition) lives in internal/sagarun.
//
// # Steps, retries and compensation
//
// The steps run in order, each attempt bounded by the step's Timeout
// (default 30 s), failures retried per the step's [RetryPolicy]
// (exponential backoff with full jitter and a cap by default, a plain
// 100 ms × attempt with [Linear]; [Permanent] skips retries). When a step
// fails for good, every step that started is compensated in reverse order,
// each compensation with its own policy, and Run returns the failed step's
// error: a [*StepFailedError] or, when time ran
// out, a [*TimeoutError] naming the step. A step "started" when it
// completed or when one of its attempts has an unknown outcome (it timed
// out, or it was interrupted): such a step is compensated like a completed
// one. A timed-out attempt is retried like any other failure, as the
// step's idempotency key makes safe.
//
// A panic in a step's action or compensation is a failed attempt like an
// error, retried and compensated per the same policies: it is recovered
// as an error that errors.As finds a [*nova.PanicError] in, whose text
// ends with the goroutine's stack, and that text is the attempt's error in
// the run's timeline and row. So is a
// panic in the JSON methods of the saga's data (after an action, an
// attempt whose data cannot be encoded has an unknown outcome, and the
// step is compensated), and a [Backoff] that panics ends the retries.
// OnStuckFunc and OnEndFunc run under recover too: the transition is
// recorded by then, so their panics are logged, with the stack, and the
// worker goes on.
//
// A retry's wait is a due time: the transition that records the failed
// attempt sets the run's due time to now plus the backoff. A worker then
// releases the run and claims it again once it is due, so no goroutine
// sleeps through a backoff; Run, which owns its run, waits it out.
//
// Three timeouts apply to a step's action: each attempt's (Step.Timeout),
// the step's across its attempts and waits (Step.StepTimeout, optional)
// and the run's overall deadline ([Definition.WithTimeout], optional, set
// when the run starts and kept in its row). When the step's or the saga's
// time runs out, the attempt in progress is cut short, no retry follows,
// and the step fails with a [*TimeoutError] whose Scope says which
// timeout passed; the run compensates. Compensations are bounded by their
// attempt timeout only: undoing must go on.
//
// # Workers, leases and crashes
//
// A [Worker] (see [NewWorker], [Register]) claims due runs of its sagas
// with a lease, folds each from its stream and takes its next actions,
// renewing the lease while a step runs. Every write is fenced twice: by the
// lease (a worker whose lease expired gets [ErrLeaseLost]) and by the
// stream's expected version; a fenced-out worker drops the run and leaves
// it to whoever holds it now. Two workers never drive one run at once
// while their leases hold; a worker that stalls past its lease loses the
// run, and its late writes are refused.
//
// A step's ctx ends before its lease can. The runner counts the lease
// from before the claim (or the last successful renewal) was sent, renews
// it every third of the lease, and when a tenth of the lease is all that
// is left without a successful renewal (the database is slow, down, or
// gave the run away) it cancels the attempt's ctx with cause
// [ErrLeaseLost] and releases the run to the next claimer. A step that
// honours its ctx therefore never runs beside the same step on another
// worker; one that ignores it is abandoned, and its outcome not recorded.
// The worker still owns the goroutine of every attempt it made, abandoned
// or not: [Worker.Stop] waits for each to return.
//
// A run interrupted mid-attempt (its process crashed, its worker stopped,
// or it lost its lease) has an attempt started in its stream and no
// outcome. The next worker to claim it records that attempt as failed
// with an unknown outcome and lets the retry policy decide, as after a
// timeout: the step runs again as a new attempt, and is compensated if it
// fails for good. The same holds for a compensation. Steps therefore run
// at least once; each gets a stable idempotency key in its [StepContext],
// "{saga}/{run}/{step}" for the action and "{saga}/{run}/{step}/compensate"
// for its compensation, to pass to the systems it calls.
//
// # Stuck runs and operators
//
// A compensation that fails past its policy's limit leaves the run Stuck:
// compensation stops there (earlier steps are not undone before a later
// one), the run's row says Stuck, the lifecycle event
// "saga.{saga}.saga.stuck" goes to the outbox with the transition, the
// coordinator logs an error and calls Config.OnStuckFunc, and Run's error
// wraps both the step's failure and the [*CompensationFailedError].
// Nothing is swallowed. Stuck runs are counted by [RunStore.Count] and
// listed by [RunStore.List] with Status Stuck.
//
// An operator acts on a run by saga name and run ID, without its typed
// definition (the CLI calls these): [RetryRun] runs the stuck compensation
// again with a fresh retry budget, [SkipCompensation] skips it with a
// reason, and [AbandonRun] ends a run that has not ended as Failed, with a
// reason. Each is an event in the run's stream with who acted and why.
// [Timeline] lists a run's transitions, each with its time, status, step,
// attempt, error, and actor and reason, for people to read.
//
// # The run's stream
//
// The stream of a run is "saga-{saga}-{run}", with each '-' of the saga's
// name written as '.': run "42" of saga "order-fulfil" is
// "saga-order.fulfil-42". Run IDs are business keys and may hold any
// character a stream ID may; saga names are identifiers a developer
// picks, and hold no '.' (see [Define]). Written that way, the
// saga's name is what lies between "saga-" and the next '-', and the run
// ID is the rest, so two runs never share a stream: saga "a-b" run "c" is
// "saga-a.b-c", saga "a" run "b-c" is "saga-a-b-c". Refusing '-' in saga
// names would have done as well for new code, but "order-fulfil" is how
// many name things, and every saga so named would have been orphaned
// with its runs. The runs table is keyed by the two names apart, and
// lifecycle envelope IDs are written as streams are (see below).
//
// Older versions named the stream "saga-{saga}-{run}" as written, which
// two runs may share. For a saga whose name has no '-' the two forms are
// one, so its runs are where they always were. A run of a saga whose name
// has '-', recorded by an older version, is found under the old name:
// [Load], [Start], [Run], workers, [Timeline] and the operator actions
// look there when the new name holds nothing, take the stream only if its
// first event names the same saga and run, and go on writing the run
// there; a run store never creates a stream of the old form. [Start] and
// [Run] of such a saga read the old name first, one read more per start.
// Where an older version recorded a run under the name that is now
// another run's (saga "a-b" run "c" in "saga-a-b-c", the new name of saga
// "a" run "b-c"), the older run keeps the stream, and the other cannot be
// started: [Start], [Run] and [Load] return an error matching
// [nova.ErrConcurrency] that names the run the stream holds. Those
// versions could not tell the two apart either: the second start returned
// the first run. Processes of an older version must not start runs of a
// saga whose name has '-' beside newer ones: upgrade those together.
//
// A stream's events: run started (with the saga, the run ID, the steps'
// names, the initial data and the deadline), attempt
// started, attempt failed and retry scheduled (with the delay, and whether
// its outcome is unknown), step succeeded (with the data), step failed,
// compensation started, retried, succeeded (with the data) or given up,
// the operator's retry, skip and abandonment, and run completed,
// compensated or failed. [Load] folds the stream back into an [Execution],
// data and completed steps included; the coordinator folds the same events
// as it records them, so the two always agree. The event types and their
// JSON fields are listed in events.go.
//
// # Lifecycle events
//
// Each transition puts its lifecycle events in the outbox, in the
// transaction that records it: topic "saga.{saga}.{step}.{status}" with
// status started, succeeded, failed, compensating, compensated or
// compensation_failed, and step "saga" with completed, compensated or
// stuck. The operator's actions publish theirs the same way, in the
// transaction that records the action: step "saga" with retried or
// abandoned, and the skipped step with compensation_skipped. The attempt
// of stuck, retried and compensation_skipped counts the times the run
// became Stuck, so that each retry or skip answers one. Event type
// "saga.event"; payload {saga_id, step, status, timestamp_ms} plus
// run_id and attempt. A [broker.Relay] moves them to
// the broker at least once: a Worker runs one when the coordinator has a
// Broker, and Run flushes the outbox before it returns. A broker outage
// delays them and loses none: they wait in the outbox, and the saga goes
// on.
//
// Topics, event type and payload fields are those of the saga events of
// nova-boot-data-patterns (the Rust library whose API Nova's is
// compatible with; see the README), so consumers written for those read
// these. Where the events differ from that library's:
//
//	                      nova-boot-data-patterns            Nova
//	envelopes             one per step and status: started   one per attempt: started and
//	                      once before the retries,           compensating each time an
//	                      compensating once                  attempt begins
//	envelope ID           {saga_id}-{step}-{status}          {saga}-{run}-{step}-{status}-{attempt},
//	                                                         '-' in saga and step names as '.'
//	key                   none                               the run ID
//	payload               saga_id, step, status,             the same, plus run_id and attempt
//	                      timestamp_ms
//	a compensation        compensation_failed, the next      compensation_failed, then
//	fails for good        compensation, saga.compensated     saga.{saga}.saga.stuck; the run
//	                                                         waits for an operator
//	operator actions      (none)                             saga.{saga}.saga.retried,
//	                                                         saga.{saga}.{step}.compensation_skipped,
//	                                                         saga.{saga}.saga.abandoned
//	delivery              published as it happens; a         through the outbox with the
//	                      failed publish is logged, the      transition, relayed at least once
//	                      event lost
//
// Why:
//
//   - An envelope per attempt: attempts of a durable run may be made by
//     different workers, before and after a crash, and each is a
//     transition of its own, whose envelope is written in its
//     transaction. A consumer sees every attempt that began, which is
//     what retries look like from outside.
//   - The ID: the Rust library's is the same for every run of a saga, and a
//     broker drops an ID it has seen within its deduplication window
//     (JetStream's, the in-memory broker's), so a second run's events
//     would vanish. Nova's is unique per event and the same each time the
//     relay publishes it again, which is the deduplication key an
//     at-least-once relay needs. Saga and step names have their '-'
//     written as '.' (no name holds '.') for the reason streams do: the
//     run ID, free-form, is what lies between the saga's name and the
//     last three fields, and no two events share an ID.
//   - The key: brokers that partition or order by key keep one run's
//     events together and in order. The Rust library keeps one execution
//     per saga name and has no run to key by.
//   - The stuck event: the Rust library never gets stuck; it logs a failed
//     compensation and reports the saga compensated. A Nova run stops
//     and waits for an operator, and the broker must say so. Its attempt
//     counts the times the run became Stuck (after an operator's retry or
//     skip it may again), so each is an event of its own.
//
// # Testing
//
// Package sagatest wraps a definition's steps to inject faults: fail step N
// on attempt K, hang past the timeout, or crash after the side effect and
// before its outcome is recorded.
package saga
