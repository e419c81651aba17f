package projection

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/backoff"
	"github.com/nova-go/nova/internal/projectiondriver"
	"github.com/nova-go/nova/internal/startstop"
)

// PoisonPolicy says what a runner does with an event whose handler still
// fails after its retries.
type PoisonPolicy uint8

const (
	// PoisonStop stops the projection on the event, with a
	// [*PoisonError]; its checkpoint stays just before the event. This is
	// the default.
	PoisonStop PoisonPolicy = iota
	// PoisonSkip records the event (see [Runner.Skipped] and
	// Config.SkipFunc) and goes on with the next one.
	PoisonSkip
)

// Defaults of [Config].
const (
	DefaultBatchSize    = 100
	DefaultRetryBackoff = 100 * time.Millisecond
	DefaultMaxBackoff   = 5 * time.Second
	DefaultLagLimit     = 10_000
	DefaultLeaseTTL     = 15 * time.Second
	// MinLeaseTTL is the shortest LeaseTTL: renewals run every third of
	// it and must fit a round trip to the database.
	MinLeaseTTL = 30 * time.Millisecond
	maxSkipped  = 1000
)

// Config configures a [Runner]. Store and Projection are required; every
// other zero field means its default.
type Config struct {
	// Store is the event store the projection reads with Subscribe.
	Store nova.Store
	// Projection holds the handlers.
	Projection *Projection
	// Checkpoints keeps the checkpoint. Default: a new [MemoryCheckpoints].
	// When it implements [TxCheckpoints] (the SQL backends' do), each
	// batch's handlers run inside its Commit, in the transaction that
	// moves the checkpoint: each event's effect is applied once. Otherwise
	// the checkpoint is saved after the handlers and delivery is at least
	// once.
	Checkpoints CheckpointStore
	// BatchSize is the most events handled before a checkpoint is saved.
	// A batch is whatever has arrived, up to BatchSize, so a live
	// projection saves after each small burst. Default 100, at most
	// [nova.MaxBatch].
	BatchSize int
	// Retries is how many more times a failing handler runs on the same
	// event before the event counts as poison. Default 0.
	Retries int
	// RetryBackoff is the wait before the first retry; it doubles on each
	// retry up to MaxBackoff. Default 100 ms. It is also the first bound
	// of the backoff with which the runner waits out transient errors
	// (see [Retrying]): full jitter, the bound doubling up to MaxBackoff.
	RetryBackoff time.Duration
	// MaxBackoff caps the wait between retries. Default 5 s.
	MaxBackoff time.Duration
	// OnPoison is what happens after the last retry fails. Default
	// [PoisonStop].
	OnPoison PoisonPolicy
	// SkipFunc, if set, is called with each event skipped under
	// [PoisonSkip].
	// If it panics, the runner fails with the panic as its error.
	SkipFunc func(ctx context.Context, s Skipped)
	// ResetFunc, if set, empties the read model; [Runner.Reset] calls it.
	ResetFunc func(ctx context.Context) error
	// LagLimit caps how many events [Runner.Lag] counts. Default 10,000.
	LagLimit int
	// NowFunc is the clock for time lag. Default time.Now.
	NowFunc func() time.Time

	// Leaser, if set, keeps one instance of the projection running
	// across processes: the runner handles events only while it holds
	// the projection's lease, renewing it every LeaseTTL/3, and waits as a
	// standby while another instance holds it. Use the same store as
	// Checkpoints (the SQL backends' checkpoint stores are Leasers), so
	// that each Commit checks the lease too and an instance that lost it
	// writes nothing; with a [LeasedCheckpoints] (novanats) each save
	// checks it.
	Leaser Leaser
	// Owner names this instance in the lease. Default: host name, process
	// ID and a random suffix.
	Owner string
	// LeaseTTL is how long a lease lasts unless renewed: the longest a
	// standby waits after the holder died. Default 15 s, at least
	// [MinLeaseTTL].
	LeaseTTL time.Duration

	// Tables lists the SQL read-model tables the projection writes, for
	// [Runner.Rebuild]: each gets a shadow (see [Table]) that the rebuild
	// fills and then swaps in. A name is a plain SQL identifier (ASCII
	// letters, digits and underscores, not starting with a digit) of at
	// most 54 bytes, optionally qualified by a schema of at most 63
	// ("schema.table"), and does not end in "__rebuild", the suffix of
	// shadows.
	Tables []string
}

