package cqrs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
)

// HandledStore records the IDs of commands that succeeded, for
// [Idempotency].
//
// To be exact, the record of a command must commit in the same
// transaction as the events the command saved: recorded apart, a crash
// between the two either runs the command again (events saved, ID not
// recorded) or never (ID recorded, events lost). [MemoryHandled] is exact
// only within one process and for as long as it lives; durable
// implementations that write the ID beside the events arrive with the
// SQL backends.
type HandledStore interface {
	// Handled reports whether the command with this ID succeeded before.
	Handled(ctx context.Context, id string) (bool, error)
	// MarkHandled records that the command with this ID succeeded.
	MarkHandled(ctx context.Context, id string) error
}

var _ HandledStore = (*MemoryHandled)(nil)

// MemoryHandled is an in-memory [HandledStore]. Its zero value is ready
// to use; it is safe for concurrent use. It keeps every ID it is given
// for as long as it lives.
type MemoryHandled struct {
	mu  sync.Mutex
	ids map[string]struct{}
}

// Handled implements [HandledStore].
func (m *MemoryHandled) Handled(ctx context.Context, id string) (bool, error) {
	if err := checkHandled(m, ctx, id); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.ids[id]
	return ok, nil
}

// MarkHandled implements [HandledStore].
func (m *MemoryHandled) MarkHandled(ctx context.Context, id string) error {
	if err := checkHandled(m, ctx, id); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ids == nil {
		m.ids = make(map[string]struct{})
	}
	m.ids[id] = struct{}{}
	return nil
}

func checkHandled(m *MemoryHandled, ctx context.Context, id string) error {
	switch {
	case m == nil:
		return invalidf("handled IDs: nil store")
	case ctx == nil:
		return invalidf("handled IDs: nil context")
	case id == "":
		return invalidf("handled IDs: empty command ID")
	}
	return ctx.Err()
}

// Idempotency returns middleware that runs a command carrying an ID
// ([Identified]) at most once: if store says the ID succeeded before,
// the handler is not run and the dispatch succeeds with no result (a
// [DispatchResult] caller gets R's zero value). Messages without an ID
// pass straight through, and so does a failed command: it may be sent
// again. Dispatches of one ID in this process run one at a time, so two
// copies sent at once run once; across processes that takes a store
// whose record commits with the command's events (see [HandledStore]).
//
// If the handler succeeds but the ID cannot be recorded, the dispatch
// fails with the recording error: the events are saved, and a resend
// would run the command again.
func Idempotency(store HandledStore) (Middleware, error) {
	if store == nil {
		return nil, invalidf("idempotency: nil handled store")
	}
	var locks keyedLock
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, msg any) (any, error) {
			id := idOf(msg)
			if id == "" {
				return next(ctx, msg)
			}
			unlock, err := locks.lock(ctx, id)
			if err != nil {
				return nil, fmt.Errorf("cqrs: %s %T %s: waiting for the same ID in flight: %w", KindFrom(ctx), msg, id, err)
			}
			defer unlock()
			done, err := store.Handled(ctx, id)
			if err != nil {
				return nil, fmt.Errorf("cqrs: %s %T %s: %w", KindFrom(ctx), msg, id, err)
			}
			if done {
				return nil, nil
			}
			res, err := next(ctx, msg)
			if err != nil {
				return res, err
			}
			if err := store.MarkHandled(context.WithoutCancel(ctx), id); err != nil {
				return res, fmt.Errorf("cqrs: %s %T %s succeeded but was not recorded as handled: %w", KindFrom(ctx), msg, id, err)
			}
			return res, nil
		}
	}, nil
}

// keyedLock is a set of mutexes by key, each waited for with a context.
type keyedLock struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	ch   chan struct{} // holds a token while locked
	refs int
}

func (k *keyedLock) lock(ctx context.Context, key string) (unlock func(), err error) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = make(map[string]*keyLock)
	}
	l := k.locks[key]
	if l == nil {
		l = &keyLock{ch: make(chan struct{}, 1)}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()
	release := func() {
		k.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// EventID returns the UUID of the n-th event (from 0) a command with ID
// commandID saves: the same pair always gives the same UUID, and
// different pairs give different ones (it is a SHA-256 digest, in UUID
// version 8 form).
//
// Saving a command's events under these IDs closes the gap a
// [HandledStore] recorded apart from the events leaves open: if the
// command runs again after its events were saved but before its ID was
// recorded, and decides the same events at the same place, the store
// sees an idempotent retry and writes nothing (see [nova.Store]'s
// Append).
func EventID(commandID string, n int) string {
	h := sha256.New()
	h.Write([]byte("nova/cqrs/event\x00"))
	h.Write([]byte(commandID))
	h.Write([]byte{0})
	h.Write([]byte(strconv.Itoa(n)))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = (u[6] & 0x0f) | 0x80 // version 8: custom
	u[8] = (u[8] & 0x3f) | 0x80 // RFC 9562 variant
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}
