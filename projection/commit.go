package projection

import (
	"context"
	"errors"
	"fmt"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/projectiondriver"
)

// errHandlerFailed is matched by what the apply function of a commit
// returns when a handler failed.
var errHandlerFailed = errors.New("projection: handler failed")

// handlerError is what apply returns when a handler failed: it matches
// errHandlerFailed and wraps the handler's error, so that a backend can
// tell a handler's write that failed on a lost connection (and mark the
// commit's error transient).
type handlerError struct{ err error }

func (e *handlerError) Error() string        { return "projection: handler failed: " + e.err.Error() }
func (e *handlerError) Unwrap() error        { return e.err }
func (e *handlerError) Is(target error) bool { return target == errHandlerFailed }

// committer handles events through a [TxCheckpoints]: the handlers of a
// run of events and the move of the checkpoint commit together.
type committer struct {
	r     *Runner
	tx    TxCheckpoints
	name  string // the checkpoint's name: the projection's, or its rebuild's
	owner string // the lease holder, or "" without leases
	cp    nova.Position
	// done is called after each commit with the events it covered.
	done func(evs []nova.Event)
	// stop, once set by done, ends a rebuild's catch-up with it.
	stop error
}

// commitBatch handles a live batch: the runner's checkpoint and counters
// move with each commit.
func (r *Runner) commitBatch(ctx context.Context, batch []nova.Event) error {
	r.mu.Lock()
	cp := r.cp
	r.mu.Unlock()
	c := &committer{r: r, tx: r.tx, name: r.name, cp: cp, done: func(evs []nova.Event) {
		r.advance(evs[len(evs)-1], len(evs))
	}}
	if r.cfg.Leaser != nil {
		c.owner = r.cfg.Owner
	}
	return c.handle(ctx, batch)
}

// commit runs the handlers of evs in one transaction that moves the
// checkpoint to the last one. When a handler fails, nothing is committed
// and commit returns the index of its event and its error; err is any
// other failure, such as [nova.ErrConcurrency] or [ErrLeaseLost], or a
// transient one, the handler's included: a handler whose write met a
// lost connection has not failed on its event.
func (c *committer) commit(ctx context.Context, evs []nova.Event) (failed int, herr error, err error) {
	return c.commitMode(ctx, evs, true)
}

// commitMode is commit, with the read-model writes of the SQL query
// stores buffered in a [projectiondriver.Batch] and written at the end
// of the batch when buffered is set. A buffered commit whose final
// write fails (the database refusing a value, which is then the fault
// of one event's handler, but of which is unknown) runs again
// unbuffered, where the write fails in its handler's call.
func (c *committer) commitMode(ctx context.Context, evs []nova.Event, buffered bool) (failed int, herr error, err error) {
	apply := func(ctx context.Context) error {
		// The transaction may run apply more than once: start afresh.
		failed, herr = -1, nil
		var b *projectiondriver.Batch
		if buffered {
			b = projectiondriver.NewBatch()
			ctx = projectiondriver.WithBatch(ctx, b)
			if err := c.r.cfg.Projection.prefetch(ctx, evs); err != nil {
				// Run again unbuffered (see below), where no
				// prefetching fails and a handler's read that fails is
				// the handler's.
				return &projectiondriver.FlushError{Err: err}
			}
		}
		for i, e := range evs {
			h := c.r.cfg.Projection.handler(e.Type)
			if h == nil {
				continue
			}
			if err := callHandler(ctx, h, e); err != nil {
				failed, herr = i, err
				return &handlerError{err: err}
			}
		}
		if b != nil {
			return b.Flush(ctx)
		}
		return nil
	}
	to := evs[len(evs)-1].Position
	failed = -1
	err = c.tx.Commit(ctx, c.name, c.owner, c.cp, to, apply)
	switch {
	case buffered && failed < 0 && projectiondriver.IsFlushError(err) && !isTransient(err) && ctx.Err() == nil:
		return c.commitMode(ctx, evs, false)
	case err == nil:
		c.cp = to
		c.done(evs)
		return -1, nil, nil
	case failed >= 0 && errors.Is(err, errHandlerFailed):
		if !isTransient(err) && !isTransient(herr) {
			return failed, herr, nil
		}
		if !isTransient(err) {
			err = herr
		}
	}
	return -1, nil, fmt.Errorf("projection: %q: commit checkpoint %s: %w", c.name, to, err)
}

// handle commits batch, in as few transactions as its handlers allow: a
// handler error rolls its transaction back, the events before the failing
// one are committed again without it, and the failing one is retried and
// then stopped on or skipped alone.
func (c *committer) handle(ctx context.Context, batch []nova.Event) error {
	rest := batch
	upto := len(rest)
	for len(rest) > 0 {
		failed, herr, err := c.commit(ctx, rest[:upto])
		switch {
		case err != nil:
			return err
		case failed < 0:
			rest = rest[upto:]
			upto = len(rest)
			continue
		case ctx.Err() != nil:
			return ctx.Err() // stopped: not the event's fault
		case failed > 0:
			upto = failed // commit the events before it first
			continue
		}
		if err := c.poison(ctx, rest[0], herr); err != nil {
			return err
		}
		rest = rest[1:]
		upto = len(rest)
	}
	return nil
}

// poison retries the handler of e, which failed once, each time in a
// transaction of its own; then applies the poison policy: stop with a
// [*PoisonError], or move the checkpoint past e and record the skip.
func (c *committer) poison(ctx context.Context, e nova.Event, herr error) error {
	cfg := &c.r.cfg
	backoff := cfg.RetryBackoff
	attempts := 1
	for ; attempts <= cfg.Retries; attempts++ {
		if err := sleep(ctx, backoff); err != nil {
			return err
		}
		backoff = min(backoff*2, cfg.MaxBackoff)
		failed, err2, err := c.commit(ctx, []nova.Event{e})
		if err != nil {
			return err
		}
		if failed < 0 {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		herr = err2
	}
	pe := c.r.poison(c.r.name, e, attempts, herr)
	if cfg.OnPoison == PoisonStop {
		return pe
	}
	// PoisonSkip: the checkpoint moves past e with nothing applied.
	if err := c.tx.Commit(ctx, c.name, c.owner, c.cp, e.Position, func(context.Context) error { return nil }); err != nil {
		return fmt.Errorf("projection: %q: commit checkpoint %s past a skipped event: %w", c.name, e.Position, err)
	}
	c.cp = e.Position
	c.done([]nova.Event{e})
	return c.r.skip(ctx, pe)
}