// validate reports the first bad field; it changes nothing.
func (c Config) validate() error {
	switch {
	case c.Store == nil:
		return invalidf("config: Store is nil")
	case c.Projection == nil:
		return invalidf("config: Projection is nil")
	case c.BatchSize < 0 || c.BatchSize > nova.MaxBatch:
		return invalidf("config: BatchSize %d is outside 0..%d", c.BatchSize, nova.MaxBatch)
	case c.Retries < 0:
		return invalidf("config: Retries %d is negative", c.Retries)
	case c.RetryBackoff < 0:
		return invalidf("config: RetryBackoff %s is negative", c.RetryBackoff)
	case c.MaxBackoff < 0:
		return invalidf("config: MaxBackoff %s is negative", c.MaxBackoff)
	case c.OnPoison != PoisonStop && c.OnPoison != PoisonSkip:
		return invalidf("config: unknown OnPoison %d", c.OnPoison)
	case c.LagLimit < 0:
		return invalidf("config: LagLimit %d is negative", c.LagLimit)
	case c.LeaseTTL < 0 || c.LeaseTTL > 0 && c.LeaseTTL < MinLeaseTTL:
		return invalidf("config: LeaseTTL %s is below %s", c.LeaseTTL, MinLeaseTTL)
	case c.Owner != "" && nova.ValidateStream(c.Owner) != nil:
		return invalidf("config: Owner: %v", nova.ValidateStream(c.Owner))
	}
	seen := make(map[string]bool, len(c.Tables))
	for _, t := range c.Tables {
		if err := projectiondriver.ValidateTable(t); err != nil {
			return invalidf("config: Tables: %v", err)
		}
		if seen[t] {
			return invalidf("config: Tables: %q is listed twice", t)
		}
		seen[t] = true
	}
	return nil
}

