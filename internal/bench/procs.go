package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/services"
	"github.com/nova-go/nova/novamysql"
	"github.com/nova-go/nova/novapg"
	"github.com/nova-go/nova/saga"
)

// The saga-procs scenario: durable 3-step sagas driven to their end by
// saga.Worker in separate worker processes of one service, all on one
// database. The parent process starts the runs, untimed, then lets
// 1, 2, … worker processes loose on them and times how long the runs take
// to reach a terminal status, polling the runs table.

// WorkerEnv is the environment variable that makes a program started by
// the saga-procs scenario a saga worker: the program (the command of
// [Options.WorkerCommand]) must see it set to "1" and call
// [ServeWorker] instead of doing its usual work.
const WorkerEnv = "NOVA_BENCH_SAGA_WORKER"

// DefaultProcs returns the numbers of worker processes the saga-procs
// scenario measures when [Options.Procs] is empty: 1, 2 and 3.
func DefaultProcs() []int { return []int{1, 2, 3} }

// MaxProcs is the most worker processes one saga-procs run starts.
const MaxProcs = 16

// ProcsConcurrency is how many runs each worker process of the saga-procs
// scenario drives at once ([saga.WorkerConfig.Concurrency]), as many as
// the saga-3step-8 scenario runs in one process.
const ProcsConcurrency = 8

// procsSaga is the name of the saga the scenario runs.
const procsSaga = "bench"

// procsPoll is how often the parent counts the runs' statuses, and the
// workers' PollInterval (they are woken by nothing else: the runs are
// started by another process).
const procsPoll = 20 * time.Millisecond

// workerReadyTimeout bounds a worker process's start, up to its ready
// line; workerStopTimeout how long a worker may take to stop once told,
// before it is killed.
const (
	workerReadyTimeout = time.Minute
	workerStopTimeout  = 15 * time.Second
)

// workerSpec tells a worker process which store to open: it is the first
// line the parent writes on the worker's standard input, as JSON.
type workerSpec struct {
	// Backend is "postgres" or "mysql".
	Backend string `json:"backend"`
	// URL is the PostgreSQL URL, or the MySQL DSN of the scratch
	// database.
	URL string `json:"url"`
	// Schema is the scratch schema on PostgreSQL.
	Schema string `json:"schema,omitempty"`
	// TablePrefix is novamysql's.
	TablePrefix string `json:"table_prefix,omitempty"`
	// Concurrency is the worker's.
	Concurrency int `json:"concurrency"`
}

// open opens the store spec names.
func (spec workerSpec) open(ctx context.Context) (nova.Store, error) {
	switch spec.Backend {
	case "postgres":
		return novapg.Open(ctx, novapg.Config{URL: spec.URL, Schema: spec.Schema})
	case "mysql":
		return novamysql.Open(ctx, novamysql.Config{DSN: spec.URL, TablePrefix: spec.TablePrefix})
	}
	return nil, fmt.Errorf("bench: worker: unknown backend %q", spec.Backend)
}

// errNoProcs skips the saga-procs scenario on a backend whose stores other
// processes cannot open.
var errNoProcs = fmt.Errorf("the backend's stores cannot be shared with worker processes: %w", nova.ErrNotImplemented)

// procsDef is the saga every run of the scenario is a run of.
func procsDef() (*saga.Definition[benchSagaData], error) {
	return saga.Define(procsSaga, noopStep("a"), noopStep("b"), noopStep("c"))
}

