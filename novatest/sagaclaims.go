package novatest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/saga"
)

// RunSagaClaimsAcrossStores checks what a run store promises to workers
// in several processes. a and b are two run stores on one database, each
// on its own connections as two processes would have, with no runs yet:
// 200 due runs are recorded through both, then 12 workers claim them
// through both at once. No run may be claimed twice, and every run must be
// claimed.
func RunSagaClaimsAcrossStores(t *testing.T, a, b saga.RunStore) {
	t.Helper()
	ctx := context.Background()
	stores := []saga.RunStore{a, b}
	const runs = 200
	now := now(t, ctx, a)
	for i := range runs {
		_, err := stores[i%2].Record(ctx, saga.Transition{
			Stream: saga.StreamName("order", fmt.Sprint(i)), Expected: nova.NoStream,
			Events: Events("saga.test", 1),
			Run:    saga.RunInfo{Saga: "order", RunID: fmt.Sprint(i), Status: saga.Running, DueAt: now.Add(-time.Second)},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu   sync.Mutex
		seen = map[string]string{}
		errs []error
		wg   sync.WaitGroup
	)
	for w := range 12 {
		rs, owner := stores[w%2], fmt.Sprintf("w%d", w)
		wg.Go(func() {
			for range runs {
				got, err := rs.Claim(ctx, saga.ClaimRequest{Owner: owner, Sagas: []string{"order"}, Lease: time.Minute, Limit: 4})
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				}
				for _, r := range got {
					if prev, ok := seen[r.RunID]; ok {
						errs = append(errs, fmt.Errorf("run %s claimed by %s and %s", r.RunID, prev, owner))
					}
					seen[r.RunID] = owner
				}
				mu.Unlock()
				if err != nil || len(got) == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(errors.Join(errs...))
	}
	if len(seen) != runs {
		t.Fatalf("claimed %d runs, want %d", len(seen), runs)
	}
}
