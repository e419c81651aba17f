package bench_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/bench"
	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/internal/validate"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(bench.WorkerEnv) == "1" {
		// A worker process of the saga-procs scenario (see procs_test.go).
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		err := bench.ServeWorker(ctx, os.Stdin, os.Stdout, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(testenv.Main(m))
}

// tiny shrinks every scenario to a few events.
const tiny = 0.001

func TestRunSelectsScenariosInOrder(t *testing.T) {
	t.Parallel()
	want := []string{"read-10k", "append-1"}
	res, err := bench.Run(context.Background(), bench.Memory(), bench.Options{Scenarios: want, Runs: 3, Scale: tiny})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range res {
		got = append(got, r.Scenario)
		if r.Backend != "memory" || r.Runs != 3 {
			t.Errorf("%s: backend %q runs %d, want memory and 3", r.Scenario, r.Backend, r.Runs)
		}
		if r.NovaPerSec <= 0 || r.RawPerSec <= 0 {
			t.Errorf("%s: rates %v and %v, want both positive", r.Scenario, r.NovaPerSec, r.RawPerSec)
		}
		if r.Ratio <= 0 || math.IsInf(r.Ratio, 0) {
			t.Errorf("%s: ratio %v, want a positive number", r.Scenario, r.Ratio)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("scenarios %v, want %v", got, want)
	}
}

func TestRunAllScenariosByDefault(t *testing.T) {
	t.Parallel()
	res, err := bench.Run(context.Background(), bench.Memory(), bench.Options{Runs: 1, Warmup: -1, Scale: tiny})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range res {
		got = append(got, r.Scenario)
	}
	want := []string{"append-1", "append-1-8w", "append-100", "read-10k", "readall"}
	if !slices.Equal(got, want) || !slices.Equal(bench.DefaultScenarioNames(), want) {
		t.Fatalf("ran %v, default names %v, want %v", got, bench.DefaultScenarioNames(), want)
	}
	for _, name := range bench.ScenarioNames() {
		if bench.ScenarioDoc(name) == "" {
			t.Errorf("scenario %s has no doc", name)
		}
	}
}

func TestRunRejectsBadInput(t *testing.T) {
	t.Parallel()
	good := bench.Memory()
	noName := good
	noName.Name = ""
	noNova := good
	noNova.NovaFunc = nil
	noRaw := good
	noRaw.RawFunc = nil
	badScale := good
	badScale.Scale = -2
	tests := []struct {
		name    string
		backend bench.Backend
		opts    bench.Options
		msg     string
	}{
		{"unknown scenario", good, bench.Options{Scenarios: []string{"append-1", "append-2"}}, `unknown scenario "append-2", want one of append-1, append-1-8w, append-100, read-10k, readall`},
		{"scenario twice", good, bench.Options{Scenarios: []string{"readall", "readall"}}, "named twice"},
		{"negative runs", good, bench.Options{Runs: -1}, "Runs"},
		{"negative scale", good, bench.Options{Scale: -1}, "Scale"},
		{"NaN scale", good, bench.Options{Scale: math.NaN()}, "Scale"},
		{"backend without name", noName, bench.Options{}, "Name"},
		{"backend without NovaFunc", noNova, bench.Options{}, "NovaFunc"},
		{"backend without RawFunc", noRaw, bench.Options{}, "RawFunc"},
		{"backend with negative scale", badScale, bench.Options{}, "Scale"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := bench.Run(context.Background(), tt.backend, tt.opts)
			if !errors.Is(err, nova.ErrInvalid) {
				t.Fatalf("err = %v, want one matching nova.ErrInvalid", err)
			}
			if !strings.HasPrefix(err.Error(), "bench: ") || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %q, want the prefix bench: and %q", err, tt.msg)
			}
			if len(res) != 0 {
				t.Errorf("got %d results from a rejected run", len(res))
			}
		})
	}
}

// recorder wraps a backend and records, in order, which side each run
// opened and whether its target was cleaned up.
type recorder struct {
	mu     sync.Mutex
	opened []string
	open   int
}

func (r *recorder) wrap(b bench.Backend) bench.Backend {
	novaFunc, raw := b.NovaFunc, b.RawFunc
	b.NovaFunc = func(ctx context.Context) (nova.Store, func() error, error) {
		s, cleanup, err := novaFunc(ctx)
		return s, r.track("nova", cleanup), err
	}
	b.RawFunc = func(ctx context.Context) (bench.Raw, func() error, error) {
		s, cleanup, err := raw(ctx)
		return s, r.track("raw", cleanup), err
	}
	return b
}

func (r *recorder) track(side string, cleanup func() error) func() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.opened = append(r.opened, side)
	r.open++
	return func() error {
		r.mu.Lock()
		r.open--
		r.mu.Unlock()
		return cleanup()
	}
}

