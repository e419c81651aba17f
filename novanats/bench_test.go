package novanats_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/nova-go/nova/internal/bench"
	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/novanats"
)

// The benchmarks run each scenario of package internal/bench through the
// store ("nova") and through the hand-written nats.go baseline ("raw") on
// a private nats-server (a child process, see startServer) with file
// storage:
//
//	go test -run '^$' -bench . -count 6 ./novanats/ | tee new.txt
//	benchstat -col /target new.txt
//
// TestBenchRun measures with bench.Run as `nova bench` does, when
// NOVA_NATS_BENCH is set: "private" (the default) or "machine" (the
// server testenv finds, nats-server 2.9.10 here, where only the
// single-event scenarios can run).

func natsBackend(tb testing.TB, url string) bench.Backend {
	tb.Helper()
	be, err := bench.NATS(url, novanats.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := be.Close(); err != nil {
			tb.Error(err)
		}
	})
	return be
}

func privateBackend(b *testing.B) bench.Backend { return natsBackend(b, startServer(b).url) }

func BenchmarkAppend1(b *testing.B)   { bench.Benchmark(b, privateBackend(b), "append-1") }
func BenchmarkAppend1x8(b *testing.B) { bench.Benchmark(b, privateBackend(b), "append-1-8w") }
func BenchmarkAppend100(b *testing.B) { bench.Benchmark(b, privateBackend(b), "append-100") }
func BenchmarkRead10k(b *testing.B)   { bench.Benchmark(b, privateBackend(b), "read-10k") }
func BenchmarkReadAll(b *testing.B)   { bench.Benchmark(b, privateBackend(b), "readall") }

func TestBenchRun(t *testing.T) {
	where := os.Getenv("NOVA_NATS_BENCH")
	if where == "" {
		t.Skip("set NOVA_NATS_BENCH=private or machine to measure")
	}
	opts := bench.Options{Runs: 5}
	var url string
	switch where {
	case "machine":
		url = testenv.Need(t, testenv.NATS)
		opts.Scenarios = []string{"append-1", "append-1-8w"}
	default:
		url = startServer(t).url
	}
	res, err := bench.Run(context.Background(), natsBackend(t, url), opts)
	var sb strings.Builder
	if werr := bench.WriteTable(&sb, res); werr != nil {
		t.Fatal(werr)
	}
	t.Logf("bench.Run on the %s server:\n%s", where, sb.String())
	if err != nil {
		t.Fatal(err)
	}
}
