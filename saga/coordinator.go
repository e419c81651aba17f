package saga

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
)

// DefaultLease is how long a claim on a run holds without renewal when
// Config.Lease is zero.
const DefaultLease = 30 * time.Second

// MinLease is the shortest Config.Lease: a run being worked on is renewed
// every third of it.
const MinLease = 10 * time.Millisecond

// maxOwnerLen bounds Config.Owner.
const maxOwnerLen = 200

// Config configures a [Coordinator].
type Config struct {
	// Runs keeps every run: its stream, its runs-table row and the
	// outbox of its lifecycle events. Required.
	Runs RunStore
	// Broker receives the lifecycle events from the outbox: [Run] relays
	// what is pending before it returns, and a [Worker] runs a
	// [broker.Relay] while it works. Nil leaves them in the outbox for a
	// relay run elsewhere.
	Broker broker.Broker
	// Owner identifies this process to the runs table's leases: [Run]
	// holds its runs under it, and each [Worker] under Owner plus a
	// suffix. Default a random ID ("saga-" and 16 hex digits); it must be
	// unique per process, and at most 200 bytes.
	Owner string
	// Lease is how long a claim holds without renewal; a run being worked
	// on is renewed every third of it. Default [DefaultLease], at least
	// [MinLease].
	Lease time.Duration
	// Logger reports retries, stuck runs, lost leases and relay failures.
	// Default slog.Default().
	Logger *slog.Logger
	// OnStuckFunc, when set, is called after a run becomes Stuck, with its
	// row, on the goroutine that drove the run. A panic in it is
	// recovered and logged with its stack (a [*nova.PanicError]); the run is
	// recorded by then.
	OnStuckFunc func(ctx context.Context, run RunInfo)
	// OnEndFunc, when set, is called after a run ends (Completed,
	// Compensated or Failed) or becomes Stuck, on the goroutine that drove
	// it. A panic in it is recovered and logged, as OnStuckFunc's is.
	OnEndFunc func(ctx context.Context, run RunInfo)
}

// validate reports the first bad field; it changes nothing.
func (c Config) validate() error {
	if c.Runs == nil {
		return nova.Invalidf("saga", "Config.Runs is required")
	}
	if c.Runs.Events() == nil {
		return nova.Invalidf("saga", "Config.Runs.Events() is nil")
	}
	if c.Lease < 0 {
		return nova.Invalidf("saga", "negative Config.Lease %s", c.Lease)
	}
	if c.Lease > 0 && c.Lease < MinLease {
		return nova.Invalidf("saga", "Config.Lease %s is shorter than %s", c.Lease, MinLease)
	}
	if len(c.Owner) > maxOwnerLen {
		return nova.Invalidf("saga", "Config.Owner longer than %d bytes", maxOwnerLen)
	}
	return nil
}

// withDefaults returns c with each zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Owner == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		c.Owner = "saga-" + hex.EncodeToString(b[:])
	}
	if c.Lease == 0 {
		c.Lease = DefaultLease
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Coordinator runs sagas and records them on a durable [RunStore]. It
// holds no state of its own beyond its configuration; every run lives in
// its stream and its runs-table row. It is safe for concurrent use.
type Coordinator struct {
	runs    RunStore
	events  nova.Store
	broker  broker.Broker
	relay   *broker.Relay
	owner   string
	lease   time.Duration
	log     *slog.Logger
	onStuck func(context.Context, RunInfo)
	onEnd   func(context.Context, RunInfo)
	sleep   func(ctx context.Context, d time.Duration) error

	mu      sync.Mutex
	wake    chan struct{} // closed when a run is started here
	workers int           // workers created, for their owner IDs
}

// NewCoordinator returns a coordinator. Errors match [nova.ErrInvalid].
func NewCoordinator(cfg Config) (*Coordinator, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	c := &Coordinator{
		runs: cfg.Runs, events: cfg.Runs.Events(), broker: cfg.Broker, owner: cfg.Owner, lease: cfg.Lease,
		log: cfg.Logger, onStuck: cfg.OnStuckFunc, onEnd: cfg.OnEndFunc, sleep: sleepCtx, wake: make(chan struct{}),
	}
	if c.broker != nil {
		r, err := broker.NewRelay(cfg.Runs.Outbox(), c.broker, broker.RelayConfig{Logger: c.log})
		if err != nil {
			return nil, err
		}
		c.relay = r
	}
	return c, nil
}

// Runs returns the coordinator's run store.
func (c *Coordinator) Runs() RunStore { return c.runs }

// Owner returns the lease owner ID under which [Run] holds its runs.
func (c *Coordinator) Owner() string { return c.owner }

// started wakes the coordinator's workers: a run is due now.
func (c *Coordinator) started() {
	c.mu.Lock()
	close(c.wake)
	c.wake = make(chan struct{})
	c.mu.Unlock()
}

func (c *Coordinator) wakeChan() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wake
}

