package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/examples/orders"
	"github.com/nova-go/nova/internal/projectiondriver"
	"github.com/nova-go/nova/internal/services"
	"github.com/nova-go/nova/novapg"
	"github.com/nova-go/nova/projection"
)

// summaryTable is the SQL table of the demo's order-summary read model.
const summaryTable = "order_summary"

// knownProjection builds the runner config of a projection this tool
// knows how to run, on a store and its services.
type knownProjection func(ctx context.Context, store nova.Store, svc *services.Services) (projection.Config, cqrs.QueryStore, error)

// projections are the projections this tool can run and rebuild: the
// demo's.
var projections = map[string]knownProjection{
	orders.SummaryProjection: summaryConfig,
}

// summaryConfig is the demo's order-summary projection, into the query
// store table summaryTable. Its checkpoint commits with the read model
// where the store is SQL. No lease: two demos at once on one store are
// kept apart by the checkpoint commit's fence.
func summaryConfig(ctx context.Context, store nova.Store, svc *services.Services) (projection.Config, cqrs.QueryStore, error) {
	if err := svc.NeedQueryStore(); err != nil {
		return projection.Config{}, nil, fmt.Errorf("%s: %w", orders.SummaryProjection, err)
	}
	qs, err := svc.QueryStore(ctx, summaryTable)
	if err != nil {
		return projection.Config{}, nil, err
	}
	p, err := orders.NewSummaryProjection(orders.NewRegistry(), qs)
	if err != nil {
		return projection.Config{}, nil, err
	}
	return projection.Config{Store: store, Projection: p, Checkpoints: svc.Checkpoints, BatchSize: 500, Tables: []string{svc.Table(summaryTable)}}, qs, nil
}

func projectionsCommand() *command {
	return &command{
		name:     "projections",
		summary:  "list projections with their checkpoint, lag and status",
		usage:    "[--store PATH|URL] [--json]",
		jsonHelp: "print one JSON object per projection and line",
		run:      runProjections,
	}
}

// projectionJSON is a projection as `nova projections --json` prints it.
type projectionJSON struct {
	Name       string     `json:"name"`
	Checkpoint string     `json:"checkpoint"`
	LagEvents  int        `json:"lag_events"`
	LagCapped  bool       `json:"lag_capped,omitempty"`
	LagSeconds float64    `json:"lag_seconds"`
	Status     string     `json:"status"`
	Owner      string     `json:"owner,omitempty"`
	LeaseUntil *time.Time `json:"lease_until,omitempty"`
	UpdatedAt  time.Time  `json:"updated_at"`
	// HeldBy names the append that holds every reader of the store back,
	// when one has been running for projection.HeldFor or more.
	HeldBy *holderJSON `json:"held_by,omitempty"`
}

// holderJSON is a running append that holds readers back.
type holderJSON struct {
	PID         int32     `json:"pid"`
	Application string    `json:"application,omitempty"`
	Since       time.Time `json:"since"`
	State       string    `json:"state"`
}

// holder returns the append of store that holds readers back, when the
// store can tell and one has been running for projection.HeldFor or more.
func holder(ctx context.Context, store nova.Store, now time.Time) (*holderJSON, error) {
	pg, ok := store.(*novapg.Store)
	if !ok {
		return nil, nil
	}
	h, ok, err := pg.Holder(ctx)
	if err != nil || !ok || h.Since.IsZero() || now.Sub(h.Since) < projection.HeldFor {
		return nil, err
	}
	return &holderJSON{PID: h.PID, Application: h.Application, Since: h.Since, State: h.State}, nil
}

