package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novasqlite"
	"github.com/nova-go/nova/novatest"
)

// --help prints the usage once, to stdout, and nothing to stderr.
func TestHelpPrintsOnce(t *testing.T) {
	t.Parallel()
	for _, c := range commands() {
		for _, args := range [][]string{{c.name, "--help"}, {c.name, "-h"}, {"help", c.name}} {
			code, out, stderr := runNova(t, args...)
			if code != 0 || stderr != "" || strings.Count(out, "usage: nova "+c.name) != 1 || !strings.Contains(out, "-json") {
				t.Errorf("%s: exit %d, stdout:\n%s\nstderr:\n%s", args, code, out, stderr)
			}
		}
	}
	code, out, stderr := runNova(t, "--help")
	if code != 0 || stderr != "" || strings.Count(out, "commands:") != 1 {
		t.Errorf("--help: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	// A bad flag prints the error and the usage once, to stderr.
	code, out, stderr = runNova(t, "streams", "--nope")
	if code != 2 || out != "" || strings.Count(stderr, "usage: nova streams") != 1 || !strings.Contains(stderr, "-nope") {
		t.Errorf("streams --nope: exit %d, stdout %q, stderr:\n%s", code, out, stderr)
	}
}

func TestUnknownCommandSuggestsTheNearest(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ typed, want string }{
		{"stream", "streams"}, {"sgas", "sagas"}, {"projetions", "projections"}, {"Demo", "demo"}, {"migr", "migrate"}, {"raed", "read"},
	} {
		code, _, stderr := runNova(t, tt.typed)
		if code != 2 || !strings.Contains(stderr, "did you mean "+tt.want+"?") {
			t.Errorf("%s: exit %d, stderr %q: want a suggestion of %s", tt.typed, code, stderr, tt.want)
		}
	}
	if _, _, stderr := runNova(t, "frobnicate"); strings.Contains(stderr, "did you mean") {
		t.Errorf("frobnicate: stderr %q suggests a command", stderr)
	}
}

// The command list's summaries start in one column.
func TestUsageColumnsAlign(t *testing.T) {
	t.Parallel()
	_, out, _ := runNova(t, "--help")
	cols := map[int]bool{}
	for _, c := range commands() {
		m := regexp.MustCompile(`(?m)^  ` + c.name + `( +)\S`).FindStringSubmatchIndex(out)
		if m == nil {
			t.Fatalf("usage lacks %s:\n%s", c.name, out)
		}
		cols[m[3]-m[0]] = true
	}
	if len(cols) != 1 {
		t.Errorf("summaries start in %d different columns:\n%s", len(cols), out)
	}
}

func TestCountsArePluralisedRight(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "one.db")
	s, err := novasqlite.Open(context.Background(), novasqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	novatest.MustAppend(t, s, "only", nova.NoStream, novatest.Events("e", 1)...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, out, _ := runNova(t, "streams", "--store", path); !strings.Contains(out, "1 stream in") {
		t.Errorf("streams:\n%s", out)
	}
	if _, out, _ := runNova(t, "sagas", "--store", path); !strings.Contains(out, "0 runs listed") {
		t.Errorf("sagas:\n%s", out)
	}
	if got := plural(1, "item", ""); got != "1 item" {
		t.Errorf("plural(1) = %q", got)
	}
	if got := plural(2, "run", ""); got != "2 runs" {
		t.Errorf("plural(2) = %q", got)
	}
}

// Every command that reports takes --json and then prints JSON only.
func TestEveryReportingCommandTakesJSON(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "json.db")
	code, out, stderr := runNova(t, "demo", "--store", db, "--orders", "3", "--json")
	if code != 0 {
		t.Fatalf("demo --json: exit %d: %s", code, stderr)
	}
	lines := jsonLines(t, out)
	if len(lines) != 1 || lines[0]["first_order"] != "00001" || lines[0]["stuck"] == nil {
		t.Fatalf("demo --json printed %v, want one report with a stuck run", lines)
	}
	stuck := lines[0]["stuck"].([]any)[0].(string)
	for _, tt := range []struct {
		args []string
		want string // a key of the object printed
	}{
		{[]string{"migrate"}, "version"},
		{[]string{"streams"}, "stream"},
		{[]string{"read", "order-00001"}, "type"},
		{[]string{"sagas"}, "status"},
		{[]string{"saga", stuck}, "status"},
		{[]string{"projections"}, "checkpoint"},
		{[]string{"projection", "rebuild", "order-summary"}, "events"},
		{[]string{"saga", "skip", stuck, "--reason", "released by hand"}, "action"},
	} {
		code, out, stderr := runNova(t, append(tt.args, "--store", db, "--json")...)
		if code != 0 {
			t.Errorf("%s --json: exit %d: %s", tt.args, code, stderr)
			continue
		}
		lines := jsonLines(t, out)
		if len(lines) == 0 {
			t.Errorf("%s --json printed nothing", tt.args)
		}
		for _, l := range lines {
			if _, ok := l[tt.want]; !ok {
				t.Errorf("%s --json: %v lacks %q", tt.args, l, tt.want)
			}
		}
	}
	_, out, _ = runNova(t, "saga", stuck, "--store", db, "--json")
	var last map[string]any
	for _, l := range jsonLines(t, out) {
		last = l
	}
	if b, _ := json.Marshal(last); last["type"] != "saga.compensation_skipped" && !strings.Contains(string(b), "skipped") {
		t.Errorf("after skip --json the last transition is %s", b)
	}
}
