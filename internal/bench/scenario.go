package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/nova-go/nova"
)

// target is what a scenario drives: a Nova store through novaTarget, or a
// [Raw] baseline.
type target interface {
	Append(ctx context.Context, stream string, version uint64, events []nova.EventData) error
	ReadStream(ctx context.Context, stream string) (int, error)
	ReadAll(ctx context.Context) (int, error)
}

// novaTarget drives a Nova store the way an application does.
type novaTarget struct{ s nova.Store }

func (t novaTarget) Append(ctx context.Context, stream string, version uint64, events []nova.EventData) error {
	_, err := t.s.Append(ctx, stream, nova.Exact(version), events...)
	return err
}

func (t novaTarget) ReadStream(ctx context.Context, stream string) (int, error) {
	n := 0
	for _, err := range t.s.ReadStream(ctx, stream, nova.ReadStreamOptions{}) {
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func (t novaTarget) ReadAll(ctx context.Context) (int, error) {
	n := 0
	for _, err := range t.s.ReadAll(ctx, nova.ReadAllOptions{}) {
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

type kind int

const (
	kindAppend kind = iota
	kindReadStream
	kindReadAll
	kindSaga
	kindProjection
	kindSagaProcs
)

// scenario is one workload. Sizes are the full-scale defaults.
type scenario struct {
	name string
	doc  string
	kind kind
	// writers and batch shape appends: how many goroutines append at once,
	// each to its own stream, and how many events each append carries.
	writers, batch int
	// events is, for appends, how many events a run appends; for reads,
	// how many events the stream or log holds.
	events int
	// reads is how many times a read run reads the whole stream or log.
	reads int
	// slice is how many appends each writer makes in one slice of a run:
	// the runner alternates nova and raw slice by slice.
	slice int
	// optIn keeps the scenario out of the default set: it runs only when
	// named (see [DefaultScenarioNames]).
	optIn bool
}

// scenarios are every scenario in the order they run by default.
var scenarios = []scenario{
	{name: "append-1", doc: "1 event per append, 1 writer", kind: kindAppend, writers: 1, batch: 1, events: 2000, slice: 10},
	{name: "append-1-8w", doc: "1 event per append, 8 writers on their own streams", kind: kindAppend, writers: 8, batch: 1, events: 4000, slice: 5},
	{name: "append-100", doc: "100 events per append, 1 writer", kind: kindAppend, writers: 1, batch: 100, events: 20_000, slice: 2},
	{name: "read-10k", doc: "ReadStream of a 10,000-event stream", kind: kindReadStream, events: 10_000, reads: 10},
	{name: "readall", doc: "ReadAll over 100,000 events", kind: kindReadAll, events: 100_000, reads: 3},
	{name: "saga-3step", doc: "durable 3-step sagas of no-op steps, 1 run at a time (sagas/s; no raw side)", kind: kindSaga, writers: 1, events: 1000, slice: 50, optIn: true},
	{name: "saga-3step-8", doc: "durable 3-step sagas of no-op steps, 8 runs at once (sagas/s; no raw side)", kind: kindSaga, writers: 8, events: 2000, slice: 25, optIn: true},
	{name: "saga-procs", doc: "durable 3-step sagas of no-op steps, all started first, driven by 1, 2, 3 worker processes of 8 runs at once each (sagas/s, speed-up; no raw side)", kind: kindSagaProcs, events: 2000, optIn: true},
	{name: "projection", doc: "projection catch-up over 50,000 events into a query-store read model, beside raw ReadAll", kind: kindProjection, events: 50_000, reads: 2, optIn: true},
	{name: "append-1-64w", doc: "1 event per append, 64 writers on their own streams", kind: kindAppend, writers: 64, batch: 1, events: 6400, slice: 2, optIn: true},
	{name: "repo-save-100", doc: "aggregate Repository.Save of 100 events, beside Append of the same values encoded by the registry", kind: kindRepoSave, writers: 1, batch: 100, events: 20_000, slice: 2, optIn: true},
	{name: "repo-load-10k", doc: "aggregate Repository.Load of a 10,000-event aggregate, beside ReadStream and a registry Decode of each event", kind: kindRepoLoad, events: 10_000, reads: 10, optIn: true},
}

// ScenarioNames returns the names of every scenario.
func ScenarioNames() []string {
	out := make([]string, len(scenarios))
	for i, s := range scenarios {
		out[i] = s.name
	}
	return out
}

// DefaultScenarioNames returns the scenarios [Run] runs when none are
// named, in that order: the event store's. The saga and projection
// scenarios run when named.
func DefaultScenarioNames() []string {
	var out []string
	for _, s := range scenarios {
		if !s.optIn {
			out = append(out, s.name)
		}
	}
	return out
}

// ScenarioDoc returns a one-line description of the named scenario, a
// store's or a broker's ([BrokerScenarioNames]), or "" for an unknown
// name.
func ScenarioDoc(name string) string {
	if s, ok := lookup(name); ok {
		return s.doc
	}
	s, _ := lookupBroker(name)
	return s.doc
}

func lookup(name string) (scenario, bool) {
	for _, s := range scenarios {
		if s.name == name {
			return s, true
		}
	}
	return scenario{}, false
}

// sizes are a scenario's sizes for one measurement.
type sizes struct {
	// events appended per run, or held by the stream or log read.
	events int
	// reads per read run.
	reads int
}

// sized scales the scenario: data sizes by dataScale, the amount of work a
// run repeats (events appended, reads of the data) by workScale as well.
func (s scenario) sized(dataScale, workScale float64) sizes {
	scale := func(n int, by float64, unit int) int {
		v := int(math.Round(float64(n) * by))
		v -= v % unit
		return max(v, unit)
	}
	switch s.kind {
	case kindAppend, kindRepoSave:
		return sizes{events: scale(s.events, dataScale*workScale, s.writers*s.batch)}
	case kindSaga:
		return sizes{events: scale(s.events, dataScale*workScale, s.writers)}
	case kindSagaProcs:
		return sizes{events: scale(s.events, dataScale*workScale, 1)}
	default:
		return sizes{events: scale(s.events, dataScale, 1), reads: scale(s.reads, workScale, 1)}
	}
}

// job is the timed part of a run, cut in slices so that the runner can
// alternate between nova and raw while both see the same machine.
type job struct {
	// slices is how many slices there are.
	slices int
	// slice runs slice i, 0 <= i < slices, and returns the number of events
	// it appended or read.
	slice func(ctx context.Context, i int) (int, error)
	// check, when set, runs after the last slice, untimed, and fails the
	// run when the side did not do all its work (an envelope the server
	// does not hold, one never delivered).
	check func(ctx context.Context) error
}

// prepare does the untimed part of a run on t (pre-filling, generating
// events) and returns the timed part.
func (s scenario) prepare(ctx context.Context, b Backend, t target, sz sizes) (job, error) {
	switch s.kind {
	case kindAppend:
		return s.prepareAppend(t, sz), nil
	case kindSaga:
		return s.prepareSaga(ctx, b, t, sz)
	case kindProjection:
		return s.prepareProjection(ctx, b, t, sz)
	case kindRepoSave, kindRepoLoad:
		return s.prepareRepo(ctx, t, sz)
	case kindReadStream:
		if err := fill(ctx, t, readStream, sz.events); err != nil {
			return job{}, err
		}
		return job{slices: sz.reads, slice: func(ctx context.Context, _ int) (int, error) {
			n, err := t.ReadStream(ctx, readStream)
			if err != nil {
				return 0, fmt.Errorf("read stream: %w", err)
			}
			if n != sz.events {
				return 0, fmt.Errorf("read stream: read %d events, want %d", n, sz.events)
			}
			return n, nil
		}}, nil
	default:
		if err := fillLog(ctx, t, sz.events); err != nil {
			return job{}, err
		}
		return readAllJob(t, sz), nil
	}
}

// fillLog appends n events to the log, spread over streams of fillBatch
// events, as a log of many aggregates is.
func fillLog(ctx context.Context, t target, n int) error {
	for i, left := 0, n; left > 0; i++ {
		k := min(left, fillBatch)
		if err := fill(ctx, t, fmt.Sprintf("bench-log-%d", i), k); err != nil {
			return err
		}
		left -= k
	}
	return nil
}

// readAllJob reads the whole log of sz.events events once per slice.
func readAllJob(t target, sz sizes) job {
	return job{slices: sz.reads, slice: func(ctx context.Context, _ int) (int, error) {
		n, err := t.ReadAll(ctx)
		if err != nil {
			return 0, fmt.Errorf("read all: %w", err)
		}
		if n != sz.events {
			return 0, fmt.Errorf("read all: read %d events, want %d", n, sz.events)
		}
		return n, nil
	}}
}

const (
	readStream = "bench-read"
	// fillBatch is how many events one pre-filling append carries.
	fillBatch = 1000
)

// fill appends n events to a new stream, fillBatch at a time.
func fill(ctx context.Context, t target, stream string, n int) error {
	for v := 0; v < n; {
		k := min(n-v, fillBatch)
		if err := t.Append(ctx, stream, uint64(v), Events(k)); err != nil {
			return fmt.Errorf("pre-fill %s: %w", stream, err)
		}
		v += k
	}
	return nil
}

// prepareAppend generates every batch each writer will append, then returns
// the timed part: in each slice, the writers append their next s.slice
// batches at once, each to its own stream, each append at the exact
// version the writer is at.
func (s scenario) prepareAppend(t target, sz sizes) job {
	perWriter := sz.events / s.writers / s.batch
	batches := make([][][]nova.EventData, s.writers)
	for w := range batches {
		batches[w] = make([][]nova.EventData, perWriter)
		for i := range perWriter {
			batches[w][i] = Events(s.batch)
		}
	}
	writer := func(ctx context.Context, w, from, to int) error {
		stream := fmt.Sprintf("bench-%d", w)
		for i := from; i < to; i++ {
			if err := t.Append(ctx, stream, uint64(i*s.batch), batches[w][i]); err != nil {
				return fmt.Errorf("append to %s: %w", stream, err)
			}
		}
		return nil
	}
	return job{
		slices: (perWriter + s.slice - 1) / s.slice,
		slice: func(ctx context.Context, i int) (int, error) {
			from, to := i*s.slice, min((i+1)*s.slice, perWriter)
			events := (to - from) * s.batch * s.writers
			if s.writers == 1 {
				return events, writer(ctx, 0, from, to)
			}
			errs := make([]error, s.writers)
			var wg sync.WaitGroup
			for w := range s.writers {
				wg.Go(func() { errs[w] = writer(ctx, w, from, to) })
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				return 0, err
			}
			return events, nil
		},
	}
}

// EventType is the type of every event the scenarios append.
const EventType = "bench.event"

// PayloadSize is the size in bytes of every event's data.
const PayloadSize = 1024

// payloadHead and payloadTail frame every event's data: the event's own ID
// between them, then padding to PayloadSize bytes. Every event has data of
// its own, as real events do, so a store cannot gain from events sharing
// identical data.
const (
	payloadHead = `{"kind":"bench","amount":12345,"currency":"EUR","ref":"`
	payloadMid  = `","note":"`
	payloadTail = `"}`
)

// payload returns PayloadSize bytes of JSON that carry id.
func payload(id string) []byte {
	b := make([]byte, 0, PayloadSize)
	b = append(b, payloadHead...)
	b = append(b, id...)
	b = append(b, payloadMid...)
	for len(b) < PayloadSize-len(payloadTail) {
		b = append(b, 'x')
	}
	return append(b, payloadTail...)
}

// Events returns n events ready to append: fresh IDs, [EventType], 1 KB of
// JSON data of their own (it carries the event's ID) and a correlation ID
// shared by the batch, as one command's events would have.
func Events(n int) []nova.EventData {
	md := nova.Metadata{CorrelationID: nova.NewEventID()}
	out := make([]nova.EventData, n)
	for i := range out {
		id := nova.NewEventID()
		out[i] = nova.EventData{ID: id, Type: EventType, Data: payload(id), Metadata: md}
	}
	return out
}

// unit is what the scenario's rates count.
func (s scenario) unit() string {
	if s.kind == kindSaga || s.kind == kindSagaProcs {
		return "sagas"
	}
	return "events"
}
