package novatest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nova-go/nova"
)

// testCancel checks that a done context ends every call: before a call
// starts, in the middle of a read, and while a subscription waits for new
// events. The call must end with an error matching the context's error;
// how fast is not asserted, only that it ends within the suite's timeout.
func (s *suite) testCancel(t *testing.T) {
	t.Parallel()

	t.Run("before the call", func(t *testing.T) {
		t.Parallel()
		st := s.store(t)
		MustAppend(t, st, "s", nova.NoStream, Events("e", 5)...)
		before := stateOf(t, st)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		calls := []struct {
			name string
			run  func() error
		}{
			{"Append", func() error {
				_, err := st.Append(ctx, "s", nova.Any, Events("e", 1)...)
				return err
			}},
			{"Append to a new stream", func() error {
				_, err := st.Append(ctx, "new", nova.NoStream, Events("e", 1)...)
				return err
			}},
			{"ReadStream", func() error { return firstErr(st.ReadStream(ctx, "s", nova.ReadStreamOptions{})) }},
			{"ReadStream backwards", func() error {
				return firstErr(st.ReadStream(ctx, "s", nova.ReadStreamOptions{Direction: nova.Backwards}))
			}},
			{"ReadAll", func() error { return firstErr(st.ReadAll(ctx, nova.ReadAllOptions{})) }},
			{"Streams", func() error { return firstErr(st.Streams(ctx, nova.StreamsOptions{})) }},
			{"Subscribe", func() error { return firstErr(st.Subscribe(ctx, nova.SubscribeOptions{})) }},
		}
		for _, c := range calls {
			err := s.within(t, c.name, c.run)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a cancelled context: got %v, want an error matching context.Canceled", c.name, err)
			}
		}
		unchanged(t, st, before, "calls with a cancelled context")
	})

	t.Run("subscription waiting live", func(t *testing.T) {
		t.Parallel()
		st := s.store(t)
		MustAppend(t, st, "s", nova.NoStream, Events("e", 3)...)
		sub := s.subscribe(t, st, nova.SubscribeOptions{})
		for range 3 {
			sub.next(t)
		}
		time.Sleep(20 * time.Millisecond) // let it reach its wait; not asserted
		if err := sub.stop(t); !errors.Is(err, context.Canceled) {
			t.Fatalf("subscription cancelled while waiting ended with %v, want an error matching context.Canceled", err)
		}
	})

	t.Run("subscription deadline", func(t *testing.T) {
		t.Parallel()
		st := s.store(t)
		MustAppend(t, st, "s", nova.NoStream, Events("e", 2)...)
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		var got int
		err := s.within(t, "Subscribe", func() error {
			for _, err := range st.Subscribe(ctx, nova.SubscribeOptions{}) {
				if err != nil {
					return err
				}
				got++
			}
			return errEnded
		})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("subscription past its deadline ended with %v, want an error matching context.DeadlineExceeded", err)
		}
		if got > 2 {
			t.Fatalf("subscription delivered %d events, the log has 2", got)
		}
	})

	t.Run("subscription catching up", func(t *testing.T) {
		t.Parallel()
		st := s.store(t)
		MustAppend(t, st, "s", nova.NoStream, Events("e", 3000)...)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		err := s.within(t, "Subscribe", func() error {
			for _, err := range st.Subscribe(ctx, nova.SubscribeOptions{}) {
				if err != nil {
					return err
				}
				cancel()
			}
			return errEnded
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("subscription cancelled during catch-up ended with %v, want an error matching context.Canceled", err)
		}
	})

	t.Run("reads in the middle", func(t *testing.T) {
		t.Parallel()
		st := s.store(t)
		MustAppend(t, st, "s", nova.NoStream, Events("e", 3000)...)
		for _, r := range []struct {
			name string
			read func(ctx context.Context) func(func(nova.Event, error) bool)
		}{
			{"ReadStream", func(ctx context.Context) func(func(nova.Event, error) bool) {
				return st.ReadStream(ctx, "s", nova.ReadStreamOptions{})
			}},
			{"ReadAll", func(ctx context.Context) func(func(nova.Event, error) bool) {
				return st.ReadAll(ctx, nova.ReadAllOptions{})
			}},
		} {
			ctx, cancel := context.WithCancel(t.Context())
			err := s.within(t, r.name, func() error {
				for _, err := range r.read(ctx) {
					if err != nil {
						return err
					}
					cancel()
				}
				return nil
			})
			cancel()
			// A read may have fetched what is left before it saw the
			// context; if it reports an error, it must be the context's.
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("%s cancelled in the middle ended with %v, want nil or an error matching context.Canceled", r.name, err)
			}
		}
	})
}
