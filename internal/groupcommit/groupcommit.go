// Package groupcommit commits concurrent writes in shared transactions:
// requests that arrive while a commit is in flight wait, and the next
// commit takes them all, so that many writers pay for one flush of the
// log instead of one each. Every request keeps its own checks and its own
// result; the backend decides what a request is and how a batch of them
// is written, through one callback:
//
//	g := groupcommit.New(groupcommit.Config{MaxGroup: 128},
//		func(ctx context.Context, b *groupcommit.Batch[request]) {
//			begin() // take the lock that orders writes
//			for i, r := range b.Take() {
//				b.Apply(i, func() { r.res, r.err = write(r) })
//			}
//			commit()
//		})
//	err := g.Do(ctx, &request{...}) // then read the request's result
//
// # Leaders and followers
//
// No goroutine is started. A caller that finds fewer than
// [Config.Committers] commits in progress leads: it runs the commit
// callback on its own goroutine with its request and those queued before
// it (up to [Config.MaxGroup]). Other callers queue. A leader that is done
// hands its place to the first caller still queued, which leads the next
// batch with everything queued behind it. A lone writer thus commits on
// its own goroutine with no hand-off, and a busy store forms batches as
// large as the time one commit takes. A leader whose previous batch held
// several requests first lets the callers it just woke run, while they
// keep arriving, so that they join its batch rather than each waiting a
// whole commit for the next one.
//
// # Deadlines
//
// A request is queued until the commit callback takes it with
// [Batch.Take], which it calls once it holds whatever lock orders the
// writes: a caller whose context ends before that withdraws its request
// and gets ctx.Err(); the request is never written. The leader's context
// is the callback's, so that its wait for the lock can end with it; a
// callback that returns without taking its batch leaves it untaken: the
// leader gets ctx.Err() and the others queue again, first, for the next
// leader.
//
// Once taken, a request waits for its result; with [Config.GiveUp] its
// caller stops waiting when its context ends, even while the batch is
// held up (by user code running for another request, say). A request
// given up before [Batch.Apply] reached it is skipped and its caller
// gets ctx.Err(); one given up after its writes were made gets an error
// matching both [ErrUnknownOutcome] and ctx.Err(): its batch may still
// commit it.
//
// # Failures
//
// The callback sets each request's result. A panic in it is recovered:
// every request of the batch fails with the panic as a *nova.PanicError
// (deferred functions of the callback run first, and roll its
// transaction back), the other batches go on, and so does the Group.
//
// [Group.Close] refuses new requests with nova.ErrClosed and waits until
// the requests already queued are committed.
package groupcommit

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/nova-go/nova"
)

// ErrUnknownOutcome is matched by the error of a request whose caller gave
// it up (see [Config.GiveUp]) after its writes were made in its batch's
// transaction, which may still commit.
var ErrUnknownOutcome = errors.New("groupcommit: gave up waiting for the commit of its batch, which may still commit this write")

// Config sets up a [Group]. The zero value means one commit at a time, of
// one request.
type Config struct {
	// MaxGroup is the most requests one batch holds. Default 1 (no
	// grouping).
	MaxGroup int
	// Committers is how many batches may be committing at once, each on
	// a slot of its own ([Batch.Slot]) for the connection it writes on.
	// Default 1.
	Committers int
	// GiveUp lets the caller of a taken request stop waiting when its
	// context ends; the commit callback must then write each request
	// inside [Batch.Apply], which skips a request given up.
	GiveUp bool
	// ObserveFunc, when set, is told the size of each batch the commit
	// callback took (the requests whose callers still waited), with the
	// leader's context, after the callback returns: for metrics. It must
	// be quick and must not panic.
	ObserveFunc func(ctx context.Context, size int)
}

// CommitFunc writes a batch in one transaction: it takes the lock that
// orders writes, calls [Batch.Take], writes the requests taken (each
// inside [Batch.Apply]), commits and sets every request's result. ctx is
// the leader's: use it only to wait for the lock, and return without
// calling Take when the wait ends with ctx.
type CommitFunc[R any] func(ctx context.Context, b *Batch[R])

// Group commits requests of type R in batches. It is safe for concurrent
// use.
type Group[R any] struct {
	cfg    Config
	commit CommitFunc[R]

	mu sync.Mutex // guards the fields below
	// pending holds the requests queued behind the leaders, in order.
	pending []*entry[R]
	leaders int
	// free holds the slots no leader has.
	free []int
	// last is the size of the latest batch.
	last   int
	closed bool
	// idle is closed once the Group is closed and has no leader.
	idle chan struct{}

	// batches are the leaders' batches, one per slot, reused.
	batches []*Batch[R]
}

