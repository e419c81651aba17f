// Package paging holds what every SQL backend's paged reads share: the
// check of a read's input, the loop step that hands one page to the
// caller's iterator and decides whether to fetch the next, and the
// wrapping of a read's errors, so that reads start, stop and fail the same
// way on every backend.
package paging

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nova-go/nova"
)

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

// Check returns the first non-nil of errs, the checks of a read's input
// (the options' Validate results, the stream name's).
func Check(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Error wraps a read's error as "pkg: what: err", leaving as they are the
// errors callers compare with: context errors and nova.ErrClosed.
func Error(pkg, what string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nova.ErrClosed) {
		return err
	}
	return fmt.Errorf("%s: %s: %w", pkg, what, err)
}

// Wait blocks a live subscription until there may be more to read: until
// wake is closed (a commit's notification), timer fires (the polling
// fallback), ctx is done or closing is closed (the store closes). It
// returns nil to read again, or the error that ends the subscription:
// ctx.Err() or [nova.ErrClosed]. The caller has reset timer.
func Wait(ctx context.Context, timer *time.Timer, wake, closing <-chan struct{}) error {
	select {
	case <-wake:
	case <-timer.C:
	case <-ctx.Done():
		return ctx.Err()
	case <-closing:
		return nova.ErrClosed
	}
	return nil
}

// StreamStart returns the version a stream read asks for first. max is
// the largest version the backend's column holds. A read from version 0
// starts at the stream's first event, or backwards at its last (max); a
// read backwards from past max starts at max. ok is false for a read
// forwards from past max, which has nothing to read.
func StreamStart(opts nova.ReadStreamOptions, max uint64) (next uint64, ok bool) {
	backwards := opts.Direction == nova.Backwards
	switch {
	case opts.From > max:
		return max, backwards
	case opts.From == 0 && backwards:
		return max, true
	case opts.From == 0:
		return 1, true
	}
	return opts.From, true
}

// StreamNext returns the version a stream read asks for after a page that
// ended at version last. ok is false when nothing can follow: backwards
// past version 1, forwards past max.
func StreamNext(last uint64, backwards bool, max uint64) (next uint64, ok bool) {
	if backwards {
		return last - 1, last > 1
	}
	return last + 1, last < max
}
