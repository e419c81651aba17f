package novatest

import (
	"bytes"
	"context"
	"fmt"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nova-go/nova"
)

// testRelease breaks out of every kind of loop, early and often, and then
// checks that the store still serves reads (nothing is held: a read that
// kept a connection would exhaust a pool), that Close returns, and that no
// goroutine started on behalf of the store outlives Close.
//
// To tell the store's goroutines from those of tests running beside it, the
// case labels its goroutine (runtime/pprof labels) before it creates the
// store; every goroutine started from it, and from those, inherits the
// label.
func (s *suite) testRelease(t *testing.T) {
	label := fmt.Sprint(releaseRuns.Add(1))
	pprof.SetGoroutineLabels(pprof.WithLabels(t.Context(), pprof.Labels(releaseLabel, label)))
	defer pprof.SetGoroutineLabels(t.Context())
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
	var left []string
	var n int
	deadline := time.Now().Add(min(s.timeout, 10*time.Second))
	for {
		n, left = labeled(label)
		if n == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n > 0 {
		t.Fatalf("%d goroutines started for the store outlive Close; by stack, with their count first:\n\n%s", n, strings.Join(left[:min(len(left), 3)], "\n\n"))
	}
}

const releaseLabel = "novatest.release"

var releaseRuns atomic.Int64

// labeled returns how many goroutines, other than the caller, have the
// label releaseLabel set to value, and their stacks grouped as the
// goroutine profile groups them.
func labeled(value string) (int, []string) {
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 1); err != nil {
		return 1, []string{"goroutine profile: " + err.Error()}
	}
	mark := fmt.Sprintf("%q:%q", releaseLabel, value)
	var (
		n   int
		out []string
	)
	for _, rec := range strings.Split(buf.String(), "\n\n") {
		if strings.HasPrefix(rec, "goroutine profile:") {
			_, rec, _ = strings.Cut(rec, "\n")
		}
		_, labels, _ := strings.Cut(rec, "# labels: ")
		labels, _, _ = strings.Cut(labels, "\n")
		if !strings.Contains(labels, mark) || strings.Contains(rec, "runtime/pprof.writeGoroutine") {
			continue
		}
		count, _, _ := strings.Cut(rec, " @ ")
		c, err := strconv.Atoi(strings.TrimSpace(count))
		if err != nil {
			c = 1
		}
		n += c
		out = append(out, rec)
	}
	return n, out
}
