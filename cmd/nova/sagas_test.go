package main

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nova-go/nova/novasqlite"
	"github.com/nova-go/nova/saga"
)

// stuckRun leaves run "r1" of saga "stuck" Stuck in the SQLite file db:
// its second step fails for good and the first step's compensation too.
func stuckRun(t *testing.T, db string) {
	t.Helper()
	ctx := context.Background()
	s, err := novasqlite.Open(ctx, novasqlite.Config{Path: db})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	runs := novasqlite.NewRunStore(s)
	type data struct{}
	noop := func(context.Context, saga.StepContext, *data) error { return nil }
	fail := func(context.Context, saga.StepContext, *data) error { return saga.Permanent(errors.New("refused")) }
	def, err := saga.Define("stuck",
		saga.Step[data]{Name: "a", Execute: noop, Compensate: fail},
		saga.Step[data]{Name: "b", Execute: fail},
	)
	if err != nil {
		t.Fatal(err)
	}
	c, err := saga.NewCoordinator(saga.Config{Runs: runs, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	x, _ := saga.Run(ctx, c, def, "r1", data{})
	if x.Status != saga.Stuck {
		t.Fatalf("run ended %s, want stuck", x.Status)
	}
}

func TestSagasAndOperatorActions(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "sagas.db")
	if code, _, stderr := runNova(t, "demo", "--store", db, "--orders", "12"); code != 0 {
		t.Fatalf("demo: exit %d: %s", code, stderr)
	}
	stuckRun(t, db)

	code, out, stderr := runNova(t, "sagas", "--store", db, "--json")
	if code != 0 {
		t.Fatalf("sagas: exit %d: %s", code, stderr)
	}
	lines := jsonLines(t, out)
	if len(lines) != 13 {
		t.Fatalf("sagas listed %d runs, want 12 fulfilments and 1 stuck run", len(lines))
	}
	ended := 0
	for _, l := range lines {
		switch l["status"] {
		case "completed", "compensated":
			ended++
		}
	}
	// The demo leaves one of its runs stuck on purpose.
	if ended != 11 {
		t.Errorf("%d runs completed or compensated, want 11:\n%s", ended, out)
	}

	code, out, _ = runNova(t, "sagas", "--store", db, "--status", "stuck")
	if code != 0 || !strings.Contains(out, "stuck   r1") || !strings.Contains(out, "2 stuck") || !strings.Contains(out, "2 runs stuck") {
		t.Errorf("sagas --status stuck: exit %d:\n%s", code, out)
	}

	// The timeline shows the failure and the compensation given up.
	code, out, _ = runNova(t, "saga", "stuck/r1", "--store", db)
	if code != 0 || !strings.Contains(out, "step_failed") || !strings.Contains(out, "compensation_failed") || !strings.Contains(out, "refused") {
		t.Errorf("timeline: exit %d:\n%s", code, out)
	}

	// skip and abandon need a reason; an unknown action is bad usage.
	if code, _, _ := runNova(t, "saga", "skip", "stuck/r1", "--store", db); code != 2 {
		t.Errorf("skip without --reason: exit %d, want 2", code)
	}
	if code, _, _ := runNova(t, "saga", "undo", "stuck/r1", "--store", db); code != 2 {
		t.Errorf("unknown action: exit %d, want 2", code)
	}
	if code, _, _ := runNova(t, "saga", "abandon", "stuck/nope", "--store", db, "--reason", "x"); code != 1 {
		t.Errorf("abandon of an unknown run: exit %d, want 1", code)
	}
	code, out, stderr = runNova(t, "saga", "abandon", "stuck/r1", "--store", db, "--reason", "refund by hand", "--by", "alice")
	if code != 0 || !strings.Contains(out, "now failed") {
		t.Fatalf("abandon: exit %d: %s %s", code, out, stderr)
	}
	code, out, _ = runNova(t, "saga", "stuck/r1", "--store", db, "--json")
	if code != 0 {
		t.Fatal("timeline --json failed")
	}
	entries := jsonLines(t, out)
	last := entries[len(entries)-1]
	if last["actor"] != "alice" || last["reason"] != "refund by hand" || last["status"] != "failed" {
		t.Errorf("last transition %v: want the abandonment by alice with its reason", last)
	}
	// A run that has ended takes no action.
	if code, _, stderr := runNova(t, "saga", "retry", "stuck/r1", "--store", db); code != 1 || !strings.Contains(stderr, "failed") {
		t.Errorf("retry of a failed run: exit %d: %s", code, stderr)
	}
	if code, _, _ := runNova(t, "sagas", "--store", db, "--status", "lost"); code != 2 {
		t.Errorf("unknown status: exit %d, want 2", code)
	}
}

func TestProjectionsAndRebuild(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "proj.db")
	if code, _, stderr := runNova(t, "demo", "--store", db, "--orders", "8"); code != 0 {
		t.Fatalf("demo: exit %d: %s", code, stderr)
	}
	code, out, stderr := runNova(t, "projections", "--store", db, "--json")
	if code != 0 {
		t.Fatalf("projections: exit %d: %s", code, stderr)
	}
	lines := jsonLines(t, out)
	if len(lines) != 1 || lines[0]["name"] != "order-summary" || lines[0]["lag_events"] != float64(0) {
		t.Fatalf("projections: %v, want order-summary caught up", lines)
	}
	before := lines[0]["checkpoint"]

	code, out, stderr = runNova(t, "projection", "rebuild", "order-summary", "--store", db)
	if code != 0 || !strings.Contains(out, "swapped in") || !strings.Contains(stderr, "100%") {
		t.Fatalf("rebuild: exit %d: %s %s", code, out, stderr)
	}
	_, out, _ = runNova(t, "projections", "--store", db, "--json")
	lines = jsonLines(t, out)
	if len(lines) != 1 || lines[0]["checkpoint"] != before {
		t.Errorf("after the rebuild: %v, want one projection at checkpoint %v", lines, before)
	}
	if code, _, _ := runNova(t, "projection", "rebuild", "nope", "--store", db); code != 2 {
		t.Errorf("rebuild of an unknown projection: exit %d, want 2", code)
	}
	if code, _, _ := runNova(t, "projection", "frobnicate", "--store", db); code != 2 {
		t.Errorf("unknown projection action: exit %d, want 2", code)
	}
}
