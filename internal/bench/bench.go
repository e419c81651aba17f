package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/nova-go/nova"
)

// Raw is a baseline written directly against a backend's driver, doing the
// work a scenario asks of a store without Nova in between. Its methods are
// safe for concurrent use.
type Raw interface {
	// Append writes events as the next rows of stream, whose current last
	// version is version (0 for a new stream), in one transaction, failing
	// if the stream is not at that version.
	Append(ctx context.Context, stream string, version uint64, events []nova.EventData) error
	// ReadStream reads every event of stream in version order into
	// [nova.Event] values and returns how many it read.
	ReadStream(ctx context.Context, stream string) (int, error)
	// ReadAll reads the whole global log in position order into
	// [nova.Event] values and returns how many it read.
	ReadAll(ctx context.Context) (int, error)
	// Close releases the baseline's connections.
	Close() error
}

// Backend says how to get fresh, empty targets of one backend: a Nova store
// and the raw baseline beside it. Every run asks for a new one.
type Backend struct {
	// Name names the backend in results, for example "sqlite".
	Name string
	// NovaFunc returns a fresh, empty Nova store and a cleanup function
	// that closes it and removes whatever it stored. Required.
	NovaFunc func(ctx context.Context) (nova.Store, func() error, error)
	// RawFunc returns a fresh, empty raw baseline and a cleanup function
	// that closes it and removes whatever it stored. Required.
	RawFunc func(ctx context.Context) (Raw, func() error, error)
	// Scale multiplies the work of every run on this backend (events
	// appended, times the data is read), not the size of the data read;
	// zero means 1. A fast backend (memory) uses it to keep each run long
	// enough to time.
	Scale float64
	// CloseFunc, when set, is called by [Backend.Close] to release what
	// the backend owns, such as its scratch directory.
	CloseFunc func() error
	// ServicesFunc, when set, returns the saga runs, checkpoints and query
	// stores of a store NovaFunc made, for the saga and projection
	// scenarios; without it those scenarios are skipped.
	ServicesFunc func(ctx context.Context, s nova.Store) (Services, error)
	// workerSpecFunc, set by the constructors of the server backends,
	// says how a worker process of the saga-procs scenario opens a store
	// NovaFunc made; without it that scenario is skipped.
	workerSpecFunc func(ctx context.Context, s nova.Store) (workerSpec, error)
}

// Close releases what the backend owns (scratch files). It is safe to call
// on a backend without a CloseFunc.
func (b Backend) Close() error {
	if b.CloseFunc == nil {
		return nil
	}
	return b.CloseFunc()
}

func (b Backend) validate() error {
	switch {
	case b.Name == "":
		return nova.Invalidf("bench", "backend has no Name")
	case b.NovaFunc == nil:
		return nova.Invalidf("bench", "backend %q has no NovaFunc", b.Name)
	case b.RawFunc == nil:
		return nova.Invalidf("bench", "backend %q has no RawFunc", b.Name)
	case b.Scale < 0 || math.IsNaN(b.Scale) || math.IsInf(b.Scale, 0):
		return nova.Invalidf("bench", "backend %q has Scale %v, want a positive number or 0 for 1", b.Name, b.Scale)
	}
	return nil
}

// Options tunes [Run]. The zero value runs every scenario at full size, 5
// measured runs per side after one warm-up pair, silently.
type Options struct {
	// Scenarios names the scenarios to run, in the order given; nil or
	// empty means those of [DefaultScenarioNames].
	Scenarios []string
	// Runs is how many measured runs each side gets per scenario; zero
	// means 5.
	Runs int
	// Warmup is how many unmeasured nova+raw run pairs come first; zero
	// means 1, a negative number means none.
	Warmup int
	// Scale multiplies every scenario's size (events appended, stream and
	// log lengths); zero means 1. Sizes never fall below what a scenario
	// needs (one event per writer).
	Scale float64
	// Progress, when set, receives one line per run as it ends.
	Progress io.Writer
	// Procs are the numbers of worker processes the saga-procs scenario
	// measures, each from 1 to [MaxProcs], in the order given; nil or
	// empty means [DefaultProcs].
	Procs []int
	// WorkerCommand starts a worker process of the saga-procs scenario:
	// the program, then its arguments. The runner adds [WorkerEnv]=1 to
	// its environment, and the program must then call [ServeWorker]. Nil
	// or empty means this program (os.Executable) with no arguments.
	WorkerCommand []string
}

