package bench_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/bench"
	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/novapg"
)

// scratchSchemas counts the benchmark's scratch schemas on the server.
func scratchSchemas(t *testing.T, url string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'nova\_bench\_%'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestPostgresRunsAndDropsItsSchemas(t *testing.T) {
	url := testenv.Need(t, testenv.Postgres)
	before := scratchSchemas(t, url)
	be, err := bench.Postgres(url, novapg.Config{})
	if err != nil {
		t.Fatal(err)
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
	if after := scratchSchemas(t, url); after != before {
		t.Errorf("%d scratch schemas before the run, %d after: the backend left some behind", before, after)
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
func TestPostgresMeasure(t *testing.T) {
	if os.Getenv("NOVA_BENCH_POSTGRES") == "" {
		t.Skip("set NOVA_BENCH_POSTGRES=1 to measure")
	}
	url := testenv.Need(t, testenv.Postgres)
	be, err := bench.Postgres(url, novapg.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	results, err := bench.Run(context.Background(), be, bench.Options{Progress: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	if err := bench.WriteTable(os.Stdout, results); err != nil {
		t.Fatal(err)
	}
}
