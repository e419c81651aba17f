package startstop_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nova-go/nova/internal/startstop"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// component is the smallest user of a Lifecycle: one goroutine that runs
// until its ctx is done, or until release is closed when deaf is set.
type component struct {
	life    startstop.Lifecycle
	starts  atomic.Int32
	running atomic.Int32
	deaf    bool
	release chan struct{}
}

func (c *component) Start(ctx context.Context) error {
	return c.life.Start(ctx, func(ctx context.Context, g *sync.WaitGroup) error {
		c.starts.Add(1)
		c.running.Add(1)
		g.Go(func() {
			defer c.running.Add(-1)
			if c.deaf {
				<-c.release
				return
			}
			<-ctx.Done()
		})
		return nil
	})
}

func (c *component) Stop(ctx context.Context) error { return c.life.Stop(ctx) }

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestStopBeforeStart(t *testing.T) {
	t.Parallel()
	var c component
	if err := c.Stop(t.Context()); err != nil {
		t.Fatalf("Stop before Start = %v, want nil", err)
	}
	if !isClosed(c.life.Stopped()) {
		t.Fatal("Stopped of a component never started is not closed")
	}
	if c.life.Running() {
		t.Fatal("a component never started is running")
	}
	if err := c.Start(t.Context()); err != nil {
		t.Fatalf("Start after a Stop before Start = %v", err)
	}
	if err := c.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestStoppedClosesWhenTheRunEnds(t *testing.T) {
	t.Parallel()
	var c component
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	stopped := c.life.Stopped()
	if isClosed(stopped) || !c.life.Running() {
		t.Fatal("Stopped is closed while the component runs")
	}
	if err := c.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !isClosed(stopped) {
		t.Fatal("Stopped is still open after Stop returned nil")
	}
	if n := c.running.Load(); n != 0 {
		t.Fatalf("%d goroutines still run after Stop", n)
	}
}

func TestRunEndsOnItsOwn(t *testing.T) {
	t.Parallel()
	var l startstop.Lifecycle
	quit := make(chan struct{})
	if err := l.Start(t.Context(), func(_ context.Context, g *sync.WaitGroup) error {
		g.Go(func() { <-quit })
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	stopped := l.Stopped()
	close(quit)
	<-stopped // the run ended without a Stop
	if l.Running() {
		t.Fatal("running after the run ended")
	}
	if err := l.Start(t.Context(), func(context.Context, *sync.WaitGroup) error { return nil }); err != nil {
		t.Fatalf("Start after the run ended on its own = %v", err)
	}
}

func TestStartCtxEndsTheRun(t *testing.T) {
	t.Parallel()
	var c component
	ctx, cancel := context.WithCancel(t.Context())
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	stopped := c.life.Stopped()
	cancel()
	<-stopped
	if err := c.Stop(t.Context()); err != nil {
		t.Fatalf("Stop after the run ended = %v", err)
	}
}

func TestRestart(t *testing.T) {
	t.Parallel()
	var c component
	for i := range 5 {
		if err := c.Start(t.Context()); err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		if err := c.Start(t.Context()); !errors.Is(err, startstop.ErrRunning) {
			t.Fatalf("start %d again while running = %v, want ErrRunning", i, err)
		}
		if err := c.Stop(t.Context()); err != nil {
			t.Fatalf("stop %d: %v", i, err)
		}
		if err := c.Stop(t.Context()); err != nil {
			t.Fatalf("stop %d again: %v", i, err)
		}
	}
	if n := c.starts.Load(); n != 5 {
		t.Fatalf("%d runs started, want 5", n)
	}
}

func TestStopWithAnExpiredCtx(t *testing.T) {
	t.Parallel()
	c := component{deaf: true, release: make(chan struct{})}
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := c.Stop(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Stop with a done ctx and a goroutine ignoring its own = %v, want ctx's error", err)
	}
	// The run still owns its goroutine: no second run meanwhile.
	if err := c.Start(t.Context()); !errors.Is(err, startstop.ErrRunning) {
		t.Fatalf("Start while the stopped run winds down = %v, want ErrRunning", err)
	}
	short, cancel2 := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel2()
	if err := c.Stop(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Stop with a short deadline = %v, want DeadlineExceeded", err)
	}
	close(c.release)
	if err := c.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := c.running.Load(); n != 0 {
		t.Fatalf("%d goroutines still run after Stop", n)
	}
	// An expired ctx does not fail a Stop that has nothing to wait for.
	if err := c.Stop(ctx); err != nil {
		t.Fatalf("Stop of a stopped component with a done ctx = %v", err)
	}
	c.deaf = false
	if err := c.Start(t.Context()); err != nil {
		t.Fatalf("Start once the run ended = %v", err)
	}
	if err := c.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestStartError(t *testing.T) {
	t.Parallel()
	var l startstop.Lifecycle
	boom := errors.New("boom")
	var returned atomic.Bool
	err := l.Start(t.Context(), func(ctx context.Context, g *sync.WaitGroup) error {
		g.Go(func() {
			<-ctx.Done()
			time.Sleep(10 * time.Millisecond)
			returned.Store(true)
		})
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Start = %v, want start's error", err)
	}
	if !returned.Load() {
		t.Fatal("Start returned its error before the goroutines started for the run did")
	}
	if l.Running() || !isClosed(l.Stopped()) {
		t.Fatal("a failed Start left the component running")
	}
	if err := l.Start(t.Context(), func(context.Context, *sync.WaitGroup) error { return nil }); err != nil {
		t.Fatalf("Start after a failed Start = %v", err)
	}
}

func TestStartPanic(t *testing.T) {
	t.Parallel()
	var l startstop.Lifecycle
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("start's panic was swallowed")
			}
		}()
		_ = l.Start(t.Context(), func(context.Context, *sync.WaitGroup) error { panic("boom") })
	}()
	if l.Running() {
		t.Fatal("a panicking Start left the component running")
	}
}

func TestStopDuringStart(t *testing.T) {
	t.Parallel()
	var l startstop.Lifecycle
	entered, proceed := make(chan struct{}), make(chan struct{})
	started := make(chan error, 1)
	go func() {
		started <- l.Start(t.Context(), func(ctx context.Context, g *sync.WaitGroup) error {
			close(entered)
			<-proceed
			g.Go(func() { <-ctx.Done() })
			return nil
		})
	}()
	<-entered
	if err := l.Start(t.Context(), func(context.Context, *sync.WaitGroup) error { return nil }); !errors.Is(err, startstop.ErrRunning) {
		t.Fatalf("Start during another Start = %v, want ErrRunning", err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- l.Stop(t.Context()) }()
	close(proceed)
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Stop during Start = %v", err)
	}
	if l.Running() {
		t.Fatal("running after Stop")
	}
}

func TestConcurrentStartStop(t *testing.T) {
	t.Parallel()
	var c component
	var wg sync.WaitGroup
	var ok atomic.Int32
	for range 8 {
		wg.Go(func() {
			for range 200 {
				switch err := c.Start(t.Context()); {
				case err == nil:
					ok.Add(1)
				case !errors.Is(err, startstop.ErrRunning):
					t.Errorf("Start = %v", err)
				}
				if err := c.Stop(t.Context()); err != nil {
					t.Errorf("Stop = %v", err)
				}
			}
		})
	}
	wg.Wait()
	if err := c.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if c.life.Running() || c.running.Load() != 0 {
		t.Fatal("running after every Stop returned")
	}
	if ok.Load() == 0 || ok.Load() != c.starts.Load() {
		t.Fatalf("%d Starts succeeded, %d runs began", ok.Load(), c.starts.Load())
	}
}