// New returns a Group that commits batches with commit.
func New[R any](cfg Config, commit CommitFunc[R]) *Group[R] {
	cfg.MaxGroup = max(cfg.MaxGroup, 1)
	cfg.Committers = max(cfg.Committers, 1)
	g := &Group[R]{cfg: cfg, commit: commit, idle: make(chan struct{})}
	for i := range cfg.Committers {
		g.free = append(g.free, cfg.Committers-1-i)
		g.batches = append(g.batches, &Batch[R]{slot: i})
	}
	return g
}

// Request states. A request is queued until a leader takes it into a
// transaction, its caller withdraws it, or it is promoted: handed a
// leader's place, to commit itself and what queued behind it.
const (
	stateQueued int32 = iota
	stateTaken
	stateCancelled
	statePromoted
)

// entry is a request in the Group.
type entry[R any] struct {
	req   *R
	state atomic.Int32
	// err is the Group's own error for the request (a panic of its
	// batch), set by its leader before done is closed.
	err error
	// done is made when the request queues, and closed when it has its
	// result or is promoted; slot is then the promoted request's slot.
	done chan struct{}
	slot int

	// mu is held while the request is applied: its caller gives it up
	// either before its writes or not until its batch is done.
	mu      sync.Mutex
	gone    bool // given up by its caller
	applied bool // its writes were made
}

// Do commits r in a batch and returns once the commit callback has set
// its result, or with an error of its own: ctx.Err() (r was not
// written), nova.ErrClosed (after Close; r was not written), a
// *nova.PanicError (the callback panicked; its transaction was rolled
// back), or one matching [ErrUnknownOutcome].
func (g *Group[R]) Do(ctx context.Context, r *R) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e := &entry[R]{req: r}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nova.ErrClosed
	}
	if g.leaders < g.cfg.Committers {
		g.leaders++
		slot := g.free[len(g.free)-1]
		g.free = g.free[:len(g.free)-1]
		g.mu.Unlock()
		return g.lead(ctx, e, slot)
	}
	e.done = make(chan struct{})
	g.pending = append(g.pending, e)
	g.mu.Unlock()
	select {
	case <-e.done:
	case <-ctx.Done():
		if e.state.CompareAndSwap(stateQueued, stateCancelled) {
			return ctx.Err()
		}
		if g.cfg.GiveUp && e.state.Load() == stateTaken {
			if err := e.abandon(ctx); err != nil {
				return err
			}
		}
		<-e.done // done, or promoted: it is being closed
	}
	if e.state.Load() != statePromoted {
		return e.err
	}
	e.state.Store(stateQueued)
	e.done = nil
	return g.lead(ctx, e, e.slot)
}

// abandon gives up e, taken by a leader, because its caller's ctx ended.
// It returns nil when the leader is done with e after all (its result
// stands).
func (e *entry[R]) abandon(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	select {
	case <-e.done:
		return nil
	default:
	}
	e.gone = true
	if e.applied {
		return errors.Join(ErrUnknownOutcome, ctx.Err())
	}
	return ctx.Err()
}

// Queued returns how many requests wait behind the leaders.
func (g *Group[R]) Queued() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.pending)
}

// Close refuses new requests with nova.ErrClosed and returns once the
// requests already queued are committed and no commit runs.
func (g *Group[R]) Close() {
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		if g.leaders == 0 {
			close(g.idle)
		}
	}
	g.mu.Unlock()
	<-g.idle
}