// withDefaults returns c with each zero field set to its default, and
// its slices copied.
func (c Config) withDefaults() Config {
	if c.Checkpoints == nil {
		c.Checkpoints = NewMemoryCheckpoints()
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = DefaultRetryBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.LagLimit == 0 {
		c.LagLimit = DefaultLagLimit
	}
	if c.NowFunc == nil {
		c.NowFunc = time.Now
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.Owner == "" {
		c.Owner = defaultOwner()
	}
	c.Tables = slices.Clone(c.Tables)
	return c
}

// defaultOwner names this process: host, PID and a random suffix, so two
// runners of one process differ too.
func defaultOwner() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "host"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// State is a runner's life-cycle state.
type State string

// The states of a runner.
const (
	Stopped State = "stopped"
	Running State = "running"
	Failed  State = "failed"
	// Standby is a started runner waiting for its lease (Config.Leaser)
	// while another instance holds it.
	Standby State = "standby"
	// Retrying is a started runner waiting out a transient error (see
	// [nova.IsTransient]: a lost connection, a server restarting, a
	// serialization failure or deadlock, a busy database) before it tries
	// again, from its stored checkpoint. Status.Warning holds the error,
	// Status.Attempt counts the attempts in a row that met one, and
	// Status.RetryAt says when the next starts.
	Retrying State = "retrying"
)

// active reports whether st is the state of a started runner.
func active(st State) bool { return st == Running || st == Standby || st == Retrying }

// Status is a snapshot of a runner, cheap to take: it does no I/O.
type Status struct {
	// Name is the projection's name.
	Name string
	// State is running, standby (started, waiting for the lease),
	// retrying (started, waiting out a transient error), stopped or
	// failed.
	State State
	// Owner is this instance's name in the lease (Config.Owner).
	Owner string
	// Checkpoint is the position of the last event handled and saved
	// ([nova.Start] before the first; unknown before the first Start).
	Checkpoint nova.Position
	// Handled counts events handled since the runner was made.
	Handled uint64
	// LastRecordedAt is the RecordedAt of the last event handled.
	LastRecordedAt time.Time
	// TimeLag is now − LastRecordedAt: how old the newest handled event
	// is. When the projection is caught up it is the age of the log's
	// last event; [Runner.Lag] tells the two apart.
	TimeLag time.Duration
	// Skipped counts events skipped under [PoisonSkip].
	Skipped int
	// Err is the error that failed the runner, when State is failed.
	Err error
	// Warning is the error a started runner is waiting out: while
	// retrying, the transient error it met; while standby, the last error
	// it met asking for the lease. Nil once it runs again.
	Warning error
	// Attempt counts, while retrying, the attempts in a row that met a
	// transient error; 0 in every other state.
	Attempt int
	// RetryAt is, while retrying, when the next attempt starts.
	RetryAt time.Time
}

// Lag is how far a projection is behind the log's head.
type Lag struct {
	// Events counts the events after the checkpoint, at most LagLimit.
	Events int
	// Capped reports that the count stopped at LagLimit: the lag is at
	// least Events.
	Capped bool
	// Head is the position of the last event counted (the log's head
	// unless Capped), or the checkpoint when nothing is behind.
	Head nova.Position
	// Time is now − RecordedAt of the oldest event not yet handled (the
	// first after the checkpoint): how stale the read model is. Zero when
	// the projection is caught up.
	Time time.Duration
	// HeldBy, when not empty, names the append still running, for
	// [HeldFor] or longer, that holds every reader of the store back (see
	// [HoldReporter]): the events it holds, and all appended after it
	// began, are neither counted nor handled until it ends.
	HeldBy string
}

// Skipped is an event the runner skipped under [PoisonSkip].
type Skipped struct {
	// Err is the [*PoisonError] naming the event and the handler's error.
	Err *PoisonError
	// At is when it was skipped.
	At time.Time
}

// Runner feeds a [Projection] from a store's Subscribe, starting after its
// checkpoint, and saves the checkpoint after each batch. Start runs it,
// Stop stops it and Wait waits for it to end; the runner owns its
// goroutines and none outlives Stop or Wait. A stopped or failed runner
// may be started again: it runs one run at a time (see [Runner.Start]).
type Runner struct {
	cfg  Config
	name string
	tx   TxCheckpoints // cfg.Checkpoints when it is one

	life startstop.Lifecycle // owns the goroutines of each run

	rebuilding sync.Mutex // held by a Rebuild

	mu       sync.Mutex
	state    State
	err      error
	warn     error
	cp       nova.Position
	loaded   bool
	handled  uint64
	lastAt   time.Time
	skipped  []Skipped
	nskipped int
	failures int           // transient failures since the last batch handled
	retryAt  time.Time     // when the next attempt starts, while retrying
	changed  chan struct{} // closed and replaced on every change
}

// NewRunner returns a stopped runner. A bad config fails with an error
// matching [nova.ErrInvalid] that names the wrong field.
func NewRunner(cfg Config) (*Runner, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	tx, _ := cfg.Checkpoints.(TxCheckpoints)
	return &Runner{cfg: cfg, name: cfg.Projection.name, tx: tx, state: Stopped, changed: make(chan struct{})}, nil
}

// notifyLocked wakes every WaitFor. r.mu must be held.
func (r *Runner) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// Start loads the checkpoint and starts the projection in the background.
// It runs until Stop is called, ctx is done, or it fails (see Wait). When
// the checkpoint store fails with a transient error, Start starts the
// runner [Retrying]: it loads the checkpoint once the store is back.
// A runner runs once at a time: Start fails with [ErrRunning] while it
// runs, or while a Stop winds it down; once its run has ended
// ([Runner.Stopped] is closed), stopped or failed, it may be started
// again and resumes from its checkpoint.
func (r *Runner) Start(ctx context.Context) error {
	err := r.life.Start(ctx, func(ctx context.Context, group *sync.WaitGroup) error {
		// With leases the runner is a standby until it holds the lease.
		r.mu.Lock()
		r.state = Running
		if r.cfg.Leaser != nil {
			r.state = Standby
		}
		r.err, r.warn, r.failures, r.retryAt = nil, nil, 0, time.Time{}
		r.notifyLocked()
		r.mu.Unlock()

		cp, err := r.cfg.Checkpoints.Load(ctx, r.name)
		reload := false
		switch {
		case err == nil:
			r.setCheckpoint(cp)
		case isTransient(err) && ctx.Err() == nil:
			// The run loads it once the store is back.
			r.retrying(err, time.Nanosecond) // try again at once
			reload = true
		default:
			r.mu.Lock()
			r.state = Stopped
			r.notifyLocked()
			r.mu.Unlock()
			return fmt.Errorf("projection: start %q: load checkpoint: %w", r.name, err)
		}
		group.Go(func() {
			err := r.runSafely(ctx, cp, reload)
			r.mu.Lock()
			defer r.mu.Unlock()
			if err != nil && ctx.Err() == nil {
				r.state, r.err = Failed, err
			} else {
				r.state = Stopped
			}
			r.notifyLocked()
		})
		return nil
	})
	if errors.Is(err, startstop.ErrRunning) {
		return fmt.Errorf("projection: start %q: %w", r.name, ErrRunning)
	}
	return err
}

// Stop stops the runner and waits for its goroutines to end, or for ctx
// to be done, whichever comes first; then it returns ctx's error, and the
// run, told to stop, still owns its goroutines: a later Stop waits for
// them again. Stopping a runner that is not running does nothing.
func (r *Runner) Stop(ctx context.Context) error {
	if err := r.life.Stop(ctx); err != nil {
		return fmt.Errorf("projection: stop %q: %w", r.name, err)
	}
	return nil
}

// Stopped returns a channel closed once the runner is not running: when
// the run the last Start began has ended (stopped or failed, every
// goroutine of it returned), or at once for a runner not running.
func (r *Runner) Stopped() <-chan struct{} { return r.life.Stopped() }

// Wait blocks until the current run ends and returns why: nil when it was
// stopped (by Stop or by Start's ctx), otherwise the error that failed it,
// a [*PoisonError] for a poison event.
func (r *Runner) Wait() error {
	<-r.life.Stopped()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state == Failed {
		return r.err
	}
	return nil
}

// Status returns the runner's state and progress.
func (r *Runner) Status() Status {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Status{
		Name: r.name, State: r.state, Owner: r.cfg.Owner, Checkpoint: r.cp, Handled: r.handled,
		LastRecordedAt: r.lastAt, Skipped: r.nskipped, Err: r.err, Warning: r.warn,
	}
	if r.state == Retrying {
		s.Attempt, s.RetryAt = r.failures, r.retryAt
	}
	if !r.lastAt.IsZero() {
		s.TimeLag = max(now.Sub(r.lastAt), 0)
	}
	return s
}

// Skipped returns the events skipped under [PoisonSkip], the most recent 1000,
// oldest first.
func (r *Runner) Skipped() []Skipped {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Skipped(nil), r.skipped...)
}

// Lag counts the events after the checkpoint, up to Config.LagLimit, by
// reading the log: it works on every store and costs a read of the
// events counted. Before the runner has loaded its checkpoint it reads
// the stored one.
func (r *Runner) Lag(ctx context.Context) (Lag, error) {
	r.mu.Lock()
	cp, loaded := r.cp, r.loaded
	r.mu.Unlock()
	if !loaded {
		var err error
		if cp, err = r.cfg.Checkpoints.Load(ctx, r.name); err != nil {
			return Lag{}, fmt.Errorf("projection: lag %q: load checkpoint: %w", r.name, err)
		}
	}
	l, err := lagAfter(ctx, r.cfg.Store, cp, r.cfg.LagLimit, r.now)
	if err != nil {
		return Lag{}, fmt.Errorf("projection: lag %q: %w", r.name, err)
	}
	return l, nil
}

// StoredLag returns the lag of the projection called name from its stored
// checkpoint, without a runner: for tools that report on projections
// running elsewhere. It counts at most limit events (0 means
// [DefaultLagLimit]). Bad input fails with an error matching
// [nova.ErrInvalid].
func StoredLag(ctx context.Context, store nova.Store, checkpoints CheckpointStore, name string, limit int) (Lag, error) {
	switch {
	case limit < 0:
		return Lag{}, invalidf("stored lag: negative limit %d", limit)
	}
	if err := validateName(name); err != nil {
		return Lag{}, err
	}
	if limit == 0 {
		limit = DefaultLagLimit
	}
	cp, err := checkpoints.Load(ctx, name)
	if err != nil {
		return Lag{}, fmt.Errorf("projection: lag %q: load checkpoint: %w", name, err)
	}
	l, err := lagAfter(ctx, store, cp, limit, time.Now)
	if err != nil {
		return Lag{}, fmt.Errorf("projection: lag %q: %w", name, err)
	}
	return l, nil
}

func lagAfter(ctx context.Context, store nova.Store, cp nova.Position, limit int, now func() time.Time) (Lag, error) {
	l := Lag{Head: cp}
	for e, err := range store.ReadAll(ctx, nova.ReadAllOptions{From: cp, Limit: limit + 1}) {
		if err != nil {
			return Lag{}, err
		}
		if l.Events == limit {
			l.Capped = true
			break
		}
		if l.Events == 0 {
			l.Time = max(now().Sub(e.RecordedAt), 0)
		}
		l.Events++
		l.Head = e.Position
	}
	var err error
	l.HeldBy, err = heldBy(ctx, store)
	return l, err
}

// WaitFor blocks until the projection has handled (and checkpointed) the
// event at pos, so a query made afterwards sees it: read-your-writes after
// a command, with pos from its AppendResult. It returns ctx's error when
// ctx ends first, the run's error when the runner fails, and
// [ErrNotRunning] when the runner is stopped short of pos.
func (r *Runner) WaitFor(ctx context.Context, pos nova.Position) error {
	for {
		r.mu.Lock()
		cp, loaded, state, runErr, ch := r.cp, r.loaded, r.state, r.err, r.changed
		r.mu.Unlock()
		switch {
		case loaded && pos.Compare(cp) <= 0:
			return nil
		case state == Failed:
			return fmt.Errorf("projection: wait for %s in %q: %w", pos, r.name, runErr)
		case state == Stopped:
			return fmt.Errorf("projection: wait for %s in %q at %s: %w", pos, r.name, cp, ErrNotRunning)
		}
		// Running, standby or retrying: a standby takes over when the
		// lease frees, a retrying runner once the store is back.
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("projection: wait for %s in %q: %w", pos, r.name, ctx.Err())
		}
	}
}

