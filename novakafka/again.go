package novakafka

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/nova-go/nova/internal/backoff"
)

// How many times again makes a request in all, and the bounds of its
// waits between them.
const (
	againTries      = 5
	againMinBackoff = 40 * time.Millisecond
	againMaxBackoff = 320 * time.Millisecond
)

// again makes an admin request until it succeeds, fails with an error a
// retry cannot cure, or ctx ends. After the server dropped the
// connection, the first request on it fails (io.EOF, a reset) before the
// client dials again: that failure is not the caller's to see.
func again[T any](ctx context.Context, call func() (T, error)) (T, error) {
	for try := 1; ; try++ {
		v, err := call()
		if err == nil || try == againTries || !retriable(err) || ctx.Err() != nil {
			return v, err
		}
		if backoff.Sleep(ctx, backoff.Full(againMinBackoff, againMaxBackoff, try)) != nil {
			return v, err
		}
	}
}

// retriable reports whether a request that failed with err may succeed
// when made again.
func retriable(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, net.ErrClosed) || errors.As(err, &ne) || kerr.IsRetriable(err)
}
