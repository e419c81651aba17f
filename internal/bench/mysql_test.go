package bench_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/bench"
	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/novamysql"
)

// scratchDatabases counts the benchmark's scratch databases on the server.
func scratchDatabases(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'nova\_bench\_%'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestMySQLRunsAndDropsItsDatabases(t *testing.T) {
	dsn := testenv.Need(t, testenv.MySQL)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	before := scratchDatabases(t, db)

	be, err := bench.MySQL(dsn, novamysql.Config{})
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
		if r.Backend != "mysql" || !(r.NovaPerSec > 0) || !(r.RawPerSec > 0) || !(r.Ratio > 0) {
			t.Errorf("result %+v: want positive rates and ratio for backend mysql", r)
		}
	}
	if after := scratchDatabases(t, db); after != before {
		t.Errorf("%d scratch databases before the run, %d after: the backend left some behind", before, after)
	}
}

func TestMySQLRefusesBadDSN(t *testing.T) {
	t.Parallel()
	for _, dsn := range []string{"", "postgres://x", "mysql://", "not a dsn at all ("} {
		if _, err := bench.MySQL(dsn, novamysql.Config{}); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("MySQL(%q): %v, want an error matching nova.ErrInvalid", dsn, err)
		}
	}
}

// TestMySQLMeasure runs every scenario at full size and logs the results;
// it runs only with NOVA_BENCH_MYSQL=1:
//
//	NOVA_BENCH_MYSQL=1 go test ./internal/bench -run MySQLMeasure -v -timeout 30m
//
// NOVA_BENCH_SCENARIOS=a,b picks scenarios; NOVA_BENCH_MYSQL_WRITERS and
// NOVA_BENCH_MYSQL_MAXGROUP set the store's Writers and MaxGroup.
func TestMySQLMeasure(t *testing.T) {
	if os.Getenv("NOVA_BENCH_MYSQL") == "" {
		t.Skip("set NOVA_BENCH_MYSQL=1 to measure")
	}
	dsn := testenv.Need(t, testenv.MySQL)
	var cfg novamysql.Config
	if w := os.Getenv("NOVA_BENCH_MYSQL_WRITERS"); w != "" {
		n, err := strconv.Atoi(w)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Writers = n
	}
	if g := os.Getenv("NOVA_BENCH_MYSQL_MAXGROUP"); g != "" {
		n, err := strconv.Atoi(g)
		if err != nil {
			t.Fatal(err)
		}
		cfg.MaxGroup = n
	}
	be, err := bench.MySQL(dsn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	var names []string
	if s := os.Getenv("NOVA_BENCH_SCENARIOS"); s != "" {
		names = strings.Split(s, ",")
	}
	results, err := bench.Run(t.Context(), be, bench.Options{Scenarios: names, Progress: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		t.Logf("%-12s nova %8.0f/s  raw %8.0f/s  ratio %.2f", r.Scenario, r.NovaPerSec, r.RawPerSec, r.Ratio)
	}
}

// testWriter writes lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