// Reset sets the checkpoint back to [nova.Start] and then calls
// Config.ResetFunc to empty the read model, so the next Start rebuilds it
// from the first event. The runner must be stopped ([ErrRunning]
// otherwise). The checkpoint goes first: a crash between the two steps
// leaves a read model that the rebuild overwrites, never a checkpoint
// past an emptied model.
func (r *Runner) Reset(ctx context.Context) error {
	r.mu.Lock()
	running := active(r.state) || r.life.Running()
	r.mu.Unlock()
	if running {
		return fmt.Errorf("projection: reset %q: %w", r.name, ErrRunning)
	}
	if err := r.cfg.Checkpoints.Save(ctx, r.name, nova.Start); err != nil {
		return fmt.Errorf("projection: reset %q: save checkpoint: %w", r.name, err)
	}
	r.mu.Lock()
	r.cp, r.loaded, r.lastAt, r.err = nova.Start, true, time.Time{}, nil
	r.state = Stopped
	r.notifyLocked()
	r.mu.Unlock()
	if r.cfg.ResetFunc != nil {
		if err := callReset(ctx, r.cfg.ResetFunc); err != nil {
			return fmt.Errorf("projection: reset %q: read model: %w", r.name, err)
		}
	}
	return nil
}

type item struct {
	e   nova.Event
	err error
}

