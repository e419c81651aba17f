package saga_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/saga"
)

// collisions are pairs of runs whose names, joined with '-', read alike.
var collisions = [][2][2]string{
	{{"a-b", "c"}, {"a", "b-c"}},
	{{"a-b-c", "d"}, {"a", "b-c-d"}},
	{{"p-q", "r-s"}, {"p-q-r", "s"}},
	{{"x-", "y"}, {"x", "-y"}},
	{{"order-fulfil", "42"}, {"order", "fulfil-42"}},
}

func TestStreamNamesAndEnvelopeIDsAreInjective(t *testing.T) {
	t.Parallel()
	// The common case reads as it always did.
	for _, c := range []struct{ got, want string }{
		{saga.StreamName("order", "r-1"), "saga-order-r-1"},
		{saga.StreamName("order", "a.b/c-d"), "saga-order-a.b/c-d"},
		{saga.EnvelopeID("order", "r-1", "charge", "started", 2), "order-r-1-charge-started-2"},
		// A '-' in a saga or step name reads as '.', which no name holds.
		{saga.StreamName("order-fulfil", "42"), "saga-order.fulfil-42"},
		{saga.EnvelopeID("order-fulfil", "42", "take-payment", "failed", 1), "order.fulfil-42-take.payment-failed-1"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	for _, c := range collisions {
		a, b := c[0], c[1]
		if sa, sb := saga.StreamName(a[0], a[1]), saga.StreamName(b[0], b[1]); sa == sb {
			t.Errorf("runs %q and %q share stream %q", a, b, sa)
		}
		if ea, eb := saga.EnvelopeID(a[0], a[1], "s", "started", 1), saga.EnvelopeID(b[0], b[1], "s", "started", 1); ea == eb {
			t.Errorf("runs %q and %q share envelope ID %q", a, b, ea)
		}
	}
	// Step names hold '-' too: run "r-x" step "y" and run "r" step "x-y".
	if a, b := saga.EnvelopeID("s", "r-x", "y", "started", 1), saga.EnvelopeID("s", "r", "x-y", "started", 1); a == b {
		t.Errorf("two runs' steps share envelope ID %q", a)
	}

	// Random names from a small alphabet: no two keys give one name.
	rng := rand.New(rand.NewPCG(1, 2))
	word := func(alphabet string, n int) string {
		var b strings.Builder
		for range 1 + rng.IntN(n) {
			b.WriteByte(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	streams, ids := map[string]string{}, map[string]string{}
	for range 20000 {
		sg, run, step := word("a-_", 4), word("a-./_", 5), word("b-", 3)
		if sg == "saga" || step == "saga" {
			continue
		}
		status, attempt := []string{"started", "compensation_failed", "stuck"}[rng.IntN(3)], 1+rng.IntN(11)
		key := fmt.Sprintf("%q %q", sg, run)
		if prev, ok := streams[saga.StreamName(sg, run)]; ok && prev != key {
			t.Fatalf("runs %s and %s share stream %q", prev, key, saga.StreamName(sg, run))
		}
		streams[saga.StreamName(sg, run)] = key
		key = fmt.Sprintf("%q %q %q %q %d", sg, run, step, status, attempt)
		id := saga.EnvelopeID(sg, run, step, status, attempt)
		if prev, ok := ids[id]; ok && prev != key {
			t.Fatalf("events %s and %s share envelope ID %q", prev, key, id)
		}
		ids[id] = key
	}
}

// named is a saga of two steps that record which saga and run they ran
// for, in the data and in calls.
func named(t *testing.T, name string, calls *[]string, mu *sync.Mutex) *saga.Definition[order] {
	t.Helper()
	step := func(s string) saga.Step[order] {
		return saga.Step[order]{Name: s, Retry: fast, Execute: func(_ context.Context, sc saga.StepContext, d *order) error {
			mu.Lock()
			*calls = append(*calls, sc.Saga+"/"+sc.RunID+"/"+s)
			mu.Unlock()
			d.Log = append(d.Log, sc.Saga+"/"+sc.RunID)
			return nil
		}}
	}
	def, err := saga.Define(name, step("one"), step("two"))
	if err != nil {
		t.Fatal(err)
	}
	return def
}

// checkApart checks that each run of pairs ran its own steps and keeps
// its own stream, row and lifecycle events.
func checkApart(t *testing.T, c *saga.Coordinator, runs saga.RunStore, defs map[string]*saga.Definition[order], pairs [][2]string, calls []string, poll func(topic string) []string) {
	t.Helper()
	for _, p := range pairs {
		sg, run := p[0], p[1]
		x, err := saga.Load(t.Context(), c, defs[sg], run)
		if err != nil || x.Status != saga.Completed || x.Saga != sg || x.RunID != run ||
			!slices.Equal(x.Data.Log, []string{sg + "/" + run, sg + "/" + run}) {
			t.Errorf("run %s/%s: %+v, %v", sg, run, x, err)
		}
		for _, s := range []string{"one", "two"} {
			if !slices.Contains(calls, sg+"/"+run+"/"+s) {
				t.Errorf("step %s of run %s/%s never ran; calls %v", s, sg, run, calls)
			}
		}
		row, err := runs.Get(t.Context(), sg, run)
		if err != nil || row.Status != saga.Completed || row.Version != x.Version {
			t.Errorf("row of %s/%s: %+v, %v", sg, run, row, err)
		}
		// Every lifecycle event of the run reached the broker: none was
		// dropped as a duplicate of another run's.
		want := saga.EnvelopeID(sg, run, "saga", "completed", 1)
		if got := poll("saga." + sg + ".saga.completed"); !slices.Contains(got, want) {
			t.Errorf("run %s/%s: completed envelopes %v, want %q among them", sg, run, got, want)
		}
		for _, s := range []string{"one", "two"} {
			want := saga.EnvelopeID(sg, run, s, "succeeded", 1)
			if got := poll("saga." + sg + "." + s + ".succeeded"); !slices.Contains(got, want) {
				t.Errorf("run %s/%s: %s succeeded envelopes %v, want %q among them", sg, run, s, got, want)
			}
		}
	}
}

func TestCollidingRunsStayApart(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		var calls []string
		var mu sync.Mutex
		defs := map[string]*saga.Definition[order]{}
		var pairs [][2]string
		for _, c := range collisions[:2] {
			for _, p := range c {
				if defs[p[0]] == nil {
					defs[p[0]] = named(t, p[0], &calls, &mu)
				}
				x, err := saga.Run(t.Context(), e.c, defs[p[0]], p[1], order{})
				if err != nil || x.Status != saga.Completed || x.Saga != p[0] || x.RunID != p[1] {
					t.Fatalf("run %s/%s: %+v, %v", p[0], p[1], x, err)
				}
				pairs = append(pairs, p)
			}
		}
		received := map[string][]string{}
		poll := func(topic string) []string {
			got, err := e.broker.Poll(t.Context(), topic, 100)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range got {
				received[topic] = append(received[topic], g.ID)
			}
			return received[topic]
		}
		checkApart(t, e.c, e.runs, defs, pairs, calls, poll)
	})
}

func TestCollidingStepsKeepTheirEvents(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		var calls []string
		var mu sync.Mutex
		// Two definitions of one saga: run "r-x" with step "y", run "r"
		// with step "x-y".
		d1, _ := saga.Define("s", pass("y", &calls, &mu))
		d2, _ := saga.Define("s", pass("x-y", &calls, &mu))
		if _, err := saga.Run(t.Context(), e.c, d1, "r-x", order{}); err != nil {
			t.Fatal(err)
		}
		if _, err := saga.Run(t.Context(), e.c, d2, "r", order{}); err != nil {
			t.Fatal(err)
		}
		for topic, run := range map[string]string{"saga.s.y.started": "r-x", "saga.s.x-y.started": "r"} {
			got, err := e.broker.Poll(t.Context(), topic, 10)
			if err != nil || len(got) != 1 || got[0].Key != run {
				t.Errorf("%s: %v, %v; want run %s's one envelope", topic, got, err, run)
			}
		}
	})
}

func TestCollidingRunsThroughWorker(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		f := setup(t, b, 0)
		var calls []string
		var mu sync.Mutex
		defs := map[string]*saga.Definition[order]{}
		var pairs [][2]string
		for _, c := range collisions {
			for _, p := range c {
				if defs[p[0]] == nil {
					defs[p[0]] = named(t, p[0], &calls, &mu)
				}
				x, err := saga.Start(t.Context(), f.c, defs[p[0]], p[1], order{})
				if err != nil || x.Status != saga.Running || x.Saga != p[0] || x.RunID != p[1] || x.Version != 1 {
					t.Fatalf("start %s/%s: %+v, %v", p[0], p[1], x, err)
				}
				pairs = append(pairs, p)
			}
		}
		w, err := saga.NewWorker(f.c, fastPoll)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range defs {
			if err := saga.Register(w, d); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = w.Stop(context.Background()) })
		f.waitEndedKeys(t, len(pairs))
		waitFor(t, "the outbox to drain", func() bool {
			p, err := f.runs.Outbox().Pending(t.Context(), 1)
			return err == nil && len(p) == 0
		})
		mu.Lock()
		got := slices.Clone(calls)
		mu.Unlock()
		received := map[string][]string{}
		poll := func(topic string) []string {
			got, err := f.broker.Poll(t.Context(), topic, 100)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range got {
				received[topic] = append(received[topic], g.ID)
			}
			return received[topic]
		}
		checkApart(t, f.c, f.runs, defs, pairs, got, poll)
	})
}

