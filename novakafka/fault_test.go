//go:build unix

package novakafka_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/broker/brokertest"
	"github.com/nova-go/nova/internal/testenv"
)

// TestKillRedelivers kills a group member with SIGKILL while its handler
// holds an envelope: the next member of the group receives that envelope
// and those behind it, in order, once the dead member's session has
// expired. Envelopes the dead member acknowledged may come again (they
// are committed every CommitInterval), but none is lost.
func TestKillRedelivers(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ns := namespace()
	child := testenv.StartChild(t, []string{
		childEnv + "=1",
		childSeedsEnv + "=" + strings.Join(seeds(), ","),
		childNSEnv + "=" + ns,
	}, "ready")
	t.Cleanup(child.Stop)

	b := open(t, ns)
	var ids []string
	for i := range 5 {
		ids = append(ids, fmt.Sprintf("e%02d", i))
	}
	ids = append(ids, "block")
	for i := 6; i < 10; i++ {
		ids = append(ids, fmt.Sprintf("e%02d", i))
	}
	var envs []broker.Envelope
	for _, id := range ids {
		envs = append(envs, keyed(id, "kill.job", "one-key"))
	}
	if err := broker.PublishAll(ctx, b, envs...); err != nil {
		t.Fatal(err)
	}
	for want := 0; want <= 5; {
		select {
		case line, ok := <-child.Lines():
			if !ok {
				t.Fatalf("child ended: %v; stderr: %s", child.Err(), child.Stderr())
			}
			if line != "got "+ids[want] {
				t.Fatalf("child said %q, want %q", line, "got "+ids[want])
			}
			want++
		case <-ctx.Done():
			t.Fatalf("child did not reach block; stderr: %s", child.Stderr())
		}
	}
	child.Kill(t, "group member")

	col := newCollector()
	sub, err := b.(broker.GroupSubscriber).SubscribeGroup(ctx, "kill", "kill.>", func(ctx context.Context, e broker.Envelope) error {
		col.add("next", e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	got := col.waitFor(t, 60*time.Second, "block and the envelopes behind it", func(ds []delivery) bool {
		return len(ds) > 0 && ds[len(ds)-1].env.ID == "e09"
	})
	var seq []string
	for _, d := range got {
		seq = append(seq, d.env.ID)
		if d.env.ID == "block" && d.env.Attempts != 0 {
			t.Errorf("block redelivered with attempts %d, want 0: attempt counts are kept in-process", d.env.Attempts)
		}
	}
	at := -1
	for i, id := range seq {
		if id == "block" {
			at = i
		}
	}
	if at < 0 || strings.Join(seq[at:], " ") != "block e06 e07 e08 e09" {
		t.Fatalf("next member received %v, want block e06 e07 e08 e09 at the end", seq)
	}
	for i := 0; i < at; i++ {
		if seq[i] != ids[i+5-at] {
			t.Fatalf("next member received %v: before block, only envelopes the dead member acknowledged, in order", seq)
		}
	}
	t.Logf("next member received %v", seq)
}

// TestReconnect cuts every connection of a broker through a proxy, longer
// than the group session timeout: Publish fails during the outage, and
// afterwards publishing, a subscription, a group subscription and Poll
// work again without a new Subscribe.
func TestReconnect(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	b, proxy := outage(t, namespace())
	col := newCollector()
	sub, err := b.Subscribe(ctx, "net.>", func(ctx context.Context, e broker.Envelope) error {
		col.add("sub", e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	gsub, err := b.SubscribeGroup(ctx, "g", "net.>", func(ctx context.Context, e broker.Envelope) error {
		col.add("group", e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer gsub.Unsubscribe()
	has := func(member, id string) func([]delivery) bool {
		return func(ds []delivery) bool {
			for _, d := range ds {
				if d.member == member && d.env.ID == id {
					return true
				}
			}
			return false
		}
	}
	if err := b.Publish(ctx, brokertest.Envelope("before", "net.a")); err != nil {
		t.Fatal(err)
	}
	col.waitFor(t, 30*time.Second, "before reached the subscription", has("sub", "before"))
	col.waitFor(t, 30*time.Second, "before reached the group", has("group", "before"))
	if got, err := b.Poll(ctx, "net.a", 10); err != nil || len(got) != 1 {
		t.Fatalf("Poll before the outage = %d, %v; want before", len(got), err)
	}

	proxy.Cut()
	pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
	err = b.Publish(pctx, brokertest.Envelope("during", "net.a"))
	pcancel()
	if err == nil {
		t.Fatal("Publish during the outage succeeded")
	}
	t.Logf("Publish during the outage: %v", err)
	time.Sleep(3 * time.Second) // past the session timeout
	proxy.Restore()

	if err := b.Publish(ctx, brokertest.Envelope("after", "net.a")); err != nil {
		t.Fatalf("Publish after the outage: %v", err)
	}
	col.waitFor(t, 60*time.Second, "after reached the subscription", has("sub", "after"))
	col.waitFor(t, 60*time.Second, "after reached the group", has("group", "after"))
	var polled []string
	for !strings.Contains(strings.Join(polled, " "), "after") && ctx.Err() == nil {
		got, err := b.Poll(ctx, "net.a", 10)
		if err != nil {
			t.Logf("Poll after the outage: %v", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for _, e := range got {
			polled = append(polled, e.ID)
		}
	}
	t.Logf("polled after the outage: %v", polled)
}
