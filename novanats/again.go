package novanats

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go"
)

// readAttempts is how many times a read request is sent when its answer
// does not come: a request sent just as the connection dropped is lost
// with it, and reads are safe to repeat.
const readAttempts = 3

// again runs the read request f, repeating it when it timed out while ctx
// is still live.
func again[T any](ctx context.Context, f func() (T, error)) (T, error) {
	var (
		v   T
		err error
	)
	for range readAttempts {
		v, err = f()
		if err == nil || ctx.Err() != nil || !lost(err) {
			return v, err
		}
	}
	return v, err
}

// lost reports whether err says a request's answer never came.
func lost(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)
}