// DefaultRuns is the number of measured runs per side when [Options.Runs]
// is zero.
const DefaultRuns = 5

// validate checks the options against the scenarios known to the runner
// they are given to.
func (o Options) validate(known []string) error {
	switch {
	case o.Runs < 0:
		return nova.Invalidf("bench", "Options.Runs is %d, want a positive number or 0 for %d", o.Runs, DefaultRuns)
	case o.Scale < 0 || math.IsNaN(o.Scale) || math.IsInf(o.Scale, 0):
		return nova.Invalidf("bench", "Options.Scale is %v, want a positive number or 0 for 1", o.Scale)
	}
	for i, p := range o.Procs {
		if p < 1 || p > MaxProcs {
			return nova.Invalidf("bench", "Options.Procs has %d, want 1 to %d worker processes", p, MaxProcs)
		}
		if slices.Contains(o.Procs[:i], p) {
			return nova.Invalidf("bench", "Options.Procs has %d twice", p)
		}
	}
	seen := make(map[string]bool, len(o.Scenarios))
	for _, name := range o.Scenarios {
		if !slices.Contains(known, name) {
			return nova.Invalidf("bench", "unknown scenario %q, want one of %s", name, strings.Join(known, ", "))
		}
		if seen[name] {
			return nova.Invalidf("bench", "scenario %q named twice", name)
		}
		seen[name] = true
	}
	return nil
}

// scale returns the data scale of the options: Scale, or 1 for 0.
func (o Options) scale() float64 {
	if o.Scale == 0 {
		return 1
	}
	return o.Scale
}

func (o Options) runs() int {
	if o.Runs == 0 {
		return DefaultRuns
	}
	return o.Runs
}

func (o Options) warmups() int {
	switch {
	case o.Warmup == 0:
		return 1
	case o.Warmup < 0:
		return 0
	}
	return o.Warmup
}

// Result is one scenario's outcome on one backend. Rates are medians over
// the measured runs, per second of what [Result.Unit] names.
type Result struct {
	// Scenario is the scenario's name, for example "append-1".
	Scenario string `json:"scenario"`
	// Backend is the backend's name, for example "sqlite".
	Backend string `json:"backend"`
	// NovaPerSec is the median rate through Nova.
	NovaPerSec float64 `json:"nova_per_sec"`
	// RawPerSec is the median rate of the raw baseline; zero, and left
	// out of the JSON with Ratio, for a scenario without one (the sagas,
	// the relay).
	RawPerSec float64 `json:"raw_per_sec,omitempty"`
	// Ratio is the median over the measured runs of each run's nova rate
	// divided by its raw rate: above 1, Nova is faster. The two sides of a
	// run are measured interleaved, so a run's ratio is free of the
	// machine's drift from run to run, which the ratio of the two medians
	// (taken from different runs) is not; the two are close when the
	// machine is steady.
	Ratio float64 `json:"ratio,omitempty"`
	// Unit is what the rates count: "events", "sagas" or "envelopes".
	Unit string `json:"unit"`
	// Runs is how many measured runs each side had.
	Runs int `json:"runs"`
	// Procs is, for the saga-procs scenario, how many worker processes
	// drove the sagas; zero, and left out of the JSON, for the others.
	Procs int `json:"procs,omitempty"`
	// Speedup is, for the saga-procs scenario, the median over the
	// measured rounds of this number of processes' rate divided by that
	// of 1 process in the same round; zero when 1 was not measured.
	Speedup float64 `json:"speedup,omitempty"`
	// Outbox names, for the relay scenario, the backend of the outbox it
	// drained: "sqlite", "postgres" or "mysql".
	Outbox string `json:"outbox,omitempty"`
}

