package novasqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/nova-go/nova/internal/bench"
	"github.com/nova-go/nova/novasqlite"
)

// The benchmarks run each scenario of package internal/bench through the
// store ("nova") and through the raw ncruces driver on the same schema and
// pragmas ("raw"), with the default durable settings (synchronous=FULL).
// Compare the two with benchstat; docs/BENCHMARKS.md has the commands:
//
//	go test -run '^$' -bench . -count 6 ./novasqlite/ | tee new.txt
//	benchstat -col /target new.txt

// sqliteBackend measures in a scratch directory of b's own.
func sqliteBackend(b *testing.B) bench.Backend {
	b.Helper()
	be, err := bench.SQLite(filepath.Join(b.TempDir(), "bench.db"), novasqlite.Config{})
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

func BenchmarkAppend1(b *testing.B)   { bench.Benchmark(b, sqliteBackend(b), "append-1") }
func BenchmarkAppend1x8(b *testing.B) { bench.Benchmark(b, sqliteBackend(b), "append-1-8w") }
func BenchmarkAppend100(b *testing.B) { bench.Benchmark(b, sqliteBackend(b), "append-100") }
func BenchmarkRead10k(b *testing.B)   { bench.Benchmark(b, sqliteBackend(b), "read-10k") }
func BenchmarkReadAll(b *testing.B)   { bench.Benchmark(b, sqliteBackend(b), "readall") }

// The aggregate scenarios and append-1-64w (opt-in in nova bench).
func BenchmarkAppend1x64(b *testing.B)  { bench.Benchmark(b, sqliteBackend(b), "append-1-64w") }
func BenchmarkRepoSave100(b *testing.B) { bench.Benchmark(b, sqliteBackend(b), "repo-save-100") }
func BenchmarkRepoLoad10k(b *testing.B) { bench.Benchmark(b, sqliteBackend(b), "repo-load-10k") }
