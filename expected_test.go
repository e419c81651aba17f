package nova_test

import (
	"testing"

	"github.com/nova-go/nova"
)

func TestExpectedVersionCheck(t *testing.T) {
	t.Parallel()
	// want[i] is the result of Check(current[i]).
	current := []uint64{0, 1, 5}
	tests := []struct {
		name string
		ev   nova.ExpectedVersion
		want [3]bool
	}{
		{"any", nova.Any, [3]bool{true, true, true}},
		{"zero value", nova.ExpectedVersion{}, [3]bool{true, true, true}},
		{"no stream", nova.NoStream, [3]bool{true, false, false}},
		{"stream exists", nova.StreamExists, [3]bool{false, true, true}},
		{"exact 0", nova.Exact(0), [3]bool{true, false, false}},
		{"exact 1", nova.Exact(1), [3]bool{false, true, false}},
		{"exact 5", nova.Exact(5), [3]bool{false, false, true}},
		{"exact 7", nova.Exact(7), [3]bool{false, false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for i, cur := range current {
				if got := tt.ev.Check(cur); got != tt.want[i] {
					t.Errorf("%v.Check(%d) = %v, want %v", tt.ev, cur, got, tt.want[i])
				}
			}
		})
	}
}

func TestExpectedVersionAccessors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		ev          nova.ExpectedVersion
		str         string
		version     uint64
		exact       bool
		any, exists bool
	}{
		{"any", nova.Any, "any", 0, false, true, false},
		{"zero value", nova.ExpectedVersion{}, "any", 0, false, true, false},
		{"no stream", nova.NoStream, "no-stream", 0, true, false, false},
		{"stream exists", nova.StreamExists, "stream-exists", 0, false, false, true},
		{"exact 0", nova.Exact(0), "no-stream", 0, true, false, false},
		{"exact 1", nova.Exact(1), "1", 1, true, false, false},
		{"exact 5", nova.Exact(5), "5", 5, true, false, false},
		{"exact max", nova.Exact(^uint64(0)), "18446744073709551615", ^uint64(0), true, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.ev.String(); got != tt.str {
				t.Errorf("String() = %q, want %q", got, tt.str)
			}
			v, exact := tt.ev.Version()
			if v != tt.version || exact != tt.exact {
				t.Errorf("Version() = %d, %v, want %d, %v", v, exact, tt.version, tt.exact)
			}
			if got := tt.ev.IsAny(); got != tt.any {
				t.Errorf("IsAny() = %v, want %v", got, tt.any)
			}
			if got := tt.ev.IsStreamExists(); got != tt.exists {
				t.Errorf("IsStreamExists() = %v, want %v", got, tt.exists)
			}
		})
	}
}

func TestExactZeroIsNoStream(t *testing.T) {
	t.Parallel()
	if nova.Exact(0) != nova.NoStream {
		t.Fatalf("Exact(0) = %#v, want NoStream %#v", nova.Exact(0), nova.NoStream)
	}
	if nova.Exact(1) == nova.NoStream || nova.Exact(1) == nova.Any {
		t.Fatal("Exact(1) compares equal to a non-exact expectation")
	}
	var zero nova.ExpectedVersion
	if zero != nova.Any {
		t.Fatalf("zero ExpectedVersion = %#v, want Any", zero)
	}
}
