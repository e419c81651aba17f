package aggregate_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/nova-go/nova/aggregate"
)

func TestFixturePasses(t *testing.T) {
	t.Parallel()
	aggregate.Given[Account](t, Opened{Owner: "ada"}, Deposited{Amount: 10}).
		When(func(a *Account) ([]any, error) { return a.Withdraw(4) }).
		Then(Withdrawn{Amount: 4}).
		ThenState(func(a *Account) {
			if a.Balance != 6 {
				t.Errorf("balance after the produced events = %d, want 6", a.Balance)
			}
		})

	aggregate.Given[Account](t, Opened{Owner: "ada"}).
		When(func(a *Account) ([]any, error) { return a.Withdraw(1) }).
		ThenError(errInsufficient)

	aggregate.Given[Account](t).
		When(func(*Account) ([]any, error) { return nil, nil }).
		Then()
}

// fakeTB records failures. Fatal stops the goroutine, as testing does.
type fakeTB struct {
	testing.TB
	mu     sync.Mutex
	fatal  bool
	failed bool
	msgs   []string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed = true
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	f.mu.Lock()
	f.fatal = true
	f.mu.Unlock()
	runtime.Goexit()
}

// runFake runs body against a fake TB on its own goroutine and returns the
// fake once body is done or stopped.
func runFake(body func(tb testing.TB)) *fakeTB {
	tb := &fakeTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		body(tb)
	}()
	<-done
	return tb
}

func TestFixtureFailures(t *testing.T) {
	t.Parallel()
	withdraw := func(n int64) func(*Account) ([]any, error) {
		return func(a *Account) ([]any, error) { return a.Withdraw(n) }
	}
	tests := []struct {
		name     string
		body     func(tb testing.TB)
		fatal    bool
		mentions string
	}{
		{"other events", func(tb testing.TB) {
			aggregate.Given[Account](tb, Deposited{Amount: 10}).When(withdraw(4)).Then(Withdrawn{Amount: 5})
		}, false, "Amount:5"},
		{"missing event", func(tb testing.TB) {
			aggregate.Given[Account](tb, Deposited{Amount: 10}).When(withdraw(4)).Then(Withdrawn{Amount: 4}, Withdrawn{Amount: 4})
		}, false, "(none)"},
		{"extra event", func(tb testing.TB) {
			aggregate.Given[Account](tb, Deposited{Amount: 10}).When(withdraw(4)).Then()
		}, false, "Withdrawn"},
		{"then but failed", func(tb testing.TB) {
			aggregate.Given[Account](tb).When(withdraw(4)).Then(Withdrawn{Amount: 4})
		}, false, "insufficient"},
		{"then error but succeeded", func(tb testing.TB) {
			aggregate.Given[Account](tb, Deposited{Amount: 10}).When(withdraw(4)).ThenError(errInsufficient)
		}, false, "succeeded"},
		{"other error", func(tb testing.TB) {
			aggregate.Given[Account](tb).When(withdraw(4)).ThenError(errors.New("other"))
		}, false, "insufficient"},
		{"error with events", func(tb testing.TB) {
			aggregate.Given[Account](tb).When(func(*Account) ([]any, error) {
				return []any{Deposited{}}, errInsufficient
			}).ThenError(errInsufficient)
		}, false, "also returned events"},
		{"given event refused", func(tb testing.TB) {
			aggregate.Given[Account](tb, Poison{})
		}, true, "given event 1"},
		{"when twice", func(tb testing.TB) {
			aggregate.Given[Account](tb).When(withdraw(1)).When(withdraw(1))
		}, true, "twice"},
		{"then before when", func(tb testing.TB) {
			aggregate.Given[Account](tb).Then()
		}, true, "before when"},
		{"then error before when", func(tb testing.TB) {
			aggregate.Given[Account](tb).ThenError(errInsufficient)
		}, true, "before when"},
		{"produced event refused", func(tb testing.TB) {
			aggregate.Given[Account](tb).When(func(*Account) ([]any, error) { return []any{Poison{}}, nil }).Then(Poison{})
		}, false, "apply"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tb := runFake(tt.body)
			if !tb.failed || tb.fatal != tt.fatal {
				t.Fatalf("failed = %v, fatal = %v; want failed, fatal = %v", tb.failed, tb.fatal, tt.fatal)
			}
			if msg := strings.Join(tb.msgs, "\n"); !strings.Contains(msg, tt.mentions) {
				t.Errorf("message %q does not mention %q", msg, tt.mentions)
			}
		})
	}
}
