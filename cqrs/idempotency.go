package cqrs

import (
	"context"
	"crypto/sha256"
	"fmt"
	"reflect"
	"strconv"
	"sync"

	"github.com/nova-go/nova/internal/uuidx"
)

// CommandKey identifies a command for [Idempotency]: its type and its own
// ID. Commands of different types are different commands even when they
// carry the same ID: CancelOrder{ID: "order-77"} after
// PlaceOrder{ID: "order-77"} runs.
type CommandKey struct {
	// Type is the command's Go type: its package path and name, such as
	// "example.com/shop/orders.PlaceOrder", with a leading '*' for a
	// pointer. Renaming the type or moving it to another package changes
	// the key, so records made under the old name no longer match.
	Type string
	// ID is the command's own ID ([Identified]).
	ID string
}

// KeyOf returns the key of a command that carries an ID ([Identified]),
// and false for one that does not.
func KeyOf(msg any) (CommandKey, bool) {
	id := idOf(msg)
	if id == "" {
		return CommandKey{}, false
	}
	return CommandKey{Type: typeName(reflect.TypeOf(msg)), ID: id}, true
}

// typeName names t by its package path and name.
func typeName(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		return "*" + typeName(t.Elem())
	}
	if t.Name() != "" && t.PkgPath() != "" {
		return t.PkgPath() + "." + t.Name()
	}
	return t.String()
}

// HandledStore records the commands that succeeded, for [Idempotency],
// by their type and ID ([CommandKey]).
//
// To be exact, the record of a command must commit in the same
// transaction as the events the command saved: recorded apart, a crash
// between the two either runs the command again (events saved, command
// not recorded) or never (recorded, events lost). [MemoryHandled] is
// exact only within one process and for as long as it lives; the durable
// record is the command's events themselves, saved under IDs derived
// from its key ([CommandKey.EventID]).
//
// An implementation that kept bare command IDs before commands were keyed
// by type must not answer a key by its ID alone: that is what made a
// command of another type that reused an ID look handled. Records without
// a type can be kept for the one type that used them, or dropped: a
// command whose events carry derived IDs is then sent again harmlessly
// (its append is an idempotent retry).
type HandledStore interface {
	// Handled reports whether the command with this key succeeded
	// before.
	Handled(ctx context.Context, cmd CommandKey) (bool, error)
	// MarkHandled records that the command with this key succeeded.
	MarkHandled(ctx context.Context, cmd CommandKey) error
}

var _ HandledStore = (*MemoryHandled)(nil)

// MemoryHandled is an in-memory [HandledStore]. Its zero value is ready
// to use; it is safe for concurrent use. It keeps every key it is given
// for as long as it lives.
type MemoryHandled struct {
	mu   sync.Mutex
	keys map[CommandKey]struct{}
}

// Handled implements [HandledStore].
func (m *MemoryHandled) Handled(ctx context.Context, cmd CommandKey) (bool, error) {
	if err := checkHandled(ctx, cmd); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.keys[cmd]
	return ok, nil
}

// MarkHandled implements [HandledStore].
func (m *MemoryHandled) MarkHandled(ctx context.Context, cmd CommandKey) error {
	if err := checkHandled(ctx, cmd); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.keys == nil {
		m.keys = make(map[CommandKey]struct{})
	}
	m.keys[cmd] = struct{}{}
	return nil
}

func checkHandled(ctx context.Context, cmd CommandKey) error {
	switch {
	case cmd.Type == "":
		return invalidf("handled commands: empty command type")
	case cmd.ID == "":
		return invalidf("handled commands: empty command ID")
	}
	return ctx.Err()
}

