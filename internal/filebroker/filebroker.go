// Package filebroker is a broker.Broker for crash tests. It appends the
// ID of every envelope it publishes to a file, one line each, written
// before Publish returns: the write is in the kernel by then, so what the
// broker acknowledged survives a SIGKILL of its process (not a crash of
// the machine, which the tests do not make). It only publishes; every
// other method fails.
package filebroker

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"

	"github.com/nova-go/nova/broker"
)

// Broker appends published envelope IDs to its file.
type Broker struct {
	mu sync.Mutex
	f  *os.File
}

var _ broker.BatchPublisher = (*Broker)(nil)

// ErrUnsupported is what every method but Publish, PublishBatch and Close
// returns.
var ErrUnsupported = errors.New("filebroker: the test broker only publishes")

// Open opens path for appending, creating it if needed.
func Open(path string) (*Broker, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	return &Broker{f: f}, nil
}

// Publish implements [broker.Broker.Publish].
func (b *Broker) Publish(ctx context.Context, e broker.Envelope) error {
	return b.PublishBatch(ctx, []broker.Envelope{e})
}

// PublishBatch implements [broker.BatchPublisher]: one write for the
// batch.
func (b *Broker) PublishBatch(_ context.Context, envs []broker.Envelope) error {
	var sb strings.Builder
	for _, e := range envs {
		sb.WriteString(e.ID + "\n")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	_, err := b.f.WriteString(sb.String())
	return err
}

// Poll fails with ErrUnsupported.
func (b *Broker) Poll(context.Context, string, int) ([]broker.Envelope, error) {
	return nil, ErrUnsupported
}

// Subscribe fails with ErrUnsupported.
func (b *Broker) Subscribe(context.Context, string, broker.Handler) (broker.Subscription, error) {
	return nil, ErrUnsupported
}

// PublishDLQ fails with ErrUnsupported.
func (b *Broker) PublishDLQ(context.Context, string, broker.Envelope, string) error {
	return ErrUnsupported
}

// PollDLQ fails with ErrUnsupported.
func (b *Broker) PollDLQ(context.Context, string, int) ([]broker.DeadLetter, error) {
	return nil, ErrUnsupported
}

// Close closes the file.
func (b *Broker) Close() error { return b.f.Close() }
