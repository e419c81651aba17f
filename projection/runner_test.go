package projection_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/novamem"
	"github.com/nova-go/nova/projection"
)

type OrderPlaced struct {
	ID    string `json:"id"`
	Total int    `json:"total"`
}

type OrderShipped struct {
	ID string `json:"id"`
}

func newRegistry(t *testing.T) *nova.Registry {
	t.Helper()
	reg := nova.NewRegistry(nova.RegistryOptions{})
	nova.MustRegister[OrderPlaced](reg, "OrderPlaced")
	nova.MustRegister[OrderShipped](reg, "OrderShipped")
	return reg
}

func newStore(t *testing.T, cfg novamem.Config) *novamem.Store {
	t.Helper()
	s, err := novamem.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// recorder is a projection whose OrderPlaced handler records the IDs it
// sees and can be told to fail.
type recorder struct {
	mu   sync.Mutex
	ids  []string
	fail func(v OrderPlaced) error
}

func (r *recorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ids)
}

func newProjection(t *testing.T, reg *nova.Registry, rec *recorder) *projection.Projection {
	t.Helper()
	p, err := projection.New("orders", reg)
	if err != nil {
		t.Fatal(err)
	}
	err = projection.On(p, func(ctx context.Context, e nova.Event, v OrderPlaced) error {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if rec.fail != nil {
			if err := rec.fail(v); err != nil {
				return err
			}
		}
		rec.ids = append(rec.ids, v.ID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func place(t *testing.T, s nova.Store, reg *nova.Registry, ids ...string) nova.Position {
	t.Helper()
	var last nova.Position
	for _, id := range ids {
		d, err := reg.Encode(OrderPlaced{ID: id, Total: len(id)}, nova.Metadata{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Append(context.Background(), "order-"+id, nova.Any, d)
		if err != nil {
			t.Fatal(err)
		}
		last = res.Position
	}
	return last
}

func start(t *testing.T, cfg projection.Config) *projection.Runner {
	t.Helper()
	r, err := projection.NewRunner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Stop(context.Background()) })
	return r
}

func waitFor(t *testing.T, r *projection.Runner, pos nova.Position) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.WaitFor(ctx, pos); err != nil {
		t.Fatal(err)
	}
}

func TestCatchUpThenLive(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	s := newStore(t, novamem.Config{})
	rec := &recorder{}
	place(t, s, reg, "a", "b", "c")
	// An event type the projection does not handle is passed over.
	d, _ := reg.Encode(OrderShipped{ID: "a"}, nova.Metadata{})
	if _, err := s.Append(context.Background(), "order-a", nova.Any, d); err != nil {
		t.Fatal(err)
	}
	r := start(t, projection.Config{Store: s, Projection: newProjection(t, reg, rec)})
	pos := place(t, s, reg, "d")
	waitFor(t, r, pos)
	pos = place(t, s, reg, "e", "f")
	waitFor(t, r, pos)
	if got, want := rec.seen(), []string{"a", "b", "c", "d", "e", "f"}; !slices.Equal(got, want) {
		t.Fatalf("handled %v, want %v", got, want)
	}
	st := r.Status()
	if st.State != projection.Running || st.Checkpoint != pos || st.Handled != 7 || st.Name != "orders" {
		t.Fatalf("status %+v", st)
	}
}

func TestResumeFromCheckpoint(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	s := newStore(t, novamem.Config{})
	cps := projection.NewMemoryCheckpoints()
	rec1 := &recorder{}
	pos := place(t, s, reg, "a", "b")
	r1 := start(t, projection.Config{Store: s, Projection: newProjection(t, reg, rec1), Checkpoints: cps})
	waitFor(t, r1, pos)
	if err := r1.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, _ := cps.Load(context.Background(), "orders"); got != pos {
		t.Fatalf("saved checkpoint %s, want %s", got, pos)
	}
	pos = place(t, s, reg, "c")
	rec2 := &recorder{}
	r2 := start(t, projection.Config{Store: s, Projection: newProjection(t, reg, rec2), Checkpoints: cps})
	waitFor(t, r2, pos)
	if got := rec2.seen(); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("after resume handled %v, want [c]", got)
	}
}

// countingCheckpoints records every saved position.
type countingCheckpoints struct {
	projection.MemoryCheckpoints
	mu    sync.Mutex
	saves []nova.Position
}

func (c *countingCheckpoints) Save(ctx context.Context, name string, pos nova.Position) error {
	c.mu.Lock()
	c.saves = append(c.saves, pos)
	c.mu.Unlock()
	return c.MemoryCheckpoints.Save(ctx, name, pos)
}

func TestBatches(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	s := newStore(t, novamem.Config{})
	ids := []string{"a", "b", "c", "d", "e", "f", "g"}
	var positions []nova.Position
	for _, id := range ids {
		positions = append(positions, place(t, s, reg, id))
	}
	cps := &countingCheckpoints{}
	rec := &recorder{}
	r := start(t, projection.Config{Store: s, Projection: newProjection(t, reg, rec), Checkpoints: cps, BatchSize: 3})
	waitFor(t, r, positions[len(positions)-1])
	cps.mu.Lock()
	saves := slices.Clone(cps.saves)
	cps.mu.Unlock()
	if len(saves) < 3 {
		t.Fatalf("%d checkpoint saves for 7 events in batches of 3, want at least 3: %v", len(saves), saves)
	}
	prev := -1
	for _, sp := range saves {
		i := slices.Index(positions, sp)
		if i < 0 || i-prev > 3 || i <= prev {
			t.Fatalf("checkpoint saves %v do not step through %v by at most 3", saves, positions)
		}
		prev = i
	}
	if got := rec.seen(); !slices.Equal(got, ids) {
		t.Fatalf("handled %v", got)
	}
}

type PlaceOrder struct {
	ID    string
	Total int
}

type OrderView struct {
	ID     string `json:"id"`
	Total  int    `json:"total"`
	Status string `json:"status"`
}

func TestWaitForCommandQueryRoundTrip(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	s := newStore(t, novamem.Config{})
	qs := novamem.NewQueryStore()

	bus := new(cqrs.CommandBus)
	err := cqrs.HandleResult(bus, func(ctx context.Context, cmd PlaceOrder) (nova.Position, error) {
		d, err := reg.Encode(OrderPlaced(cmd), nova.Metadata{})
		if err != nil {
			return nova.Position{}, err
		}
		res, err := s.Append(ctx, "order-"+cmd.ID, nova.NoStream, d)
		return res.Position, err
	})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := projection.New("order-views", reg)
	if err := projection.On(p, func(ctx context.Context, e nova.Event, v OrderPlaced) error {
		return cqrs.UpsertProjection(ctx, qs, "order:"+v.ID, OrderView{ID: v.ID, Total: v.Total, Status: "placed"})
	}); err != nil {
		t.Fatal(err)
	}
	r := start(t, projection.Config{Store: s, Projection: p})

	ctx := context.Background()
	pos, err := cqrs.DispatchResult[nova.Position](ctx, bus, PlaceOrder{ID: "42", Total: 99})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, r, pos)
	view, err := cqrs.GetProjection[OrderView](ctx, qs, "order:42")
	if err != nil {
		t.Fatal(err)
	}
	if want := (OrderView{ID: "42", Total: 99, Status: "placed"}); view != want {
		t.Fatalf("view %+v, want %+v", view, want)
	}
}

func TestPoisonStopsNamingTheEvent(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	s := newStore(t, novamem.Config{})
	boom := errors.New("boom")
	rec := &recorder{fail: func(v OrderPlaced) error {
		if v.ID == "b" {
			return boom
		}
		return nil
	}}
	first := place(t, s, reg, "a")
	poison := place(t, s, reg, "b")
	last := place(t, s, reg, "c")
	r := start(t, projection.Config{Store: s, Projection: newProjection(t, reg, rec)})
	err := r.Wait()
	var pe *projection.PoisonError
	if !errors.As(err, &pe) || !errors.Is(err, projection.ErrPoison) || !errors.Is(err, boom) {
		t.Fatalf("Wait = %v, want a poison error wrapping boom", err)
	}
	if pe.Stream != "order-b" || pe.Version != 1 || pe.Type != "OrderPlaced" || pe.Position != poison || pe.EventID == "" || pe.Attempts != 1 || pe.Projection != "orders" {
		t.Fatalf("poison error %+v", pe)
	}
	st := r.Status()
	if st.State != projection.Failed || st.Checkpoint != first || !errors.Is(st.Err, projection.ErrPoison) {
		t.Fatalf("status %+v", st)
	}
	if err := r.WaitFor(context.Background(), last); !errors.Is(err, projection.ErrPoison) {
		t.Fatalf("WaitFor after failure = %v, want ErrPoison", err)
	}
	if got := rec.seen(); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("handled %v", got)
	}
}

