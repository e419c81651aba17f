package novatest

import (
	"errors"
	"iter"
	"slices"
	"testing"

	"go.uber.org/goleak"

	"github.com/nova-go/nova/internal/validate"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestCollect(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	seq := func(n int, failAt int) iter.Seq2[int, error] {
		return func(yield func(int, error) bool) {
			for i := range n {
				if i == failAt {
					yield(0, boom)
					return
				}
				if !yield(i, nil) {
					return
				}
			}
		}
	}
	tests := []struct {
		name    string
		seq     iter.Seq2[int, error]
		limit   int
		want    []int
		wantErr error
	}{
		{"all", seq(3, -1), 0, []int{0, 1, 2}, nil},
		{"limit", seq(5, -1), 2, []int{0, 1}, nil},
		{"limit beyond", seq(2, -1), 9, []int{0, 1}, nil},
		{"empty", seq(0, -1), 0, nil, nil},
		{"error", seq(5, 2), 0, []int{0, 1}, boom},
		{"limit before error", seq(5, 2), 2, []int{0, 1}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Collect(tc.seq, tc.limit)
			if !errors.Is(err, tc.wantErr) || !slices.Equal(got, tc.want) {
				t.Fatalf("Collect = %v, %v; want %v, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestEvents(t *testing.T) {
	t.Parallel()
	evs := Events("t", 3)
	if _, err := validate.Append("s", evs); err != nil {
		t.Fatalf("Events are not valid: %v", err)
	}
	if len(evs) != 3 || string(evs[2].Data) != `{"n":3}` || evs[0].ID == evs[1].ID {
		t.Fatalf("Events(\"t\", 3) = %+v", evs)
	}
}

func TestScale(t *testing.T) {
	// Not parallel: it sets the environment.
	tests := []struct {
		env     string
		want    float64
		wantSet bool
	}{
		{"", 1, false},
		{"1", 1, true},
		{"0.25", 0.25, true},
		{"10", 10, true},
	}
	for _, tc := range tests {
		t.Setenv("NOVA_TEST_SCALE", tc.env)
		if got, set := scaleSetting(t); got != tc.want || set != tc.wantSet {
			t.Errorf("NOVA_TEST_SCALE=%q: scale %v, set %v; want %v, %v", tc.env, got, set, tc.want, tc.wantSet)
		}
		if got := Scale(t); got != tc.want {
			t.Errorf("NOVA_TEST_SCALE=%q: Scale = %v, want %v", tc.env, got, tc.want)
		}
	}
	s := &suite{scale: 0.001}
	if got := s.n(500); got != 1 {
		t.Errorf("scaled size of 500 at 0.001 = %d, want at least 1", got)
	}
}
