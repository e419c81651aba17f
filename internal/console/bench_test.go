package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/console"
	"github.com/nova-go/nova/internal/services"
	"github.com/nova-go/nova/novasqlite"
)

// Scale of the benchmark store: benchStreams streams of benchPerStream
// events, 1,000,000 events in all.
const (
	benchStreams   = 10_000
	benchPerStream = 100
)

// benchStore opens (and, the first time, fills) the 1,000,000-event
// SQLite store at $NOVA_BENCH_CONSOLE_DB, or in a temporary directory.
// It appends one stream's 100 events per Append, from 4 goroutines.
func benchStore(b *testing.B) nova.Store {
	b.Helper()
	ctx := context.Background()
	path := os.Getenv("NOVA_BENCH_CONSOLE_DB")
	if path == "" {
		path = filepath.Join(b.TempDir(), "bench.db")
	}
	s, err := novasqlite.Open(ctx, novasqlite.Config{Path: path})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	for info, err := range s.Streams(ctx, nova.StreamsOptions{After: fmt.Sprintf("s-%05d", benchStreams-2), Limit: 1}) {
		if err == nil && info.Version == benchPerStream {
			return s // filled already
		}
	}
	start := time.Now()
	data := []byte(`{"sku":"lamp","quantity":3,"unit_price":3900,"note":"a line of an order in the benchmark store"}`)
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			evs := make([]nova.EventData, benchPerStream)
			for i := w; i < benchStreams; i += 4 {
				for j := range evs {
					evs[j] = nova.EventData{ID: nova.NewEventID(), Type: "LineAdded", Data: data, Metadata: nova.Metadata{CorrelationID: "bench"}}
				}
				if _, err := s.Append(ctx, fmt.Sprintf("s-%05d", i), nova.NoStream, evs...); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	b.Logf("filled %s with %d events in %s", path, benchStreams*benchPerStream, time.Since(start).Round(time.Millisecond))
	return s
}

// BenchmarkConsolePages measures pages of the console over a
// 1,000,000-event SQLite store, each request through HTTP (httptest):
//
//	NOVA_BENCH_CONSOLE=1 go test -run '^$' -bench ConsolePages -benchtime 50x ./internal/console/
//
// Set NOVA_BENCH_CONSOLE_DB to a path to keep the store between runs.
func BenchmarkConsolePages(b *testing.B) {
	if os.Getenv("NOVA_BENCH_CONSOLE") == "" {
		b.Skip("set NOVA_BENCH_CONSOLE=1 to measure the console on a 1,000,000-event store")
	}
	s := benchStore(b)
	svc, err := services.For(s)
	if err != nil {
		b.Fatal(err)
	}
	c, err := console.New(console.Config{Store: s, Services: &svc, Backend: "sqlite", StoreLabel: "bench.db"})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	srv := httptest.NewServer(c)
	defer srv.Close()
	// The console reads the log once at start to count it: wait for
	// that, which is measured apart, before measuring pages.
	start := time.Now()
	for {
		resp, err := http.Get(srv.URL + "/api/overview")
		if err != nil {
			b.Fatal(err)
		}
		var o console.Overview
		err = json.NewDecoder(resp.Body).Decode(&o)
		resp.Body.Close()
		if err != nil {
			b.Fatal(err)
		}
		if !o.Counting {
			b.ReportMetric(float64(o.Events), "events")
			b.Logf("the console counted %d events in %s", o.Events, time.Since(start).Round(time.Millisecond))
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, page := range []struct{ name, path string }{
		{"streams", "/streams"},
		{"streams-prefix-end", "/streams?prefix=s-099"},
		{"streams-after-end", "/streams?after=s-09900"},
		{"stream", "/streams/s-09999"},
		{"stream-newest", "/streams/s-05000?dir=backwards"},
		{"stream-api", "/api/streams/s-05000?from=51"},
		{"log-middle", "/log?after=500000"},
		{"log-end", "/log?after=999950"},
		{"sagas", "/sagas"},
		{"overview", "/"},
	} {
		b.Run(page.name, func(b *testing.B) {
			for b.Loop() {
				resp, err := http.Get(srv.URL + page.path)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("GET %s: %d", page.path, resp.StatusCode)
				}
			}
		})
	}
}
