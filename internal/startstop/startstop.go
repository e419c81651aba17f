// Package startstop is the one start/stop lifecycle of Nova's long-running
// components (saga.Worker, projection.Runner), in the manner of river's
// BaseStartStop: a component embeds a [Lifecycle] and its Start, Stop and
// Stopped delegate to it, so every component starts, stops and restarts
// alike.
//
// A run is what one successful Start begins: a context, cancelled by Stop
// or by the ctx given to Start, and the goroutines the component started
// for it in the run's [sync.WaitGroup]. The run ends when every one of
// those goroutines has returned, whether because the run was stopped or
// because its work ended on its own (a projection that failed, say);
// Stopped is closed then.
//
// The restart rule: a component runs at most one run at a time, and a
// component whose run has ended may be started again. Start fails with
// [ErrRunning] from a successful Start until that run has ended, which
// includes the time a stopped run takes to wind down: a Stop whose ctx
// ran out first leaves the run still owning its goroutines, and Start
// keeps failing until they have returned. Stop on a component that is
// not running, never started included, returns nil.
package startstop

import (
	"context"
	"errors"
	"sync"
)

// ErrRunning is returned by [Lifecycle.Start] while a run is under way:
// started, and not yet ended (it may be stopping). Components wrap it in
// their own error.
var ErrRunning = errors.New("startstop: already running")

// closed is the Stopped channel of a component never started.
var closed = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// Lifecycle is the start/stop state of one component. Its zero value is a
// component never started. It is safe for concurrent use; it must not be
// copied after first use.
type Lifecycle struct {
	mu      sync.Mutex
	cancel  context.CancelFunc // cancels the current or last run
	stopped chan struct{}      // closed when that run ended; nil before the first Start
}

// Start begins a run: it derives the run's context from ctx and calls
// start with it and the run's wait group, into which start puts every
// goroutine of the run (with the group's Go, or Add before the goroutine
// starts), and so may every goroutine of the run in turn, for as long as
// it is itself in the group. start runs without the Lifecycle's lock, so
// it may do I/O; a concurrent Start fails with [ErrRunning] meanwhile,
// and a concurrent Stop cancels the run's context and waits for it.
//
// When start returns an error (or panics), the run's context is
// cancelled, the goroutines start put in the group are waited for, the
// run ends and Start returns the error (or panics again): the component
// may be started again. Otherwise Start returns nil and the run goes on
// until its goroutines have returned.
func (l *Lifecycle) Start(ctx context.Context, start func(ctx context.Context, group *sync.WaitGroup) error) (err error) {
	l.mu.Lock()
	if l.runningLocked() {
		l.mu.Unlock()
		return ErrRunning
	}
	runCtx, cancel := context.WithCancel(ctx)
	stopped := make(chan struct{})
	l.cancel, l.stopped = cancel, stopped
	l.mu.Unlock()

	group := new(sync.WaitGroup)
	ok := false
	defer func() {
		if !ok { // start failed or panicked: end the run here
			cancel()
			group.Wait()
			close(stopped)
		}
	}()
	if err := start(runCtx, group); err != nil {
		return err
	}
	ok = true
	go func() {
		group.Wait()
		cancel()
		close(stopped)
	}()
	return nil
}

// Stop cancels the current run's context and waits until the run has
// ended, or until ctx is done, whichever comes first; in the second case
// it returns ctx's error, and the run, cancelled, goes on winding down
// and still owns its goroutines: a later Stop waits for them again.
// Stopping a component that is not running returns nil at once.
func (l *Lifecycle) Stop(ctx context.Context) error {
	l.mu.Lock()
	cancel, stopped := l.cancel, l.stopped
	l.mu.Unlock()
	if stopped == nil {
		return nil
	}
	cancel()
	select {
	case <-stopped:
		return nil
	default:
	}
	select {
	case <-stopped:
		return nil
	case <-ctx.Done():
		select {
		case <-stopped: // both ready: the run has ended, which is what counts
			return nil
		default:
			return ctx.Err()
		}
	}
}

// Stopped returns a channel closed once the component is not running:
// for a running component, when its current run ends; for one not
// running (never started, or whose run has ended) a channel already
// closed. Take it after Start to wait for the run that Start began.
func (l *Lifecycle) Stopped() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped == nil {
		return closed
	}
	return l.stopped
}

// Running reports whether a run is under way (started and not yet
// ended): a snapshot, which a concurrent Start or the run's end may
// change at once.
func (l *Lifecycle) Running() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.runningLocked()
}

func (l *Lifecycle) runningLocked() bool {
	if l.stopped == nil {
		return false
	}
	select {
	case <-l.stopped:
		return false
	default:
		return true
	}
}
