package saga_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nova-go/nova/saga"
)

// stuckRenewals is a run store whose Renew never succeeds: it blocks
// until its ctx ends (a database that stopped answering), or fails at
// once (one that refuses), as block says.
type stuckRenewals struct {
	saga.RunStore
	block   bool
	renewed atomic.Int32
	// claimed is when the first claim that returned a run was sent, in
	// Unix nanoseconds: the lease it took holds at least until then plus
	// the lease.
	claimed atomic.Int64
}

func (s *stuckRenewals) Claim(ctx context.Context, r saga.ClaimRequest) ([]saga.RunInfo, error) {
	sent := time.Now()
	got, err := s.RunStore.Claim(ctx, r)
	if len(got) > 0 {
		s.claimed.CompareAndSwap(0, sent.UnixNano())
	}
	return got, err
}

func (s *stuckRenewals) Renew(ctx context.Context, _, _, _ string, _ time.Duration) error {
	s.renewed.Add(1)
	if s.block {
		<-ctx.Done()
		return ctx.Err()
	}
	return errors.New("database unavailable")
}

// TestAttemptEndsBeforeItsLease checks that a step whose lease cannot be
// renewed has its ctx cancelled, with ErrLeaseLost, before the lease
// expires, so no other worker can claim the run while it still runs; and
// that the run is then left to the next claimer.
func TestAttemptEndsBeforeItsLease(t *testing.T) {
	t.Parallel()
	// The margin the runner keeps is a tenth of it: room for a busy
	// machine to schedule the cancelled step.
	const lease = 1500 * time.Millisecond
	for _, tc := range []struct {
		name          string
		block, worker bool
	}{{"blocks/run", true, false}, {"fails/run", false, false}, {"blocks/worker", true, true}, {"fails/worker", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runs := &stuckRenewals{RunStore: memBackend(t, &clock{}), block: tc.block}
			ended := make(chan saga.RunInfo, 1)
			c, err := saga.NewCoordinator(saga.Config{Runs: runs, Logger: quiet, Lease: lease,
				OnEndFunc: func(_ context.Context, r saga.RunInfo) { ended <- r }})
			if err != nil {
				t.Fatal(err)
			}
			type exit struct {
				at    time.Time
				cause error
			}
			exits := make(chan exit, 1)
			step := saga.Step[trip]{Name: "a", Timeout: time.Minute,
				Retry: saga.RetryPolicy{MaxAttempts: 3, Backoff: saga.Linear{Unit: time.Millisecond}},
				Execute: func(ctx context.Context, sc saga.StepContext, _ *trip) error {
					if sc.Attempt > 1 {
						return nil
					}
					<-ctx.Done()
					exits <- exit{time.Now(), context.Cause(ctx)}
					return ctx.Err()
				}}
			def, _ := saga.Define("lease", step)
			// The lease is taken after this, so it holds at least until
			// began + lease.
			began := time.Now()
			if !tc.worker {
				_, err := saga.Run(t.Context(), c, def, "r1", trip{})
				if !errors.Is(err, saga.ErrAborted) || !errors.Is(err, saga.ErrLeaseLost) {
					t.Fatalf("Run: %v", err)
				}
			} else {
				if _, err := saga.Start(t.Context(), c, def, "r1", trip{}); err != nil {
					t.Fatal(err)
				}
				w, _ := saga.NewWorker(c, saga.WorkerConfig{PollInterval: 5 * time.Millisecond})
				_ = saga.Register(w, def)
				if err := w.Start(t.Context()); err != nil {
					t.Fatal(err)
				}
				defer func() { _ = w.Stop(context.Background()) }()
			}
			var e exit
			select {
			case e = <-exits:
			case <-time.After(10 * time.Second):
				t.Fatal("the attempt's ctx never ended")
			}
			if !errors.Is(e.cause, saga.ErrLeaseLost) {
				t.Fatalf("cause %v", e.cause)
			}
			if tc.worker {
				// The worker's lease was taken by its claim, which may
				// come well after the start on a busy machine.
				began = time.Unix(0, runs.claimed.Load())
			}
			if left := began.Add(lease).Sub(e.at); left <= 0 {
				t.Fatalf("the attempt ran %s past its lease", -left)
			}
			if runs.renewed.Load() == 0 {
				t.Fatal("no renewal was tried")
			}
			if tc.worker {
				// The worker released the run, claimed it again and
				// finished it.
				select {
				case r := <-ended:
					if r.Status != saga.Completed {
						t.Fatalf("ended %+v", r)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("the run did not end")
				}
				return
			}
			// Run released the run: another worker claims it at once.
			got, err := runs.Claim(t.Context(), saga.ClaimRequest{Owner: "next", Sagas: []string{"lease"}, Lease: time.Minute, Limit: 1})
			if err != nil || len(got) != 1 || got[0].RunID != "r1" {
				t.Fatalf("claim: %v %+v", err, got)
			}
		})
	}
}
