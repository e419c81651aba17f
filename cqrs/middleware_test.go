package cqrs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/cqrs"
)

// newBus returns a command bus with mw whose placeOrder handler is h.
func newBus(t *testing.T, h func(context.Context, placeOrder) error, mw ...cqrs.Middleware) *cqrs.CommandBus {
	t.Helper()
	bus := cqrs.NewCommandBus(mw...)
	if err := cqrs.Handle(bus, h); err != nil {
		t.Fatal(err)
	}
	return bus
}

func TestValidation(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	bus := newBus(t, counting(&n, nil), cqrs.Validation())
	if err := cqrs.Handle(bus, func(context.Context, cancelOrder) error { n.Add(1); return nil }); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	tests := []struct {
		name    string
		cmd     any
		wantErr string // "" for success
		calls   int32
	}{
		{"valid", placeOrder{Order: "7", Lines: 1}, "", 1},
		{"empty order", placeOrder{Lines: 1}, "empty order ID", 0},
		{"no lines", placeOrder{Order: "7"}, "0 lines", 0},
		{"no Validate method", cancelOrder{}, "", 1},
	}
	for _, tt := range tests {
		before := n.Load()
		err := bus.Dispatch(ctx, tt.cmd)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.wantErr != "" && (!errors.Is(err, nova.ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "cqrs: invalid command")):
			t.Errorf("%s: %v, want an error matching nova.ErrInvalid mentioning %q", tt.name, err, tt.wantErr)
		}
		if got := n.Load() - before; got != tt.calls {
			t.Errorf("%s: handler ran %d times, want %d", tt.name, got, tt.calls)
		}
	}
	// The cause stays reachable.
	sentinel := errors.New("sentinel")
	qbus := cqrs.NewQueryBus(cqrs.Validation())
	if err := cqrs.HandleQuery(qbus, func(context.Context, badQuery) (int, error) { return 1, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := cqrs.Ask[int](ctx, qbus, badQuery{err: sentinel}); !errors.Is(err, sentinel) || !errors.Is(err, nova.ErrInvalid) {
		t.Fatalf("invalid query: %v, want an error matching both its cause and nova.ErrInvalid", err)
	}
}

type badQuery struct{ err error }

func (q badQuery) Validate() error { return q.err }

func TestRetryConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []cqrs.RetryConfig{{Attempts: -1}, {Base: -time.Second}, {Max: -1}} {
		if _, err := cqrs.Retry(cfg); !errors.Is(err, nova.ErrInvalid) || !strings.Contains(err.Error(), "RetryConfig.") {
			t.Errorf("Retry(%+v) = %v, want an error matching nova.ErrInvalid naming the field", cfg, err)
		}
	}
	if _, err := cqrs.Retry(cqrs.RetryConfig{}); err != nil {
		t.Errorf("Retry(RetryConfig{}): %v", err)
	}
}

var conflict = &nova.ConcurrencyError{Stream: "order-7", Expected: nova.Exact(1), Actual: 2}

func TestRetry(t *testing.T) {
	t.Parallel()
	other := errors.New("not a conflict")
	tests := []struct {
		name      string
		attempts  int
		failures  int   // the handler fails this many times, then succeeds
		err       error // with this error
		wantCalls int32
		wantErr   error
	}{
		{"success at once", 3, 0, nil, 1, nil},
		{"conflict then success", 3, 2, conflict, 3, nil},
		{"conflict past the limit", 3, 10, conflict, 3, nova.ErrConcurrency},
		{"one attempt", 1, 10, conflict, 1, nova.ErrConcurrency},
		{"default attempts", 0, 10, conflict, 5, nova.ErrConcurrency},
		{"other error is not retried", 3, 10, other, 1, other},
		{"wrapped conflict", 3, 1, fmt.Errorf("save: %w", conflict), 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			retry, err := cqrs.Retry(cqrs.RetryConfig{Attempts: tt.attempts, Base: time.Microsecond, Max: 10 * time.Microsecond})
			if err != nil {
				t.Fatal(err)
			}
			var n atomic.Int32
			bus := newBus(t, func(context.Context, placeOrder) error {
				if int(n.Add(1)) <= tt.failures {
					return tt.err
				}
				return nil
			}, retry)
			err = bus.Dispatch(t.Context(), placeOrder{})
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Dispatch = %v, want %v", err, tt.wantErr)
			}
			if n.Load() != tt.wantCalls {
				t.Fatalf("handler ran %d times, want %d", n.Load(), tt.wantCalls)
			}
			if errors.Is(tt.wantErr, nova.ErrConcurrency) {
				var ce *nova.ConcurrencyError
				if !errors.As(err, &ce) || ce.Stream != "order-7" || !strings.Contains(err.Error(), fmt.Sprintf("after %d attempts", tt.wantCalls)) {
					t.Fatalf("error %q does not keep the conflict or count the attempts", err)
				}
			}
		})
	}
}

