package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nova-go/nova/examples/orders"
	"github.com/nova-go/nova/internal/services"
	"github.com/nova-go/nova/novasqlite"
	"github.com/nova-go/nova/saga"
)

// openDemoStore opens the demo's SQLite file db and its services.
func openDemoStore(t *testing.T, db string) (*novasqlite.Store, *services.Services) {
	t.Helper()
	s, err := novasqlite.Open(context.Background(), novasqlite.Config{Path: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	svcs, err := servicesOf(s, "test")
	if err != nil {
		t.Fatal(err)
	}
	return s, svcs
}

// While a demo holds a store, a second one fails at once, saying who
// holds it; once it is released, the next demo runs.
func TestSecondDemoOnAStoreFailsFast(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "busy.db")
	if code, _, stderr := runNova(t, "migrate", "--store", db); code != 0 {
		t.Fatal(stderr)
	}
	_, svcs := openDemoStore(t, db)
	lock, err := lockDemo(context.Background(), svcs, db)
	if err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runNova(t, "demo", "--store", db, "--orders", "2")
	if code != 1 || !strings.Contains(stderr, "another demo is running on "+db) || !strings.Contains(stderr, "pid") || out != "" {
		t.Errorf("second demo: exit %d, stdout %q, stderr %q: want a refusal naming the holder", code, out, stderr)
	}
	if code, _, _ := runNova(t, "demo", "--reset", "--store", db); code != 1 {
		t.Errorf("--reset under a running demo: exit %d, want 1", code)
	}
	if err := lock.release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runNova(t, "demo", "--store", db, "--orders", "2"); code != 0 {
		t.Errorf("demo after the lock was released: exit %d: %s", code, stderr)
	}
	// The lock is no projection.
	if _, out, _ := runNova(t, "projections", "--store", db, "--json"); strings.Contains(out, demoLockName) {
		t.Errorf("projections lists the demo lock:\n%s", out)
	}
}

// Runs an interrupted demo left are resumed by the next demo, which says
// so, numbers its own orders after them and reports them apart.
func TestDemoResumesRunsAnInterruptedDemoLeft(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "interrupted.db")
	ctx := context.Background()
	s, svcs := openDemoStore(t, db)
	// An interrupted demo: three runs started, none driven, one of them
	// claimed by a worker that died (its lease runs out by itself).
	svc, err := orders.NewService(orders.Config{Store: s, Inventory: orders.NewStock(nil), Payments: &orders.Bank{}})
	if err != nil {
		t.Fatal(err)
	}
	def, err := orders.FulfilSaga(svc)
	if err != nil {
		t.Fatal(err)
	}
	coord, err := saga.NewCoordinator(saga.Config{Runs: svcs.Runs, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		cmd := orders.SampleOrder(i)
		if _, err := saga.Start(ctx, coord, def, cmd.OrderID, orders.Fulfilment{Order: cmd}); err != nil {
			t.Fatal(err)
		}
	}
	claimed, err := svcs.Runs.Claim(ctx, saga.ClaimRequest{Owner: "dead-worker", Sagas: []string{orders.SagaName}, Lease: 2 * time.Second, Limit: 1})
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %v, %v", claimed, err)
	}
	s.Close()

	code, out, stderr := runNova(t, "demo", "--store", db, "--orders", "2")
	if code != 0 {
		t.Fatalf("demo: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "resuming 3 runs found unfinished") || !strings.Contains(stderr, "expires in") {
		t.Errorf("demo did not say it resumes the runs and when their lease expires: %q", stderr)
	}
	if !strings.Contains(out, "Orders 00004 to 00005") {
		t.Errorf("demo counted the earlier runs as its own:\n%s", out)
	}
	if !regexp.MustCompile(`Resumed 3 runs found unfinished \(not counted above\): now \d`).MatchString(out) {
		t.Errorf("report does not show the resumed runs apart:\n%s", out)
	}
	code, out, _ = runNova(t, "sagas", "--store", db, "--json")
	for _, l := range jsonLines(t, out) {
		if st := l["status"]; code != 0 || st == "running" || st == "compensating" {
			t.Errorf("run %v is still going after the demo", l)
		}
	}
}

// Identical demos report identical counts: the outbox is drained before
// the report, and left empty.
func TestIdenticalDemosReportIdenticalCounts(t *testing.T) {
	t.Parallel()
	var reports []string
	for i := range 3 {
		db := filepath.Join(t.TempDir(), "same.db")
		code, out, stderr := runNova(t, "demo", "--store", db)
		if code != 0 {
			t.Fatalf("demo %d: exit %d: %s", i, code, stderr)
		}
		m := regexp.MustCompile(`(?m)^Sagas: .*$`).FindString(out)
		if m == "" || !strings.Contains(m, "none left in the outbox") {
			t.Fatalf("demo %d: no sagas line:\n%s", i, out)
		}
		reports = append(reports, m)
		_, svcs := openDemoStore(t, db)
		if pending, err := svcs.Runs.Outbox().Pending(context.Background(), 10); err != nil || len(pending) != 0 {
			t.Errorf("demo %d left %d rows in the outbox (%v)", i, len(pending), err)
		}
	}
	for _, r := range reports[1:] {
		if r != reports[0] {
			t.Errorf("identical demos reported %q and %q", reports[0], r)
		}
	}
}

// The demo leaves one run stuck, says how to fix it, and the commands it
// prints move the run to an end once the next demo's worker takes it.
func TestDemoLeavesAStuckRunThatTheOperatorFixes(t *testing.T) {
	t.Parallel()
	for _, action := range []string{"skip", "retry", "abandon"} {
		t.Run(action, func(t *testing.T) {
			t.Parallel()
			db := filepath.Join(t.TempDir(), "stuck.db")
			code, out, stderr := runNova(t, "demo", "--store", db, "--orders", "4")
			if code != 0 {
				t.Fatalf("demo: exit %d: %s", code, stderr)
			}
			ref := runRef(orders.SagaName, orders.SampleOrder(2).OrderID)
			if !strings.Contains(out, "Stuck: run "+ref) || !strings.Contains(out, "stuck: waiting for an operator  1") {
				t.Fatalf("report does not name the stuck run %s:\n%s", ref, out)
			}
			_, list, _ := runNova(t, "sagas", "--store", db, "--status", "stuck", "--json")
			if l := jsonLines(t, list); len(l) != 1 || runRef(l[0]["saga"].(string), l[0]["run"].(string)) != ref {
				t.Fatalf("stuck runs: %v, want %s", l, ref)
			}
			// The report's command, as printed.
			m := regexp.MustCompile(`go run \./cmd/nova (saga ` + action + ` \S+)(?: --reason '([^']*)')? --store (\S+)`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("report has no %s command:\n%s", action, out)
			}
			args := append(strings.Fields(m[1]), "--store", m[3])
			if m[2] != "" {
				args = append(args, "--reason", m[2])
			}
			code, got, stderr := runNova(t, args...)
			if code != 0 {
				t.Fatalf("%s: exit %d: %s", args, code, stderr)
			}
			want := "compensated"
			if action == "abandon" {
				want = "failed"
				if !strings.Contains(got, "now failed") {
					t.Errorf("abandon: %s", got)
				}
			} else if code, _, stderr := runNova(t, "demo", "--store", db, "--orders", "1"); code != 0 {
				t.Fatalf("the next demo: exit %d: %s", code, stderr)
			}
			_, timeline, _ := runNova(t, "saga", ref, "--store", db, "--json")
			entries := jsonLines(t, timeline)
			if last := entries[len(entries)-1]; last["status"] != want {
				t.Errorf("after %s the run is %v, want %s", action, last["status"], want)
			}
		})
	}
}