// runSafely is run under recover: a panic (of a custom checkpoint store,
// say) fails the runner with a [*nova.PanicError] rather than the
// process.
func (r *Runner) runSafely(ctx context.Context, cp nova.Position, reload bool) (err error) {
	defer nova.Recover(&err)
	return r.run(ctx, cp, reload)
}

// run handles events from cp (with reload, from the stored checkpoint)
// until ctx ends (nil) or a failure. With a Leaser it first waits for the
// lease, and goes back to waiting when it loses it; when a commit finds
// the checkpoint moved (a rebuild's swap, another instance) it reloads
// the checkpoint and goes on from there.
func (r *Runner) run(ctx context.Context, cp nova.Position, reload bool) error {
	reload = reload || r.cfg.Leaser != nil
	for {
		runCtx := ctx
		var hold *lease
		if r.cfg.Leaser != nil {
			hold = r.acquire(ctx)
			if hold == nil {
				return nil // ctx ended while waiting
			}
			runCtx = hold.ctx
		}
		err := r.work(runCtx, cp, reload)
		lost := hold != nil && hold.stop(ctx)
		var poison *PoisonError
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.As(err, &poison):
			return err // whatever the handler's error wraps
		case lost || errors.Is(err, ErrLeaseLost):
			// Another instance holds the lease now: wait as a standby.
		case errors.Is(err, nova.ErrConcurrency):
			// The checkpoint moved under us: reload it.
		case err != nil:
			return err
		}
		reload = true
	}
}