// ServeWorker is the whole work of a worker process of the saga-procs
// scenario (see [WorkerEnv]). It reads a JSON spec line from in, opens
// that store, prepares a [saga.Worker] for the scenario's saga and writes
// "ready" on out; on a "go" line it starts the worker, which drives the
// due runs until in ends (the parent closed it, or exited) or ctx is
// done; then it stops the worker and closes the store. Warnings of the
// worker go to errOut.
func ServeWorker(ctx context.Context, in io.Reader, out, errOut io.Writer) error {
	lines := make(chan string)
	go func() {
		// Ends with in; the process exits soon after ServeWorker returns.
		defer close(lines)
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	next := func() (string, bool) {
		select {
		case l, ok := <-lines:
			return l, ok
		case <-ctx.Done():
			return "", false
		}
	}
	line, ok := next()
	if !ok {
		return errors.New("bench: worker: no spec on standard input")
	}
	var spec workerSpec
	if err := json.Unmarshal([]byte(line), &spec); err != nil {
		return fmt.Errorf("bench: worker: read spec: %w", err)
	}
	st, err := spec.open(ctx)
	if err != nil {
		return fmt.Errorf("bench: worker: open store: %w", err)
	}
	defer st.Close()
	svc, err := services.For(st)
	if err != nil {
		return fmt.Errorf("bench: worker: %w", err)
	}
	def, err := procsDef()
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := saga.NewCoordinator(saga.Config{Runs: svc.Runs, Logger: log})
	if err != nil {
		return err
	}
	w, err := saga.NewWorker(c, saga.WorkerConfig{Concurrency: spec.Concurrency, PollInterval: procsPoll})
	if err != nil {
		return err
	}
	if err := saga.Register(w, def); err != nil {
		return err
	}
	if _, err := fmt.Fprintln(out, "ready"); err != nil {
		return fmt.Errorf("bench: worker: %w", err)
	}
	if line, ok := next(); !ok || line != "go" {
		return nil // told to stop before it began
	}
	if err := w.Start(ctx); err != nil {
		return err
	}
	for ok {
		_, ok = next()
	}
	return w.Stop(context.Background())
}

// procsSpec returns the spec of store s for the worker processes, or
// errNoProcs.
func procsSpec(ctx context.Context, b Backend, s nova.Store) (workerSpec, error) {
	if b.workerSpecFunc == nil {
		return workerSpec{}, errNoProcs
	}
	spec, err := b.workerSpecFunc(ctx, s)
	if err != nil {
		return workerSpec{}, err
	}
	spec.Concurrency = ProcsConcurrency
	return spec, nil
}

// runProcs measures the saga-procs scenario: rounds of one run per
// number of processes, warm-up rounds first, the order of the numbers
// reversed every other round, so that each round's speed-ups divide
// rates measured minutes apart at most.
func runProcs(ctx context.Context, b Backend, sz sizes, opts Options) ([]Result, error) {
	if b.ServicesFunc == nil {
		return nil, errNoServices
	}
	if b.workerSpecFunc == nil {
		return nil, errNoProcs
	}
	procs := opts.Procs
	if len(procs) == 0 {
		procs = DefaultProcs()
	}
	one := slices.Index(procs, 1)
	n, warm := opts.runs(), opts.warmups()
	rates := make([][]float64, len(procs))
	speedups := make([][]float64, len(procs))
	for i := range warm + n {
		round := make([]float64, len(procs))
		order := make([]int, len(procs))
		for k := range order {
			order[k] = k
		}
		if i%2 == 1 {
			slices.Reverse(order)
		}
		for _, k := range order {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("bench: saga-procs: %w", err)
			}
			rate, cpu, err := procsRun(ctx, b, procs[k], sz.events, opts)
			if err != nil {
				return nil, fmt.Errorf("bench: saga-procs on %s, %d processes, run %d: %w", b.Name, procs[k], i+1, err)
			}
			round[k] = rate
			label := fmt.Sprintf("run %d/%d", i-warm+1, n)
			if i < warm {
				label = fmt.Sprintf("warm-up %d/%d", i+1, warm)
			}
			if opts.Progress != nil {
				fmt.Fprintf(opts.Progress, "%s saga-procs %d processes %s: %.0f sagas/s, workers' CPU %.2f ms a saga\n",
					b.Name, procs[k], label, rate, float64(cpu)/float64(time.Millisecond))
			}
		}
		if i < warm {
			continue
		}
		for k := range procs {
			rates[k] = append(rates[k], round[k])
			if one >= 0 && round[one] > 0 {
				speedups[k] = append(speedups[k], round[k]/round[one])
			}
		}
	}
	out := make([]Result, len(procs))
	for k, p := range procs {
		out[k] = Result{Scenario: "saga-procs", Backend: b.Name, NovaPerSec: Median(rates[k]), Procs: p,
			Speedup: Median(speedups[k]), Runs: n, Unit: "sagas"}
	}
	return out, nil
}

