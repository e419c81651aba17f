package brokertest

import (
	"context"
	"errors"
	"testing"

	"go.uber.org/goleak"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
)

// testClose closes a broker with idle, busy and wildcard subscriptions,
// and idle and busy group members when the backend has groups: Close
// returns, every subscription ends, the busy handlers' ctx is cancelled,
// no goroutine is left, a second Close is harmless and every call
// afterwards fails with nova.ErrClosed.
func (s *suite) testClose(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	ctx := s.ctx(t)
	b := s.newBroker(t)

	entered := make(chan struct{}, 2)
	released := make(chan error, 2)
	hold := func(hctx context.Context, e broker.Envelope) error {
		entered <- struct{}{}
		<-hctx.Done()
		released <- hctx.Err()
		return hctx.Err()
	}
	subs := []broker.Subscription{
		s.subscribe(t, ctx, b, "close.idle", newRecorder().handle),
		s.subscribe(t, ctx, b, ">", newRecorder().handle),
		s.subscribe(t, ctx, b, "close.busy", hold),
	}
	busy := 1
	g, hasGroups := b.(broker.GroupSubscriber)
	if hasGroups {
		subs = append(subs,
			s.join(t, ctx, g, "close-idle", "close.idle", newRecorder().handle),
			s.join(t, ctx, g, "close-busy", "close.busy", hold))
		busy++
	}
	mustPublish(t, ctx, b, Envelope("c1", "close.busy"))
	for range busy {
		select {
		case <-entered:
		case <-ctx.Done():
			t.Fatalf("handler not called within %v", s.timeout)
		}
	}

	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-ctx.Done():
		t.Fatalf("Close did not return within %v", s.timeout)
	}
	for range busy {
		select {
		case err := <-released:
			if err == nil {
				t.Fatalf("busy handler's ctx not cancelled by Close")
			}
		default:
			t.Fatalf("Close returned while a handler was still running")
		}
	}
	for _, sub := range subs {
		s.waitDone(t, sub, "after Close")
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	calls := []struct {
		name string
		call func() error
	}{
		{"Publish", func() error { return b.Publish(ctx, Envelope("c2", "close.idle")) }},
		{"Poll", func() error { _, err := b.Poll(ctx, "close.idle", 1); return err }},
		{"Subscribe", func() error {
			_, err := b.Subscribe(ctx, ">", newRecorder().handle)
			return err
		}},
		{"PublishDLQ", func() error { return b.PublishDLQ(ctx, "close.dlq", Envelope("c3", "close.idle"), "why") }},
		{"PollDLQ", func() error { _, err := b.PollDLQ(ctx, "close.dlq", 1); return err }},
	}
	if hasGroups {
		calls = append(calls, struct {
			name string
			call func() error
		}{"SubscribeGroup", func() error {
			_, err := g.SubscribeGroup(ctx, "close-idle", "close.idle", newRecorder().handle)
			return err
		}})
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, nova.ErrClosed) {
			t.Errorf("%s after Close: %v, want an error matching nova.ErrClosed", c.name, err)
		}
	}
	for _, sub := range subs {
		if err := sub.Unsubscribe(); err != nil {
			t.Errorf("Unsubscribe after Close: %v", err)
		}
	}
	goleak.VerifyNone(t, ignore)
}

