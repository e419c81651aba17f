package paging

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/nova-go/nova"
)

func TestYield(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		page     []int
		short    bool
		left     int
		stopAt   int // the caller's loop stops after this many items; 0: never
		want     bool
		wantSeen []int
		wantLeft int
	}{
		{"full page, no limit", []int{1, 2, 3}, false, 0, 0, true, []int{1, 2, 3}, 0},
		{"short page", []int{1, 2}, true, 0, 0, false, []int{1, 2}, 0},
		{"empty short page", nil, true, 0, 0, false, nil, 0},
		{"limit left after the page", []int{1, 2, 3}, false, 5, 0, true, []int{1, 2, 3}, 2},
		{"limit used up by the page", []int{1, 2, 3}, false, 3, 0, false, []int{1, 2, 3}, 0},
		{"loop stops early", []int{1, 2, 3}, false, 0, 2, false, []int{1, 2}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var seen []int
			left := tt.left
			got := Yield(tt.page, tt.short, &left, func(v int, err error) bool {
				if err != nil {
					t.Fatalf("yield got error %v", err)
				}
				seen = append(seen, v)
				return tt.stopAt == 0 || len(seen) < tt.stopAt
			})
			if got != tt.want || !slices.Equal(seen, tt.wantSeen) || left != tt.wantLeft {
				t.Errorf("Yield = %v, saw %v, left %d; want %v, %v, %d", got, seen, left, tt.want, tt.wantSeen, tt.wantLeft)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	bad, worse := errors.New("bad limit"), errors.New("bad stream")
	if err := Check(nil, nil); err != nil {
		t.Errorf("Check(nil, nil) = %v, want nil", err)
	}
	if err := Check(nil, bad, worse); err != bad {
		t.Errorf("Check(nil, bad, worse) = %v, want bad", err)
	}
}

func TestError(t *testing.T) {
	t.Parallel()
	for _, keep := range []error{context.Canceled, context.DeadlineExceeded, nova.ErrClosed} {
		if got := Error("novax", "read stream", keep); got != keep {
			t.Errorf("Error(%v) = %v, want it unwrapped", keep, got)
		}
	}
	cause := errors.New("disk on fire")
	got := Error("novax", `read stream "a"`, cause)
	if !errors.Is(got, cause) || got.Error() != `novax: read stream "a": disk on fire` {
		t.Errorf("Error = %q, want the package and what, wrapping the cause", got)
	}
}

func TestStreamStart(t *testing.T) {
	t.Parallel()
	const max = math.MaxInt64
	fwd, back := nova.Forwards, nova.Backwards
	for _, tt := range []struct {
		from   uint64
		dir    nova.Direction
		next   uint64
		wantOK bool
	}{
		{0, fwd, 1, true},
		{0, back, max, true},
		{7, fwd, 7, true},
		{7, back, 7, true},
		{max, fwd, max, true},
		{max + 1, fwd, 0, false},
		{math.MaxUint64, back, max, true},
	} {
		next, ok := StreamStart(nova.ReadStreamOptions{From: tt.from, Direction: tt.dir}, max)
		if ok != tt.wantOK || ok && next != tt.next {
			t.Errorf("StreamStart(from %d, %v) = %d, %v; want %d, %v", tt.from, tt.dir, next, ok, tt.next, tt.wantOK)
		}
	}
}

func TestStreamNext(t *testing.T) {
	t.Parallel()
	const max = math.MaxInt64
	for _, tt := range []struct {
		last      uint64
		backwards bool
		next      uint64
		wantOK    bool
	}{
		{5, false, 6, true},
		{5, true, 4, true},
		{2, true, 1, true},
		{1, true, 0, false},
		{max, false, 0, false},
	} {
		next, ok := StreamNext(tt.last, tt.backwards, max)
		if ok != tt.wantOK || ok && next != tt.next {
			t.Errorf("StreamNext(%d, backwards %v) = %d, %v; want %d, %v", tt.last, tt.backwards, next, ok, tt.next, tt.wantOK)
		}
	}
}