// work follows the log from cp (with reload, from the stored checkpoint)
// until ctx ends or a failure other than a transient one: a transient
// error is waited out with backoff, as [Retrying], and the runner goes
// on from the stored checkpoint, which tells whether a commit whose
// outcome the error hid went through.
func (r *Runner) work(ctx context.Context, cp nova.Position, reload bool) error {
	for {
		var err error
		if reload {
			if cp, err = r.cfg.Checkpoints.Load(ctx, r.name); err == nil {
				r.setCheckpoint(cp)
				r.setState(Running)
			}
		}
		if err == nil {
			err = r.follow(ctx, cp)
		}
		if err == nil || ctx.Err() != nil || !isTransient(err) {
			return err
		}
		if sleep(ctx, r.retrying(err, 0)) != nil {
			return nil
		}
		reload = true
	}
}

// isTransient reports a fault of the store or the network that waiting
// may cure (see [nova.IsTransient]); never a panic.
func isTransient(err error) bool { return nova.IsTransient(err) }

// retrying records a transient error: the runner shows [Retrying] until
// it runs again. It returns how long to wait before the next attempt:
// wait, or when wait is 0 the backoff for the failures so far.
func (r *Runner) retrying(err error, wait time.Duration) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures++
	d := wait
	if d == 0 {
		d = backoff.Full(r.cfg.RetryBackoff, r.cfg.MaxBackoff, r.failures)
	}
	r.warn, r.retryAt = err, time.Now().Add(d)
	if active(r.state) && r.state != Retrying {
		r.state = Retrying
		r.notifyLocked()
	}
	return d
}