func TestRetryHonoursContext(t *testing.T) {
	t.Parallel()
	retry, err := cqrs.Retry(cqrs.RetryConfig{Attempts: 100, Base: time.Hour, Max: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("cancelled while waiting", func(t *testing.T) {
		t.Parallel()
		var n atomic.Int32
		called := make(chan struct{}, 100)
		bus := newBus(t, func(context.Context, placeOrder) error {
			n.Add(1)
			called <- struct{}{}
			return conflict
		}, retry)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- bus.Dispatch(ctx, placeOrder{}) }()
		<-called
		cancel()
		err := <-done
		if !errors.Is(err, context.Canceled) || !errors.Is(err, nova.ErrConcurrency) {
			t.Fatalf("Dispatch = %v, want an error matching context.Canceled and nova.ErrConcurrency", err)
		}
		if n.Load() != 1 {
			t.Fatalf("handler ran %d times, want 1", n.Load())
		}
	})
	t.Run("deadline passed in the handler", func(t *testing.T) {
		t.Parallel()
		var n atomic.Int32
		ctx, cancel := context.WithCancel(t.Context())
		bus := newBus(t, func(context.Context, placeOrder) error {
			n.Add(1)
			cancel()
			return conflict
		}, retry)
		if err := bus.Dispatch(ctx, placeOrder{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("Dispatch = %v, want context.Canceled", err)
		}
		if n.Load() != 1 {
			t.Fatalf("handler ran %d times, want 1", n.Load())
		}
	})
}

// failingHandled is a HandledStore whose calls fail.
type failingHandled struct {
	cqrs.MemoryHandled
	failHandled, failMark error
}

func (f *failingHandled) Handled(ctx context.Context, cmd cqrs.CommandKey) (bool, error) {
	if f.failHandled != nil {
		return false, f.failHandled
	}
	return f.MemoryHandled.Handled(ctx, cmd)
}

func (f *failingHandled) MarkHandled(ctx context.Context, cmd cqrs.CommandKey) error {
	if f.failMark != nil {
		return f.failMark
	}
	return f.MemoryHandled.MarkHandled(ctx, cmd)
}

func TestIdempotency(t *testing.T) {
	t.Parallel()
	ctx := t.Context()

	t.Run("runs each ID once", func(t *testing.T) {
		t.Parallel()
		var n atomic.Int32
		boom := errors.New("boom")
		fail := atomic.Bool{}
		bus := newBus(t, func(context.Context, placeOrder) error {
			n.Add(1)
			if fail.Load() {
				return boom
			}
			return nil
		}, cqrs.Idempotency(new(cqrs.MemoryHandled)))
		steps := []struct {
			cmd   placeOrder
			fail  bool
			calls int32
		}{
			{placeOrder{ID: "a"}, false, 1},
			{placeOrder{ID: "a"}, false, 1}, // already handled: skipped
			{placeOrder{ID: "a", Lines: 9}, false, 1},
			{placeOrder{ID: "b"}, false, 2},
			{placeOrder{}, false, 3}, // no ID: always runs
			{placeOrder{}, false, 4},
			{placeOrder{ID: "c"}, true, 5}, // failed: not recorded
			{placeOrder{ID: "c"}, false, 6},
			{placeOrder{ID: "c"}, false, 6},
		}
		for i, s := range steps {
			fail.Store(s.fail)
			err := bus.Dispatch(ctx, s.cmd)
			if s.fail != errors.Is(err, boom) || !s.fail && err != nil {
				t.Fatalf("step %d: Dispatch = %v", i, err)
			}
			if n.Load() != s.calls {
				t.Fatalf("step %d: %d calls, want %d", i, n.Load(), s.calls)
			}
		}
	})

	t.Run("copies in flight run once", func(t *testing.T) {
		t.Parallel()
		var n atomic.Int32
		bus := newBus(t, func(context.Context, placeOrder) error {
			n.Add(1)
			time.Sleep(time.Millisecond)
			return nil
		}, cqrs.Idempotency(new(cqrs.MemoryHandled)))
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if err := bus.Dispatch(ctx, placeOrder{ID: "same"}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if n.Load() != 1 {
			t.Fatalf("8 copies sent at once ran %d times, want 1", n.Load())
		}
	})

	t.Run("result of a skipped command is zero", func(t *testing.T) {
		t.Parallel()
		bus := cqrs.NewCommandBus(cqrs.Idempotency(new(cqrs.MemoryHandled)))
		if err := cqrs.HandleResult(bus, func(_ context.Context, c placeOrder) (string, error) { return "order-" + c.Order, nil }); err != nil {
			t.Fatal(err)
		}
		if id, err := cqrs.DispatchResult[string](ctx, bus, placeOrder{ID: "x", Order: "7"}); err != nil || id != "order-7" {
			t.Fatalf("first = %q, %v", id, err)
		}
		if id, err := cqrs.DispatchResult[string](ctx, bus, placeOrder{ID: "x", Order: "7"}); err != nil || id != "" {
			t.Fatalf("second = %q, %v; want the zero value", id, err)
		}
	})

	t.Run("store failures", func(t *testing.T) {
		t.Parallel()
		broken := errors.New("record unavailable")
		var n atomic.Int32
		bus := newBus(t, counting(&n, nil), cqrs.Idempotency(&failingHandled{failHandled: broken}))
		if err := bus.Dispatch(ctx, placeOrder{ID: "a"}); !errors.Is(err, broken) || n.Load() != 0 {
			t.Fatalf("Handled failing: %v after %d calls, want the store's error and no call", err, n.Load())
		}
		bus = newBus(t, counting(&n, nil), cqrs.Idempotency(&failingHandled{failMark: broken}))
		if err := bus.Dispatch(ctx, placeOrder{ID: "a"}); !errors.Is(err, broken) || !strings.Contains(err.Error(), "not recorded") || n.Load() != 1 {
			t.Fatalf("MarkHandled failing: %v after %d calls, want a 'not recorded' error after one call", err, n.Load())
		}
	})

	t.Run("waiting copy honours ctx", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		started := make(chan struct{})
		bus := newBus(t, func(context.Context, placeOrder) error {
			close(started)
			<-release
			return nil
		}, cqrs.Idempotency(new(cqrs.MemoryHandled)))
		first := make(chan error, 1)
		go func() { first <- bus.Dispatch(ctx, placeOrder{ID: "slow"}) }()
		<-started
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := bus.Dispatch(cctx, placeOrder{ID: "slow"}); !errors.Is(err, context.Canceled) {
			t.Errorf("copy waiting with a cancelled ctx = %v, want context.Canceled", err)
		}
		close(release)
		if err := <-first; err != nil {
			t.Fatal(err)
		}
	})
}

func TestMemoryHandledBadInput(t *testing.T) {
	t.Parallel()
	m := new(cqrs.MemoryHandled)
	ctx := t.Context()
	a := cqrs.CommandKey{Type: "orders.Place", ID: "a"}
	for _, tt := range []struct {
		name string
		key  cqrs.CommandKey
	}{
		{"empty ID", cqrs.CommandKey{Type: "orders.Place"}},
		{"empty type", cqrs.CommandKey{ID: "a"}},
	} {
		if _, err := m.Handled(ctx, tt.key); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("%s: Handled = %v, want nova.ErrInvalid", tt.name, err)
		}
		if err := m.MarkHandled(ctx, tt.key); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("%s: MarkHandled = %v, want nova.ErrInvalid", tt.name, err)
		}
	}
	if done, err := m.Handled(ctx, a); done || err != nil {
		t.Fatalf("Handled after rejected calls = %v, %v; want nothing recorded", done, err)
	}
}

