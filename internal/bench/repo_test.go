package bench_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/nova-go/nova/internal/bench"
	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/novamysql"
	"github.com/nova-go/nova/novapg"
	"github.com/nova-go/nova/novasqlite"
)

// repoScenarios are the aggregate scenarios and append-1-64w, which run
// when named.
var repoScenarios = []string{"append-1-64w", "repo-save-100", "repo-load-10k"}

// runRepoScenarios runs repoScenarios on be at a tiny size and checks that
// each has both sides measured.
func runRepoScenarios(t *testing.T, be bench.Backend, scale float64) {
	t.Helper()
	res, err := bench.Run(context.Background(), be, bench.Options{Scenarios: repoScenarios, Runs: 1, Warmup: -1, Scale: scale})
	if cerr := be.Close(); cerr != nil {
		t.Error(cerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(repoScenarios) {
		t.Fatalf("results %+v, want %d", res, len(repoScenarios))
	}
	for i, r := range res {
		if r.Scenario != repoScenarios[i] || !(r.NovaPerSec > 0) || !(r.RawPerSec > 0) || !(r.Ratio > 0) || r.Unit != "events" {
			t.Errorf("result %+v: want %s with positive rates and ratio, in events", r, repoScenarios[i])
		}
	}
}

func TestRepoScenariosMemory(t *testing.T) {
	t.Parallel()
	runRepoScenarios(t, bench.Memory(), tiny)
	for _, name := range repoScenarios {
		if bench.ScenarioDoc(name) == "" {
			t.Errorf("scenario %s has no doc", name)
		}
	}
}

func TestRepoScenariosSQLite(t *testing.T) {
	t.Parallel()
	be, err := bench.SQLite(filepath.Join(t.TempDir(), "bench.db"), novasqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	runRepoScenarios(t, be, tiny)
}

func TestRepoScenariosPostgres(t *testing.T) {
	url := testenv.Need(t, testenv.Postgres)
	be, err := bench.Postgres(url, novapg.Config{})
	if err != nil {
		t.Fatal(err)
	}
	runRepoScenarios(t, be, tiny)
}

func TestRepoScenariosMySQL(t *testing.T) {
	dsn := testenv.Need(t, testenv.MySQL)
	be, err := bench.MySQL(dsn, novamysql.Config{})
	if err != nil {
		t.Fatal(err)
	}
	runRepoScenarios(t, be, tiny)
}
