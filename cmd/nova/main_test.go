package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/novasqlite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(testenv.Main(m)) }

// runNova runs the CLI in-process and returns its exit status and output.
func runNova(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestDemoContinuesOnTheSameFile(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "demo.db")

	code, out, stderr := runNova(t, "demo", "--store", db, "--orders", "10")
	if code != 0 {
		t.Fatalf("first demo: exit %d, stderr:\n%s", code, stderr)
	}
	first := eventsInStore(t, out)
	if !strings.Contains(out, "a new store") || !strings.Contains(out, "shipped") {
		t.Errorf("first report lacks the new-store line or the shipped count:\n%s", out)
	}
	if _, err := os.Stat(db); err != nil {
		t.Fatalf("demo wrote no file: %v", err)
	}

	code, out, stderr = runNova(t, "demo", "--orders", "10", "--store", db)
	if code != 0 {
		t.Fatalf("second demo: exit %d, stderr:\n%s", code, stderr)
	}
	second := eventsInStore(t, out)
	if second <= first {
		t.Errorf("second run has %d events in the store, want more than the first run's %d", second, first)
	}
	if !strings.Contains(out, "continuing a store that had 10 orders") {
		t.Errorf("second report does not say it continued:\n%s", out)
	}

	// The report names a stream; read prints its events.
	m := regexp.MustCompile(`nova read (\S+) --store`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("report names no stream to read:\n%s", out)
	}
	code, out, stderr = runNova(t, "read", m[1], "--store", db, "--json")
	if code != 0 {
		t.Fatalf("read %s: exit %d, stderr:\n%s", m[1], code, stderr)
	}
	lines := jsonLines(t, out)
	if len(lines) < 2 {
		t.Fatalf("read %s printed %d events, want at least 2 (placed and one more)", m[1], len(lines))
	}
	for i, l := range lines {
		if l["stream"] != m[1] || l["version"] != float64(i+1) || l["type"] == "" {
			t.Errorf("event %d = %v, want stream %s version %d", i, l, m[1], i+1)
		}
	}
	if lines[0]["type"] != "orders.placed" {
		t.Errorf("first event type %v, want orders.placed", lines[0]["type"])
	}

	// streams lists 20 order streams with positive versions.
	code, out, _ = runNova(t, "streams", "--json", "--store", db)
	if code != 0 {
		t.Fatalf("streams: exit %d", code)
	}
	streams := jsonLines(t, out)
	kinds := map[string]int{}
	for _, s := range streams {
		kind, _, _ := strings.Cut(s["stream"].(string), "-")
		kinds[kind]++
		if v, _ := s["version"].(float64); v < 1 {
			t.Errorf("stream line %v: want a version", s)
		}
	}
	// 20 orders, each run as a saga with a stream of its own.
	if len(streams) != 40 || kinds["order"] != 20 || kinds["saga"] != 20 {
		t.Errorf("streams listed %d (%v), want 20 order and 20 saga streams", len(streams), kinds)
	}
}

func TestDemoReset(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "demo.db")
	if code, _, stderr := runNova(t, "demo", "--store", db, "--orders", "3"); code != 0 {
		t.Fatalf("demo: exit %d: %s", code, stderr)
	}
	code, out, stderr := runNova(t, "demo", "--store", db, "--orders", "3", "--reset")
	if code != 0 {
		t.Fatalf("demo --reset: exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, "a new store") || !strings.Contains(out, "Orders 00001 to 00003") {
		t.Errorf("after --reset the demo did not start over:\n%s", out)
	}
}

func TestDemoResetRefusesAFileThatIsNotAStore(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "notes.txt")
	content := []byte("not a database, keep me\n")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runNova(t, "demo", "--store", path, "--reset")
	if code != 1 || !strings.Contains(stderr, "not a Nova store") {
		t.Errorf("exit %d, stderr %q: want 1 and a refusal", code, stderr)
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, content) {
		t.Errorf("file changed or gone: %q, %v", got, err)
	}
}

func TestBadUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.db")
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{"no command", nil, 2, ""},
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"unknown flag", []string{"streams", "--nope"}, 2, "flag provided but not defined"},
		{"read without stream", []string{"read", "--store", missing}, 2, "one STREAM argument"},
		{"read with two streams", []string{"read", "a", "b"}, 2, "one STREAM argument"},
		{"read bad stream", []string{"read", "bad\x01stream"}, 2, "control character"},
		{"read missing store", []string{"read", "order-1", "--store", missing}, 1, "does not exist"},
		{"streams missing store", []string{"streams", "--store", missing}, 1, "does not exist"},
		{"streams with argument", []string{"streams", "x"}, 2, "takes no arguments"},
		{"empty store", []string{"streams", "--store", ""}, 2, "--store is empty"},
		{"unknown scheme", []string{"streams", "--store", "redis://bob:secret@db/x"}, 2, `unknown scheme "redis"`},
		{"migrate memory", []string{"migrate", "--store", "memory:"}, 1, "no schema"},
		{"migrate with argument", []string{"migrate", "x"}, 2, "takes no arguments"},
		{"reset on a server", []string{"demo", "--reset", "--store", "mysql://root@127.0.0.1:1/x"}, 2, "--reset works on SQLite files only"},
		{"demo zero orders", []string{"demo", "--orders", "0", "--store", missing}, 2, "--orders must be"},
		{"bench bad runs", []string{"bench", "--runs", "0"}, 2, "--runs must be"},
		{"bench bad scale", []string{"bench", "--scale", "-1"}, 2, "--scale must be"},
		{"bench bad sync", []string{"bench", "--sync", "sometimes", "--store", filepath.Join(dir, "b.db")}, 2, "--sync must be"},
		{"bench unknown scenario", []string{"bench", "--store", "memory:", "--scenario", "nope"}, 1, "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runNova(t, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.wantCode, stderr)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr %q does not contain %q", stderr, tt.wantStderr)
			}
			if strings.Contains(stderr, "secret") {
				t.Errorf("stderr shows a password: %q", stderr)
			}
		})
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("a failed command created %s", missing)
	}
}

func TestBenchJSON(t *testing.T) {
	t.Parallel()
	for _, store := range []string{"memory:", filepath.Join(t.TempDir(), "bench.db")} {
		code, out, stderr := runNova(t, "bench", "--store", store, "--json", "--runs", "1", "--scale", "0.01", "--scenario", "append-1,read-10k")
		if code != 0 {
			t.Fatalf("bench on %s: exit %d, stderr:\n%s", store, code, stderr)
		}
		lines := jsonLines(t, out)
		if len(lines) != 2 {
			t.Fatalf("bench on %s printed %d results, want 2:\n%s", store, len(lines), out)
		}
		for i, want := range []string{"append-1", "read-10k"} {
			l := lines[i]
			if l["scenario"] != want || l["runs"] != float64(1) {
				t.Errorf("result %d = %v, want scenario %s with 1 run", i, l, want)
			}
			nps, _ := l["nova_per_sec"].(float64)
			rps, _ := l["raw_per_sec"].(float64)
			ratio, _ := l["ratio"].(float64)
			if nps <= 0 || rps <= 0 || ratio <= 0 {
				t.Errorf("result %d = %v: want positive rates and ratio", i, l)
			}
		}
	}
}

// `--scenario saga` stands for both saga scenarios; they report sagas/s
// and no raw side.
func TestBenchSagaAndProjection(t *testing.T) {
	t.Parallel()
	store := filepath.Join(t.TempDir(), "bench.db")
	code, out, stderr := runNova(t, "bench", "--store", store, "--json", "--runs", "1", "--scale", "0.02", "--scenario", "saga,projection")
	if code != 0 {
		t.Fatalf("bench: exit %d, stderr:\n%s", code, stderr)
	}
	lines := jsonLines(t, out)
	if len(lines) != 3 {
		t.Fatalf("printed %d results, want 3:\n%s", len(lines), out)
	}
	for i, want := range []string{"saga-3step", "saga-3step-8", "projection"} {
		l := lines[i]
		nps, _ := l["nova_per_sec"].(float64)
		_, hasRaw := l["raw_per_sec"]
		if l["scenario"] != want || nps <= 0 || hasRaw != (want == "projection") {
			t.Errorf("result %d = %v, want %s with a positive rate (raw side only for the projection)", i, l, want)
		}
		if unit := map[bool]string{true: "sagas", false: "events"}[want != "projection"]; l["unit"] != unit {
			t.Errorf("result %d unit %v, want %s", i, l["unit"], unit)
		}
	}
}

func TestBenchRefusesAFileWithEvents(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "demo.db")
	if code, _, stderr := runNova(t, "demo", "--store", db, "--orders", "2"); code != 0 {
		t.Fatalf("demo: %s", stderr)
	}
	before, _ := os.ReadFile(db)
	code, _, stderr := runNova(t, "bench", "--store", db, "--runs", "1", "--scale", "0.01")
	if code != 1 || !strings.Contains(stderr, "events") {
		t.Errorf("exit %d, stderr %q: want a refusal", code, stderr)
	}
	if after, _ := os.ReadFile(db); !bytes.Equal(before, after) {
		t.Error("bench changed a file that held events")
	}
}

// eventsInStore reads "N in the store" from a demo report.
func eventsInStore(t *testing.T, report string) int {
	t.Helper()
	m := regexp.MustCompile(`(\d+) in the store`).FindStringSubmatch(report)
	if m == nil {
		t.Fatalf("report has no event count:\n%s", report)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	return lines
}

func TestMigrateSQLite(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "m.db")
	for range 2 { // creating, then finding it current
		code, out, stderr := runNova(t, "migrate", "--store", db)
		if code != 0 || !strings.Contains(out, fmt.Sprintf("schema version %d", novasqlite.SchemaVersion)) {
			t.Fatalf("migrate: exit %d, out %q, stderr %q", code, out, stderr)
		}
	}
}