// setCheckpoint records a checkpoint loaded from the store.
func (r *Runner) setCheckpoint(cp nova.Position) {
	r.mu.Lock()
	r.cp, r.loaded = cp, true
	r.notifyLocked()
	r.mu.Unlock()
}

// setState records a started runner's state (running or standby).
func (r *Runner) setState(st State) {
	r.mu.Lock()
	if st == Running {
		r.warn, r.retryAt = nil, time.Time{}
	}
	if r.state != st && active(r.state) {
		r.state = st
		r.notifyLocked()
	}
	r.mu.Unlock()
}

// setWarning records an error the runner waits out.
func (r *Runner) setWarning(err error) {
	r.mu.Lock()
	r.warn = err
	r.mu.Unlock()
}

// follow reads the subscription on one goroutine and handles batches on
// this one; it returns when ctx ends (nil) or on the first failure.
func (r *Runner) follow(ctx context.Context, from nova.Position) error {
	ctx, cancel := context.WithCancel(ctx)
	items := make(chan item, 4*r.cfg.BatchSize)
	var wg sync.WaitGroup
	defer func() {
		cancel() // first, so the reader ends promptly
		wg.Wait()
	}()
	wg.Go(func() {
		defer close(items)
		if err := r.read(ctx, from, items); err != nil {
			select {
			case items <- item{err: err}:
			case <-ctx.Done():
			}
		}
	})

	batch := make([]nova.Event, 0, r.cfg.BatchSize)
	for {
		batch = batch[:0]
		var subErr error
		select {
		case <-ctx.Done():
			return nil
		case it, ok := <-items:
			if !ok {
				return nil
			}
			if it.err != nil {
				subErr = it.err
				break
			}
			batch = append(batch, it.e)
		drain:
			for len(batch) < r.cfg.BatchSize {
				select {
				case it, ok := <-items:
					if !ok {
						break drain
					}
					if it.err != nil {
						subErr = it.err
						break drain
					}
					batch = append(batch, it.e)
				default:
					break drain
				}
			}
		}
		if err := r.runBatch(ctx, batch); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if subErr != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("projection: %q: subscribe: %w", r.name, subErr)
		}
	}
}

// read sends the subscription's events, and its error, to items until
// ctx ends. A panic of the store is returned as an error.
func (r *Runner) read(ctx context.Context, from nova.Position, items chan<- item) (err error) {
	defer nova.Recover(&err)
	for e, err := range r.cfg.Store.Subscribe(ctx, nova.SubscribeOptions{From: from}) {
		select {
		case items <- item{e, err}:
		case <-ctx.Done():
			return nil
		}
		if err != nil {
			return nil
		}
	}
	return nil
}

// advance records that the events up to last (n of them) are handled and
// checkpointed.
func (r *Runner) advance(last nova.Event, n int) {
	r.mu.Lock()
	r.failures = 0
	r.cp = last.Position
	r.handled += uint64(n)
	r.lastAt = last.RecordedAt
	r.notifyLocked()
	r.mu.Unlock()
}

// handleBatch runs the handlers on each event in order and saves the
// checkpoint after the last one. When an event is poison under [PoisonStop], the
// events before it are checkpointed and the poison error returned.
func (r *Runner) handleBatch(ctx context.Context, batch []nova.Event) error {
	if len(batch) == 0 {
		return nil
	}
	done := 0
	var failed error
	for _, e := range batch {
		if err := r.handle(ctx, e); err != nil {
			failed = err
			break
		}
		done++
	}
	if done > 0 {
		last := batch[done-1]
		// Save even when ctx was cancelled mid-batch: the handled events'
		// effects are in the read model already.
		if err := r.save(context.WithoutCancel(ctx), last.Position); err != nil {
			return fmt.Errorf("projection: %q: save checkpoint %s: %w", r.name, last.Position, err)
		}
		r.advance(last, done)
	}
	if failed != nil && ctx.Err() != nil {
		return nil // stopped while retrying: not the event's fault
	}
	return failed
}