// procsRunHook, when set (by tests), is called after every saga-procs run
// with the run's status counts and the worker processes' IDs.
var procsRunHook func(total int, counts map[saga.Status]int, pids []int)

// procsRun is one run of the saga-procs scenario with procs worker
// processes and total sagas, and returns its rate in sagas per second and
// the CPU time (user and system) the worker processes took per saga, from
// their start to their exit.
func procsRun(ctx context.Context, b Backend, procs, total int, opts Options) (rate float64, cpu time.Duration, err error) {
	st, cleanup, err := b.NovaFunc(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("open store: %w", err)
	}
	defer func() {
		if cerr := cleanup(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("clean up: %w", cerr))
		}
	}()
	svc, err := b.ServicesFunc(ctx, st)
	if err != nil {
		return 0, 0, err
	}
	spec, err := procsSpec(ctx, b, st)
	if err != nil {
		return 0, 0, err
	}
	if err := startRuns(ctx, svc.Runs, total); err != nil {
		return 0, 0, fmt.Errorf("start the runs: %w", err)
	}
	workers := make([]*workerProc, 0, procs)
	var counts map[saga.Status]int
	defer func() {
		// Every worker is stopped and waited for, whatever happened.
		pids := make([]int, len(workers))
		for i, w := range workers {
			err = errors.Join(err, w.stop())
			pids[i] = w.cmd.Process.Pid
		}
		if procsRunHook != nil && counts != nil {
			procsRunHook(total, counts, pids)
		}
	}()
	for range procs {
		w, err := startWorker(ctx, opts.WorkerCommand, spec)
		if err != nil {
			return 0, 0, err
		}
		workers = append(workers, w)
	}
	for _, w := range workers {
		if err := w.waitReady(ctx); err != nil {
			return 0, 0, err
		}
	}
	start := time.Now()
	for _, w := range workers {
		if err := w.send("go"); err != nil {
			return 0, 0, err
		}
	}
	counts, elapsed, err := waitTerminal(ctx, svc.Runs, total, workers, start)
	if err != nil {
		return 0, 0, err
	}
	if counts[saga.Completed] != total {
		return 0, 0, fmt.Errorf("%d of %d runs completed (statuses %v)", counts[saga.Completed], total, counts)
	}
	// Stop the workers now, to read their CPU time; the deferred stop
	// reports what this one found.
	for _, w := range workers {
		_ = w.stop()
		cpu += w.cmd.ProcessState.UserTime() + w.cmd.ProcessState.SystemTime()
	}
	return perSec(total, elapsed), cpu / time.Duration(total), nil
}