// waitEndedKeys waits for n runs to end, told apart by saga and run ID.
func (f *fixture) waitEndedKeys(t *testing.T, n int) map[[2]string]saga.RunInfo {
	t.Helper()
	got := map[[2]string]saga.RunInfo{}
	timeout := time.After(20 * time.Second)
	for len(got) < n {
		select {
		case r := <-f.ended:
			got[[2]string{r.Saga, r.RunID}] = r
		case <-timeout:
			t.Fatalf("%d of %d runs ended: %v", len(got), n, got)
		}
	}
	return got
}

// writeLegacyRun records the start of a run and its first step's first
// attempt as versions of Nova that named every run's stream
// "saga-{saga}-{run}" did, and returns that stream.
func writeLegacyRun(t *testing.T, runs saga.RunStore, sagaName, runID string, steps []string, data any) string {
	t.Helper()
	stream := "saga-" + sagaName + "-" + runID
	raw, _ := json.Marshal(data)
	start, _ := json.Marshal(map[string]any{"saga": sagaName, "run_id": runID, "steps": steps, "data": json.RawMessage(raw)})
	// The run store refuses to create a run at the old name, so the
	// first event goes in through the event store.
	if _, err := runs.Events().Append(t.Context(), stream, nova.NoStream,
		nova.EventData{Type: saga.EventRunStarted, Data: start, Metadata: nova.Metadata{CorrelationID: runID}}); err != nil {
		t.Fatal(err)
	}
	now, err := runs.Now(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	attempt, _ := json.Marshal(map[string]any{"step": steps[0], "attempt": 1})
	if _, err := runs.Record(t.Context(), saga.Transition{
		Stream: stream, Expected: nova.Exact(1),
		Events: []nova.EventData{{ID: nova.NewEventID(), Type: saga.EventStepStarted, Data: attempt}},
		Run:    saga.RunInfo{Saga: sagaName, RunID: runID, Status: saga.Running, Step: steps[0], Attempt: 1, DueAt: now, CreatedAt: now, UpdatedAt: now},
	}); err != nil {
		t.Fatal(err)
	}
	return stream
}

func TestLegacyRunResumes(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		f := setup(t, b, 0)
		var calls []string
		var mu sync.Mutex
		def := named(t, "order-fulfil", &calls, &mu)
		// A run an older version left mid-attempt of its first step, under
		// the stream name it gave every run.
		legacy := writeLegacyRun(t, f.runs, "order-fulfil", "r-1", []string{"one", "two"}, order{Reservation: "old"})
		if legacy == saga.StreamName("order-fulfil", "r-1") {
			t.Fatalf("the legacy name %q is the new one", legacy)
		}
		// Found by Load, Timeline and Start, which records nothing.
		x, err := saga.Load(t.Context(), f.c, def, "r-1")
		if err != nil || x.Status != saga.Running || x.Version != 2 || x.Data.Reservation != "old" {
			t.Fatalf("load: %+v, %v", x, err)
		}
		if tl, err := saga.Timeline(t.Context(), f.runs, "order-fulfil", "r-1"); err != nil || len(tl) != 2 {
			t.Fatalf("timeline: %+v, %v", tl, err)
		}
		x, err = saga.Start(t.Context(), f.c, def, "r-1", order{Reservation: "new"})
		if err != nil || x.Version != 2 || x.Data.Reservation != "old" {
			t.Fatalf("start of the legacy run: %+v, %v", x, err)
		}
		// A worker resumes it where it stopped, in its stream.
		worker(t, f, fastPoll, def)
		if ended := f.waitEnded(t, 1); ended["r-1"].Status != saga.Completed {
			t.Fatalf("ended %+v", ended)
		}
		x, err = saga.Load(t.Context(), f.c, def, "r-1")
		if err != nil || x.Status != saga.Completed || x.Data.Reservation != "old" || len(x.Data.Log) != 2 {
			t.Fatalf("after the worker: %+v, %v", x, err)
		}
		if n := len(readStream(t, f.runs, legacy)); uint64(n) != x.Version {
			t.Fatalf("legacy stream holds %d events, want %d", n, x.Version)
		}
		if n := len(readStream(t, f.runs, saga.StreamName("order-fulfil", "r-1"))); n != 0 {
			t.Fatalf("the new stream holds %d events, want none", n)
		}
		// Run of an ended legacy run returns it.
		if again, err := saga.Run(t.Context(), f.c, def, "r-1", order{}); err != nil || again.Status != saga.Completed || again.Version != x.Version {
			t.Fatalf("run of the ended legacy run: %+v, %v", again, err)
		}
		mu.Lock()
		defer mu.Unlock()
		// The interrupted attempt ran again, then step two.
		if !slices.Equal(calls, []string{"order-fulfil/r-1/one", "order-fulfil/r-1/two"}) {
			t.Fatalf("calls %v", calls)
		}
	})
}

