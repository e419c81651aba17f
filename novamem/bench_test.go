package novamem_test

import (
	"testing"

	"github.com/nova-go/nova/internal/bench"
)

// The benchmarks run each scenario of package internal/bench through the
// store ("nova") and through a hand-written mutex-protected slice and map
// ("raw"). Compare the two with benchstat; docs/BENCHMARKS.md has the
// commands:
//
//	go test -run '^$' -bench . -count 6 ./novamem/ | tee new.txt
//	benchstat -col /target new.txt

func BenchmarkAppend1(b *testing.B)   { bench.Benchmark(b, bench.Memory(), "append-1") }
func BenchmarkAppend1x8(b *testing.B) { bench.Benchmark(b, bench.Memory(), "append-1-8w") }
func BenchmarkAppend100(b *testing.B) { bench.Benchmark(b, bench.Memory(), "append-100") }
func BenchmarkRead10k(b *testing.B)   { bench.Benchmark(b, bench.Memory(), "read-10k") }
func BenchmarkReadAll(b *testing.B)   { bench.Benchmark(b, bench.Memory(), "readall") }

// The aggregate scenarios and append-1-64w (opt-in in nova bench).
func BenchmarkAppend1x64(b *testing.B)  { bench.Benchmark(b, bench.Memory(), "append-1-64w") }
func BenchmarkRepoSave100(b *testing.B) { bench.Benchmark(b, bench.Memory(), "repo-save-100") }
func BenchmarkRepoLoad10k(b *testing.B) { bench.Benchmark(b, bench.Memory(), "repo-load-10k") }
