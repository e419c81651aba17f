package nova_test

import (
	"errors"
	"math"
	"testing"

	"github.com/nova-go/nova"
)

func TestPositionCompare(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p, q nova.Position
		want int
	}{
		{nova.Start, nova.Start, 0},
		{nova.Position{}, nova.Position{Commit: 1}, -1},
		{nova.Position{Commit: 1}, nova.Position{}, 1},
		{nova.Position{Commit: 1}, nova.Position{Commit: 1}, 0},
		{nova.Position{Commit: 1, Prepare: 9}, nova.Position{Commit: 2}, -1},
		{nova.Position{Commit: 2}, nova.Position{Commit: 1, Prepare: 9}, 1},
		{nova.Position{Commit: 3, Prepare: 1}, nova.Position{Commit: 3, Prepare: 2}, -1},
		{nova.Position{Commit: 3, Prepare: 2}, nova.Position{Commit: 3, Prepare: 1}, 1},
		{nova.Position{Commit: 3, Prepare: 2}, nova.Position{Commit: 3, Prepare: 2}, 0},
		{nova.Position{Commit: 0, Prepare: math.MaxUint64}, nova.Position{Commit: 1}, -1},
		{nova.Position{Commit: math.MaxUint64}, nova.Position{Commit: math.MaxUint64 - 1, Prepare: math.MaxUint64}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.p.String()+"_vs_"+tt.q.String(), func(t *testing.T) {
			t.Parallel()
			if got := tt.p.Compare(tt.q); got != tt.want {
				t.Errorf("%v.Compare(%v) = %d, want %d", tt.p, tt.q, got, tt.want)
			}
			if got := tt.q.Compare(tt.p); got != -tt.want {
				t.Errorf("%v.Compare(%v) = %d, want %d (antisymmetry)", tt.q, tt.p, got, -tt.want)
			}
			if got := tt.p.Less(tt.q); got != (tt.want < 0) {
				t.Errorf("%v.Less(%v) = %v, want %v", tt.p, tt.q, got, tt.want < 0)
			}
		})
	}
}

func TestPositionIsZero(t *testing.T) {
	t.Parallel()
	if !nova.Start.IsZero() || !(nova.Position{}).IsZero() {
		t.Error("Start is not zero")
	}
	for _, p := range []nova.Position{{Commit: 1}, {Prepare: 1}} {
		if p.IsZero() {
			t.Errorf("%#v.IsZero() = true", p)
		}
	}
}

func TestPositionStringRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p    nova.Position
		want string
	}{
		{nova.Start, "0"},
		{nova.Position{Commit: 42}, "42"},
		{nova.Position{Commit: 42, Prepare: 7}, "42/7"},
		{nova.Position{Prepare: 7}, "0/7"},
		{nova.Position{Commit: math.MaxUint64, Prepare: math.MaxUint64}, "18446744073709551615/18446744073709551615"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			s := tt.p.String()
			if s != tt.want {
				t.Fatalf("String() = %q, want %q", s, tt.want)
			}
			got, err := nova.ParsePosition(s)
			if err != nil {
				t.Fatalf("ParsePosition(%q): %v", s, err)
			}
			if got != tt.p {
				t.Fatalf("ParsePosition(%q) = %#v, want %#v", s, got, tt.p)
			}
		})
	}
}

func TestParsePositionAcceptedForms(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want nova.Position
	}{
		{"0", nova.Start},
		{"007", nova.Position{Commit: 7}},
		{"3/0", nova.Position{Commit: 3}},
		{"3/00", nova.Position{Commit: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := nova.ParsePosition(tt.in)
			if err != nil || got != tt.want {
				t.Fatalf("ParsePosition(%q) = %#v, %v, want %#v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParsePositionBadInput(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"", "x", "1/", "/1", "/", "-1", "+1", "1/-2", "1/+2", "1/2/3",
		" 1", "1 ", "1.5", "0x10", "1_000", "1/x",
		"18446744073709551616",   // commit overflows uint64
		"1/18446744073709551616", // prepare overflows uint64
		"99999999999999999999999999/1",
	} {
		t.Run(in, func(t *testing.T) {
			t.Parallel()
			p, err := nova.ParsePosition(in)
			if !errors.Is(err, nova.ErrInvalid) {
				t.Fatalf("ParsePosition(%q) = %#v, %v, want an error matching ErrInvalid", in, p, err)
			}
			if p != (nova.Position{}) {
				t.Errorf("ParsePosition(%q) returned %#v with its error, want the zero Position", in, p)
			}
		})
	}
}