// Idempotency returns middleware that runs a command carrying an ID
// ([Identified]) at most once: if store says the command of that type
// and ID ([CommandKey]) succeeded before, the handler is not run and the
// dispatch succeeds with no result (a [DispatchResult] caller gets R's
// zero value). A command of another type with the same ID is another
// command and runs. Messages without an ID pass straight through, and so
// does a failed command: it may be sent again. Dispatches of one key in
// this process run one at a time, so two copies sent at once run once;
// across processes that takes a record that commits with the command's
// events (see [HandledStore]).
//
// If the handler succeeds but the command cannot be recorded, the
// dispatch fails with the recording error: the events are saved, and a
// resend would run the command again.
func Idempotency(store HandledStore) Middleware {
	var locks keyedLock
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, msg any) (any, error) {
			key, ok := KeyOf(msg)
			if !ok {
				return next(ctx, msg)
			}
			unlock, err := locks.lock(ctx, key)
			if err != nil {
				return nil, fmt.Errorf("cqrs: %s %T %s: waiting for the same command in flight: %w", KindFrom(ctx), msg, key.ID, err)
			}
			defer unlock()
			done, err := store.Handled(ctx, key)
			if err != nil {
				return nil, fmt.Errorf("cqrs: %s %T %s: %w", KindFrom(ctx), msg, key.ID, err)
			}
			if done {
				return nil, nil
			}
			res, err := next(ctx, msg)
			if err != nil {
				return res, err
			}
			if err := store.MarkHandled(context.WithoutCancel(ctx), key); err != nil {
				return res, fmt.Errorf("cqrs: %s %T %s succeeded but was not recorded as handled: %w", KindFrom(ctx), msg, key.ID, err)
			}
			return res, nil
		}
	}
}

// keyedLock is a set of mutexes by key, each waited for with a context.
type keyedLock struct {
	mu    sync.Mutex
	locks map[CommandKey]*keyLock
}

type keyLock struct {
	ch   chan struct{} // holds a token while locked
	refs int
}

func (k *keyedLock) lock(ctx context.Context, key CommandKey) (unlock func(), err error) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = make(map[CommandKey]*keyLock)
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
// It keys on the command's ID alone, so commands of different types
// that share an ID derive the same event IDs, and the second one's save
// fails as a reused ID ([nova.ErrDuplicateEvent]). Use
// [CommandKey.EventID], which keys on the type too; EventID stays, with
// the IDs it has always given, for handlers whose events are already
// stored under them (switching such a handler makes a command resent
// across the switch save its events again).
func EventID(commandID string, n int) string {
	h := sha256.New()
	h.Write([]byte("nova/cqrs/event\x00"))
	h.Write([]byte(commandID))
	h.Write([]byte{0})
	h.Write([]byte(strconv.Itoa(n)))
	return uuid8(h.Sum(nil))
}

// EventID returns the UUID of the n-th event (from 0) the command k
// saves: the same key and n always give the same UUID, and different
// ones give different ones (a SHA-256 digest, in UUID version 8 form).
//
// Saving a command's events under these IDs makes them its durable
// idempotency record, committed with the events themselves: if the
// command runs again after its events were saved but before it was
// recorded in a [HandledStore] (a crash, a restart, another process),
// and decides the same events at the same place, the store sees an
// idempotent retry and writes nothing (see [nova.Store]'s Append). A
// command of another type with the same ID derives other IDs, and its
// events are saved.
func (k CommandKey) EventID(n int) string {
	h := sha256.New()
	h.Write([]byte("nova/cqrs/command-event\x00"))
	h.Write([]byte(k.Type))
	h.Write([]byte{0})
	h.Write([]byte(k.ID))
	h.Write([]byte{0})
	h.Write([]byte(strconv.Itoa(n)))
	return uuid8(h.Sum(nil))
}

// uuid8 formats the first 16 bytes of a digest as a version 8 UUID.
func uuid8(sum []byte) string {
	var u [16]byte
	copy(u[:], sum)
	u[6] = (u[6] & 0x0f) | 0x80 // version 8: custom
	u[8] = (u[8] & 0x3f) | 0x80 // RFC 9562 variant
	return uuidx.Format(u)
}