func TestRunAlternatesFreshTargetsAfterWarmup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		opts   bench.Options
		opened int
		runs   int
	}{
		{"defaults", bench.Options{Scale: tiny}, 2 * (1 + bench.DefaultRuns), bench.DefaultRuns},
		{"two warm-ups", bench.Options{Scale: tiny, Runs: 2, Warmup: 2}, 2 * 4, 2},
		{"no warm-up", bench.Options{Scale: tiny, Runs: 3, Warmup: -1}, 2 * 3, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{}
			tt.opts.Scenarios = []string{"append-100"}
			res, err := bench.Run(context.Background(), rec.wrap(bench.Memory()), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != 1 || res[0].Runs != tt.runs {
				t.Fatalf("results %+v, want one with %d runs", res, tt.runs)
			}
			if len(rec.opened) != tt.opened {
				t.Fatalf("opened %d targets, want %d: one per run", len(rec.opened), tt.opened)
			}
			for i, side := range rec.opened {
				if want := []string{"nova", "raw"}[i%2]; side != want {
					t.Fatalf("run %d opened %s, want %s (order %v)", i, side, want, rec.opened)
				}
			}
			if rec.open != 0 {
				t.Errorf("%d targets were not cleaned up", rec.open)
			}
		})
	}
}

// shortRaw loses the last event of every read.
type shortRaw struct{ bench.Raw }

func (r shortRaw) ReadStream(ctx context.Context, stream string) (int, error) {
	n, err := r.Raw.ReadStream(ctx, stream)
	return n - 1, err
}

func (r shortRaw) ReadAll(ctx context.Context) (int, error) {
	n, err := r.Raw.ReadAll(ctx)
	return n - 1, err
}

func TestRunFailsOnAReadThatMissesEvents(t *testing.T) {
	t.Parallel()
	for _, scenario := range []string{"read-10k", "readall"} {
		t.Run(scenario, func(t *testing.T) {
			t.Parallel()
			b := bench.Memory()
			raw := b.RawFunc
			b.RawFunc = func(ctx context.Context) (bench.Raw, func() error, error) {
				r, cleanup, err := raw(ctx)
				return shortRaw{r}, cleanup, err
			}
			_, err := bench.Run(context.Background(), b, bench.Options{Scenarios: []string{scenario}, Scale: tiny, Runs: 1})
			if err == nil || !strings.Contains(err.Error(), "want") || !strings.Contains(err.Error(), "raw") {
				t.Fatalf("err = %v, want a short read of the raw side reported", err)
			}
		})
	}
}

func TestRunStopsWhenCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := bench.Run(ctx, bench.Memory(), bench.Options{Scale: tiny})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if len(res) != 0 {
		t.Errorf("got %d results", len(res))
	}
}

// cancelWriter cancels a context at the first write.
type cancelWriter struct{ cancel context.CancelFunc }

func (w cancelWriter) Write(p []byte) (int, error) {
	w.cancel()
	return len(p), nil
}

func TestRunStopsWhenCancelledBetweenRuns(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := &recorder{}
	_, err := bench.Run(ctx, rec.wrap(bench.Memory()), bench.Options{Scale: tiny, Progress: cancelWriter{cancel}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if len(rec.opened) != 2 {
		t.Errorf("opened %d targets, want the 2 of the warm-up run only", len(rec.opened))
	}
	if rec.open != 0 {
		t.Errorf("%d targets were not cleaned up", rec.open)
	}
}

func TestRunReportsProgress(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	_, err := bench.Run(context.Background(), bench.Memory(), bench.Options{Scenarios: []string{"append-1"}, Scale: tiny, Runs: 2, Progress: &buf})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{"warm-up 1/1", "run 1/2", "run 2/2"}
	if len(lines) != len(want) {
		t.Fatalf("progress:\n%s\nwant %d lines", buf.String(), len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], "memory append-1 "+w+": nova ") || !strings.Contains(lines[i], ", raw ") || !strings.HasSuffix(lines[i], " events/s") {
			t.Errorf("line %d = %q, want it to say %q and both rates", i, lines[i], w)
		}
	}
}

func TestMedian(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{7}, 7},
		{[]float64{3, 1}, 2},
		{[]float64{5, 1, 3}, 3},
		{[]float64{10, 1, 4, 2}, 3},
		{[]float64{9, 1, 8, 2, 7}, 7},
	}
	for _, tt := range tests {
		in := slices.Clone(tt.in)
		if got := bench.Median(in); got != tt.want {
			t.Errorf("Median(%v) = %v, want %v", tt.in, got, tt.want)
		}
		if !slices.Equal(in, tt.in) {
			t.Errorf("Median modified its input: %v, was %v", in, tt.in)
		}
	}
}

var sample = []bench.Result{
	{Scenario: "append-1", Backend: "sqlite", NovaPerSec: 950.5, RawPerSec: 1000, Ratio: 0.9505, Runs: 5, Unit: "events"},
	{Scenario: "readall", Backend: "sqlite", NovaPerSec: 1234567, RawPerSec: 1500000, Ratio: 0.823, Runs: 5, Unit: "events"},
}

