package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/projectiondriver"
	"github.com/nova-go/nova/projection"
	"github.com/nova-go/nova/saga"
)

// The types below are both what the JSON API returns and what the pages
// render: a page shows what its API route returns.

// Overview is GET /api/overview.
type Overview struct {
	Backend string `json:"backend"`
	Store   string `json:"store"`
	// Events is the number of events in the log and Head the last one's
	// position, as counted by the console since it started; Counting is
	// true until it has read the log to its head.
	Events   int64  `json:"events"`
	Head     string `json:"head"`
	Counting bool   `json:"counting,omitempty"`
	// Sagas counts runs by status; nil where the backend keeps none.
	Sagas map[saga.Status]int `json:"sagas,omitempty"`
	// Stuck is Sagas[saga.Stuck]: the runs waiting for an operator.
	Stuck int `json:"stuck"`
	// Outbox is the number of lifecycle envelopes waiting to be relayed,
	// at most OutboxCap (OutboxCapped says there may be more).
	Outbox       *int                `json:"outbox,omitempty"`
	OutboxCapped bool                `json:"outbox_capped,omitempty"`
	Projections  []ProjectionSummary `json:"projections"`
	ReadOnly     bool                `json:"read_only"`
	// Notes say what the backend does not offer.
	Notes []string `json:"notes,omitempty"`
}

// OutboxCap bounds the outbox count of the overview.
const OutboxCap = 1000

// ProjectionSummary is a projection on the overview.
type ProjectionSummary struct {
	Name       string `json:"name"`
	LagEvents  int    `json:"lag_events"`
	LagCapped  bool   `json:"lag_capped,omitempty"`
	LagSeconds string `json:"lag"`
}

func (c *Console) overview(ctx context.Context) (Overview, error) {
	h := c.head.info()
	o := Overview{Backend: c.cfg.Backend, Store: c.cfg.StoreLabel, Events: h.Count, Head: h.Head.String(),
		Counting: !h.Caught, ReadOnly: c.cfg.ReadOnly, Projections: []ProjectionSummary{}}
	if h.Err != "" {
		o.Notes = append(o.Notes, "following the log: "+c.cfg.HideFunc(h.Err))
	}
	svc := c.cfg.Services
	if svc == nil {
		o.Notes = append(o.Notes, "this backend keeps events only: no saga runs, checkpoints or outbox")
		return o, nil
	}
	if svc.Runs != nil {
		counts, err := svc.Runs.Count(ctx, "")
		if err != nil {
			return o, err
		}
		o.Sagas, o.Stuck = counts, counts[saga.Stuck]
		pending, err := svc.Runs.Outbox().Pending(ctx, OutboxCap)
		if err != nil {
			return o, err
		}
		n := len(pending)
		o.Outbox, o.OutboxCapped = &n, n == OutboxCap
	} else {
		o.Notes = append(o.Notes, "this backend keeps no saga runs and no outbox")
	}
	ps, err := c.projections(ctx)
	if err != nil {
		return o, err
	}
	for _, p := range ps.Projections {
		o.Projections = append(o.Projections, ProjectionSummary{Name: p.Name, LagEvents: p.LagEvents, LagCapped: p.LagCapped, LagSeconds: p.Lag})
	}
	return o, nil
}

// StreamRow is one stream of GET /api/streams.
type StreamRow struct {
	Stream  string `json:"stream"`
	Version uint64 `json:"version"`
}

// StreamsPage is GET /api/streams: a page of streams and the query of
// the next page (empty at the end).
type StreamsPage struct {
	Query   StreamsQuery `json:"-"`
	Streams []StreamRow  `json:"streams"`
	Next    string       `json:"next,omitempty"`
}

