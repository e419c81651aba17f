package paging

import (
	"slices"
	"testing"
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
