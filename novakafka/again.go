package novakafka

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// againTries is how many times again makes a request in all.
const againTries = 5

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
		t := time.NewTimer(time.Duration(20<<try) * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
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
