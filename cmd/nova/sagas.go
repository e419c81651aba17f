package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/user"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nova-go/nova/internal/console"
	"github.com/nova-go/nova/saga"
)

func sagasCommand() *command {
	var status, name string
	return &command{
		name:     "sagas",
		summary:  "list saga runs with their status, step and next due time",
		usage:    "[--store PATH|URL] [--status S] [--saga NAME] [--json]",
		jsonHelp: "print one JSON object per run and line",
		flags: func(fs *flag.FlagSet, e *env) {
			fs.StringVar(&status, "status", "", "only runs with this status: running, compensating, stuck, completed, compensated or failed")
			fs.StringVar(&name, "saga", "", "only runs of this saga")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 0 {
				return usagef("sagas takes no arguments, got %q", args)
			}
			st := saga.Status(status)
			if status != "" && !slices.Contains(allStatuses, st) {
				return usagef("--status %q: want one of %s", status, joinStatuses())
			}
			return runSagas(ctx, e, name, st)
		},
	}
}

var allStatuses = []saga.Status{saga.Running, saga.Compensating, saga.Stuck, saga.Completed, saga.Compensated, saga.Failed}

func joinStatuses() string {
	s := make([]string, len(allStatuses))
	for i, st := range allStatuses {
		s[i] = string(st)
	}
	return strings.Join(s, ", ")
}

// openRuns opens the store and its saga runs.
func openRuns(ctx context.Context, spec string) (saga.RunStore, func(), error) {
	store, svc, err := openServices(ctx, spec, "sagas")
	if err != nil {
		return nil, nil, err
	}
	if err := svc.NeedRuns(); err != nil {
		store.Close()
		return nil, nil, fmt.Errorf("sagas: %w", err)
	}
	return svc.Runs, func() { store.Close() }, nil
}