// Sagas have no raw side: the table shows "-" and the JSON leaves the
// raw rate and the ratio out.
func TestReportWithoutRawSide(t *testing.T) {
	t.Parallel()
	r := []bench.Result{{Scenario: "saga-3step", Backend: "sqlite", NovaPerSec: 3100, Runs: 5, Unit: "sagas"}}
	var tbl, js bytes.Buffer
	if err := bench.WriteTable(&tbl, r); err != nil {
		t.Fatal(err)
	}
	if err := bench.WriteJSON(&js, r); err != nil {
		t.Fatal(err)
	}
	row := strings.Fields(strings.Split(strings.TrimSpace(tbl.String()), "\n")[1])
	if want := []string{"saga-3step", "sqlite", "3,100", "-", "-", "5", "sagas"}; !slices.Equal(row, want) {
		t.Errorf("row %q, want %q", row, want)
	}
	if got := strings.TrimSpace(js.String()); got != `{"scenario":"saga-3step","backend":"sqlite","nova_per_sec":3100,"unit":"sagas","runs":5}` {
		t.Errorf("json %s", got)
	}
}

// The saga and projection scenarios run when named, on a backend with
// services, and are skipped on one without.
func TestSagaAndProjectionScenarios(t *testing.T) {
	t.Parallel()
	names := []string{"saga-3step", "saga-3step-8", "projection"}
	res, err := bench.Run(context.Background(), bench.Memory(), bench.Options{Scenarios: names, Runs: 1, Warmup: -1, Scale: tiny})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 {
		t.Fatalf("results %+v, want 3", res)
	}
	for i, r := range res {
		if r.Scenario != names[i] || !(r.NovaPerSec > 0) {
			t.Errorf("result %+v: want %s with a positive rate", r, names[i])
		}
		if wantRaw := r.Scenario == "projection"; (r.RawPerSec > 0) != wantRaw || (r.Ratio > 0) != wantRaw {
			t.Errorf("result %+v: raw side present %v, want %v", r, r.RawPerSec > 0, wantRaw)
		}
	}
	noServices := bench.Memory()
	noServices.ServicesFunc = nil
	var progress bytes.Buffer
	_, err = bench.Run(context.Background(), noServices, bench.Options{Scenarios: names, Runs: 1, Warmup: -1, Scale: tiny, Progress: &progress})
	if !errors.Is(err, nova.ErrNotImplemented) || !strings.Contains(progress.String(), "skipped saga-3step") {
		t.Errorf("without services: %v; progress %q", err, progress.String())
	}
}

func TestWriteJSONOneObjectPerLine(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := bench.WriteJSON(&buf, sample); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	i := 0
	for ; sc.Scan(); i++ {
		var obj map[string]any
		if err := json.Unmarshal(sc.Bytes(), &obj); err != nil {
			t.Fatalf("line %d %q: %v", i, sc.Text(), err)
		}
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range obj {
				if !yield(k) {
					return
				}
			}
		})
		want := []string{"backend", "nova_per_sec", "ratio", "raw_per_sec", "runs", "scenario", "unit"}
		if !slices.Equal(keys, want) {
			t.Fatalf("line %d has keys %v, want %v", i, keys, want)
		}
		var back bench.Result
		if err := json.Unmarshal(sc.Bytes(), &back); err != nil || back != sample[i] {
			t.Fatalf("line %d decodes to %+v (%v), want %+v", i, back, err, sample[i])
		}
	}
	if i != len(sample) {
		t.Fatalf("%d lines, want %d", i, len(sample))
	}
}

func TestWriteTable(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := bench.WriteTable(&buf, sample); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("table:\n%s\nwant a header and 2 rows", buf.String())
	}
	for i, want := range [][]string{
		{"scenario", "backend", "nova/s", "raw/s", "ratio", "runs", "unit"},
		{"append-1", "sqlite", "950", "1,000", "0.95", "5"},
		{"readall", "sqlite", "1,234,567", "1,500,000", "0.82", "5"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d = %q, want %q in it", i, lines[i], w)
			}
		}
	}
}

func TestEvents(t *testing.T) {
	t.Parallel()
	evs := bench.Events(3)
	if _, err := validate.Append("s", evs); err != nil {
		t.Fatalf("events do not validate: %v", err)
	}
	seen := map[string]bool{}
	for _, e := range evs {
		if len(e.Data) != bench.PayloadSize || !json.Valid(e.Data) || e.Type != bench.EventType {
			t.Fatalf("event %+v: want %d bytes of valid JSON of type %s", e, bench.PayloadSize, bench.EventType)
		}
		if !bytes.Contains(e.Data, []byte(e.ID)) {
			t.Fatalf("event %s: data does not carry its ID, so events share data", e.ID)
		}
		if seen[e.ID] {
			t.Fatalf("ID %s twice", e.ID)
		}
		seen[e.ID] = true
	}
}
