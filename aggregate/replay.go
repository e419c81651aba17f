package aggregate

import (
	"iter"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/nova-go/nova"
)

// replayChunk is how many events one decode job holds. A stream shorter
// than one chunk is replayed on the caller's goroutine alone: starting
// decoders would cost more than it saves.
const replayChunk = 256

// decodeJob is a chunk of events in stream order and, once done is
// closed, their decoded values: vals[i] is events[i]'s, up to the first
// failure, which is errs[i] (nothing after it is decoded).
type decodeJob struct {
	events []nova.Event
	vals   []any
	err    error
	errAt  int
	done   chan struct{}
}

// replay applies events to root in order. Decoding, the JSON parse that is
// most of a load's time, runs ahead on up to GOMAXPROCS goroutines, a
// chunk of events each, while the caller's goroutine reads the stream and
// applies what has been decoded, in order: the events reach Apply exactly
// as a sequential load hands them over, and the first error in stream
// order is the one returned. The decoders are started once the stream
// proves longer than one chunk, and stopped before replay returns. The
// registry (its codec and upcasters) is safe for concurrent use, as
// [nova.Registry] requires.
func (r *Repository[T]) replay(root *Root[T], stream string, events iter.Seq2[nova.Event, error]) error {
	workers := r.decoders
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var (
		chunk    []nova.Event
		pending  []*decodeJob // submitted, in stream order
		jobs     chan *decodeJob
		wg       sync.WaitGroup
		stopping atomic.Bool
	)
	defer func() {
		if jobs != nil {
			stopping.Store(true)
			close(jobs)
			wg.Wait()
		}
	}()
	// applyJob waits for j's decoding and applies its events in order.
	applyJob := func(j *decodeJob) error {
		<-j.done
		for i, ev := range j.events {
			if j.err != nil && i == j.errAt {
				return r.applyDecoded(root, ev, nil, j.err)
			}
			if err := r.applyDecoded(root, ev, j.vals[i], nil); err != nil {
				return err
			}
		}
		return nil
	}
	window := 2 * workers // jobs decoded ahead of the one being applied
	for ev, err := range events {
		if err != nil {
			// The events before the failure are applied first, so the
			// error is the same as a sequential load's.
			for _, j := range pending {
				if aerr := applyJob(j); aerr != nil {
					return aerr
				}
			}
			for _, e := range chunk {
				if aerr := r.applyEvent(root, e); aerr != nil {
					return aerr
				}
			}
			return r.readError(root, stream, err)
		}
		if workers < 2 {
			if err := r.applyEvent(root, ev); err != nil {
				return err
			}
			continue
		}
		chunk = append(chunk, ev)
		if len(chunk) < replayChunk {
			continue
		}
		if jobs == nil {
			jobs = make(chan *decodeJob, window)
			for range workers {
				wg.Go(func() {
					for j := range jobs {
						r.decodeJob(j, &stopping)
					}
				})
			}
		}
		j := &decodeJob{events: chunk, done: make(chan struct{})}
		chunk = make([]nova.Event, 0, replayChunk)
		jobs <- j
		pending = append(pending, j)
		if len(pending) >= window {
			if err := applyJob(pending[0]); err != nil {
				return err
			}
			pending = pending[1:]
		}
	}
	for _, j := range pending {
		if err := applyJob(j); err != nil {
			return err
		}
	}
	for _, e := range chunk {
		if err := r.applyEvent(root, e); err != nil {
			return err
		}
	}
	return nil
}

// decodeJob decodes j's events until one fails, or until the replay is
// stopping (an error was returned: nothing more will be applied).
func (r *Repository[T]) decodeJob(j *decodeJob, stopping *atomic.Bool) {
	defer close(j.done)
	j.vals = make([]any, len(j.events))
	for i, ev := range j.events {
		if stopping.Load() {
			return
		}
		v, err := r.reg.Decode(ev)
		if err != nil {
			j.err, j.errAt = err, i
			return
		}
		j.vals[i] = v
	}
}
