package projection

import (
	"context"
	"errors"
	"fmt"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/backoff"
	"github.com/nova-go/nova/internal/projectiondriver"
)

// ErrRebuilding is matched by the error [Runner.Rebuild] returns when a
// rebuild of the projection is already under way, in this process or
// (with Config.Leaser) in another.
var ErrRebuilding = errors.New("projection: already rebuilding")

// Rebuild rebuilds the read model from the first event beside the live
// one, then swaps it in, so that readers never see a half-built model:
//
//  1. the [Rebuilder] (Config.Checkpoints) prepares an empty shadow of
//     each of Config.Tables;
//  2. the projection's handlers run over the whole log with a ctx marked
//     as a rebuild's, so that [Table] names the shadows and [Rebuilding]
//     reports true, committing under the checkpoint name+"@rebuild";
//  3. once the rebuild has caught up with the log's head, one transaction
//     replaces the live tables by the shadows and the live checkpoint by
//     the rebuild's.
//
// A running runner goes on serving the old model meanwhile; its next
// commit after the swap finds the checkpoint moved, and it reloads it and
// carries on from the rebuild's. progress, if not nil, is called after
// each commit with the events handled so far and the log's length when
// the rebuild began (the events counted once, first); if it panics, the
// rebuild fails with the panic as its error. Handler errors follow
// Config.Retries and Config.OnPoison; transient errors are waited out
// with backoff, as by a running runner; a rebuild stopped by a poison
// event, another error or ctx leaves the live model as it was.
//
// Rebuild needs Config.Checkpoints to be a [Rebuilder] and Config.Tables
// to be set; otherwise it fails with an error matching [nova.ErrInvalid].
// With Config.Leaser one rebuild runs at a time across processes.
func (r *Runner) Rebuild(ctx context.Context, progress func(done, total int)) error {
	rb, ok := r.cfg.Checkpoints.(Rebuilder)
	if !ok {
		return invalidf("rebuild %q: checkpoint store %T cannot rebuild (it is not a projection.Rebuilder)", r.name, r.cfg.Checkpoints)
	}
	if len(r.cfg.Tables) == 0 {
		return invalidf("rebuild %q: Config.Tables lists no read-model table", r.name)
	}
	if !r.rebuilding.TryLock() {
		return fmt.Errorf("projection: rebuild %q: %w", r.name, ErrRebuilding)
	}
	defer r.rebuilding.Unlock()
	shadow := r.name + projectiondriver.RebuildSuffix
	if err := validateName(shadow); err != nil {
		return err
	}

	c := &committer{r: r, tx: rb, name: shadow}
	var hold *lease
	if r.cfg.Leaser != nil {
		var err error
		hold, err = r.tryAcquire(ctx, shadow)
		if err != nil {
			return fmt.Errorf("projection: rebuild %q: lease: %w", r.name, err)
		}
		if hold == nil {
			return fmt.Errorf("projection: rebuild %q: another instance holds the lease on %q: %w", r.name, shadow, ErrRebuilding)
		}
		defer hold.stop(ctx)
		ctx = hold.ctx
		c.owner = r.cfg.Owner
	}
	rctx := projectiondriver.WithRebuild(ctx)
	if err := rb.Prepare(rctx, r.cfg.Tables); err != nil {
		return fmt.Errorf("projection: rebuild %q: prepare shadow tables: %w", r.name, err)
	}
	if err := rb.Save(ctx, shadow, nova.Start); err != nil {
		return fmt.Errorf("projection: rebuild %q: reset checkpoint: %w", r.name, err)
	}
	total := 0
	if progress != nil {
		for _, err := range r.cfg.Store.ReadAll(ctx, nova.ReadAllOptions{}) {
			if err != nil {
				return fmt.Errorf("projection: rebuild %q: count events: %w", r.name, err)
			}
			total++
		}
		if err := callProgress(progress, 0, total); err != nil {
			return fmt.Errorf("projection: rebuild %q: progress func: %w", r.name, err)
		}
	}
	done := 0
	c.done = func(evs []nova.Event) {
		done += len(evs)
		if progress != nil && c.stop == nil {
			if err := callProgress(progress, done, max(total, done)); err != nil {
				c.stop = fmt.Errorf("progress func: %w", err)
			}
		}
	}
	// Read to the head, then swap. When the live model has meanwhile seen
	// events the shadow has not, Swap refuses, and the rebuild reads on.
	// A transient error is waited out, and the rebuild goes on from its
	// stored checkpoint.
	failures := 0
	for attempt := 1; ; {
		err := r.catchUp(ctx, rctx, c)
		switch {
		case err != nil && (!isTransient(err) || ctx.Err() != nil):
			return r.rebuildError(ctx, hold, err)
		case err == nil:
			err = rb.Swap(ctx, r.name, shadow, r.cfg.Tables)
			switch {
			case err == nil:
				return nil
			case isTransient(err):
			case !errors.Is(err, nova.ErrConcurrency) || attempt == maxSwapAttempts:
				return fmt.Errorf("projection: rebuild %q: swap: %w", r.name, err)
			default:
				attempt++
				continue
			}
		}
		// Transient: wait, then reload the rebuild's checkpoint, which
		// tells whether a commit the error hid went through.
		for {
			failures++
			if err := sleep(ctx, backoff.Full(r.cfg.RetryBackoff, r.cfg.MaxBackoff, failures)); err != nil {
				return r.rebuildError(ctx, hold, err)
			}
			cp, err := rb.Load(ctx, shadow)
			if err == nil {
				c.cp = cp
				break
			}
			if !isTransient(err) {
				return fmt.Errorf("projection: rebuild %q: load checkpoint: %w", r.name, err)
			}
		}
	}
}

// callProgress runs a rebuild's progress function under recover.
func callProgress(progress func(done, total int), done, total int) (err error) {
	defer nova.Recover(&err)
	progress(done, total)
	return nil
}

// maxSwapAttempts bounds a rebuild's race with a live runner to the
// head: each attempt reads only the events appended during the last.
const maxSwapAttempts = 100

// catchUp handles the events after c's checkpoint up to the log's head
// (events appended meanwhile are read too) with c, in batches.
func (r *Runner) catchUp(ctx, rctx context.Context, c *committer) error {
	batch := make([]nova.Event, 0, r.cfg.BatchSize)
	for e, err := range r.cfg.Store.ReadAll(ctx, nova.ReadAllOptions{From: c.cp}) {
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if batch = append(batch, e); len(batch) == r.cfg.BatchSize {
			if err := c.handle(rctx, batch); err != nil {
				return err
			}
			if c.stop != nil {
				return c.stop
			}
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		if err := c.handle(rctx, batch); err != nil {
			return err
		}
	}
	if c.stop != nil {
		return c.stop
	}
	return ctx.Err()
}

// rebuildError is the error of a rebuild that failed catching up.
func (r *Runner) rebuildError(ctx context.Context, hold *lease, err error) error {
	switch {
	case hold != nil && hold.lost.Load():
		err = fmt.Errorf("the lease on %q ran out: %w", hold.name, ErrLeaseLost)
	case ctx.Err() != nil:
		err = ctx.Err()
	}
	var pe *PoisonError
	if errors.As(err, &pe) {
		return err
	}
	return fmt.Errorf("projection: rebuild %q: %w", r.name, err)
}