// streams lists a page of streams named with q.Prefix, read by key:
// the stream named the prefix itself (read directly, as it sorts before
// the streams Streams lists after it), then Streams after the prefix or
// the cursor, until a name leaves the prefix.
func (c *Console) streams(ctx context.Context, q StreamsQuery) (StreamsPage, error) {
	p := StreamsPage{Query: q, Streams: []StreamRow{}}
	after := q.After
	if after == "" && q.Prefix != "" {
		if nova.ValidateStream(q.Prefix) == nil {
			for e, err := range c.cfg.Store.ReadStream(ctx, q.Prefix, nova.ReadStreamOptions{Direction: nova.Backwards, Limit: 1}) {
				if err != nil {
					return p, err
				}
				p.Streams = append(p.Streams, StreamRow{Stream: e.Stream, Version: e.Version})
			}
		}
		after = q.Prefix
	}
	more := false
	for info, err := range c.cfg.Store.Streams(ctx, nova.StreamsOptions{After: after, Limit: q.Limit + 1}) {
		if err != nil {
			return p, err
		}
		if !strings.HasPrefix(info.Stream, q.Prefix) {
			break
		}
		if len(p.Streams) == q.Limit {
			more = true
			break
		}
		p.Streams = append(p.Streams, StreamRow{Stream: info.Stream, Version: info.Version})
	}
	if more {
		n := q
		n.After = p.Streams[len(p.Streams)-1].Stream
		p.Next = n.Encode()
	}
	return p, nil
}

// EventJSON is an event as the API returns it. Data and metadata that
// are JSON are given as they are; other data as base64 under
// data_base64.
type EventJSON struct {
	ID         string          `json:"id"`
	Stream     string          `json:"stream"`
	Version    uint64          `json:"version"`
	Position   string          `json:"position"`
	Type       string          `json:"type"`
	Data       json.RawMessage `json:"data,omitempty"`
	DataBase64 []byte          `json:"data_base64,omitempty"`
	Metadata   nova.Metadata   `json:"metadata"`
	RecordedAt time.Time       `json:"recorded_at"`
}

func eventJSON(e nova.Event) EventJSON {
	j := EventJSON{ID: e.ID, Stream: e.Stream, Version: e.Version, Position: e.Position.String(), Type: e.Type,
		Metadata: e.Metadata, RecordedAt: e.RecordedAt.UTC()}
	if json.Valid(e.Data) {
		j.Data = e.Data
	} else {
		j.DataBase64 = e.Data
	}
	return j
}

// Pretty returns the event's data indented for reading.
func (e EventJSON) Pretty() string {
	if e.Data == nil {
		return fmt.Sprintf("<%d bytes, not JSON>", len(e.DataBase64))
	}
	return pretty(e.Data)
}

// PrettyMetadata returns the event's metadata indented for reading.
func (e EventJSON) PrettyMetadata() string {
	b, err := json.Marshal(e.Metadata)
	if err != nil {
		return err.Error()
	}
	return pretty(b)
}

func pretty(b []byte) string {
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return string(b)
	}
	return out.String()
}

// StreamPage is GET /api/streams/{id}: a page of one stream's events.
type StreamPage struct {
	Stream string      `json:"stream"`
	Query  EventsQuery `json:"-"`
	Events []EventJSON `json:"events"`
	// Next and Prev are the queries of the pages after and before, in
	// the page's direction (empty at the stream's end and start).
	Next string `json:"next,omitempty"`
	Prev string `json:"prev,omitempty"`
}

func (c *Console) stream(ctx context.Context, id string, q EventsQuery) (StreamPage, error) {
	if err := nova.ValidateStream(id); err != nil {
		return StreamPage{}, badf("stream: %v", err)
	}
	p := StreamPage{Stream: id, Query: q, Events: []EventJSON{}}
	opts := nova.ReadStreamOptions{From: q.From, Limit: q.Limit + 1}
	if q.Backwards {
		opts.Direction = nova.Backwards
	}
	more := false
	for e, err := range c.cfg.Store.ReadStream(ctx, id, opts) {
		if err != nil {
			return p, err
		}
		if len(p.Events) == q.Limit {
			more = true
			break
		}
		p.Events = append(p.Events, eventJSON(e))
	}
	if len(p.Events) == 0 {
		if q.From == 0 {
			return p, errNotFound(fmt.Sprintf("stream %q has no events", id))
		}
		return p, nil
	}
	first, last := p.Events[0].Version, p.Events[len(p.Events)-1].Version
	if more {
		n := q
		if q.Backwards {
			n.From = last - 1
		} else {
			n.From = last + 1
		}
		p.Next = n.Encode()
	}
	// The page before, in the other direction's terms: for a forward
	// page starting past version 1, the page ending at first-1.
	if !q.Backwards && first > 1 {
		p.Prev = EventsQuery{From: first - 1, Backwards: true, Limit: q.Limit}.Encode()
	}
	if q.Backwards && q.From != 0 {
		p.Prev = EventsQuery{From: first + 1, Limit: q.Limit}.Encode()
	}
	return p, nil
}