// Run measures the scenarios opts names on backend b and returns one
// [Result] per scenario, in order. Each scenario has opts.Warmup unmeasured
// runs, then opts.Runs measured ones; every run opens a fresh nova target
// and a fresh raw target from b and alternates between them slice by slice
// (see the package documentation). Invalid options or backend fail with an
// error matching [nova.ErrInvalid] before anything runs. A cancelled ctx
// stops the run between slices. On an error Run returns it with the results
// of the scenarios that had finished. A scenario the backend cannot run (an
// error matching [nova.ErrNotImplemented]) is skipped, with a line on
// opts.Progress; Run fails only if it skipped every scenario.
func Run(ctx context.Context, b Backend, opts Options) ([]Result, error) {
	if err := b.validate(); err != nil {
		return nil, err
	}
	if err := opts.validate(ScenarioNames()); err != nil {
		return nil, err
	}
	names := opts.Scenarios
	if len(names) == 0 {
		names = DefaultScenarioNames()
	}
	workScale := b.Scale
	if workScale == 0 {
		workScale = 1
	}
	return runAll(ctx, names, opts, func(ctx context.Context, name string) ([]Result, error) {
		sc, _ := lookup(name)
		sz := sc.sized(opts.scale(), workScale)
		if sc.kind == kindSagaProcs {
			return runProcs(ctx, b, sz, opts)
		}
		return runOne(ctx, opts, measurement{
			scenario: sc.name,
			backend:  b.Name,
			unit:     sc.unit(),
			open: func(ctx context.Context, s side) (job, func() error, error) {
				t, cleanup, err := openFor(ctx, b, sc, s)
				if err != nil {
					return job{}, nil, err
				}
				j, err := sc.prepare(ctx, b, t, sz)
				if err != nil {
					err = fmt.Errorf("%s: %w", s, err)
				}
				return j, cleanup, err
			},
		})
	})
}

// runOne measures m as runScenario does, as one result.
func runOne(ctx context.Context, opts Options, m measurement) ([]Result, error) {
	r, err := runScenario(ctx, m, opts)
	if err != nil {
		return nil, err
	}
	return []Result{r}, nil
}

// measurement is what the runner needs of one scenario on one backend.
type measurement struct {
	scenario, backend, unit string
	// open returns the timed part of one run on a fresh target of side
	// s, with the cleanup of that target (which may be non-nil on an
	// error too: the runner calls it whenever it is).
	open func(ctx context.Context, s side) (job, func() error, error)
}

// runAll measures the named scenarios in order with run, skipping those
// that fail with [nova.ErrNotImplemented] (see [Run]).
func runAll(ctx context.Context, names []string, opts Options, run func(ctx context.Context, name string) ([]Result, error)) ([]Result, error) {
	results := make([]Result, 0, len(names))
	var skipped []error
	for _, name := range names {
		r, err := run(ctx, name)
		if errors.Is(err, nova.ErrNotImplemented) && ctx.Err() == nil {
			// The backend lacks what the scenario needs (a JetStream server
			// without atomic batches cannot pre-fill a stream): say so and
			// measure the rest.
			skipped = append(skipped, err)
			if opts.Progress != nil {
				fmt.Fprintf(opts.Progress, "skipped %s: %v\n", name, err)
			}
			continue
		}
		if err != nil {
			return results, err
		}
		results = append(results, r...)
	}
	if len(results) == 0 && len(skipped) > 0 {
		return nil, errors.Join(skipped...)
	}
	return results, nil
}

// side is one half of a comparison.
type side int

const (
	sideNova side = iota
	sideRaw
)