// flush relays what is pending in the outbox to the broker, if there is
// one; a failure is logged and the envelopes stay for the next relay.
func (c *Coordinator) flush(ctx context.Context) {
	if c.relay == nil {
		return
	}
	if _, err := c.relay.Flush(ctx); err != nil {
		c.log.WarnContext(ctx, "saga: failed to publish saga events; they stay in the outbox", "error", err)
	}
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
		return context.Cause(ctx)
	}
}

// maxRunIDLen keeps envelope IDs and stream names within their limits.
const maxRunIDLen = 128

func validateRunID(saga, runID string) error {
	if runID == "" {
		return nova.Invalidf("saga", "empty run ID")
	}
	if len(runID) > maxRunIDLen {
		return nova.Invalidf("saga", "run ID longer than %d bytes", maxRunIDLen)
	}
	return nova.ValidateStream(StreamName(saga, runID))
}

// Load rebuilds a run's [Execution] from its stream. A run that does not
// exist returns an error matching [nova.ErrNotFound].
func Load[D any](ctx context.Context, c *Coordinator, def *Definition[D], runID string) (Execution[D], error) {
	if err := validateRunID(def.name, runID); err != nil {
		return Execution[D]{}, err
	}
	return load[D](ctx, c.events, def.name, runID)
}

func load[D any](ctx context.Context, events nova.Store, saga, runID string) (Execution[D], error) {
	var x Execution[D]
	stream, err := readRun(ctx, events, saga, runID, func(e nova.Event, r *record) error { return x.fold(e, r, nil) })
	if err != nil {
		return Execution[D]{}, err
	}
	x.stream = stream
	return x, nil
}

// readRun calls each with every event of run runID of saga, oldest first,
// and its decoded record, and returns the run's stream: [StreamName], or,
// for a run an older version recorded there, the legacy name (see
// [legacyStreamName]). A run with neither returns an error matching
// [nova.ErrNotFound]. A stream of the new form whose first event names
// another run (an older version recorded it under the legacy name, which
// is this run's new one) returns an error matching [nova.ErrConcurrency]:
// this run can never be recorded there.
func readRun(ctx context.Context, events nova.Store, saga, runID string, each func(nova.Event, *record) error) (string, error) {
	stream := StreamName(saga, runID)
	n, err := readStream(ctx, events, stream, saga, runID, each)
	if err != nil || n > 0 {
		return stream, err
	}
	if legacy := legacyStreamName(saga, runID); legacy != stream {
		n, err = readStream(ctx, events, legacy, saga, runID, each)
		var other *otherRunError
		if errors.As(err, &other) {
			n, err = 0, nil // another run's: this run has none
		}
		if err != nil || n > 0 {
			return legacy, err
		}
	}
	return "", fmt.Errorf("saga: run %q of %q: %w", runID, saga, nova.ErrNotFound)
}

// readStream calls each with the events of stream, which holds run runID
// of saga if it holds any, and returns how many there were.
func readStream(ctx context.Context, events nova.Store, stream, saga, runID string, each func(nova.Event, *record) error) (int, error) {
	n := 0
	for e, err := range events.ReadStream(ctx, stream, nova.ReadStreamOptions{}) {
		if err != nil {
			return n, fmt.Errorf("saga: read run %q of %q: %w", runID, saga, err)
		}
		var r record
		if err := json.Unmarshal(e.Data, &r); err != nil {
			return n, fmt.Errorf("saga: decode event %d of %q: %w", e.Version, e.Stream, err)
		}
		if n == 0 && (e.Type != EventRunStarted || r.Saga != saga || r.RunID != runID) {
			return n, &otherRunError{saga: saga, runID: runID, stream: stream, first: e.Type, otherSaga: r.Saga, otherRun: r.RunID}
		}
		n++
		if err := each(e, &r); err != nil {
			return n, err
		}
	}
	return n, nil
}

// otherRunError is a run's stream found holding another run: one that an
// older version recorded under its legacy name.
type otherRunError struct {
	saga, runID, stream, first string
	otherSaga, otherRun        string
}

func (e *otherRunError) Error() string {
	if e.first != EventRunStarted {
		return fmt.Sprintf("saga: run %q of %q: its stream %q starts with %q, not a run's start: %v",
			e.runID, e.saga, e.stream, e.first, nova.ErrConcurrency)
	}
	return fmt.Sprintf("saga: run %q of %q: its stream %q holds run %q of %q, recorded by an older version "+
		"under that name; the run cannot be recorded: %v", e.runID, e.saga, e.stream, e.otherRun, e.otherSaga, nova.ErrConcurrency)
}

