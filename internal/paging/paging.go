// Package paging holds the loop step every backend's paged reads share:
// hand one page to the caller's iterator and decide whether to fetch the
// next, so that reads stop at the same places on every backend.
package paging

// Yield hands page to yield, in order, and reports whether the read should
// fetch another page. It reports false when the caller's loop stopped, when
// the page was the last (short, as the caller judged it from what it asked
// for), or when the limit is used up. left is what remains of the caller's
// limit, 0 for none; Yield takes the page from it.
func Yield[T any](page []T, short bool, left *int, yield func(T, error) bool) bool {
	for i := range page {
		if !yield(page[i], nil) {
			return false
		}
	}
	if short {
		return false
	}
	if *left > 0 {
		if *left -= len(page); *left <= 0 {
			return false
		}
	}
	return true
}