func (s side) String() string {
	if s == sideNova {
		return "nova"
	}
	return "raw"
}

func runScenario(ctx context.Context, m measurement, opts Options) (Result, error) {
	n := opts.runs()
	warm := opts.warmups()
	var novaRates, rawRates, ratios []float64
	for i := range warm + n {
		if err := ctx.Err(); err != nil {
			return Result{}, fmt.Errorf("bench: %s: %w", m.scenario, err)
		}
		rates, err := runPair(ctx, m)
		if err != nil {
			return Result{}, fmt.Errorf("bench: %s on %s, run %d: %w", m.scenario, m.backend, i+1, err)
		}
		label := fmt.Sprintf("run %d/%d", i-warm+1, n)
		if i < warm {
			label = fmt.Sprintf("warm-up %d/%d", i+1, warm)
		} else {
			novaRates = append(novaRates, rates[sideNova])
			rawRates = append(rawRates, rates[sideRaw])
			if rates[sideRaw] > 0 {
				ratios = append(ratios, rates[sideNova]/rates[sideRaw])
			}
		}
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "%s %s %s: nova %.0f, raw %.0f %s/s\n", m.backend, m.scenario, label, rates[sideNova], rates[sideRaw], m.unit)
		}
	}
	return Result{
		Scenario:   m.scenario,
		Backend:    m.backend,
		NovaPerSec: Median(novaRates),
		RawPerSec:  Median(rawRates),
		Ratio:      Median(ratios),
		Runs:       n,
		Unit:       m.unit,
	}, nil
}

// runPair measures one run of m on a fresh nova target and a fresh raw
// target, alternating between them slice by slice (nova first in even
// slices, raw first in odd ones), then runs each side's check, untimed,
// and returns each side's rate per second.
func runPair(ctx context.Context, m measurement) (rates [2]float64, err error) {
	var jobs [2]job
	for _, s := range []side{sideNova, sideRaw} {
		j, cleanup, err := m.open(ctx, s)
		if cleanup != nil {
			defer func() {
				if cerr := cleanup(); cerr != nil {
					err = errors.Join(err, fmt.Errorf("clean up %s: %w", s, cerr))
				}
			}()
		}
		if err != nil {
			return rates, err
		}
		jobs[s] = j
	}
	var events [2]int
	var elapsed [2]time.Duration
	for i := range jobs[sideNova].slices {
		order := []side{sideNova, sideRaw}
		if i%2 == 1 {
			order = []side{sideRaw, sideNova}
		}
		if err := ctx.Err(); err != nil {
			return rates, err
		}
		for _, s := range order {
			start := time.Now()
			n, err := jobs[s].slice(ctx, i)
			elapsed[s] += time.Since(start)
			if err != nil {
				return rates, fmt.Errorf("%s: %w", s, err)
			}
			events[s] += n
		}
	}
	for _, s := range []side{sideNova, sideRaw} {
		if jobs[s].check == nil {
			continue
		}
		if err := jobs[s].check(ctx); err != nil {
			return rates, fmt.Errorf("%s: %w", s, err)
		}
	}
	for s := range rates {
		rates[s] = perSec(events[s], elapsed[s])
	}
	return rates, nil
}

// open returns a fresh target of side s and its cleanup function.
func open(ctx context.Context, b Backend, s side) (target, func() error, error) {
	if s == sideNova {
		st, cleanup, err := b.NovaFunc(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("open store: %w", err)
		}
		return novaTarget{st}, cleanup, nil
	}
	r, cleanup, err := b.RawFunc(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("open raw baseline: %w", err)
	}
	return r, cleanup, nil
}

func perSec(events int, d time.Duration) float64 {
	if d <= 0 {
		d = time.Nanosecond
	}
	return float64(events) / d.Seconds()
}

// Median returns the median of xs (the mean of the two middle values for an
// even count), or 0 for none. xs is not modified.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}