func runProjections(ctx context.Context, e *env, args []string) error {
	if len(args) != 0 {
		return usagef("projections takes no arguments, got %q", args)
	}
	store, svc, err := openServices(ctx, e.store, "projections")
	if err != nil {
		return err
	}
	defer store.Close()
	lister, ok := svc.Checkpoints.(projection.CheckpointLister)
	if !ok {
		return fmt.Errorf("the %T keeps no checkpoints to list", store)
	}
	all, err := lister.List(ctx)
	if err != nil {
		return err
	}
	infos := slices.DeleteFunc(all, func(in projection.CheckpointInfo) bool { return in.Name == demoLockName })
	now := time.Now()
	held, err := holder(ctx, store, now)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(e.stdout)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	if !e.json {
		fmt.Fprintln(tw, "NAME\tCHECKPOINT\tLAG EVENTS\tLAG TIME\tSTATUS\tUPDATED")
	}
	for _, in := range infos {
		lag, err := projection.StoredLag(ctx, store, svc.Checkpoints, in.Name, 0)
		if err != nil {
			return err
		}
		status := "idle"
		if strings.HasSuffix(in.Name, projectiondriver.RebuildSuffix) {
			status = "rebuild"
		}
		if in.Active(now) {
			status = "active (" + in.LeaseOwner + ")"
		}
		if e.json {
			j := projectionJSON{Name: in.Name, Checkpoint: in.Position.String(), LagEvents: lag.Events, LagCapped: lag.Capped,
				LagSeconds: lag.Time.Seconds(), Status: status, UpdatedAt: in.UpdatedAt.UTC(), HeldBy: held}
			if in.Active(now) {
				j.Owner = in.LeaseOwner
				until := in.LeaseUntil.UTC()
				j.LeaseUntil = &until
			}
			if err := enc.Encode(j); err != nil {
				return err
			}
			continue
		}
		events := fmt.Sprint(lag.Events)
		if lag.Capped {
			events += "+"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", in.Name, in.Position, events, lag.Time.Round(time.Millisecond), status,
			in.UpdatedAt.Local().Format(time.DateTime))
	}
	if e.json {
		return nil
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s in %s\n", plural(len(infos), "projection", ""), redact(e.store))
	if held != nil {
		app := ""
		if held.Application != "" {
			app = fmt.Sprintf(" (%s)", held.Application)
		}
		fmt.Fprintf(e.stdout, "readers are held back by an append still running for %s: server process %d%s, %s;\n"+
			"  its events, and all appended after it began, wait for it to commit or roll back (to end it: SELECT pg_terminate_backend(%d))\n",
			now.Sub(held.Since).Round(time.Second), held.PID, app, held.State, held.PID)
	}
	return nil
}

func projectionCommand() *command {
	return &command{
		name:     "projection",
		summary:  "rebuild a projection's read model from the first event, then swap it in",
		usage:    "rebuild NAME [--store PATH|URL] [--json]",
		jsonHelp: "print the result as one JSON object: {projection, events, seconds}",
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 2 || args[0] != "rebuild" {
				return usagef("want: rebuild NAME; got %q", args)
			}
			build, ok := projections[args[1]]
			if !ok {
				return usagef("unknown projection %q: this tool runs %s", args[1], strings.Join(slices.Sorted(maps.Keys(projections)), ", "))
			}
			return runRebuild(ctx, e, args[1], build)
		},
	}
}

// rebuildJSON is what `nova projection rebuild --json` prints.
type rebuildJSON struct {
	Projection string  `json:"projection"`
	Events     int     `json:"events"`
	Seconds    float64 `json:"seconds"`
}

func runRebuild(ctx context.Context, e *env, name string, build knownProjection) error {
	b, err := parseStore(e.store)
	if err != nil {
		return err
	}
	if b == memoryBackend {
		return fmt.Errorf("rebuild %s: the in-memory store keeps nothing between commands: rebuild on a SQLite file or a PostgreSQL store", name)
	}
	store, svc, err := openServices(ctx, e.store, "projection rebuild")
	if err != nil {
		return err
	}
	defer store.Close()
	cfg, _, err := build(ctx, store, svc)
	if err != nil {
		return err
	}
	if l, ok := svc.Checkpoints.(projection.Leaser); ok {
		cfg.Leaser = l // one rebuild at a time across processes
	}
	r, err := projection.NewRunner(cfg)
	if err != nil {
		return err
	}
	start := time.Now()
	bar := &progressBar{w: e.stderr}
	err = r.Rebuild(ctx, bar.update)
	bar.done()
	if errors.Is(err, nova.ErrInvalid) {
		return fmt.Errorf("rebuild %s: %w (its read model must be in the store's SQL database)", name, err)
	}
	if err != nil {
		return fmt.Errorf("rebuild %s: %w", name, err)
	}
	elapsed := time.Since(start)
	if e.json {
		return json.NewEncoder(e.stdout).Encode(rebuildJSON{Projection: name, Events: bar.last, Seconds: elapsed.Seconds()})
	}
	fmt.Fprintf(e.stdout, "rebuilt %s: %s in %s, swapped in\n", name, plural(bar.last, "event", ""), elapsed.Round(time.Millisecond))
	return nil
}

// progressBar draws "[#####.....]  50%  500/1000 events" on one line.
type progressBar struct {
	w     io.Writer
	last  int
	drawn bool
}

func (b *progressBar) update(done, total int) {
	b.last = done
	const width = 30
	frac := 1.0
	if total > 0 {
		frac = min(float64(done)/float64(total), 1)
	}
	n := int(frac * width)
	fmt.Fprintf(b.w, "\r[%s%s] %3.0f%%  %d/%d events", strings.Repeat("#", n), strings.Repeat(".", width-n), frac*100, done, total)
	b.drawn = true
}

func (b *progressBar) done() {
	if b.drawn {
		fmt.Fprintln(b.w)
	}
}