// startRuns starts total runs of the scenario's saga, due now, with no
// worker: relayWriters at a time.
func startRuns(ctx context.Context, runs saga.RunStore, total int) error {
	def, err := procsDef()
	if err != nil {
		return err
	}
	c, err := saga.NewCoordinator(saga.Config{Runs: runs, Logger: quiet})
	if err != nil {
		return err
	}
	errs := make([]error, relayWriters)
	var wg sync.WaitGroup
	for w := range relayWriters {
		wg.Go(func() {
			for i := w; i < total && errs[w] == nil; i += relayWriters {
				_, errs[w] = saga.Start(ctx, c, def, fmt.Sprintf("p%d", i), benchSagaData{})
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// waitTerminal polls the runs table until every run of the scenario's
// saga is terminal and returns the statuses and the time since start.
// It fails when a worker process exits, or when no run ends for
// stallTimeout.
func waitTerminal(ctx context.Context, runs saga.RunStore, total int, workers []*workerProc, start time.Time) (map[saga.Status]int, time.Duration, error) {
	tick := time.NewTicker(procsPoll)
	defer tick.Stop()
	last, progressed := -1, time.Now()
	for {
		counts, err := runs.Count(ctx, procsSaga)
		if err != nil {
			return nil, 0, fmt.Errorf("count runs: %w", err)
		}
		elapsed := time.Since(start)
		done := 0
		for s, k := range counts {
			if s.Terminal() {
				done += k
			}
		}
		if done >= total {
			return counts, elapsed, nil
		}
		if done != last {
			last, progressed = done, time.Now()
		} else if time.Since(progressed) > stallTimeout {
			return nil, 0, fmt.Errorf("no run ended for %v: %d of %d terminal (statuses %v)", stallTimeout, done, total, counts)
		}
		for _, w := range workers {
			select {
			case <-w.done:
				return nil, 0, fmt.Errorf("worker process %d exited with %d of %d runs terminal: %v; stderr: %s", w.cmd.Process.Pid, done, total, w.err, w.stderr.tail())
			default:
			}
		}
		select {
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case <-tick.C:
		}
	}
}

// workerProc is one worker process.
type workerProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	ready  chan error // the ready line, or why it did not come
	stderr *tailBuffer
	done   chan struct{} // closed when the process has been waited for
	err    error         // how it ended, once done is closed

	stopOnce sync.Once
	stopErr  error
}

// startWorker starts a worker process with command (default this
// program) and sends it spec.
func startWorker(ctx context.Context, command []string, spec workerSpec) (*workerProc, error) {
	if len(command) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find this program to start workers: %w", err)
		}
		command = []string{exe}
	}
	cmd := exec.Command(command[0], command[1:]...)
	cmd.Env = append(os.Environ(), WorkerEnv+"=1")
	cmd.SysProcAttr = workerProcAttr()
	w := &workerProc{cmd: cmd, ready: make(chan error, 1), stderr: &tailBuffer{}, done: make(chan struct{})}
	cmd.Stderr = w.stderr
	var err error
	if w.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker process %s: %w", command[0], err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		switch {
		case !sc.Scan():
			w.ready <- errors.New("it exited before it was ready")
		case sc.Text() != "ready":
			w.ready <- fmt.Errorf("it said %q, want ready", sc.Text())
		default:
			w.ready <- nil
		}
		_, _ = io.Copy(io.Discard, out) // to the end, before Wait closes it
		w.err = cmd.Wait()
		close(w.done)
	}()
	b, err := json.Marshal(spec)
	if err != nil {
		return w, errors.Join(err, w.stop())
	}
	if err := w.send(string(b)); err != nil {
		return w, errors.Join(err, w.stop())
	}
	return w, nil
}

// send writes line to the worker's standard input.
func (w *workerProc) send(line string) error {
	if _, err := io.WriteString(w.stdin, line+"\n"); err != nil {
		return fmt.Errorf("worker process %d: %w; stderr: %s", w.cmd.Process.Pid, err, w.stderr.tail())
	}
	return nil
}

// waitReady waits for the worker's ready line.
func (w *workerProc) waitReady(ctx context.Context) error {
	t := time.NewTimer(workerReadyTimeout)
	defer t.Stop()
	select {
	case err := <-w.ready:
		if err == nil {
			return nil
		}
		select {
		case <-w.done: // it exited: all it said is in
		case <-time.After(time.Second):
		}
		return fmt.Errorf("worker process %d: %w; stderr: %s", w.cmd.Process.Pid, err, w.stderr.tail())
	case <-t.C:
		return fmt.Errorf("worker process %d not ready after %v; stderr: %s", w.cmd.Process.Pid, workerReadyTimeout, w.stderr.tail())
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop closes the worker's standard input, which tells it to stop, and
// waits for it; after workerStopTimeout it kills the worker's process
// group. It reports a worker that failed. Later calls return what the
// first returned.
func (w *workerProc) stop() error {
	w.stopOnce.Do(func() { w.stopErr = w.stopNow() })
	return w.stopErr
}

func (w *workerProc) stopNow() error {
	_ = w.stdin.Close()
	t := time.NewTimer(workerStopTimeout)
	defer t.Stop()
	select {
	case <-w.done:
	case <-t.C:
		killGroup(w.cmd.Process)
		<-w.done
		return fmt.Errorf("worker process %d did not stop within %v: killed; stderr: %s", w.cmd.Process.Pid, workerStopTimeout, w.stderr.tail())
	}
	if w.err != nil {
		return fmt.Errorf("worker process %d: %w; stderr: %s", w.cmd.Process.Pid, w.err, w.stderr.tail())
	}
	return nil
}

// tailBuffer keeps the last 4 KB written to it, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const tailSize = 4 << 10

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > tailSize {
		b.buf = b.buf[len(b.buf)-tailSize:]
	}
	return len(p), nil
}

func (b *tailBuffer) tail() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(string(b.buf))
}