func TestLegacyStreamOfAnotherRun(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		var calls []string
		var mu sync.Mutex
		// An older version recorded run "c" of saga "a-b" in stream
		// "saga-a-b-c", which is now the name of run "b-c" of saga "a".
		writeLegacyRun(t, e.runs, "a-b", "c", []string{"one", "two"}, order{})
		a := named(t, "a", &calls, &mu)
		before := readStream(t, e.runs, "saga-a-b-c")
		for name, f := range map[string]func() error{
			"Start": func() error { _, err := saga.Start(t.Context(), e.c, a, "b-c", order{}); return err },
			"Run":   func() error { _, err := saga.Run(t.Context(), e.c, a, "b-c", order{}); return err },
			"Load":  func() error { _, err := saga.Load(t.Context(), e.c, a, "b-c"); return err },
		} {
			err := f()
			if !errors.Is(err, nova.ErrConcurrency) || !strings.Contains(err.Error(), `run "c" of "a-b"`) {
				t.Errorf("%s of a/b-c: %v; want a conflict naming the run the stream holds", name, err)
			}
		}
		if after := readStream(t, e.runs, "saga-a-b-c"); len(after) != len(before) {
			t.Fatalf("the stream grew from %d to %d events", len(before), len(after))
		}
		if _, err := e.runs.Get(t.Context(), "a", "b-c"); !errors.Is(err, nova.ErrNotFound) {
			t.Fatalf("row of a/b-c: %v, want none", err)
		}
		if len(calls) != 0 {
			t.Fatalf("calls %v", calls)
		}
		// The legacy run is still found by its own saga.
		ab := named(t, "a-b", &calls, &mu)
		if x, err := saga.Load(t.Context(), e.c, ab, "c"); err != nil || x.Saga != "a-b" || x.RunID != "c" {
			t.Fatalf("load of a-b/c: %+v, %v", x, err)
		}
		// An operator acts on it in its stream.
		if info, err := saga.AbandonRun(t.Context(), e.runs, "a-b", "c", "alice", "left over"); err != nil || info.Status != saga.Failed {
			t.Fatalf("abandon of a-b/c: %+v, %v", info, err)
		}
		if after := readStream(t, e.runs, "saga-a-b-c"); len(after) != len(before)+1 || after[len(before)].Type != saga.EventRunAbandoned {
			t.Fatalf("the legacy stream after the abandonment holds %d events", len(after))
		}
	})
}