// save records pos as the checkpoint: fenced by the lease when the
// checkpoint store is the runner's Leaser and a [LeasedCheckpoints].
func (r *Runner) save(ctx context.Context, pos nova.Position) error {
	if lc, ok := r.cfg.Checkpoints.(LeasedCheckpoints); ok && r.cfg.Leaser != nil && sameStore(lc, r.cfg.Leaser) {
		return lc.SaveLeased(ctx, r.name, r.cfg.Owner, pos)
	}
	return r.cfg.Checkpoints.Save(ctx, r.name, pos)
}

// sameStore reports whether a and b are one store: the same pointer.
func sameStore(a, b any) bool {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	return va.Kind() == reflect.Pointer && vb.Kind() == reflect.Pointer && va.Type() == vb.Type() && va.Pointer() == vb.Pointer()
}

// handle runs e's handler with retries; under [PoisonSkip] a poison event is
// recorded and handle returns nil.
func (r *Runner) handle(ctx context.Context, e nova.Event) error {
	h := r.cfg.Projection.handler(e.Type)
	if h == nil {
		return nil
	}
	backoff := r.cfg.RetryBackoff
	var err error
	attempts := 0
	for {
		attempts++
		if err = callHandler(ctx, h, e); err == nil {
			return nil
		}
		if isTransient(err) {
			// The store or the network, not the handler: the runner
			// waits it out.
			return fmt.Errorf("projection: %q: event %s: %w", r.name, e.ID, err)
		}
		if attempts > r.cfg.Retries || ctx.Err() != nil {
			break
		}
		if err := sleep(ctx, backoff); err != nil {
			return err
		}
		backoff = min(backoff*2, r.cfg.MaxBackoff)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	pe := r.poison(r.name, e, attempts, err)
	if r.cfg.OnPoison == PoisonStop {
		return pe
	}
	return r.skip(ctx, pe)
}

// callHandler runs h under recover: a panic is the handler's error.
func callHandler(ctx context.Context, h HandlerFunc, e nova.Event) (err error) {
	defer nova.Recover(&err)
	return h(ctx, e)
}

// poison names e as the poison event of the projection called name.
func (r *Runner) poison(name string, e nova.Event, attempts int, err error) *PoisonError {
	return &PoisonError{
		Projection: name, EventID: e.ID, Stream: e.Stream, Version: e.Version,
		Type: e.Type, Position: e.Position, Attempts: attempts, Err: err,
	}
}

// skip records an event skipped under [PoisonSkip]. It fails only when
// SkipFunc panics.
func (r *Runner) skip(ctx context.Context, pe *PoisonError) error {
	s := Skipped{Err: pe, At: r.now()}
	r.mu.Lock()
	r.nskipped++
	r.skipped = append(r.skipped, s)
	if len(r.skipped) > maxSkipped {
		r.skipped = append(r.skipped[:0], r.skipped[len(r.skipped)-maxSkipped:]...)
	}
	r.mu.Unlock()
	if r.cfg.SkipFunc != nil {
		if err := callSkip(ctx, r.cfg.SkipFunc, s); err != nil {
			return fmt.Errorf("projection: %q: SkipFunc: %w", r.name, err)
		}
	}
	return nil
}

// callSkip runs fn under recover.
func callSkip(ctx context.Context, fn func(context.Context, Skipped), s Skipped) (err error) {
	defer nova.Recover(&err)
	fn(ctx, s)
	return nil
}

// callReset runs fn under recover.
func callReset(ctx context.Context, fn func(context.Context) error) (err error) {
	defer nova.Recover(&err)
	return fn(ctx)
}

// now reads Config.NowFunc; if it panics, the system clock.
func (r *Runner) now() (t time.Time) {
	defer func() {
		if recover() != nil {
			t = time.Now()
		}
	}()
	return r.cfg.NowFunc()
}

// sleep waits d or until ctx ends, returning ctx's error then.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
