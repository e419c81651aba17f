package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestServeRefusesAnOpenAddressWithoutAToken(t *testing.T) {
	t.Setenv(tokenEnv, "")
	db := filepath.Join(t.TempDir(), "s.db")
	for _, addr := range []string{"0.0.0.0:0", ":8080", "[::]:0", "192.0.2.1:80"} {
		code, _, stderr := runNova(t, "serve", "--store", db, "--addr", addr)
		if code != 2 || !strings.Contains(stderr, "not a loopback address") || !strings.Contains(stderr, "--token") {
			t.Errorf("serve --addr %s without a token: exit %d, stderr:\n%s", addr, code, stderr)
		}
	}
	if code, _, stderr := runNova(t, "serve", "--store", db, "--addr", "nonsense"); code != 2 || !strings.Contains(stderr, "HOST:PORT") {
		t.Errorf("serve --addr nonsense: exit %d, stderr:\n%s", code, stderr)
	}
	// No store there: serve creates nothing.
	if code, _, stderr := runNova(t, "serve", "--store", db, "--addr", "127.0.0.1:0"); code != 1 || !strings.Contains(stderr, "nova demo --store") {
		t.Errorf("serve on a missing store: exit %d, stderr:\n%s", code, stderr)
	}
}

// startServe runs `nova serve` on the store db until the test ends or
// stop is called, and returns its base URL.
func startServe(t *testing.T, db string, o serveOptions) (base string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	o.addr = "127.0.0.1:0"
	o.ready = func(a string) { addr <- a }
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() {
		done <- runServe(ctx, &env{store: db, stdout: &out, stderr: io.Discard}, o)
	}()
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve after its ctx ended: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("serve did not stop within 10 s of its ctx ending")
			}
		})
	}
	t.Cleanup(stop)
	return base, stop
}

// serve stops on its ctx even with live streams open, with the token
// guarding it.
func TestServeStopsWithLiveStreams(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "s.db")
	if code, _, stderr := runNova(t, "demo", "--store", db, "--orders", "2"); code != 0 {
		t.Fatalf("demo: %s", stderr)
	}
	base, stop := startServe(t, db, serveOptions{token: "sekrit", metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "m 1\n")
	})})
	resp, err := http.Get(base + "/api/overview")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("no token: %d, want 401", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", base+"/api/log/live?after=0", nil)
	req.Header.Set("Authorization", "Bearer sekrit")
	live, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if live.StatusCode != 200 {
		t.Fatalf("live: %d", live.StatusCode)
	}
	defer live.Body.Close()
	req, _ = http.NewRequest("GET", base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer sekrit")
	m, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(m.Body)
	m.Body.Close()
	if string(b) != "m 1\n" {
		t.Errorf("/metrics: %q", b)
	}
	stop() // with the live stream open: it ends, and serve with it
	if _, err := io.Copy(io.Discard, live.Body); err != nil && !strings.Contains(err.Error(), "EOF") {
		t.Logf("live stream ended with %v", err)
	}
}

// nova serve's /metrics reports the outbox's depth, read when scraped.
func TestServeMetricsReportOutboxDepth(t *testing.T) {
	db := filepath.Join(t.TempDir(), "m.db")
	if code, _, stderr := runNova(t, "demo", "--store", db, "--orders", "2"); code != 0 {
		t.Fatalf("demo: %s", stderr)
	}
	base, stop := startServe(t, db, serveOptions{metrics: metricsHandler()})
	defer stop()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), `nova_outbox_depth{`) || !strings.Contains(string(body), `nova_component="serve"`) {
		t.Fatalf("GET /metrics: %d, want the serve outbox's depth:\n%.2000s", res.StatusCode, body)
	}
}

// A socket opened and never sent a request on (browsers open them ahead
// of need) does not hold up or fail the shutdown.
func TestServeStopsWithAnIdleSocketOpen(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "i.db")
	if code, _, stderr := runNova(t, "demo", "--store", db, "--orders", "1"); code != 0 {
		t.Fatalf("demo: %s", stderr)
	}
	base, stop := startServe(t, db, serveOptions{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	stop() // fails the test if serve returns an error or takes 10 s
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("serve took %v to stop", d)
	}
}
