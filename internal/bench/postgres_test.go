package bench_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/bench"
	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/novapg"
)

// existingSchemas returns those of names that exist on the server.
func existingSchemas(t *testing.T, url string, names []string) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var found []string
	if err := conn.QueryRow(ctx, `SELECT coalesce(array_agg(nspname::text ORDER BY nspname), '{}') FROM pg_namespace WHERE nspname = ANY($1)`, names).Scan(&found); err != nil {
		t.Fatal(err)
	}
	return found
}

// TestPostgresRunsAndDropsItsSchemas runs every scenario once and checks
// that each scratch schema the run created (and only those: other
// processes may be running benchmarks on the same server) existed while
// in use and is gone after the run.
func TestPostgresRunsAndDropsItsSchemas(t *testing.T) {
	url := testenv.Need(t, testenv.Postgres)
	be, err := bench.Postgres(url, novapg.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		schemas []string
	)
	record := func(schema string) {
		if got := existingSchemas(t, url, []string{schema}); len(got) != 1 {
			t.Errorf("scratch schema %q is not on the server while in use", schema)
		}
		mu.Lock()
		schemas = append(schemas, schema)
		mu.Unlock()
	}
	novaFunc, rawFunc := be.NovaFunc, be.RawFunc
	be.NovaFunc = func(ctx context.Context) (nova.Store, func() error, error) {
		s, cleanup, err := novaFunc(ctx)
		if err == nil {
			record(s.(*novapg.Store).Schema())
		}
		return s, cleanup, err
	}
	be.RawFunc = func(ctx context.Context) (bench.Raw, func() error, error) {
		r, cleanup, err := rawFunc(ctx)
		if err == nil {
			record(bench.PostgresRawSchema(r))
		}
		return r, cleanup, err
	}
	results, err := bench.Run(context.Background(), be, bench.Options{Scale: 0.01, Runs: 1, Warmup: -1})
	if cerr := be.Close(); cerr != nil {
		t.Error(cerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(bench.DefaultScenarioNames()) {
		t.Fatalf("%d results, want one per scenario", len(results))
	}
	for _, r := range results {
		if r.Backend != "postgres" || !(r.NovaPerSec > 0) || !(r.RawPerSec > 0) || !(r.Ratio > 0) {
			t.Errorf("result %+v: want positive rates and ratio for backend postgres", r)
		}
	}
	if len(schemas) < 2*len(results) {
		t.Fatalf("the run made %d scratch schemas, want at least one per side and scenario (%d)", len(schemas), 2*len(results))
	}
	for _, s := range schemas {
		if !strings.HasPrefix(s, "nova_bench_") {
			t.Errorf("scratch schema %q: want the prefix nova_bench_", s)
		}
	}
	if left := existingSchemas(t, url, schemas); len(left) > 0 {
		t.Errorf("the run left %d of its %d scratch schemas behind: %v", len(left), len(schemas), left)
	}
}

func TestPostgresRefusesBadURL(t *testing.T) {
	t.Parallel()
	for _, url := range []string{"", "postgres://a b@:x:y/"} {
		if _, err := bench.Postgres(url, novapg.Config{}); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("Postgres(%q): %v, want nova.ErrInvalid", url, err)
		}
	}
}

// TestPostgresMeasure runs the full benchmark when NOVA_BENCH_POSTGRES is
// set, and prints the table:
//
//	NOVA_BENCH_POSTGRES=1 go test -run TestPostgresMeasure -v -timeout 30m ./internal/bench/
//
// NOVA_BENCH_SCENARIOS=a,b picks scenarios; NOVA_BENCH_POSTGRES_WRITERS
// and NOVA_BENCH_POSTGRES_MAXGROUP set the store's Writers and MaxGroup.
func TestPostgresMeasure(t *testing.T) {
	if os.Getenv("NOVA_BENCH_POSTGRES") == "" {
		t.Skip("set NOVA_BENCH_POSTGRES=1 to measure")
	}
	url := testenv.Need(t, testenv.Postgres)
	var cfg novapg.Config
	for _, v := range []struct {
		env string
		dst *int
	}{{"NOVA_BENCH_POSTGRES_WRITERS", &cfg.Writers}, {"NOVA_BENCH_POSTGRES_MAXGROUP", &cfg.MaxGroup}} {
		if s := os.Getenv(v.env); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				t.Fatalf("%s: %v", v.env, err)
			}
			*v.dst = n
		}
	}
	be, err := bench.Postgres(url, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	var opts bench.Options
	if s := os.Getenv("NOVA_BENCH_SCENARIOS"); s != "" {
		opts.Scenarios = strings.Split(s, ",")
	}
	opts.Progress = os.Stderr
	results, err := bench.Run(context.Background(), be, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := bench.WriteTable(os.Stdout, results); err != nil {
		t.Fatal(err)
	}
}
