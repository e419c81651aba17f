package nova_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/nova-go/nova"
)

func TestConcurrencyError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		err      *nova.ConcurrencyError
		contains []string
	}{
		{"exact", &nova.ConcurrencyError{Stream: "order-42", Expected: nova.Exact(3), Actual: 5},
			[]string{`"order-42"`, "expected 3", "actual 5"}},
		{"no stream", &nova.ConcurrencyError{Stream: "s", Expected: nova.NoStream, Actual: 1},
			[]string{`"s"`, "expected no-stream", "actual 1"}},
		{"stream exists", &nova.ConcurrencyError{Stream: "s", Expected: nova.StreamExists, Actual: 0},
			[]string{`"s"`, "expected stream-exists", "actual 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			msg := tt.err.Error()
			if !strings.HasPrefix(msg, "nova: ") {
				t.Errorf("message %q lacks the nova: prefix", msg)
			}
			for _, c := range tt.contains {
				if !strings.Contains(msg, c) {
					t.Errorf("message %q does not contain %q", msg, c)
				}
			}
			assertMatches(t, tt.err, nova.ErrConcurrency, nova.ErrDuplicateEvent)
			var ce *nova.ConcurrencyError
			if wrapped := fmt.Errorf("append: %w", tt.err); !errors.As(wrapped, &ce) || ce != tt.err {
				t.Errorf("errors.As through %%w did not find the *ConcurrencyError")
			}
		})
	}
}

func TestDuplicateEventError(t *testing.T) {
	t.Parallel()
	err := &nova.DuplicateEventError{
		ID:            "0190a0b0-0000-7000-8000-000000000001",
		Stream:        "order-1",
		StoredStream:  "order-2",
		StoredVersion: 4,
	}
	msg := err.Error()
	for _, c := range []string{"nova: ", err.ID, `"order-1"`, `"order-2"`, "version 4"} {
		if !strings.Contains(msg, c) {
			t.Errorf("message %q does not contain %q", msg, c)
		}
	}
	assertMatches(t, err, nova.ErrDuplicateEvent, nova.ErrConcurrency)
	var de *nova.DuplicateEventError
	if !errors.As(fmt.Errorf("a: %w", fmt.Errorf("b: %w", err)), &de) || de.ID != err.ID {
		t.Error("errors.As through two %w wraps did not find the *DuplicateEventError")
	}
}

func TestInvalidf(t *testing.T) {
	t.Parallel()
	err := nova.Invalidf("nova", "bad %s %d", "limit", -1)
	if got, want := err.Error(), "nova: bad limit -1"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	assertMatches(t, err, nova.ErrInvalid, nova.ErrNotFound)

	// A nested validation error loses its prefix; %w keeps it as the cause.
	inner := nova.ValidateStream("")
	outer := nova.Invalidf("projection", "name: %w", inner)
	if got, want := outer.Error(), "projection: name: "+strings.TrimPrefix(inner.Error(), "nova: "); got != want {
		t.Errorf("nested Error() = %q, want %q", got, want)
	}
	if !errors.Is(outer, nova.ErrInvalid) || errors.Unwrap(outer) != inner {
		t.Errorf("nested error does not unwrap to the inner one: %v", errors.Unwrap(outer))
	}

	// A cause that is not a validation error keeps its text.
	cause := errors.New("unexpected end of JSON input")
	withCause := nova.Invalidf("cqrs", "decode %q: %w", "k", cause)
	if got, want := withCause.Error(), `cqrs: decode "k": unexpected end of JSON input`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(withCause, cause) {
		t.Error("errors.Is(err, cause) = false")
	}
}

// assertMatches checks that err, bare and wrapped with %w once and twice,
// matches want and does not match notWant.
func assertMatches(t *testing.T, err, want, notWant error) {
	t.Helper()
	for _, e := range []error{err, fmt.Errorf("ctx: %w", err), fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", err))} {
		if !errors.Is(e, want) {
			t.Errorf("errors.Is(%q, %v) = false", e, want)
		}
		if errors.Is(e, notWant) {
			t.Errorf("errors.Is(%q, %v) = true", e, notWant)
		}
	}
}