func readStream(t *testing.T, runs saga.RunStore, stream string) []nova.Event {
	t.Helper()
	var out []nova.Event
	for e, err := range runs.Events().ReadStream(t.Context(), stream, nova.ReadStreamOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// keyCollisions are pairs of calls, (saga, run, step, compensation),
// whose idempotency keys would read alike if the parts were joined with
// '/' as they are: a run ID may hold '/' (and the escape '%').
type keyCall struct {
	saga, run, step string
	compensate      bool
}

var keyCollisions = [][2]keyCall{
	// Run "r/x" step "compensate" and the compensation of run "r" step "x".
	{{"s", "r/x", "compensate", false}, {"s", "r", "x", true}},
	// Run "r/x/y" step "compensate" and the compensation of run "r/x" step "y".
	{{"s", "r/x/y", "compensate", false}, {"s", "r/x", "y", true}},
	// A run ID that holds what '/' is written as.
	{{"s", "a%2Fb", "c", false}, {"s", "a/b", "c", false}},
	{{"s", "a%252Fb", "c", false}, {"s", "a%2Fb", "c", false}},
	// Arbitrary parts: a '/' in a saga or step name moves the boundaries.
	{{"s/r", "x", "y", false}, {"s", "r/x", "y", false}},
	{{"s", "r", "x/compensate", false}, {"s", "r", "x", true}},
}

func TestIdempotencyKeysAreInjective(t *testing.T) {
	t.Parallel()
	// Keys of names without '/' or '%' read as they always did.
	for _, c := range []struct {
		call keyCall
		want string
	}{
		{keyCall{"order", "r1", "charge", false}, "order/r1/charge"},
		{keyCall{"order", "r1", "charge", true}, "order/r1/charge/compensate"},
		{keyCall{"order-fulfil", "a-b.c:d é", "take-payment", true}, "order-fulfil/a-b.c:d é/take-payment/compensate"},
		{keyCall{"s", "r/x", "compensate", false}, "s/r%2Fx/compensate"},
		{keyCall{"s", "100%", "y", false}, "s/100%25/y"},
	} {
		if got := saga.IdempotencyKey(c.call.saga, c.call.run, c.call.step, c.call.compensate); got != c.want {
			t.Errorf("IdempotencyKey%+v = %q, want %q", c.call, got, c.want)
		}
	}
	for _, c := range keyCollisions {
		a, b := c[0], c[1]
		ka, kb := saga.IdempotencyKey(a.saga, a.run, a.step, a.compensate), saga.IdempotencyKey(b.saga, b.run, b.step, b.compensate)
		if ka == kb {
			t.Errorf("calls %+v and %+v share idempotency key %q", a, b, ka)
		}
	}
}

// unescapeKeyPart undoes the escaping of one part of an idempotency key.
var unescapeKeyPart = strings.NewReplacer("%2F", "/", "%25", "%")

// FuzzIdempotencyKey: two different calls never share a key, and every
// key splits back into the call it was made from.
func FuzzIdempotencyKey(f *testing.F) {
	for _, c := range keyCollisions {
		a, b := c[0], c[1]
		f.Add(a.saga, a.run, a.step, a.compensate, b.saga, b.run, b.step, b.compensate)
	}
	f.Add("order", "r1", "charge", false, "order", "r1", "charge", true)
	f.Fuzz(func(t *testing.T, s1, r1, st1 string, c1 bool, s2, r2, st2 string, c2 bool) {
		a, b := keyCall{s1, r1, st1, c1}, keyCall{s2, r2, st2, c2}
		ka, kb := saga.IdempotencyKey(s1, r1, st1, c1), saga.IdempotencyKey(s2, r2, st2, c2)
		if ka == kb && a != b {
			t.Fatalf("calls %+v and %+v share idempotency key %q", a, b, ka)
		}
		parts := strings.Split(ka, "/")
		got := keyCall{compensate: len(parts) == 4}
		if len(parts) < 3 || len(parts) > 4 || got.compensate && parts[3] != "compensate" {
			t.Fatalf("key %q of %+v: want saga/run/step[/compensate]", ka, a)
		}
		got.saga, got.run, got.step = unescapeKeyPart.Replace(parts[0]), unescapeKeyPart.Replace(parts[1]), unescapeKeyPart.Replace(parts[2])
		if got != a {
			t.Fatalf("key %q reads as %+v, want %+v", ka, got, a)
		}
	})
}

// TestIdempotencyKeysOfRunsWithSlash: the calls of two runs of one saga,
// whose run IDs and step names would join into the same text, get
// different idempotency keys, as a payment API deduplicating on them
// needs.
func TestIdempotencyKeysOfRunsWithSlash(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		var mu sync.Mutex
		keys := map[string]string{} // key → the call that got it
		record := func(sc saga.StepContext, what string) error {
			call := fmt.Sprintf("run %q %s", sc.RunID, what)
			mu.Lock()
			defer mu.Unlock()
			if prev, ok := keys[sc.IdempotencyKey]; ok && prev != call {
				return saga.Permanent(fmt.Errorf("%s got key %q of %s", call, sc.IdempotencyKey, prev))
			}
			keys[sc.IdempotencyKey] = call
			return nil
		}
		x := saga.Step[order]{
			Name:       "x",
			Execute:    func(_ context.Context, sc saga.StepContext, _ *order) error { return record(sc, "step x") },
			Compensate: func(_ context.Context, sc saga.StepContext, _ *order) error { return record(sc, "compensation of x") },
		}
		comp := saga.Step[order]{
			Name: "compensate",
			Execute: func(_ context.Context, sc saga.StepContext, _ *order) error {
				if err := record(sc, "step compensate"); err != nil {
					return err
				}
				if sc.RunID == "r" {
					return saga.Permanent(errBoom)
				}
				return nil
			},
		}
		def, err := saga.Define("s", x, comp)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := saga.Run(t.Context(), e.c, def, "r", order{}); !errors.Is(err, errBoom) {
			t.Fatalf("run r: %v, want it compensated after errBoom", err)
		}
		run, err := saga.Run(t.Context(), e.c, def, "r/x", order{})
		if err != nil || run.Status != saga.Completed {
			t.Fatalf("run r/x: %+v, %v; keys %v", run, err, keys)
		}
		if len(keys) != 5 {
			t.Fatalf("keys %v: want one for each of the 5 calls", keys)
		}
	})
}
