package groupcommit_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/groupcommit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// req is a request of the tests: the commit doubles in into out.
type req struct {
	caller, in int
	poison     bool // fails (or panics) the whole batch it is in

	out   int
	err   error
	batch int64 // the batch that committed it
	n     int   // the size of that batch
}

// recorder is a commit callback that doubles each request's input and
// remembers the batches.
type recorder struct {
	batches  atomic.Int64
	requests atomic.Int64
	inFlight atomic.Int32
	most     atomic.Int32
	slots    sync.Map // slot -> *atomic.Int32, commits running on it
	// panic makes a batch with a poisoned request panic instead of
	// failing.
	panic bool
	// delay is how long a commit takes, as a flush of the log does.
	delay time.Duration
}

var errPoison = errors.New("poisoned batch")

func (rc *recorder) commit(ctx context.Context, b *groupcommit.Batch[req]) {
	n := rc.inFlight.Add(1)
	defer rc.inFlight.Add(-1)
	for {
		m := rc.most.Load()
		if n <= m || rc.most.CompareAndSwap(m, n) {
			break
		}
	}
	v, _ := rc.slots.LoadOrStore(b.Slot(), new(atomic.Int32))
	if v.(*atomic.Int32).Add(1) != 1 {
		panic(fmt.Sprintf("two batches on slot %d at once", b.Slot()))
	}
	defer v.(*atomic.Int32).Add(-1)

	id := rc.batches.Add(1)
	rs := b.Take()
	time.Sleep(rc.delay)
	rc.requests.Add(int64(len(rs)))
	poisoned := false
	for i, r := range rs {
		b.Apply(i, func() {
			r.out, r.err, r.batch, r.n = 2*r.in, nil, id, len(rs)
			poisoned = poisoned || r.poison
		})
	}
	if poisoned {
		if rc.panic {
			panic("boom")
		}
		for _, r := range rs {
			r.out, r.err = 0, errPoison
		}
	}
}

// TestManyCallers: many callers at once each get their own result, in
// fewer batches than requests, never more than Committers at a time and
// never two on one slot.
func TestManyCallers(t *testing.T) {
	t.Parallel()
	for _, committers := range []int{1, 3} {
		t.Run(fmt.Sprint("committers=", committers), func(t *testing.T) {
			t.Parallel()
			rc := &recorder{delay: 100 * time.Microsecond}
			g := groupcommit.New(groupcommit.Config{MaxGroup: 16, Committers: committers}, rc.commit)
			defer g.Close()
			const callers, each = 64, 50
			var wg sync.WaitGroup
			for c := range callers {
				wg.Go(func() {
					for i := range each {
						r := &req{caller: c, in: c*1000 + i}
						if err := g.Do(context.Background(), r); err != nil || r.err != nil {
							t.Errorf("caller %d, request %d: %v, %v", c, i, err, r.err)
							return
						}
						if r.out != 2*r.in || r.n < 1 || r.n > 16 {
							t.Errorf("caller %d, request %d: out %d in a batch of %d, want %d in 1 to 16", c, i, r.out, r.n, 2*r.in)
						}
					}
				})
			}
			wg.Wait()
			if got := rc.requests.Load(); got != callers*each {
				t.Errorf("%d requests committed, want %d", got, callers*each)
			}
			if rc.batches.Load() >= callers*each {
				t.Errorf("%d batches for %d requests: no grouping", rc.batches.Load(), callers*each)
			}
			if m := rc.most.Load(); m > int32(committers) {
				t.Errorf("%d batches at once, want at most %d", m, committers)
			}
		})
	}
}