// lead commits own, the request of the leader's caller, in one batch with
// the requests queued before it, then hands the slot on.
func (g *Group[R]) lead(ctx context.Context, own *entry[R], slot int) error {
	defer g.handOff(slot)
	if err := ctx.Err(); err != nil {
		own.state.Store(stateCancelled)
		return err
	}
	limit := g.cfg.MaxGroup
	g.mu.Lock()
	// The callers of the previous batch were woken by their results and
	// may be about to write again: while they keep arriving, let them
	// run before committing. After a batch of one (a lone writer) this
	// loop does not run.
	for want := min(g.last, limit) - 1; len(g.pending) < want; {
		n := len(g.pending)
		g.mu.Unlock()
		runtime.Gosched()
		g.mu.Lock()
		if len(g.pending) == n {
			break
		}
	}
	b := g.batches[slot]
	b.entries = append(b.entries[:0], own)
	n := min(len(g.pending), limit-1)
	b.entries = append(b.entries, g.pending[:n]...)
	g.pending = g.pending[:copy(g.pending, g.pending[n:])]
	clear(g.pending[len(g.pending):cap(g.pending)])
	g.last = len(b.entries)
	g.mu.Unlock()
	defer b.reset()

	run(ctx, g.commit, b)
	if !b.took {
		// Not started: withdraw own; the others queue again at the
		// head, in order, for the next leader.
		own.state.Store(stateCancelled)
		g.mu.Lock()
		g.pending = slices.Insert(g.pending, 0, b.entries[1:]...)
		g.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return err
		}
		return errors.New("groupcommit: the commit callback returned without taking its batch")
	}
	if g.cfg.ObserveFunc != nil {
		g.cfg.ObserveFunc(ctx, len(b.live))
	}
	for _, e := range b.live {
		if e.done != nil {
			close(e.done)
		}
	}
	if len(b.live) > 1 {
		// Let the callers just woken run here and write again before
		// the slot passes on: they join the next batch instead of
		// forming one of their own.
		runtime.Gosched()
	}
	return own.err
}

// run calls commit under recover. A panic fails every request of the
// batch.
func run[R any](ctx context.Context, commit CommitFunc[R], b *Batch[R]) {
	defer func() {
		if v := recover(); v != nil {
			err := nova.NewPanicError(v)
			b.Take()
			for _, e := range b.live {
				e.err = err
			}
		}
	}()
	commit(ctx, b)
}

// handOff ends a leader's turn: it promotes the first request still
// queued, giving it the slot, or frees the slot.
func (g *Group[R]) handOff(slot int) {
	g.mu.Lock()
	for len(g.pending) > 0 {
		e := g.pending[0]
		g.pending = g.pending[:copy(g.pending, g.pending[1:])]
		g.pending[:cap(g.pending)][len(g.pending)] = nil
		if e.state.CompareAndSwap(stateQueued, statePromoted) {
			e.slot = slot
			g.mu.Unlock()
			close(e.done)
			return
		}
	}
	g.leaders--
	g.free = append(g.free, slot)
	if g.closed && g.leaders == 0 {
		close(g.idle)
	}
	g.mu.Unlock()
}

// Batch is the requests one leader commits together. Only the commit
// callback it is passed to uses it, and only until it returns.
type Batch[R any] struct {
	slot    int
	entries []*entry[R]
	took    bool
	live    []*entry[R]
	reqs    []*R
}

// Slot returns the batch's slot, from 0 to [Config.Committers]-1: no two
// batches committing at the same time have the same slot, so a backend
// can keep one connection per slot.
func (b *Batch[R]) Slot() int { return b.slot }

// Requests returns the batch's requests before [Batch.Take], the
// leader's first. Their callers may still withdraw some of them: a
// backend that sizes its transaction before taking them (reserving
// positions for their events, say) counts them here and corrects for the
// ones Take leaves out.
func (b *Batch[R]) Requests() []*R {
	b.reqs = b.reqs[:0]
	for _, e := range b.entries {
		b.reqs = append(b.reqs, e.req)
	}
	return b.reqs
}

// Take claims the batch's requests whose callers still wait and returns
// them, the leader's first, then in the order they queued. Until Take,
// a caller whose context ends withdraws its request. Calling it again
// returns the same requests.
func (b *Batch[R]) Take() []*R {
	if b.took {
		return b.reqs
	}
	b.took = true
	b.reqs = b.reqs[:0]
	for _, e := range b.entries {
		if e.state.CompareAndSwap(stateQueued, stateTaken) {
			b.live = append(b.live, e)
			b.reqs = append(b.reqs, e.req)
		}
	}
	return b.reqs
}

// Apply runs write, which makes the writes of the i-th request Take
// returned, unless its caller has given it up: then it reports false and
// the request must be skipped. With [Config.GiveUp], a request's writes
// must be made only inside Apply.
func (b *Batch[R]) Apply(i int, write func()) bool {
	e := b.live[i]
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.gone {
		return false
	}
	e.applied = true
	write()
	return true
}

// reset empties b for the slot's next batch, dropping its references.
func (b *Batch[R]) reset() {
	clear(b.entries[:cap(b.entries)])
	clear(b.live[:cap(b.live)])
	clear(b.reqs[:cap(b.reqs)])
	b.entries, b.live, b.reqs = b.entries[:0], b.live[:0], b.reqs[:0]
	b.took = false
}