func TestRetryThenSuccess(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	s := newStore(t, novamem.Config{})
	fails := 2
	rec := &recorder{fail: func(v OrderPlaced) error {
		if fails > 0 {
			fails--
			return errors.New("flaky")
		}
		return nil
	}}
	pos := place(t, s, reg, "a", "b")
	r := start(t, projection.Config{Store: s, Projection: newProjection(t, reg, rec), Retries: 3, RetryBackoff: time.Millisecond})
	waitFor(t, r, pos)
	if got := rec.seen(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("handled %v", got)
	}
	if st := r.Status(); st.State != projection.Running || st.Skipped != 0 {
		t.Fatalf("status %+v", st)
	}
}

func TestRetriesExhaustedStop(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	s := newStore(t, novamem.Config{})
	calls := 0
	rec := &recorder{fail: func(v OrderPlaced) error { calls++; return errors.New("always") }}
	place(t, s, reg, "a")
	r := start(t, projection.Config{Store: s, Projection: newProjection(t, reg, rec), Retries: 2, RetryBackoff: time.Millisecond})
	var pe *projection.PoisonError
	if err := r.Wait(); !errors.As(err, &pe) || pe.Attempts != 3 {
		t.Fatalf("Wait = %v, want poison after 3 attempts", err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if calls != 3 {
		t.Fatalf("handler ran %d times, want 3", calls)
	}
}

func TestSkipAndRecord(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	s := newStore(t, novamem.Config{})
	rec := &recorder{fail: func(v OrderPlaced) error {
		if v.ID == "b" {
			return errors.New("bad order")
		}
		return nil
	}}
	var mu sync.Mutex
	var called []string
	place(t, s, reg, "a", "b")
	pos := place(t, s, reg, "c")
	r := start(t, projection.Config{
		Store: s, Projection: newProjection(t, reg, rec), OnPoison: projection.PoisonSkip,
		SkipFunc: func(ctx context.Context, sk projection.Skipped) {
			mu.Lock()
			called = append(called, sk.Err.Stream)
			mu.Unlock()
		},
	})
	waitFor(t, r, pos)
	if got := rec.seen(); !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("handled %v", got)
	}
	sk := r.Skipped()
	if len(sk) != 1 || sk[0].Err.Stream != "order-b" || !errors.Is(sk[0].Err, projection.ErrPoison) {
		t.Fatalf("skipped %+v", sk)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(called, []string{"order-b"}) {
		t.Fatalf("SkipFunc saw %v", called)
	}
	if st := r.Status(); st.Skipped != 1 || st.State != projection.Running {
		t.Fatalf("status %+v", st)
	}
}

func TestLag(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	recorded := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	s := newStore(t, novamem.Config{NowFunc: func() time.Time { return recorded }})
	now := recorded.Add(90 * time.Second)
	rec := &recorder{}
	pos := place(t, s, reg, "a", "b", "c")
	r, err := projection.NewRunner(projection.Config{Store: s, Projection: newProjection(t, reg, rec), LagLimit: 2, NowFunc: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	lag, err := r.Lag(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if lag.Events != 2 || !lag.Capped {
		t.Fatalf("lag before start %+v, want 2 events, capped", lag)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer r.Stop(ctx)
	waitFor(t, r, pos)
	lag, err = r.Lag(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if lag != (projection.Lag{Head: pos}) {
		t.Fatalf("lag when caught up %+v", lag)
	}
	if st := r.Status(); st.TimeLag != 90*time.Second || !st.LastRecordedAt.Equal(recorded) {
		t.Fatalf("status time lag %s (last %s), want 1m30s", st.TimeLag, st.LastRecordedAt)
	}
}

func TestStopIsPromptAndStartTwiceFails(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	s := newStore(t, novamem.Config{})
	rec := &recorder{}
	r := start(t, projection.Config{Store: s, Projection: newProjection(t, reg, rec)})
	if err := r.Start(context.Background()); !errors.Is(err, projection.ErrRunning) {
		t.Fatalf("second Start = %v, want ErrRunning", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Stop(ctx); err != nil {
		t.Fatalf("Stop = %v", err)
	}
	if err := r.Wait(); err != nil {
		t.Fatalf("Wait after Stop = %v", err)
	}
	if st := r.Status(); st.State != projection.Stopped {
		t.Fatalf("state %s after Stop", st.State)
	}
	if err := r.WaitFor(ctx, nova.Position{Commit: 1}); !errors.Is(err, projection.ErrNotRunning) {
		t.Fatalf("WaitFor on a stopped runner = %v, want ErrNotRunning", err)
	}
	// A stopped runner starts again.
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, r, place(t, s, reg, "a"))
	// WaitFor honours its context.
	short, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	if err := r.WaitFor(short, nova.Position{Commit: 1 << 40}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitFor past the head = %v, want DeadlineExceeded", err)
	}
}

func TestStartContextEndsRun(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	s := newStore(t, novamem.Config{})
	r, err := projection.NewRunner(projection.Config{Store: s, Projection: newProjection(t, reg, &recorder{})})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := r.Wait(); err != nil {
		t.Fatalf("Wait = %v", err)
	}
	if st := r.Status(); st.State != projection.Stopped {
		t.Fatalf("state %s", st.State)
	}
}

// OrderPlacedV2 is OrderPlaced's current shape in the upcast test: the
// total became an amount in cents.
type OrderPlacedV2 struct {
	ID    string `json:"id"`
	Cents int    `json:"cents"`
}

func TestUpcastEventsReachHandlersInCurrentShape(t *testing.T) {
	t.Parallel()
	reg := nova.NewRegistry(nova.RegistryOptions{})
	nova.MustRegister[OrderPlacedV2](reg, "OrderPlaced")
	err := reg.Upcast("OrderPlaced", 1, func(data []byte) ([]byte, error) {
		var old OrderPlaced
		if err := json.Unmarshal(data, &old); err != nil {
			return nil, err
		}
		return json.Marshal(OrderPlacedV2{ID: old.ID, Cents: old.Total * 100})
	})
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t, novamem.Config{})
	old, _ := json.Marshal(OrderPlaced{ID: "a", Total: 3})
	res, err := s.Append(context.Background(), "order-a", nova.NoStream, nova.EventData{Type: "OrderPlaced", Data: old, Metadata: nova.Metadata{Schema: 1}})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := projection.New("cents", reg)
	var mu sync.Mutex
	var typed []OrderPlacedV2
	var raw []string
	_ = projection.On(p, func(ctx context.Context, e nova.Event, v OrderPlacedV2) error {
		mu.Lock()
		defer mu.Unlock()
		typed = append(typed, v)
		return nil
	})
	p2, _ := projection.New("raw", reg)
	_ = projection.OnAny(p2, func(ctx context.Context, e nova.Event) error {
		mu.Lock()
		defer mu.Unlock()
		raw = append(raw, fmt.Sprintf("%d %s", e.Metadata.SchemaVersion(), e.Data))
		return nil
	})
	r1 := start(t, projection.Config{Store: s, Projection: p})
	r2 := start(t, projection.Config{Store: s, Projection: p2})
	waitFor(t, r1, res.Position)
	waitFor(t, r2, res.Position)
	mu.Lock()
	defer mu.Unlock()
	if len(typed) != 1 || typed[0] != (OrderPlacedV2{ID: "a", Cents: 300}) {
		t.Fatalf("typed handler saw %+v", typed)
	}
	if len(raw) != 1 || raw[0] != `2 {"id":"a","cents":300}` {
		t.Fatalf("raw handler saw %q", raw)
	}
}

func TestReset(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	s := newStore(t, novamem.Config{})
	rec := &recorder{}
	cps := projection.NewMemoryCheckpoints()
	resets := 0
	cfg := projection.Config{Store: s, Projection: newProjection(t, reg, rec), Checkpoints: cps,
		ResetFunc: func(ctx context.Context) error {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			resets++
			rec.ids = nil
			return nil
		}}
	pos := place(t, s, reg, "a", "b")
	r := start(t, cfg)
	waitFor(t, r, pos)
	ctx := context.Background()
	if err := r.Reset(ctx); !errors.Is(err, projection.ErrRunning) {
		t.Fatalf("Reset while running = %v, want ErrRunning", err)
	}
	if err := r.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if cp, _ := cps.Load(ctx, "orders"); cp != nova.Start || resets != 1 || len(rec.seen()) != 0 {
		t.Fatalf("after reset: checkpoint %s, resets %d, model %v", cp, resets, rec.seen())
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, r, pos)
	if got := rec.seen(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("rebuilt %v", got)
	}
}

func TestInvalidInput(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	s := newStore(t, novamem.Config{})
	p, _ := projection.New("ok", reg)
	cases := []struct {
		name string
		err  error
	}{
		{"empty name", func() error { _, err := projection.New("", reg); return err }()},
		{"control name", func() error { _, err := projection.New("a\nb", reg); return err }()},
		{"zero config", func() error { _, err := projection.NewRunner(projection.Config{}); return err }()},
		{"no store", func() error { _, err := projection.NewRunner(projection.Config{Projection: p}); return err }()},
		{"no projection", func() error { _, err := projection.NewRunner(projection.Config{Store: s}); return err }()},
		{"batch size", func() error {
			_, err := projection.NewRunner(projection.Config{Store: s, Projection: p, BatchSize: -1})
			return err
		}()},
		{"batch size too big", func() error {
			_, err := projection.NewRunner(projection.Config{Store: s, Projection: p, BatchSize: nova.MaxBatch + 1})
			return err
		}()},
		{"retries", func() error {
			_, err := projection.NewRunner(projection.Config{Store: s, Projection: p, Retries: -1})
			return err
		}()},
		{"on poison", func() error {
			_, err := projection.NewRunner(projection.Config{Store: s, Projection: p, OnPoison: 9})
			return err
		}()},
		{"unregistered type", projection.On(p, func(context.Context, nova.Event, PlaceOrder) error { return nil })},
		{"empty raw type", projection.OnType(p, "", func(context.Context, nova.Event) error { return nil })},
		{"second handler", func() error {
			h := func(context.Context, nova.Event, OrderPlaced) error { return nil }
			if err := projection.On(p, h); err != nil {
				return err
			}
			return projection.On(p, h)
		}()},
		{"checkpoint bad name", func() error { _, err := projection.NewMemoryCheckpoints().Load(context.Background(), ""); return err }()},
	}
	for _, c := range cases {
		if !errors.Is(c.err, nova.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", c.name, c.err)
		}
	}
	_, err := projection.NewRunner(projection.Config{Store: s, Projection: p, MaxBackoff: -1})
	if err == nil || !errors.Is(err, nova.ErrInvalid) || !strings.Contains(err.Error(), "MaxBackoff") {
		t.Fatalf("err %v does not name MaxBackoff", err)
	}
}

func TestStopIsPromptDuringBackoff(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	s := newStore(t, novamem.Config{})
	rec := &recorder{fail: func(v OrderPlaced) error { return errors.New("down") }}
	place(t, s, reg, "a")
	r := start(t, projection.Config{Store: s, Projection: newProjection(t, reg, rec), Retries: 5, RetryBackoff: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Stop(ctx); err != nil {
		t.Fatalf("Stop during an hour's backoff = %v", err)
	}
	if err := r.Wait(); err != nil {
		t.Fatalf("Wait = %v, want nil: a stop is not a poison event", err)
	}
	if st := r.Status(); st.State != projection.Stopped || st.Checkpoint != nova.Start {
		t.Fatalf("status %+v", st)
	}
}

func TestPoisonThenFixAndRestart(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	s := newStore(t, novamem.Config{})
	broken := true
	rec := &recorder{fail: func(v OrderPlaced) error {
		if broken && v.ID == "b" {
			return errors.New("bug")
		}
		return nil
	}}
	pos := place(t, s, reg, "a", "b", "c")
	r := start(t, projection.Config{Store: s, Projection: newProjection(t, reg, rec)})
	if err := r.Wait(); !errors.Is(err, projection.ErrPoison) {
		t.Fatalf("Wait = %v", err)
	}
	rec.mu.Lock()
	broken = false
	rec.mu.Unlock()
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, r, pos)
	if got := rec.seen(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("handled %v, want each event once", got)
	}
	if st := r.Status(); st.State != projection.Running || st.Err != nil {
		t.Fatalf("status after restart %+v", st)
	}
}

func TestUndecodableEventIsPoison(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	s := newStore(t, novamem.Config{})
	res, err := s.Append(context.Background(), "order-x", nova.NoStream, nova.EventData{Type: "OrderPlaced", Data: []byte(`{"id": 7}`)})
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, projection.Config{Store: s, Projection: newProjection(t, reg, &recorder{})})
	var pe *projection.PoisonError
	if err := r.Wait(); !errors.As(err, &pe) || pe.Position != res.Position || pe.Stream != "order-x" {
		t.Fatalf("Wait = %v, want a poison error naming order-x", err)
	}
}

// TestRunnerRestart checks the restart rule of every long-running
// component: one run at a time, and a stopped runner starts again and
// resumes from its checkpoint.
func TestRunnerRestart(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	s := newStore(t, novamem.Config{})
	rec := &recorder{}
	r := start(t, projection.Config{Store: s, Projection: newProjection(t, reg, rec)})
	stopped := r.Stopped()
	select {
	case <-stopped:
		t.Fatal("Stopped is closed while the runner runs")
	default:
	}
	if err := r.Start(t.Context()); !errors.Is(err, projection.ErrRunning) {
		t.Fatalf("Start while running = %v, want ErrRunning", err)
	}
	waitFor(t, r, place(t, s, reg, "a"))
	for i := range 3 {
		if err := r.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		select {
		case <-stopped:
		default:
			t.Fatalf("stop %d: Stopped is open after Stop returned nil", i)
		}
		if st := r.Status(); st.State != projection.Stopped {
			t.Fatalf("stop %d: state %s", i, st.State)
		}
		pos := place(t, s, reg, fmt.Sprint("stopped", i))
		if err := r.Start(t.Context()); err != nil {
			t.Fatalf("restart %d: %v", i, err)
		}
		stopped = r.Stopped()
		waitFor(t, r, pos)
	}
	if got := rec.seen(); !slices.Equal(got, []string{"a", "stopped0", "stopped1", "stopped2"}) {
		t.Fatalf("handled %v, want each event once", got)
	}
}
