package novanats

import (
	"context"
	"sync"
)

// maxTips bounds how many streams' tips a store remembers.
const maxTips = 4096

// tips remembers the last message of recently appended streams and lets
// appends to one stream from this process take turns.
//
// A remembered tip is a guess, never trusted for a verdict: an append
// publishes with the guessed tip's sequence and the server refuses it if
// the guess is stale (another process appended), after which the append
// reads the tip afresh. An expected version that fails against a guess is
// checked again against a fresh read before Append reports a conflict.
// Taking turns per stream keeps this process's writers to one stream from
// refusing each other on the server: each waits for the one before it and
// then appends after its result, in one round trip.
type tips struct {
	mu    sync.Mutex
	known map[string]tip
	turns map[string]*turn
}

// turn is the queue of one stream's appends: a one-slot semaphore and the
// number of appends holding or waiting for it.
type turn struct {
	sem  chan struct{}
	refs int
}

// lock waits for subj's turn, or for ctx to end.
func (t *tips) lock(ctx context.Context, subj string) (unlock func(), err error) {
	t.mu.Lock()
	if t.turns == nil {
		t.turns = make(map[string]*turn)
	}
	tr := t.turns[subj]
	if tr == nil {
		tr = &turn{sem: make(chan struct{}, 1)}
		t.turns[subj] = tr
	}
	tr.refs++
	t.mu.Unlock()
	release := func() {
		t.mu.Lock()
		if tr.refs--; tr.refs == 0 {
			delete(t.turns, subj)
		}
		t.mu.Unlock()
	}
	select {
	case tr.sem <- struct{}{}:
		return func() { <-tr.sem; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// get returns the remembered tip of subj.
func (t *tips) get(subj string) (tip, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	v, ok := t.known[subj]
	return v, ok
}

// put remembers the tip of subj, forgetting some other stream's when full.
func (t *tips) put(subj string, v tip) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.known == nil {
		t.known = make(map[string]tip)
	}
	if _, ok := t.known[subj]; !ok && len(t.known) >= maxTips {
		for k := range t.known {
			delete(t.known, k)
			break
		}
	}
	t.known[subj] = v
}

// forget drops the remembered tip of subj.
func (t *tips) forget(subj string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.known, subj)
}
