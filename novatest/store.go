package novatest

import (
	"context"
	"flag"
	"math"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/nova-go/nova"
)

var scaleFlag = flag.Float64("nova.scale", 0, "novatest: multiply the sizes of the load cases by this factor (default: $NOVA_TEST_SCALE, else 1)")

// StoreOption tunes [RunStore] for one backend.
type StoreOption func(*storeOptions)

type storeOptions struct {
	scale     float64
	timeout   time.Duration
	openTx    OpenTxFunc   // see server.go
	killConns ConnKillFunc // see server.go
}

// WithScale multiplies the sizes of the load cases by f, on top of
// -nova.scale or NOVA_TEST_SCALE (see the package documentation). A
// backend whose every append crosses a network may pass a factor below 1
// to keep its default run short; NOVA_TEST_SCALE set to the inverse still
// runs it at full size.
func WithScale(f float64) StoreOption {
	return func(o *storeOptions) { o.scale = f }
}

// WithTimeout sets how long the suite waits for something that must end or
// arrive (a cancelled subscription, a Close, the next event of a
// subscription, a whole case's calls) before failing. Default 1 minute.
// The load cases are bounded by go test's own -timeout only.
func WithTimeout(d time.Duration) StoreOption {
	return func(o *storeOptions) { o.timeout = d }
}

// Scale returns the factor set by -nova.scale or NOVA_TEST_SCALE, 1 when
// neither is set. It fails t when the value is not a positive number.
func Scale(t testing.TB) float64 {
	t.Helper()
	f, _ := scaleSetting(t)
	return f
}

// scaleSetting returns the factor set by -nova.scale or NOVA_TEST_SCALE and
// true, or 1 and false when neither is set.
func scaleSetting(t testing.TB) (float64, bool) {
	t.Helper()
	if *scaleFlag != 0 {
		if !(*scaleFlag > 0) || math.IsInf(*scaleFlag, 0) {
			t.Fatalf("novatest: -nova.scale=%v: want a positive number", *scaleFlag)
		}
		return *scaleFlag, true
	}
	env := os.Getenv("NOVA_TEST_SCALE")
	if env == "" {
		return 1, false
	}
	f, err := strconv.ParseFloat(env, 64)
	if err != nil || !(f > 0) || math.IsInf(f, 0) {
		t.Fatalf("novatest: NOVA_TEST_SCALE=%q: want a positive number", env)
	}
	return f, true
}

// exactDefault is the share of the full size RaceExact runs when no
// scale is set; see raceExactAppends.
const exactDefault = 0.1

// suite is one run of RunStore: the backend's constructor and options.
type suite struct {
	newStore  func(t *testing.T) nova.Store
	scale     float64 // for every load case
	exact     float64 // for RaceExact
	timeout   time.Duration
	openTx    OpenTxFunc   // nil: OpenTransaction skips
	killConns ConnKillFunc // nil: ConnectionDrop skips
}

// RunStore runs the event store conformance suite against the stores
// newStore returns. newStore must return a fresh, empty store each time it
// is called and register the store's cleanup (Close) with t; it is called
// from parallel subtests. See the package documentation for the sizes.
//
// The suite asks one store for its optional capabilities: a store that is
// an [AtomicBatcher] reporting false runs only the cases that append one
// event at a time.
func RunStore(t *testing.T, newStore func(t *testing.T) nova.Store, opts ...StoreOption) {
	t.Helper()
	o := storeOptions{scale: 1, timeout: time.Minute}
	for _, opt := range opts {
		opt(&o)
	}
	if !(o.scale > 0) || math.IsInf(o.scale, 0) {
		t.Fatalf("novatest: WithScale(%v): want a positive number", o.scale)
	}
	if o.timeout <= 0 {
		t.Fatalf("novatest: WithTimeout(%v): want a positive duration", o.timeout)
	}
	scale, set := scaleSetting(t)
	scale *= o.scale
	if testing.Short() {
		scale /= 10
	}
	exact := scale
	if !set {
		exact *= exactDefault
	}
	s := &suite{newStore: newStore, scale: scale, exact: exact, timeout: o.timeout, openTx: o.openTx, killConns: o.killConns}

	// The case that watches goroutines runs first, before the parallel
	// cases start (they wait until this function returns), so a leak it
	// reports is less likely to come from a failure elsewhere.
	if singleEventAppends(s.store(t)) {
		s.runSingle(t)
		return
	}
	t.Run("Release", s.testRelease)
	// These two run alone too, before the parallel cases: an open
	// transaction may hold back every reader of the store, and dropped
	// connections would fail the other cases' calls in flight.
	t.Run("OpenTransaction", s.testOpenTransaction)
	t.Run("ConnectionDrop", s.testConnectionDrop)

	t.Run("ExpectedVersion", s.testExpectedVersion)
	t.Run("AppendResult", s.testAppendResult)
	t.Run("AtomicBatch", s.testAtomicBatch)
	t.Run("AtomicVisibility", s.testAtomicVisibility)
	t.Run("Idempotency", s.testIdempotency)
	t.Run("ReadStream", s.testReadStream)
	t.Run("ReadAll", s.testReadAll)
	t.Run("Streams", s.testStreams)
	t.Run("SubscribeResume", s.testSubscribeResume)
	t.Run("SubscribeWakeUp", s.testSubscribeWakeUp)
	t.Run("RoundTrip", s.testRoundTrip)
	t.Run("Limits", s.testLimits)
	t.Run("Cancel", s.testCancel)
	t.Run("BadInput", s.testBadInput)
	t.Run("Close", s.testClose)
	t.Run("RaceExact", s.testRaceExact)
	t.Run("RaceAny", s.testRaceAny)
	t.Run("RaceCreate", s.testRaceCreate)
	t.Run("RaceRetry", s.testRaceRetry)
	t.Run("StreamOrder", s.testStreamOrder)
	t.Run("SubscribeWriters", s.testSubscribeWriters)
	t.Run("SubscribeDuringWrites", s.testSubscribeDuringWrites)
}

// store returns a fresh store from the backend's constructor.
func (s *suite) store(t *testing.T) nova.Store {
	t.Helper()
	st := s.newStore(t)
	if st == nil {
		t.Fatal("novatest: the store constructor returned nil")
	}
	return st
}

// ctx returns a context for one test, ended by the suite's timeout.
func (s *suite) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), s.timeout)
	t.Cleanup(cancel)
	return ctx
}

// n scales a size, keeping it at least 1.
func (s *suite) n(size int) int {
	return scaled(size, s.scale)
}

func scaled(size int, by float64) int {
	return max(1, int(math.Round(float64(size)*by)))
}