// LogPage is GET /api/log: a page of the global log.
type LogPage struct {
	Query  LogQuery    `json:"-"`
	After  string      `json:"after"`
	Events []EventJSON `json:"events"`
	// Next is the query of the page after (the last event's position):
	// it is always set, as the log grows; Last is that position, from
	// which /api/log/live follows.
	Next string `json:"next"`
	Last string `json:"last"`
}

func (c *Console) logEvents(ctx context.Context, q LogQuery) (LogPage, error) {
	after := q.After
	if q.Latest {
		after = c.head.before(q.Limit)
	}
	p := LogPage{Query: q, After: after.String(), Events: []EventJSON{}}
	last := after
	for e, err := range c.cfg.Store.ReadAll(ctx, nova.ReadAllOptions{From: after, Limit: q.Limit}) {
		if err != nil {
			return p, err
		}
		p.Events = append(p.Events, eventJSON(e))
		last = e.Position
	}
	p.Last = last.String()
	p.Next = LogQuery{After: last, Limit: q.Limit}.Encode()
	return p, nil
}

// RunRow is a saga run as the API returns it.
type RunRow struct {
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
	// Actions are the operator actions that apply to the run's status
	// (none on a read-only console).
	Actions []string `json:"actions,omitempty"`
}

func (c *Console) runRow(r saga.RunInfo) RunRow {
	j := RunRow{Saga: r.Saga, Run: r.RunID, Status: string(r.Status), Step: r.Step, Attempt: r.Attempt, Error: r.Error,
		Version: r.Version, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
	if !r.DueAt.IsZero() {
		due := r.DueAt.UTC()
		j.DueAt = &due
	}
	if r.LeaseOwner != "" && r.LeaseUntil.After(time.Now()) && !r.Status.Terminal() {
		j.LeaseOwner = r.LeaseOwner
	}
	if !c.cfg.ReadOnly {
		switch {
		case r.Status == saga.Stuck:
			j.Actions = []string{"retry", "skip", "abandon"}
		case !r.Status.Terminal():
			j.Actions = []string{"abandon"}
		}
	}
	return j
}

// SagasPage is GET /api/sagas.
type SagasPage struct {
	Query SagasQuery `json:"-"`
	Runs  []RunRow   `json:"runs"`
	// Counts are the runs by status, of the saga filtered on (all
	// sagas when none).
	Counts map[saga.Status]int `json:"counts"`
	Next   string              `json:"next,omitempty"`
}

func (c *Console) runs() (saga.RunStore, error) {
	if c.cfg.Services == nil || c.cfg.Services.Runs == nil {
		return nil, errNotFound("this backend keeps no saga runs")
	}
	return c.cfg.Services.Runs, nil
}

func (c *Console) sagas(ctx context.Context, q SagasQuery) (SagasPage, error) {
	p := SagasPage{Query: q, Runs: []RunRow{}}
	runs, err := c.runs()
	if err != nil {
		return p, err
	}
	list, err := runs.List(ctx, saga.RunFilter{Saga: q.Saga, Status: q.Status, AfterSaga: q.AfterSaga, AfterRun: q.AfterRun, Limit: q.Limit + 1})
	if err != nil {
		return p, err
	}
	more := len(list) > q.Limit
	list = list[:min(len(list), q.Limit)]
	for _, r := range list {
		p.Runs = append(p.Runs, c.runRow(r))
	}
	if more {
		n := q
		n.AfterSaga, n.AfterRun = list[len(list)-1].Saga, list[len(list)-1].RunID
		p.Next = n.Encode()
	}
	if p.Counts, err = runs.Count(ctx, q.Saga); err != nil {
		return p, err
	}
	return p, nil
}

// EntryRow is one transition of a run's timeline, with the event that
// recorded it.
type EntryRow struct {
	Version  uint64          `json:"version"`
	At       time.Time       `json:"at"`
	Type     string          `json:"type"`
	Status   string          `json:"status"`
	Step     string          `json:"step,omitempty"`
	Attempt  int             `json:"attempt,omitempty"`
	Error    string          `json:"error,omitempty"`
	TimedOut bool            `json:"timed_out,omitempty"`
	Unknown  bool            `json:"unknown,omitempty"`
	DelayMS  int64           `json:"delay_ms,omitempty"`
	Actor    string          `json:"actor,omitempty"`
	Reason   string          `json:"reason,omitempty"`
	Data     json.RawMessage `json:"data,omitempty"`
}

// NewEntryRow returns timeline entry x as a row, with data, its event's
// data (nil leaves it out). `nova saga RUN --json` prints the same rows.
func NewEntryRow(x saga.Entry, data json.RawMessage) EntryRow {
	return EntryRow{Version: x.Version, At: x.At.UTC(), Type: x.Type, Status: string(x.Status),
		Step: x.Step, Attempt: x.Attempt, Error: x.Error, TimedOut: x.TimedOut, Unknown: x.Unknown,
		DelayMS: x.Delay.Milliseconds(), Actor: x.Actor, Reason: x.Reason, Data: data}
}

// PrettyData returns the entry's event data indented for reading.
func (e EntryRow) PrettyData() string { return pretty(e.Data) }

// RunPage is GET /api/sagas/{saga}/{run}.
type RunPage struct {
	Run      RunRow     `json:"run"`
	Stream   string     `json:"stream"`
	Timeline []EntryRow `json:"timeline"`
}

func (c *Console) run(ctx context.Context, name, id string) (RunPage, error) {
	runs, err := c.runs()
	if err != nil {
		return RunPage{}, err
	}
	if len(name) > maxText || len(id) > maxText {
		return RunPage{}, badf("saga or run ID longer than %d bytes", maxText)
	}
	info, err := runs.Get(ctx, name, id)
	if err != nil {
		return RunPage{}, fmt.Errorf("run %s/%s: %w", name, id, err)
	}
	entries, err := saga.Timeline(ctx, runs, name, id)
	if err != nil {
		return RunPage{}, err
	}
	// The data at each step is the event that recorded it, in the run's
	// stream (under its older name for a run an older version recorded).
	stream := saga.StreamName(name, id)
	data := map[uint64]json.RawMessage{}
	for _, s := range []string{stream, "saga-" + name + "-" + id} {
		for e, err := range runs.Events().ReadStream(ctx, s, nova.ReadStreamOptions{}) {
			if err != nil {
				return RunPage{}, err
			}
			if json.Valid(e.Data) {
				data[e.Version] = e.Data
			}
		}
		if len(data) > 0 {
			stream = s
			break
		}
	}
	p := RunPage{Run: c.runRow(info), Stream: stream, Timeline: []EntryRow{}}
	for _, x := range entries {
		p.Timeline = append(p.Timeline, NewEntryRow(x, data[x.Version]))
	}
	return p, nil
}

// act takes an operator action on a run.
func (c *Console) act(ctx context.Context, name, id string, a Action) (RunRow, error) {
	if err := c.readOnly(); err != nil {
		return RunRow{}, err
	}
	if err := a.Check(); err != nil {
		return RunRow{}, err
	}
	runs, err := c.runs()
	if err != nil {
		return RunRow{}, err
	}
	do := map[string]func(context.Context, saga.RunStore, string, string, string, string) (saga.RunInfo, error){
		"retry": saga.RetryRun, "skip": saga.SkipCompensation, "abandon": saga.AbandonRun,
	}[a.Action]
	info, err := do(ctx, runs, name, id, strings.TrimSpace(a.Actor), strings.TrimSpace(a.Reason))
	if errorsIsWrongStatus(err) {
		return RunRow{}, errConflict(err.Error())
	}
	if err != nil {
		return RunRow{}, err
	}
	c.log.Info("console: operator action", "action", a.Action, "saga", name, "run", id, "actor", a.Actor, "reason", a.Reason)
	return c.runRow(info), nil
}

// ProjectionRow is one projection of GET /api/projections.
type ProjectionRow struct {
	Name       string     `json:"name"`
	Checkpoint string     `json:"checkpoint"`
	LagEvents  int        `json:"lag_events"`
	LagCapped  bool       `json:"lag_capped,omitempty"`
	Lag        string     `json:"lag"`
	LagSeconds float64    `json:"lag_seconds"`
	Status     string     `json:"status"`
	Owner      string     `json:"owner,omitempty"`
	LeaseUntil *time.Time `json:"lease_until,omitempty"`
	UpdatedAt  time.Time  `json:"updated_at"`
	// Rebuildable says the console can rebuild it; Rebuild is the
	// rebuild it runs or ran last, if any.
	Rebuildable bool           `json:"rebuildable"`
	Rebuild     *RebuildStatus `json:"rebuild,omitempty"`
}

// ProjectionsPage is GET /api/projections.
type ProjectionsPage struct {
	Projections []ProjectionRow `json:"projections"`
	Note        string          `json:"note,omitempty"`
}

// hiddenCheckpoints are checkpoint rows that are not projections: the
// demo's lock.
var hiddenCheckpoints = []string{"nova-demo.lock"}

func (c *Console) projections(ctx context.Context) (ProjectionsPage, error) {
	p := ProjectionsPage{Projections: []ProjectionRow{}}
	svc := c.cfg.Services
	if svc == nil {
		p.Note = "this backend keeps events only: no checkpoints"
		return p, nil
	}
	lister, ok := svc.Checkpoints.(projection.CheckpointLister)
	if !ok {
		p.Note = "this backend's checkpoints cannot be listed"
		return p, nil
	}
	all, err := lister.List(ctx)
	if err != nil {
		return p, err
	}
	now := time.Now()
	for _, in := range all {
		if slices.Contains(hiddenCheckpoints, in.Name) {
			continue
		}
		lag, err := projection.StoredLag(ctx, c.cfg.Store, svc.Checkpoints, in.Name, 0)
		if err != nil {
			return p, err
		}
		status := "idle"
		if strings.HasSuffix(in.Name, projectiondriver.RebuildSuffix) {
			status = "rebuild"
		}
		row := ProjectionRow{Name: in.Name, Checkpoint: in.Position.String(), LagEvents: lag.Events, LagCapped: lag.Capped,
			Lag: lag.Time.Round(time.Millisecond).String(), LagSeconds: lag.Time.Seconds(), Status: status, UpdatedAt: in.UpdatedAt.UTC()}
		if in.Active(now) {
			row.Status = "active"
			row.Owner = in.LeaseOwner
			until := in.LeaseUntil.UTC()
			row.LeaseUntil = &until
		}
		_, row.Rebuildable = c.cfg.Rebuilds[in.Name]
		row.Rebuild = c.rebuildStatus(in.Name)
		p.Projections = append(p.Projections, row)
	}
	// Projections the console can rebuild that have no checkpoint yet.
	for name := range c.cfg.Rebuilds {
		if !slices.ContainsFunc(p.Projections, func(r ProjectionRow) bool { return r.Name == name }) {
			p.Projections = append(p.Projections, ProjectionRow{Name: name, Checkpoint: "-", Status: "no checkpoint", Rebuildable: true,
				Rebuild: c.rebuildStatus(name)})
		}
	}
	return p, nil
}
