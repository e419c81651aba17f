package novamysql_test

import (
	"testing"

	"github.com/nova-go/nova/internal/bench"
	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/novamysql"
)

// The benchmarks run each scenario of package internal/bench through the
// store ("nova") and through a hand-written database/sql baseline on the
// same tables, driver and server ("raw"), each in a scratch database of
// its own. Compare the two with benchstat:
//
//	go test -run '^$' -bench . -count 6 ./novamysql/ | tee new.txt
//	benchstat -col /target new.txt

// mysqlBackend measures on the test server, in scratch databases.
func mysqlBackend(b *testing.B) bench.Backend {
	b.Helper()
	be, err := bench.MySQL(testenv.Need(b, testenv.MySQL), novamysql.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := be.Close(); err != nil {
			b.Error(err)
		}
	})
	return be
}

func BenchmarkAppend1(b *testing.B)   { bench.Benchmark(b, mysqlBackend(b), "append-1") }
func BenchmarkAppend1x8(b *testing.B) { bench.Benchmark(b, mysqlBackend(b), "append-1-8w") }
func BenchmarkAppend100(b *testing.B) { bench.Benchmark(b, mysqlBackend(b), "append-100") }
func BenchmarkRead10k(b *testing.B)   { bench.Benchmark(b, mysqlBackend(b), "read-10k") }
func BenchmarkReadAll(b *testing.B)   { bench.Benchmark(b, mysqlBackend(b), "readall") }

// The aggregate scenarios and append-1-64w (opt-in in nova bench).
func BenchmarkAppend1x64(b *testing.B)  { bench.Benchmark(b, mysqlBackend(b), "append-1-64w") }
func BenchmarkRepoSave100(b *testing.B) { bench.Benchmark(b, mysqlBackend(b), "repo-save-100") }
func BenchmarkRepoLoad10k(b *testing.B) { bench.Benchmark(b, mysqlBackend(b), "repo-load-10k") }