// Unwrap makes errors.Is(err, nova.ErrConcurrency) true: the stream is
// taken.
func (e *otherRunError) Unwrap() error { return nova.ErrConcurrency }

// Start records the start of run runID of def with the initial data, due
// now, and returns without running a step: a [Worker] with def registered
// claims the run and drives it to its end. Starting a run whose stream
// exists records nothing and returns its recorded [Execution].
//
// Bad input (an empty or over-long run ID, data that does not encode as
// JSON) returns an error matching
// [nova.ErrInvalid] and records nothing.
func Start[D any](ctx context.Context, c *Coordinator, def *Definition[D], runID string, data D) (Execution[D], error) {
	r, err := begin(ctx, c, def, runID, data, false)
	if err != nil || r.existing {
		return r.x, err
	}
	c.started()
	return r.x, nil
}

// Run starts run runID of def with the initial data and drives it to its
// end on the calling goroutine: the steps in order, retries per each
// step's policy (the wait recorded as the run's due time, and waited out
// here), and on a step's final failure the compensation of every started
// step in reverse order. Run holds the run's lease under the
// coordinator's Owner and renews it while it works, and relays the run's
// lifecycle events to the coordinator's Broker before it returns.
//
// It returns the run's [Execution] and, when a step failed, that step's
// error: a [*StepFailedError], or a [*TimeoutError] when its last attempt
// (or the step's or saga's timeout) ran out. A run left Stuck returns an
// error wrapping both the step's error and the [*CompensationFailedError].
//
// A run whose stream exists is not run again: Run returns its recorded
// Execution and a nil error, whatever its status. A cancelled ctx, or a
// lost lease, stops the run at its current transition and returns an error
// matching [ErrAborted]; the lease is released so that a [Worker] resumes
// the run.
//
// Bad input is rejected as by [Start].
func Run[D any](ctx context.Context, c *Coordinator, def *Definition[D], runID string, data D) (Execution[D], error) {
	r, err := begin(ctx, c, def, runID, data, true)
	if err != nil || r.existing {
		return r.x, err
	}
	err = r.drive(ctx)
	if errors.Is(err, errExists) {
		return load[D](ctx, c.events, def.name, runID)
	}
	c.flush(ctx)
	return r.x, err
}

// begin validates and records run_started, leased to the coordinator's
// Owner when leased is set. A run that exists is loaded instead, with
// existing set.
func begin[D any](ctx context.Context, c *Coordinator, def *Definition[D], runID string, data D, leased bool) (*runner[D], error) {
	if err := validateRunID(def.name, runID); err != nil {
		return &runner[D]{}, err
	}
	raw, err := marshal(data)
	if err != nil {
		return &runner[D]{}, nova.Invalidf("saga", "encode data of run %q: %w", runID, err)
	}
	if x, ok, err := legacyRun[D](ctx, c.events, def.name, runID); err != nil || ok {
		return &runner[D]{x: x, existing: ok}, err
	}
	owner := ""
	if leased {
		owner = c.owner
	}
	r := newRunner(c, def, runID, owner)
	if err := r.syncClock(ctx); err != nil {
		return r, err
	}
	rec := record{Saga: def.name, RunID: runID, Steps: def.Steps(), Data: raw}
	if def.timeout > 0 {
		rec.DeadlineMS = r.now().Add(def.timeout).UnixMilli()
	}
	// Run writes the start with the first step's: nothing happens between.
	err = r.record(ctx, EventRunStarted, rec, r.now(), leased, nil)
	if errors.Is(err, errExists) {
		x, err := load[D](ctx, c.events, def.name, runID)
		return &runner[D]{x: x, existing: true}, err
	}
	return r, err
}

// legacyRun returns the run an older version recorded under its legacy
// stream name, if there is one: a run's first write goes to [StreamName],
// and would not see it. Only a saga whose name has '-' has a legacy name
// apart from its new one, and pays this read.
func legacyRun[D any](ctx context.Context, events nova.Store, saga, runID string) (Execution[D], bool, error) {
	legacy := legacyStreamName(saga, runID)
	if legacy == StreamName(saga, runID) {
		return Execution[D]{}, false, nil
	}
	var x Execution[D]
	n, err := readStream(ctx, events, legacy, saga, runID, func(e nova.Event, r *record) error { return x.fold(e, r, nil) })
	var other *otherRunError
	switch {
	case errors.As(err, &other) || (err == nil && n == 0):
		return Execution[D]{}, false, nil
	case err != nil:
		return Execution[D]{}, false, err
	}
	x.stream = legacy
	return x, true, nil
}
