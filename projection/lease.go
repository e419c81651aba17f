package projection

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nova-go/nova"
)

// lease is a held lease, renewed in the background until stop.
type lease struct {
	// ctx ends when the lease is lost or stop is called.
	ctx    context.Context
	cancel context.CancelFunc
	lost   atomic.Bool
	wg     sync.WaitGroup
	r      *Runner
	name   string
}

// acquire waits until this instance holds the projection's lease, trying
// every LeaseTTL/3, and returns it with its renewal running; nil when ctx
// ends first. While waiting, the runner shows as [Standby] and follows the
// stored checkpoint, so that WaitFor on a standby returns once the holder
// has got there (within LeaseTTL/3). An error (the database unreachable)
// is waited out like a lease held elsewhere; a transient one shows the
// runner as [Retrying].
func (r *Runner) acquire(ctx context.Context) *lease {
	for {
		l, err := r.tryAcquire(ctx, r.name)
		if l != nil {
			r.setState(Running)
			return l
		}
		// Follow the holder's progress, for WaitFor on a standby.
		if cp, err := r.cfg.Checkpoints.Load(ctx, r.name); err == nil {
			r.setCheckpoint(cp)
		}
		wait := r.cfg.LeaseTTL / 3
		switch {
		case err != nil && isTransient(err) && ctx.Err() == nil:
			r.retrying(err, wait)
		case err != nil:
			r.setWarning(err)
			r.setState(Standby)
		default:
			r.setState(Standby)
		}
		if sleep(ctx, wait) != nil {
			return nil
		}
	}
}

// acquireLease asks the Leaser for the lease, under recover.
func (r *Runner) acquireLease(ctx context.Context, name string) (ok bool, err error) {
	defer nova.Recover(&err)
	return r.cfg.Leaser.Acquire(ctx, name, r.cfg.Owner, r.cfg.LeaseTTL)
}

// tryAcquire takes the lease on name if it is free, and returns it with
// its renewal running; nil and no error when another instance holds it.
func (r *Runner) tryAcquire(ctx context.Context, name string) (*lease, error) {
	ok, err := r.acquireLease(ctx, name)
	if err != nil || !ok {
		return nil, err
	}
	l := &lease{r: r, name: name}
	l.ctx, l.cancel = context.WithCancel(ctx)
	l.wg.Go(l.renew)
	return l, nil
}

// renew renews the lease every LeaseTTL/3. The lease counts as lost as
// soon as a renewal is refused, or when renewals have failed until the
// last granted lease ran out.
func (l *lease) renew() {
	cfg := &l.r.cfg
	until := time.Now().Add(cfg.LeaseTTL)
	t := time.NewTicker(cfg.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-t.C:
		}
		at := time.Now()
		ok, err := l.r.acquireLease(l.ctx, l.name)
		if l.ctx.Err() != nil {
			return
		}
		switch {
		case err == nil && ok:
			until = at.Add(cfg.LeaseTTL)
		case err == nil || !time.Now().Before(until):
			l.lost.Store(true)
			l.cancel()
			return
		}
	}
}

// stop ends the renewal and, unless the lease was lost, releases it. It
// reports whether the lease was lost. ctx is the run's: the release runs
// even when it has ended, for a short while.
func (l *lease) stop(ctx context.Context) (lost bool) {
	l.cancel()
	l.wg.Wait()
	if l.lost.Load() {
		return true
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.r.cfg.LeaseTTL)
	defer cancel()
	// A failed release leaves the lease to run out.
	_ = l.r.cfg.Leaser.Release(rctx, l.name, l.r.cfg.Owner)
	return false
}
