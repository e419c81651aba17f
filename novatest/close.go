package novatest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nova-go/nova"
)

// testClose uses a store after Close: every call must fail with an error
// matching nova.ErrClosed, never panic. A subscription waiting when the
// store closes must end with nova.ErrClosed, and a second Close must not
// panic.
func (s *suite) testClose(t *testing.T) {
	t.Parallel()

	t.Run("use after close", func(t *testing.T) {
		t.Parallel()
		st := s.store(t)
		MustAppend(t, st, "s", nova.NoStream, Events("e", 3)...)
		if err := s.within(t, "Close", st.Close); err != nil {
			t.Fatalf("Close: %v", err)
		}
		ctx := s.ctx(t)
		calls := []struct {
			name string
			run  func() error
		}{
			{"Append", func() error {
				_, err := st.Append(ctx, "s", nova.Any, Events("e", 1)...)
				return err
			}},
			{"Append to a new stream", func() error {
				_, err := st.Append(ctx, "t", nova.NoStream, Events("e", 1)...)
				return err
			}},
			{"ReadStream", func() error { return firstErr(st.ReadStream(ctx, "s", nova.ReadStreamOptions{})) }},
			{"ReadAll", func() error { return firstErr(st.ReadAll(ctx, nova.ReadAllOptions{})) }},
			{"Streams", func() error { return firstErr(st.Streams(ctx, nova.StreamsOptions{})) }},
			{"Subscribe", func() error { return firstErr(st.Subscribe(ctx, nova.SubscribeOptions{})) }},
		}
		for _, c := range calls {
			if err := s.within(t, c.name+" after Close", c.run); !errors.Is(err, nova.ErrClosed) {
				t.Errorf("%s after Close: got %v, want an error matching nova.ErrClosed", c.name, err)
			}
		}
		if err := s.within(t, "second Close", st.Close); err != nil && !errors.Is(err, nova.ErrClosed) {
			t.Errorf("second Close: got %v, want nil or an error matching nova.ErrClosed", err)
		}
	})

	t.Run("subscription waiting", func(t *testing.T) {
		t.Parallel()
		st := s.store(t)
		MustAppend(t, st, "s", nova.NoStream, Events("e", 2)...)
		sub := s.subscribe(t, st, nova.SubscribeOptions{})
		sub.next(t)
		sub.next(t)
		time.Sleep(20 * time.Millisecond) // let it reach its wait; not asserted
		if err := s.within(t, "Close", st.Close); err != nil {
			t.Fatalf("Close with a subscription waiting: %v", err)
		}
		if err := sub.wait(t); !errors.Is(err, nova.ErrClosed) {
			t.Fatalf("subscription waiting when the store closed ended with %v, want an error matching nova.ErrClosed", err)
		}
	})

	t.Run("read in progress", func(t *testing.T) {
		t.Parallel()
		st := s.store(t)
		MustAppend(t, st, "s", nova.NoStream, Events("e", 3000)...)
		ctx := s.ctx(t)
		closed := false
		err := s.within(t, "ReadAll", func() error {
			for _, err := range st.ReadAll(ctx, nova.ReadAllOptions{}) {
				if err != nil {
					return err
				}
				if !closed {
					closed = true
					if err := st.Close(); err != nil {
						return err
					}
				}
			}
			return nil
		})
		// The read may have fetched everything before the store closed; if
		// it reports an error, it must say the store is closed.
		if err != nil && !errors.Is(err, nova.ErrClosed) {
			t.Fatalf("ReadAll while the store closed ended with %v, want nil or an error matching nova.ErrClosed", err)
		}
	})

	t.Run("subscription catching up", func(t *testing.T) {
		t.Parallel()
		st := s.store(t)
		MustAppend(t, st, "s", nova.NoStream, Events("e", 3000)...)
		ctx, cancel := context.WithCancel(s.ctx(t))
		defer cancel()
		closed := false
		err := s.within(t, "Subscribe", func() error {
			for _, err := range st.Subscribe(ctx, nova.SubscribeOptions{}) {
				if err != nil {
					return err
				}
				if !closed {
					closed = true
					if err := st.Close(); err != nil {
						return err
					}
				}
			}
			return errEnded
		})
		if !errors.Is(err, nova.ErrClosed) {
			t.Fatalf("subscription catching up when the store closed ended with %v, want an error matching nova.ErrClosed", err)
		}
	})
}
