package bench_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/bench"
	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/novamysql"
	"github.com/nova-go/nova/novapg"
	"github.com/nova-go/nova/saga"
)

// workerCommand starts this test binary as a worker process: TestMain
// serves it.
var workerCommand = []string{os.Args[0], "-test.run=^$"}

// procsRun is what the hook saw of one saga-procs run.
type procsRun struct {
	total  int
	counts map[saga.Status]int
	pids   []int
}

// recordProcsRuns records every saga-procs run until the test ends. The
// hook is the package's: tests using it do not run in parallel.
func recordProcsRuns(t *testing.T) func() []procsRun {
	var mu sync.Mutex
	var runs []procsRun
	t.Cleanup(bench.SetProcsRunHook(func(total int, counts map[saga.Status]int, pids []int) {
		mu.Lock()
		defer mu.Unlock()
		runs = append(runs, procsRun{total, counts, pids})
	}))
	return func() []procsRun {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(runs)
	}
}

// gone reports whether no process has ID pid (the worker was waited for,
// not left behind).
func gone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// The saga-procs scenario runs, tiny, with 1 and 2 worker processes of
// this test binary on each server backend: every run it started
// completed, with as many worker processes as asked, each of them gone
// afterwards, and one result per number of processes with its speed-up
// over 1.
func TestSagaProcs(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) (bench.Backend, error)
	}{
		{"postgres", func(t *testing.T) (bench.Backend, error) {
			return bench.Postgres(testenv.Need(t, testenv.Postgres), novapg.Config{})
		}},
		{"mysql", func(t *testing.T) (bench.Backend, error) {
			return bench.MySQL(testenv.Need(t, testenv.MySQL), novamysql.Config{})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be, err := tc.open(t)
			if err != nil {
				t.Fatal(err)
			}
			defer be.Close()
			seen := recordProcsRuns(t)
			res, err := bench.Run(context.Background(), be, bench.Options{
				Scenarios: []string{"saga-procs"}, Procs: []int{1, 2}, Runs: 2, Warmup: -1, Scale: 0.02,
				WorkerCommand: workerCommand,
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != 2 {
				t.Fatalf("got %d results, want 2: %+v", len(res), res)
			}
			for i, r := range res {
				if r.Scenario != "saga-procs" || r.Procs != i+1 || r.Unit != "sagas" || r.Runs != 2 || !(r.NovaPerSec > 0) || r.RawPerSec != 0 {
					t.Errorf("result %d: %+v", i, r)
				}
			}
			if res[0].Speedup != 1 || !(res[1].Speedup > 0) {
				t.Errorf("speed-ups %v and %v, want 1 and a positive number", res[0].Speedup, res[1].Speedup)
			}
			runs := seen()
			if len(runs) != 4 {
				t.Fatalf("saw %d runs, want 4 (2 rounds of 1 and 2 processes)", len(runs))
			}
			for i, r := range runs {
				if r.total != 40 || r.counts[saga.Completed] != r.total || len(r.counts) != 1 {
					t.Errorf("run %d: statuses %v of %d runs, want all 40 completed", i, r.counts, r.total)
				}
				if want := []int{1, 2, 2, 1}[i]; len(r.pids) != want {
					t.Errorf("run %d had %d worker processes, want %d", i, len(r.pids), want)
				}
				for _, pid := range r.pids {
					if !gone(pid) {
						t.Errorf("run %d: worker process %d is still there", i, pid)
					}
				}
			}
		})
	}
}

// A worker program that fails fails the run with what it said, and
// leaves no process behind; the error is not a skip.
func TestSagaProcsWorkerFails(t *testing.T) {
	url := testenv.Need(t, testenv.Postgres)
	be, err := bench.Postgres(url, novapg.Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bench.Run(context.Background(), be, bench.Options{
		Scenarios: []string{"saga-procs"}, Procs: []int{2}, Runs: 1, Warmup: -1, Scale: 0.005,
		WorkerCommand: []string{"sh", "-c", "echo no store here >&2; exit 3"},
	})
	if err == nil || errors.Is(err, nova.ErrNotImplemented) || !strings.Contains(err.Error(), "no store here") {
		t.Fatalf("err = %v, want the worker's failure with its stderr", err)
	}
}

// Bad Procs are refused before anything runs; a backend whose stores
// other processes cannot open skips the scenario.
func TestSagaProcsOptions(t *testing.T) {
	t.Parallel()
	for _, procs := range [][]int{{0}, {1, bench.MaxProcs + 1}, {2, 2}, {-1}} {
		_, err := bench.Run(context.Background(), bench.Memory(), bench.Options{Scenarios: []string{"saga-procs"}, Procs: procs})
		if !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("Procs %v: err = %v, want ErrInvalid", procs, err)
		}
	}
	_, err := bench.Run(context.Background(), bench.Memory(), bench.Options{Scenarios: []string{"saga-procs"}, Procs: []int{1}, Runs: 1, Scale: 0.005})
	if !errors.Is(err, nova.ErrNotImplemented) {
		t.Errorf("on memory: err = %v, want ErrNotImplemented", err)
	}
}
