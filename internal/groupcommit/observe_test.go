package groupcommit_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nova-go/nova/internal/groupcommit"
)

// ObserveFunc is told the size of every batch taken: the sizes add up to
// the requests committed, one call per batch.
func TestObserveFuncSeesEveryBatch(t *testing.T) {
	t.Parallel()
	rc := &recorder{delay: 100 * time.Microsecond}
	var calls, total atomic.Int64
	g := groupcommit.New(groupcommit.Config{MaxGroup: 16, ObserveFunc: func(_ context.Context, n int) {
		if n < 1 || n > 16 {
			t.Errorf("observed a batch of %d, want 1 to 16", n)
		}
		calls.Add(1)
		total.Add(int64(n))
	}}, rc.commit)
	defer g.Close()
	const callers, each = 16, 20
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for i := range each {
				if err := g.Do(context.Background(), &req{caller: c, in: i}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if total.Load() != callers*each {
		t.Errorf("observed sizes add up to %d, want %d", total.Load(), callers*each)
	}
	if calls.Load() != rc.batches.Load() {
		t.Errorf("%d observations for %d batches", calls.Load(), rc.batches.Load())
	}
}
