package novanats

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nova-go/nova"
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

// markTransient marks err as transient (see [nova.IsTransient]) when a
// later attempt may succeed: the connection is lost or reconnecting, a
// request's answer did not come in time (the caller's context still
// live), the server is shutting down or no JetStream server answered
// (during a leader election, say). The caller has mapped the end of its
// own context and of the store to their errors first.
func markTransient(err error) error {
	if err == nil || nova.IsTransient(err) {
		return err
	}
	var ne net.Error
	switch {
	case lost(err),
		errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, nats.ErrNoServers), errors.Is(err, nats.ErrStaleConnection),
		errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoHeartbeat),
		errors.Is(err, jetstream.ErrServerShutdown),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &ne):
		return nova.Transient(err)
	}
	return err
}
