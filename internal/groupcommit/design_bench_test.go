package groupcommit

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// chanGroup is the other design of group commit, kept here to measure
// against Group: Committers goroutines, started by New and stopped by
// Close, take the requests callers send on a channel. It serves the
// same CommitFunc.
type chanGroup[R any] struct {
	cfg     Config
	commit  CommitFunc[R]
	queue   chan *entry[R]
	closing chan struct{}
	wg      sync.WaitGroup
}

func newChanGroup[R any](cfg Config, commit CommitFunc[R]) *chanGroup[R] {
	cfg.MaxGroup = max(cfg.MaxGroup, 1)
	cfg.Committers = max(cfg.Committers, 1)
	c := &chanGroup[R]{cfg: cfg, commit: commit, queue: make(chan *entry[R], cfg.MaxGroup), closing: make(chan struct{})}
	for slot := range cfg.Committers {
		c.wg.Go(func() { c.loop(slot) })
	}
	return c
}

func (c *chanGroup[R]) Do(ctx context.Context, r *R) error {
	e := &entry[R]{req: r, done: make(chan struct{})}
	select {
	case c.queue <- e:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-e.done:
		return e.err
	case <-ctx.Done():
		if e.state.CompareAndSwap(stateQueued, stateCancelled) {
			return ctx.Err()
		}
	}
	<-e.done
	return e.err
}

func (c *chanGroup[R]) Close() {
	close(c.closing)
	c.wg.Wait()
}

func (c *chanGroup[R]) loop(slot int) {
	b := &Batch[R]{slot: slot}
	last := 0
	for {
		select {
		case e := <-c.queue:
			b.entries = c.gather(append(b.entries, e))
			// As Group does: let the callers of the previous batch run
			// while they keep arriving.
			for len(b.entries) < last {
				n := len(b.entries)
				runtime.Gosched()
				if b.entries = c.gather(b.entries); len(b.entries) == n {
					break
				}
			}
			last = len(b.entries)
			run(context.Background(), c.commit, b)
			for _, e := range b.live {
				close(e.done)
			}
			b.reset()
		case <-c.closing:
			return
		}
	}
}

func (c *chanGroup[R]) gather(batch []*entry[R]) []*entry[R] {
	for len(batch) < c.cfg.MaxGroup {
		select {
		case e := <-c.queue:
			batch = append(batch, e)
		default:
			return batch
		}
	}
	return batch
}

// BenchmarkDesign runs the two designs of group commit with a commit that
// costs nothing (what the protocol itself costs) and one that sleeps
// 1 ms, as a flush of the log does, with 1, 8 and 64 callers writing at
// once, one or two batches committing at a time. It reports requests per
// second and requests per batch.
//
//	go test -run '^$' -bench Design -count 5 ./internal/groupcommit/
func BenchmarkDesign(b *testing.B) {
	type doer interface {
		Do(context.Context, *int) error
		Close()
	}
	for _, delay := range []time.Duration{0, time.Millisecond} {
		for _, committers := range []int{1, 2} {
			for _, callers := range []int{1, 8, 64} {
				for _, design := range []string{"leader", "channel"} {
					name := fmt.Sprintf("commit=%v/committers=%d/callers=%d/%s", delay, committers, callers, design)
					b.Run(name, func(b *testing.B) {
						var batches atomic.Int64
						commit := func(_ context.Context, bt *Batch[int]) {
							for _, r := range bt.Take() {
								*r++
							}
							batches.Add(1)
							if delay > 0 {
								time.Sleep(delay)
							}
						}
						cfg := Config{MaxGroup: 128, Committers: committers}
						var d doer
						if design == "leader" {
							d = New(cfg, commit)
						} else {
							d = newChanGroup(cfg, commit)
						}
						defer d.Close()
						var next atomic.Int64
						var wg sync.WaitGroup
						b.ResetTimer()
						for range callers {
							wg.Go(func() {
								for next.Add(1) <= int64(b.N) {
									var v int
									if err := d.Do(context.Background(), &v); err != nil || v != 1 {
										b.Errorf("Do: %v, %d", err, v)
										return
									}
								}
							})
						}
						wg.Wait()
						b.StopTimer()
						b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
						b.ReportMetric(float64(b.N)/float64(max(batches.Load(), 1)), "req/batch")
					})
				}
			}
		}
	}
}
