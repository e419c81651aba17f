package novapg_test

import (
	"testing"

	"github.com/nova-go/nova/internal/bench"
	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/novapg"
)

// The benchmarks run each scenario of package internal/bench through the
// store ("nova") and through pgx by hand on the same tables ("raw"), each
// run in a scratch schema dropped afterwards. Compare the two with
// benchstat:
//
//	go test -run '^$' -bench . -count 6 ./novapg/ | tee new.txt
//	benchstat -col /target new.txt

func pgBackend(b *testing.B) bench.Backend {
	b.Helper()
	be, err := bench.Postgres(testenv.Need(b, testenv.Postgres), novapg.Config{})
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

func BenchmarkAppend1(b *testing.B)   { bench.Benchmark(b, pgBackend(b), "append-1") }
func BenchmarkAppend1x8(b *testing.B) { bench.Benchmark(b, pgBackend(b), "append-1-8w") }
func BenchmarkAppend100(b *testing.B) { bench.Benchmark(b, pgBackend(b), "append-100") }
func BenchmarkRead10k(b *testing.B)   { bench.Benchmark(b, pgBackend(b), "read-10k") }
func BenchmarkReadAll(b *testing.B)   { bench.Benchmark(b, pgBackend(b), "readall") }

// The aggregate scenarios and append-1-64w (opt-in in nova bench).
func BenchmarkAppend1x64(b *testing.B)  { bench.Benchmark(b, pgBackend(b), "append-1-64w") }
func BenchmarkRepoSave100(b *testing.B) { bench.Benchmark(b, pgBackend(b), "repo-save-100") }
func BenchmarkRepoLoad10k(b *testing.B) { bench.Benchmark(b, pgBackend(b), "repo-load-10k") }