// testCancel ends a subscription with its ctx, idle and while its handler
// runs, and a group member; it publishes, subscribes and joins a group
// with a cancelled ctx, which returns ctx's error and changes nothing.
func (s *suite) testCancel(t *testing.T) {
	t.Parallel()
	ctx := s.ctx(t)
	b := s.newBroker(t)

	t.Run("idle", func(t *testing.T) {
		t.Parallel()
		subCtx, cancel := context.WithCancel(ctx)
		rec := newRecorder()
		sub := s.subscribe(t, subCtx, b, "cancel.idle", rec.handle)
		mustPublish(t, ctx, b, Envelope("ci1", "cancel.idle"))
		s.receive(t, rec.ch, 1)
		cancel()
		s.waitDone(t, sub, "after cancelling its ctx")
		mustPublish(t, ctx, b, Envelope("ci2", "cancel.idle"))
		s.quiet(t, rec.ch)
	})
	t.Run("busy", func(t *testing.T) {
		t.Parallel()
		subCtx, cancel := context.WithCancel(ctx)
		entered := make(chan struct{}, 1)
		sub := s.subscribe(t, subCtx, b, "cancel.busy", func(hctx context.Context, e broker.Envelope) error {
			entered <- struct{}{}
			<-hctx.Done()
			return hctx.Err()
		})
		mustPublish(t, ctx, b, Envelope("cb1", "cancel.busy"))
		select {
		case <-entered:
		case <-ctx.Done():
			t.Fatalf("handler not called within %v", s.timeout)
		}
		cancel()
		s.waitDone(t, sub, "after cancelling its ctx while its handler ran")
	})
	t.Run("group", func(t *testing.T) {
		t.Parallel()
		g := groups(t, b)
		subCtx, cancel := context.WithCancel(ctx)
		tr := newTracker()
		member := s.join(t, subCtx, g, "cancel-group", "cancel.group", tr.handler("member"))
		mustPublish(t, ctx, b, Envelope("cg1", "cancel.group"))
		s.handledAll(t, tr, []string{"cg1"})
		cancel()
		s.waitDone(t, member, "after cancelling its ctx")

		// A join with a done ctx changes nothing: the group it names is
		// not created, so what is published next is not its own.
		done, cancelDone := context.WithCancel(ctx)
		cancelDone()
		if _, err := g.SubscribeGroup(done, "cancel-never", "cancel.never", tr.handler("never")); !errors.Is(err, context.Canceled) {
			t.Fatalf("SubscribeGroup with a cancelled ctx: %v, want context.Canceled", err)
		}
		mustPublish(t, ctx, b, Envelope("cg2", "cancel.never"))
		s.join(t, ctx, g, "cancel-never", "cancel.never", tr.handler("later"))
		mustPublish(t, ctx, b, Envelope("cg3", "cancel.never"))
		if got := s.handledAll(t, tr, []string{"cg3"}); len(got) != 1 {
			t.Fatalf("group created after cg2 was published received %v, want only cg3", handledIDs(got))
		}
		s.quietHandled(t, tr)
	})
	t.Run("publish", func(t *testing.T) {
		t.Parallel()
		done, cancel := context.WithCancel(ctx)
		cancel()
		if err := b.Publish(done, Envelope("cp1", "cancel.publish")); !errors.Is(err, context.Canceled) {
			t.Fatalf("Publish with a cancelled ctx: %v, want context.Canceled", err)
		}
		if _, err := b.Subscribe(done, ">", newRecorder().handle); !errors.Is(err, context.Canceled) {
			t.Fatalf("Subscribe with a cancelled ctx: %v, want context.Canceled", err)
		}
		if got := poll(t, ctx, b, "cancel.publish", 10); len(got) != 0 {
			t.Fatalf("Poll after a cancelled Publish = %v, want none", ids(got))
		}
		// The ID was not used up by the cancelled Publish.
		mustPublish(t, ctx, b, Envelope("cp1", "cancel.publish"))
		if got := poll(t, ctx, b, "cancel.publish", 10); len(got) != 1 {
			t.Fatalf("Poll after publishing again = %v, want cp1", ids(got))
		}
	})
}

// testUnsubscribe ends a subscription by hand: it stops receiving, others
// go on, and a second Unsubscribe is harmless.
func (s *suite) testUnsubscribe(t *testing.T) {
	t.Parallel()
	ctx := s.ctx(t)
	b := s.newBroker(t)
	gone, kept := newRecorder(), newRecorder()
	sub := s.subscribe(t, ctx, b, "unsub.>", gone.handle)
	s.subscribe(t, ctx, b, "unsub.>", kept.handle)
	mustPublish(t, ctx, b, Envelope("u1", "unsub.a"))
	s.receive(t, gone.ch, 1)
	s.receive(t, kept.ch, 1)
	if err := sub.Unsubscribe(); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	s.waitDone(t, sub, "after Unsubscribe")
	if err := sub.Unsubscribe(); err != nil {
		t.Fatalf("second Unsubscribe: %v", err)
	}
	mustPublish(t, ctx, b, Envelope("u2", "unsub.a"))
	if got := s.receive(t, kept.ch, 1); got[0].ID != "u2" {
		t.Fatalf("remaining subscription received %v, want u2", ids(got))
	}
	s.quiet(t, gone.ch)
}