// runJSON is a run as `nova sagas --json` prints it.
type runJSON struct {
	Saga       string     `json:"saga"`
	Run        string     `json:"run"`
	Status     string     `json:"status"`
	Step       string     `json:"step,omitempty"`
	Attempt    int        `json:"attempt,omitempty"`
	Error      string     `json:"error,omitempty"`
	Version    uint64     `json:"version"`
	DueAt      *time.Time `json:"due_at,omitempty"`
	LeaseOwner string     `json:"lease_owner,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
}

func runSagas(ctx context.Context, e *env, name string, status saga.Status) error {
	runs, closeRuns, err := openRuns(ctx, e.store)
	if err != nil {
		return err
	}
	defer closeRuns()
	enc := json.NewEncoder(e.stdout)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	if !e.json {
		fmt.Fprintln(tw, "SAGA\tRUN\tSTATUS\tSTEP\tATTEMPT\tUPDATED\tERROR")
	}
	f := saga.RunFilter{Saga: name, Status: status, Limit: 1000}
	n := 0
	for {
		page, err := runs.List(ctx, f)
		if err != nil {
			return err
		}
		for _, r := range page {
			n++
			if e.json {
				j := runJSON{Saga: r.Saga, Run: r.RunID, Status: string(r.Status), Step: r.Step, Attempt: r.Attempt,
					Error: r.Error, Version: r.Version, LeaseOwner: r.LeaseOwner, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
				if !r.DueAt.IsZero() {
					due := r.DueAt.UTC()
					j.DueAt = &due
				}
				if err := enc.Encode(j); err != nil {
					return err
				}
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Saga, r.RunID, r.Status, dash(r.Step), attemptText(r.Attempt),
				r.UpdatedAt.Local().Format(time.DateTime), oneLine(r.Error, 60))
		}
		if len(page) < f.Limit {
			break
		}
		last := page[len(page)-1]
		f.AfterSaga, f.AfterRun = last.Saga, last.RunID
	}
	if e.json {
		return nil
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	counts, err := runs.Count(ctx, name)
	if err != nil {
		return err
	}
	var parts []string
	for _, st := range allStatuses {
		if c := counts[st]; c > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c, st))
		}
	}
	fmt.Fprintf(e.stdout, "%s listed in %s", plural(n, "run", ""), redact(e.store))
	if len(parts) > 0 {
		fmt.Fprintf(e.stdout, " (all: %s)", strings.Join(parts, ", "))
	}
	fmt.Fprintln(e.stdout)
	if counts[saga.Stuck] > 0 {
		fmt.Fprintf(e.stdout, "%s stuck: see 'nova saga SAGA/RUN', then 'nova saga retry|skip|abandon SAGA/RUN --reason ...'\n", plural(counts[saga.Stuck], "run", ""))
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func attemptText(n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

// oneLine shortens s to one line of at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func sagaCommand() *command {
	var reason, actor string
	return &command{
		name:     "saga",
		summary:  "print a saga run's timeline, or retry, skip or abandon a stuck run",
		usage:    "SAGA/RUN [--store PATH|URL] [--json]\n       nova saga {retry|skip|abandon} SAGA/RUN --reason TEXT [--by WHO] [--store PATH|URL] [--json]",
		jsonHelp: "print the timeline as one JSON object per transition and line, or an action's result as one JSON object",
		flags: func(fs *flag.FlagSet, e *env) {
			fs.StringVar(&reason, "reason", "", "why the operator acts (required for skip and abandon)")
			fs.StringVar(&actor, "by", "", "who acts (default: the OS user)")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			switch {
			case len(args) == 1 && slices.Contains([]string{"retry", "skip", "abandon"}, args[0]):
				return usagef("%s needs a run: nova saga %s SAGA/RUN --reason TEXT (see 'nova sagas --status stuck')", args[0], args[0])
			case len(args) == 1:
				name, id, err := parseRunRef(args[0])
				if err != nil {
					return err
				}
				return runTimeline(ctx, e, name, id)
			case len(args) == 2:
				action := args[0]
				name, id, err := parseRunRef(args[1])
				if err != nil {
					return err
				}
				return runOperator(ctx, e, action, name, id, actorOr(actor), reason)
			}
			return usagef("want SAGA/RUN, or an action and SAGA/RUN; got %q", args)
		},
	}
}

// runRef is how the tool names a run: "SAGA/RUN", as parseRunRef reads it.
func runRef(sagaName, runID string) string { return sagaName + "/" + runID }

// parseRunRef splits "SAGA/RUN" (the run ID may hold further slashes).
func parseRunRef(ref string) (name, runID string, err error) {
	name, runID, ok := strings.Cut(ref, "/")
	if !ok || name == "" || runID == "" {
		return "", "", usagef("%q: name a run as SAGA/RUN, for example fulfil/00001 (see 'nova sagas')", ref)
	}
	return name, runID, nil
}

func actorOr(actor string) string {
	if actor != "" {
		return actor
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if h, err := os.Hostname(); err == nil {
		return "operator@" + h
	}
	return "operator"
}

func runTimeline(ctx context.Context, e *env, name, runID string) error {
	runs, closeRuns, err := openRuns(ctx, e.store)
	if err != nil {
		return err
	}
	defer closeRuns()
	info, err := runs.Get(ctx, name, runID)
	if err != nil {
		return fmt.Errorf("run %s/%s: %w", name, runID, err)
	}
	entries, err := saga.Timeline(ctx, runs, name, runID)
	if err != nil {
		return err
	}
	if e.json {
		enc := json.NewEncoder(e.stdout)
		for _, x := range entries {
			if err := enc.Encode(console.NewEntryRow(x, nil)); err != nil {
				return err
			}
		}
		return nil
	}
	fmt.Fprintf(e.stdout, "saga %s, run %s: %s", name, runID, info.Status)
	if !info.DueAt.IsZero() {
		fmt.Fprintf(e.stdout, ", due %s", info.DueAt.Local().Format(time.DateTime+".000"))
	}
	if info.LeaseOwner != "" && info.LeaseUntil.After(time.Now()) && !info.Status.Terminal() {
		fmt.Fprintf(e.stdout, ", held by %s", info.LeaseOwner)
	}
	fmt.Fprintln(e.stdout)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tTIME\tEVENT\tSTEP\tATTEMPT\tSTATUS\tDETAIL")
	for _, x := range entries {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", x.Version, x.At.Local().Format("15:04:05.000"),
			strings.TrimPrefix(x.Type, "saga."), dash(x.Step), attemptText(x.Attempt), x.Status, entryDetail(x))
	}
	return tw.Flush()
}

func entryDetail(x saga.Entry) string {
	var parts []string
	if x.Error != "" {
		parts = append(parts, oneLine(x.Error, 80))
	}
	if x.TimedOut {
		parts = append(parts, "timed out")
	}
	if x.Unknown {
		parts = append(parts, "outcome unknown")
	}
	if x.Delay > 0 {
		parts = append(parts, "retry in "+x.Delay.String())
	}
	if x.Actor != "" {
		parts = append(parts, "by "+x.Actor)
	}
	if x.Reason != "" {
		parts = append(parts, fmt.Sprintf("reason %q", x.Reason))
	}
	return strings.Join(parts, "; ")
}

func runOperator(ctx context.Context, e *env, action, name, runID, actor, reason string) error {
	var do func(context.Context, saga.RunStore, string, string, string, string) (saga.RunInfo, error)
	switch action {
	case "retry":
		do = saga.RetryRun
	case "skip":
		do = saga.SkipCompensation
	case "abandon":
		do = saga.AbandonRun
	default:
		return usagef("unknown action %q: want retry, skip or abandon", action)
	}
	if action != "retry" && strings.TrimSpace(reason) == "" {
		return usagef("%s needs --reason", action)
	}
	runs, closeRuns, err := openRuns(ctx, e.store)
	if err != nil {
		return err
	}
	defer closeRuns()
	info, err := do(ctx, runs, name, runID, actor, reason)
	if err != nil {
		return err
	}
	if e.json {
		j := actionJSON{Action: action, Saga: name, Run: runID, Actor: actor, Reason: reason, Status: string(info.Status),
			Step: info.Step}
		if !info.DueAt.IsZero() {
			due := info.DueAt.UTC()
			j.DueAt = &due
		}
		return json.NewEncoder(e.stdout).Encode(j)
	}
	fmt.Fprintf(e.stdout, "%s %s/%s by %s: now %s", action, name, runID, actor, info.Status)
	if !info.DueAt.IsZero() {
		fmt.Fprint(e.stdout, ", due now: a worker takes it from here ('nova demo' runs one)")
	}
	fmt.Fprintln(e.stdout)
	return nil
}

// actionJSON is what `nova saga retry|skip|abandon --json` prints.
type actionJSON struct {
	Action string     `json:"action"`
	Saga   string     `json:"saga"`
	Run    string     `json:"run"`
	Actor  string     `json:"actor"`
	Reason string     `json:"reason,omitempty"`
	Status string     `json:"status"`
	Step   string     `json:"step,omitempty"`
	DueAt  *time.Time `json:"due_at,omitempty"`
}