func TestLogging(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	boom := errors.New("boom")
	bus := newBus(t, func(_ context.Context, c placeOrder) error {
		if c.Order == "fail" {
			return boom
		}
		return nil
	}, cqrs.Logging(logger), cqrs.Correlation())
	ctx := cqrs.WithMetadata(t.Context(), nova.Metadata{CorrelationID: "corr-1"})
	if err := bus.Dispatch(ctx, placeOrder{ID: "cmd-1", Order: "7"}); err != nil {
		t.Fatal(err)
	}
	if err := bus.Dispatch(ctx, placeOrder{ID: "cmd-2", Order: "fail"}); !errors.Is(err, boom) {
		t.Fatalf("Dispatch = %v, want boom", err)
	}
	var lines []map[string]any
	for line := range strings.Lines(buf.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want 2:\n%s", len(lines), buf.String())
	}
	want := []map[string]any{
		{"level": "DEBUG", "msg": "cqrs: handled", "kind": "command", "type": "cqrs_test.placeOrder", "id": "cmd-1", "correlation_id": "corr-1"},
		{"level": "ERROR", "msg": "cqrs: handler failed", "kind": "command", "id": "cmd-2", "error": "boom"},
	}
	for i, w := range want {
		for k, v := range w {
			if lines[i][k] != v {
				t.Errorf("line %d: %s = %v, want %v", i, k, lines[i][k], v)
			}
		}
		if _, ok := lines[i]["duration"]; !ok {
			t.Errorf("line %d has no duration", i)
		}
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// A nil logger is slog.Default(), whose default level drops the Debug
// line of a success.
func TestLoggingDefault(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	bus := newBus(t, counting(&n, nil), cqrs.Logging(nil))
	if err := bus.Dispatch(t.Context(), placeOrder{}); err != nil || n.Load() != 1 {
		t.Fatalf("Dispatch = %v after %d calls", err, n.Load())
	}
}

// voidOrder is a command of another type that may carry the same ID as
// a placeOrder.
type voidOrder struct{ ID string }

func (c voidOrder) CommandID() string { return c.ID }

// Idempotency keys on the command's type and ID: a CancelOrder whose ID
// a PlaceOrder already used is another command, and runs; each runs once.
// (voidOrder plays CancelOrder.)
func TestIdempotencyKeysOnType(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	idem := cqrs.Idempotency(new(cqrs.MemoryHandled))
	var placed, cancelled atomic.Int32
	bus := newBus(t, counting(&placed, nil), idem)
	if err := cqrs.Handle(bus, func(context.Context, voidOrder) error { cancelled.Add(1); return nil }); err != nil {
		t.Fatal(err)
	}
	for i, cmd := range []any{placeOrder{ID: "order-77"}, voidOrder{ID: "order-77"}, voidOrder{ID: "order-77"}, placeOrder{ID: "order-77"}} {
		if err := bus.Dispatch(ctx, cmd); err != nil {
			t.Fatalf("dispatch %d (%T): %v", i, cmd, err)
		}
	}
	if placed.Load() != 1 || cancelled.Load() != 1 {
		t.Fatalf("PlaceOrder ran %d times and CancelOrder %d, want each once", placed.Load(), cancelled.Load())
	}
}