// TestFailedBatchFailsOnlyItsMembers: a batch that fails gives its error
// to its members only; the requests of every other batch succeed.
func TestFailedBatchFailsOnlyItsMembers(t *testing.T) {
	t.Parallel()
	for _, panics := range []bool{false, true} {
		t.Run(fmt.Sprint("panic=", panics), func(t *testing.T) {
			t.Parallel()
			rc := &recorder{panic: panics}
			g := groupcommit.New(groupcommit.Config{MaxGroup: 8}, rc.commit)
			defer g.Close()
			var (
				mu   sync.Mutex
				done []*req
				errs = map[*req]error{}
			)
			var wg sync.WaitGroup
			for c := range 16 {
				wg.Go(func() {
					for i := range 40 {
						r := &req{caller: c, in: i, poison: (c*40+i)%23 == 0}
						err := g.Do(context.Background(), r)
						mu.Lock()
						done, errs[r] = append(done, r), err
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			poisoned := map[int64]bool{}
			for _, r := range done {
				if r.poison {
					poisoned[r.batch] = true
				}
			}
			failed := 0
			for _, r := range done {
				err := errs[r]
				if !poisoned[r.batch] {
					if err != nil || r.err != nil || r.out != 2*r.in {
						t.Errorf("request %d/%d in a sound batch: %v, %v, out %d", r.caller, r.in, err, r.err, r.out)
					}
					continue
				}
				failed++
				var pe *nova.PanicError
				switch {
				case panics && (!errors.As(err, &pe) || pe.Value != "boom" || len(pe.Stack) == 0):
					t.Errorf("request %d/%d in a panicking batch: %v, want the panic as a *nova.PanicError", r.caller, r.in, err)
				case !panics && (err != nil || !errors.Is(r.err, errPoison)):
					t.Errorf("request %d/%d in a failing batch: %v, %v, want its batch's error", r.caller, r.in, err, r.err)
				}
			}
			if failed == 0 || failed == len(done) {
				t.Fatalf("%d of %d requests in failing batches: the test proves nothing", failed, len(done))
			}
		})
	}
}

// gate is a commit callback that blocks inside its batch until released,
// then commits like a recorder.
type gate struct {
	rc      recorder
	entered chan int // the batch's size, once taken
	release chan struct{}
	// beforeTake blocks before Take instead, as a wait for a lock does,
	// and gives up when ctx ends without taking.
	beforeTake bool
	first      sync.Once
	// applied counts the requests of the blocked batch applied before
	// it blocks.
	applied int
}

func newGate() *gate {
	return &gate{entered: make(chan int, 1), release: make(chan struct{})}
}

func (gt *gate) commit(ctx context.Context, b *groupcommit.Batch[req]) {
	block := false
	gt.first.Do(func() { block = true })
	if block && gt.beforeTake {
		gt.entered <- 0
		select {
		case <-gt.release:
		case <-ctx.Done():
			return
		}
	}
	if block && !gt.beforeTake {
		rs := b.Take()
		for i := range gt.applied {
			r := rs[i]
			b.Apply(i, func() { r.out = 2 * r.in })
		}
		gt.entered <- len(rs)
		<-gt.release
	}
	gt.rc.commit(ctx, b)
}

func waitQueued(t *testing.T, g *groupcommit.Group[req], n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for g.Queued() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests queued, want %d", g.Queued(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestQueuedCallersKeepTheirDeadlines: callers queued behind a blocked
// batch return ctx.Err() when their ctx ends, and their requests are
// never committed; the others are.
func TestQueuedCallersKeepTheirDeadlines(t *testing.T) {
	t.Parallel()
	gt := newGate()
	g := groupcommit.New(groupcommit.Config{MaxGroup: 8}, gt.commit)
	defer g.Close()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := g.Do(context.Background(), &req{in: 1}); err != nil {
			t.Errorf("leader: %v", err)
		}
	})
	<-gt.entered
	ctx, cancel := context.WithCancel(context.Background())
	reqs := make([]*req, 6)
	errs := make([]error, len(reqs))
	cancelled := make(chan error, len(reqs))
	for i := range reqs {
		reqs[i] = &req{in: 10 + i}
		if i%2 == 0 {
			wg.Go(func() { cancelled <- g.Do(ctx, reqs[i]) })
		} else {
			wg.Go(func() { errs[i] = g.Do(context.Background(), reqs[i]) })
		}
		waitQueued(t, g, i+1)
	}
	cancel()
	for i := 0; i < len(reqs); i += 2 {
		errs[i] = <-cancelled // while the batch ahead is still blocked
	}
	close(gt.release)
	wg.Wait()
	for i, r := range reqs {
		switch {
		case i%2 == 0 && (!errors.Is(errs[i], context.Canceled) || r.batch != 0):
			t.Errorf("cancelled request %d: %v, batch %d, want context.Canceled and never committed", i, errs[i], r.batch)
		case i%2 == 1 && (errs[i] != nil || r.out != 2*r.in):
			t.Errorf("request %d: %v, out %d", i, errs[i], r.out)
		}
	}
}

// TestTakenCallersGiveUp: with GiveUp, callers whose requests a blocked
// batch has taken return when their ctx ends: with ctx.Err() when their
// writes were not made (and they never are), with ErrUnknownOutcome when
// they were.
func TestTakenCallersGiveUp(t *testing.T) {
	t.Parallel()
	// The first leader blocks before taking its batch, so that the
	// requests queue and the next leader takes them all; that one blocks
	// after applying its own request and the first follower's.
	first := &gate{entered: make(chan int, 1), release: make(chan struct{}), beforeTake: true}
	second := newGate()
	second.applied = 2
	var calls atomic.Int32
	g := groupcommit.New(groupcommit.Config{MaxGroup: 8, GiveUp: true}, func(ctx context.Context, b *groupcommit.Batch[req]) {
		if calls.Add(1) == 1 {
			first.commit(ctx, b)
			return
		}
		second.commit(ctx, b)
	})
	defer g.Close()
	var wg sync.WaitGroup
	wg.Go(func() { _ = g.Do(context.Background(), &req{in: 1}) })
	<-first.entered
	wg.Go(func() {
		if err := g.Do(context.Background(), &req{in: 2}); err != nil {
			t.Errorf("second leader: %v", err)
		}
	})
	waitQueued(t, g, 1)
	ctx, cancel := context.WithCancel(context.Background())
	reqs := make([]*req, 4)
	results := make([]chan error, len(reqs))
	for i := range reqs {
		reqs[i] = &req{in: 10 + i}
		results[i] = make(chan error, 1)
		wg.Go(func() { results[i] <- g.Do(ctx, reqs[i]) })
		waitQueued(t, g, 2+i)
	}
	close(first.release)
	if n := <-second.entered; n != 1+len(reqs) {
		t.Fatalf("the second batch took %d requests, want %d", n, 1+len(reqs))
	}
	cancel()
	errs := make([]error, len(reqs))
	for i := range reqs {
		select {
		case errs[i] = <-results[i]:
		case <-time.After(10 * time.Second):
			close(second.release)
			t.Fatal("callers of taken requests did not return when their ctx ended")
		}
	}
	close(second.release)
	wg.Wait()
	for i, r := range reqs {
		if i == 0 {
			if !errors.Is(errs[i], groupcommit.ErrUnknownOutcome) || !errors.Is(errs[i], context.Canceled) {
				t.Errorf("given up after its writes: %v, want ErrUnknownOutcome and context.Canceled", errs[i])
			}
			continue
		}
		if !errors.Is(errs[i], context.Canceled) || errors.Is(errs[i], groupcommit.ErrUnknownOutcome) || r.batch != 0 {
			t.Errorf("request %d given up before its writes: %v, batch %d, want context.Canceled and never written", i, errs[i], r.batch)
		}
	}
}

// TestLeaderGivesUpBeforeTaking: a leader whose ctx ends while its
// callback waits for its lock gets ctx.Err(); the requests queued behind
// it are committed by the next leader.
func TestLeaderGivesUpBeforeTaking(t *testing.T) {
	t.Parallel()
	gt := newGate()
	gt.beforeTake = true
	g := groupcommit.New(groupcommit.Config{MaxGroup: 8}, gt.commit)
	defer g.Close()
	ctx, cancel := context.WithCancel(context.Background())
	lead := &req{in: 1}
	var leadErr error
	var wg sync.WaitGroup
	wg.Go(func() { leadErr = g.Do(ctx, lead) })
	<-gt.entered
	reqs := make([]*req, 3)
	errs := make([]error, len(reqs))
	for i := range reqs {
		reqs[i] = &req{in: 10 + i}
		wg.Go(func() { errs[i] = g.Do(context.Background(), reqs[i]) })
		waitQueued(t, g, i+1)
	}
	cancel()
	wg.Wait()
	if !errors.Is(leadErr, context.Canceled) || lead.batch != 0 {
		t.Errorf("leader: %v, batch %d, want context.Canceled and never committed", leadErr, lead.batch)
	}
	for i, r := range reqs {
		if errs[i] != nil || r.out != 2*r.in {
			t.Errorf("request %d behind the leader: %v, out %d", i, errs[i], r.out)
		}
	}
}

// TestCloseDrains: Close waits for the queued requests to be committed,
// then refuses new ones with nova.ErrClosed.
func TestCloseDrains(t *testing.T) {
	t.Parallel()
	gt := newGate()
	g := groupcommit.New(groupcommit.Config{MaxGroup: 2}, gt.commit)
	var wg sync.WaitGroup
	wg.Go(func() { _ = g.Do(context.Background(), &req{in: 1}) })
	<-gt.entered
	reqs := make([]*req, 5)
	errs := make([]error, len(reqs))
	for i := range reqs {
		reqs[i] = &req{in: 10 + i}
		wg.Go(func() { errs[i] = g.Do(context.Background(), reqs[i]) })
		waitQueued(t, g, i+1)
	}
	closed := make(chan struct{})
	go func() { g.Close(); close(closed) }()
	for {
		// Before Close, the probe queues and gives up.
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		err := g.Do(ctx, &req{})
		cancel()
		if errors.Is(err, nova.ErrClosed) {
			break
		}
	}
	select {
	case <-closed:
		t.Fatal("Close returned while a batch was committing")
	default:
	}
	close(gt.release)
	<-closed
	wg.Wait()
	for i, r := range reqs {
		if errs[i] != nil || r.out != 2*r.in {
			t.Errorf("request queued before Close: %v, out %d, want it committed", errs[i], r.out)
		}
	}
	if err := g.Do(context.Background(), &req{}); !errors.Is(err, nova.ErrClosed) {
		t.Errorf("Do after Close: %v, want nova.ErrClosed", err)
	}
	g.Close() // again: returns at once
}

// TestStress mixes callers whose ctx ends at random with batches that
// fail or panic, on several slots: every caller returns, with its own
// result or one of the Group's errors, and a request whose caller got
// ctx.Err() was never written.
func TestStress(t *testing.T) {
	t.Parallel()
	var written sync.Map // *req -> true
	g := groupcommit.New(groupcommit.Config{MaxGroup: 32, Committers: 2, GiveUp: true}, func(ctx context.Context, b *groupcommit.Batch[req]) {
		if rand.IntN(50) == 0 {
			<-ctx.Done() // a wait for a lock, ended by the leader's ctx
			return
		}
		rs := b.Take()
		for i, r := range rs {
			b.Apply(i, func() {
				written.Store(r, true)
				r.out = 2 * r.in
			})
			if rand.IntN(20) == 0 {
				time.Sleep(50 * time.Microsecond)
			}
		}
		switch rand.IntN(40) {
		case 0:
			panic("stress")
		case 1:
			for _, r := range rs {
				r.err = errPoison
			}
		}
	})
	n := 2000
	if testing.Short() {
		n = 200
	}
	var wg sync.WaitGroup
	var ok, cancelled, unknown, failed atomic.Int64
	for c := range 32 {
		wg.Go(func() {
			for i := range n / 32 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rand.IntN(300))*time.Microsecond)
				r := &req{caller: c, in: i}
				err := g.Do(ctx, r)
				cancel()
				_, w := written.Load(r)
				var pe *nova.PanicError
				switch {
				case err == nil && r.err == nil:
					if r.out != 2*r.in {
						t.Errorf("request %d/%d: out %d", c, i, r.out)
					}
					ok.Add(1)
				case err == nil && errors.Is(r.err, errPoison), errors.As(err, &pe):
					failed.Add(1)
				case errors.Is(err, groupcommit.ErrUnknownOutcome):
					unknown.Add(1)
				case errors.Is(err, context.DeadlineExceeded):
					if w {
						t.Errorf("request %d/%d: ctx.Err() but written", c, i)
					}
					cancelled.Add(1)
				default:
					t.Errorf("request %d/%d: %v, %v", c, i, err, r.err)
				}
			}
		})
	}
	wg.Wait()
	g.Close()
	t.Logf("%d committed, %d failed with their batch, %d withdrawn, %d given up after writing", ok.Load(), failed.Load(), cancelled.Load(), unknown.Load())
	if ok.Load() == 0 {
		t.Error("nothing committed")
	}
}
