package novatest

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nova-go/nova"
)

// testRelease breaks out of every kind of loop, early and often, and then
// checks that the store still serves reads (nothing is held: a read that
// kept a connection would exhaust a pool), that Close returns, and that no
// goroutine of the backend's package outlives Close.
//
// It runs alone, before the parallel cases, so the goroutines it sees
// appear are its own. Goroutines of other tests running at the same time
// in the backend's package could still confuse it; run RunStore from a
// test that is not parallel with the backend's other tests.
func (s *suite) testRelease(t *testing.T) {
	pkg := pkgPath(s, t)
	before := goroutines(pkg)
	st := s.store(t)
	ctx := s.ctx(t)
	for i := range 3 {
		MustAppend(t, st, fmt.Sprintf("s-%d", i), nova.NoStream, Events("e", 40)...)
	}
	log := MustReadAll(t, st)

	breakAfter := func(what string, n int, seq func(func(nova.Event, error) bool)) {
		t.Helper()
		got := 0
		err := s.within(t, what, func() error {
			for _, err := range seq {
				if err != nil {
					return err
				}
				if got++; got == n {
					break
				}
			}
			return nil
		})
		if err != nil || got != n {
			t.Fatalf("%s: got %d events and error %v, want %d events and a clean break", what, got, err, n)
		}
	}
	const rounds = 25
	for i := range rounds {
		n := i%3 + 1
		breakAfter("ReadStream", n, st.ReadStream(ctx, "s-1", nova.ReadStreamOptions{}))
		breakAfter("ReadStream backwards", n, st.ReadStream(ctx, "s-2", nova.ReadStreamOptions{Direction: nova.Backwards}))
		breakAfter("ReadAll", n, st.ReadAll(ctx, nova.ReadAllOptions{}))
		breakAfter("Subscribe catching up", n, st.Subscribe(ctx, nova.SubscribeOptions{}))
		err := s.within(t, "Streams", func() error {
			for _, err := range st.Streams(ctx, nova.StreamsOptions{}) {
				if err != nil {
					return err
				}
				break
			}
			return nil
		})
		if err != nil {
			t.Fatalf("Streams: %v", err)
		}
	}

	// Break out of live subscriptions, once per round, on the first event
	// appended after each started waiting.
	for i := range 5 {
		var wg sync.WaitGroup
		subCtx, cancel := context.WithCancel(ctx)
		tail := MustReadAll(t, st)
		from := tail[len(tail)-1].Position
		d := NewEventData("live", fmt.Sprintf(`{"i":%d}`, i))
		wg.Go(func() {
			time.Sleep(10 * time.Millisecond)
			if _, err := st.Append(subCtx, "live", nova.Any, d); err != nil && subCtx.Err() == nil {
				t.Errorf("append for the live subscription: %v", err)
			}
		})
		var got nova.Event
		err := s.within(t, "Subscribe live", func() error {
			for e, err := range st.Subscribe(subCtx, nova.SubscribeOptions{From: from}) {
				if err != nil {
					return err
				}
				got = e
				break
			}
			return nil
		})
		cancel()
		wg.Wait()
		if err != nil || got.ID != d.ID {
			t.Fatalf("live subscription: got %s and error %v, want the live event %s and a clean break", describe(got), err, d.ID)
		}
	}

	// Nothing was held: whole reads still work.
	if got := MustReadAll(t, st); len(got) != len(log)+5 {
		t.Fatalf("after the breaks ReadAll returned %d events, want %d", len(got), len(log)+5)
	}
	if got := MustReadStream(t, st, "s-0", nova.ReadStreamOptions{}); len(got) != 40 {
		t.Fatalf("after the breaks ReadStream returned %d events, want 40", len(got))
	}

	if err := s.within(t, "Close", st.Close); err != nil {
		t.Fatalf("Close after breaking out of loops: %v", err)
	}
	if pkg == "" {
		return
	}
	var left []string
	deadline := time.Now().Add(min(s.timeout, 10*time.Second))
	for {
		left = left[:0]
		for id, stack := range goroutines(pkg) {
			if _, old := before[id]; !old {
				left = append(left, stack)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Fatalf("%d goroutines of package %s outlive Close; the first:\n\n%s", len(left), pkg, strings.Join(left[:min(len(left), 3)], "\n\n"))
	}
}

// pkgPath returns the import path of the package that defines the store's
// type, or "" if it has none.
func pkgPath(s *suite, t *testing.T) string {
	// A throwaway store: its type is all that is needed.
	var typ reflect.Type
	t.Run("store type", func(t *testing.T) { typ = reflect.TypeOf(s.store(t)) })
	for typ != nil && typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if typ == nil {
		return ""
	}
	return typ.PkgPath()
}

// goroutines returns the stacks, by goroutine ID, of the goroutines that
// run code of package pkg and are not running a test.
func goroutines(pkg string) map[string]string {
	out := map[string]string{}
	if pkg == "" {
		return out
	}
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		stack := string(g)
		if !strings.Contains(stack, pkg+".") || strings.Contains(stack, "testing.tRunner") {
			continue
		}
		head, _, _ := strings.Cut(stack, "[")
		out[strings.TrimSpace(head)] = stack
	}
	return out
}
