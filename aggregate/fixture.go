package aggregate

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// Fixture tests an aggregate's decisions as given/when/then, with no store:
//
//	aggregate.Given[Order](t, Placed{ID: "42", Total: 500}).
//		When(func(o *Order) ([]any, error) { return o.Pay(500) }).
//		Then(Paid{ID: "42", Amount: 500})
//
// Given applies past events to a fresh state, When runs one decision
// against it, and Then or ThenError checks the outcome. Give events as
// values, the way a registry decodes them. A fixture that does not hold
// fails the test.
type Fixture[T any] struct {
	tb    testing.TB
	state *T
	apply func(*T, any) error

	ran    bool
	events []any
	err    error
}

// Given returns a fixture whose state is a fresh T with events applied in
// order. Only T is given; its pointer type, which must implement
// [Applier], is inferred. An event that Apply refuses fails the test at
// once.
func Given[T any, PT StatePtr[T]](tb testing.TB, events ...any) *Fixture[T] {
	tb.Helper()
	f := &Fixture[T]{tb: tb, state: new(T), apply: func(s *T, e any) error { return PT(s).Apply(e) }}
	for i, e := range events {
		if err := f.apply(f.state, e); err != nil {
			tb.Fatalf("aggregate: given event %d (%s): apply: %v", i+1, describe(e), err)
			return f
		}
	}
	return f
}

// When runs decide against the given state and records the events it
// returns or its error, for Then or ThenError to check.
func (f *Fixture[T]) When(decide func(state *T) ([]any, error)) *Fixture[T] {
	f.tb.Helper()
	if f.ran {
		f.tb.Fatalf("aggregate: when called twice on one fixture")
		return f
	}
	f.ran = true
	f.events, f.err = decide(f.state)
	return f
}

// Then checks that the decision succeeded and returned exactly want, in
// order, compared with [reflect.DeepEqual]; no want means no events. On a
// mismatch the test fails with both lists. Then applies the produced
// events to the state, so [Fixture.ThenState] can check the result.
func (f *Fixture[T]) Then(want ...any) *Fixture[T] {
	f.tb.Helper()
	if !f.ran {
		f.tb.Fatalf("aggregate: then called before when")
		return f
	}
	if f.err != nil {
		f.tb.Errorf("aggregate: when failed with %v, want events:\n%s", f.err, list(want))
		return f
	}
	if d := diff(want, f.events); d != "" {
		f.tb.Errorf("aggregate: events differ (-want +got):\n%s", d)
		return f
	}
	for i, e := range f.events {
		if err := f.apply(f.state, e); err != nil {
			f.tb.Errorf("aggregate: produced event %d (%s): apply: %v", i+1, describe(e), err)
			return f
		}
	}
	return f
}

// ThenError checks that the decision failed with an error matching want
// ([errors.Is]) and produced no events.
func (f *Fixture[T]) ThenError(want error) {
	f.tb.Helper()
	if !f.ran {
		f.tb.Fatalf("aggregate: then error called before when")
		return
	}
	switch {
	case f.err == nil:
		f.tb.Errorf("aggregate: when succeeded, want error %v; events:\n%s", want, list(f.events))
	case !errors.Is(f.err, want):
		f.tb.Errorf("aggregate: when failed with %v, want an error matching %v", f.err, want)
	case len(f.events) > 0:
		f.tb.Errorf("aggregate: when failed with %v but also returned events:\n%s", f.err, list(f.events))
	}
}

// ThenState calls check with the state after the given events and, after
// a passing [Fixture.Then], the produced ones.
func (f *Fixture[T]) ThenState(check func(state *T)) {
	f.tb.Helper()
	check(f.state)
}

func describe(e any) string {
	if e == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%T%+v", e, e)
}

func list(events []any) string {
	if len(events) == 0 {
		return "  (none)\n"
	}
	var b strings.Builder
	for i, e := range events {
		fmt.Fprintf(&b, "  %d: %s\n", i+1, describe(e))
	}
	return b.String()
}

// diff returns "" when want and got hold equal events, or a line per
// differing position.
func diff(want, got []any) string {
	var b strings.Builder
	for i := range max(len(want), len(got)) {
		var w, g any
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) && i < len(got) && reflect.DeepEqual(w, g) {
			continue
		}
		fmt.Fprintf(&b, "  event %d:\n", i+1)
		if i < len(want) {
			fmt.Fprintf(&b, "    - %s\n", describe(w))
		} else {
			b.WriteString("    - (none)\n")
		}
		if i < len(got) {
			fmt.Fprintf(&b, "    + %s\n", describe(g))
		} else {
			b.WriteString("    + (none)\n")
		}
	}
	return b.String()
}
