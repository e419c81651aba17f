package brokertest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nova-go/nova/broker"
)

// Tuning of the GroupKill case.
const (
	// groupKillShare is how many envelopes the child acknowledges before
	// it holds every further envelope without answering. The parent
	// acknowledges a quarter of them before the child is killed.
	groupKillShare = 5
	// groupKillKeys is how many keys the envelopes spread over, so that
	// a backend that shares a group's work by key (Kafka's partitions)
	// gives both members some.
	groupKillKeys = 24
	// groupKillChildPace and groupKillParentPace are how long each
	// member's handler works on an envelope: the child is the slower, so
	// that it has work left when it is killed.
	groupKillChildPace  = 5 * time.Millisecond
	groupKillParentPace = 2 * time.Millisecond
	// groupKillGroup and groupKillPattern name the group.
	groupKillGroup   = "gkill"
	groupKillPattern = "gkill.>"
)

// groupKillCount is how many envelopes the GroupKill case publishes:
// fewer under the race detector, which slows both processes.
func groupKillCount() int {
	if raceEnabled {
		return 150
	}
	return 300
}

// groupKillTopics are the topics the GroupKill case publishes to, in
// turn.
var groupKillTopics = []string{"gkill.a", "gkill.b", "gkill.c"}

// testGroupKill runs a consumer group with two members in two processes
// (WithOpen, or WithOpenSpread when given): a child process and the test
// process. The child joins first, envelopes are published over several
// topics and keys, and the parent joins once the child receives some. Each member
// records what it handles before it answers (the child on its stdout,
// line by line), and the child, once it has acknowledged a few, holds
// every further envelope without answering. Once the parent has
// acknowledged a quarter of the envelopes and the child holds at least
// one, the child is killed with SIGKILL, mid-way through the envelopes
// (the publishing may still go on).
//
// Then: every published envelope has been acknowledged by a member (or,
// with an attempt limit of 1 where the server counts deliveries,
// dead-lettered); every envelope the child held is handled by the
// survivor (with Attempts 1 or more under
// [broker.Guarantees].ServerAttempts); no envelope went to the parent
// while the child held it; the parent never handles an envelope twice;
// and an envelope acknowledged by both members is one the child
// acknowledged just before it died (its acknowledgement lost with the
// process), handled again by the parent after the kill.
func (s *suite) testGroupKill(t *testing.T) {
	t.Parallel()
	if s.open == nil {
		t.Skip("brokertest: pass WithOpen(func(t testing.TB, namespace string) broker.Broker) to check that a consumer group shared by two processes loses nothing when one of them is killed with SIGKILL; an in-process broker such as broker.Memory cannot have group members in two processes")
	}
	ns := s.namespace()
	b := s.spreadOpen()(t, ns)
	g := groups(t, b)
	limit := s.maxAttempts(t)
	server := broker.GuaranteesOf(b).ServerAttempts
	n := groupKillCount()

	c := s.startChild(t, childSpec{Role: "groupkill", Namespace: ns, Group: groupKillGroup, Pattern: groupKillPattern})
	parent := make(chan broker.Envelope, 4*n)
	ctx := s.ctxFor(t, 6)
	joined := false
	join := func() {
		joined = true
		s.join(t, ctx, g, groupKillGroup, groupKillPattern, func(hctx context.Context, e broker.Envelope) error {
			select {
			case <-time.After(groupKillParentPace):
			case <-hctx.Done():
				return hctx.Err()
			}
			parent <- e // recorded, then acknowledged
			return nil
		})
	}

	ids := numbered("gk", n)
	topic := make(map[string]string, n)
	for i, id := range ids {
		topic[id] = groupKillTopics[i%len(groupKillTopics)]
	}
	published := s.publishAsync(t, ctx, b, ids, func(i int, id string) broker.Envelope {
		e := Envelope(id, topic[id])
		e.Key = fmt.Sprintf("key-%02d", i%groupKillKeys)
		return e
	})

	// What the child said, and what the parent handled before and after
	// the kill.
	var (
		got      = map[string]int{}   // envelopes given to the child's handler
		done     = map[string]bool{}  // acknowledged by the child
		holding  = map[string]bool{}  // held by the child, not released
		released = map[string]bool{}  // held by the child until its handler's ctx ended
		attempts = map[string]int{}   // Attempts of the child's first delivery
		before   = map[string]int{}   // handled by the parent before the kill
		after    = map[string][]int{} // handled by the parent after the kill: their Attempts
		dead     = map[string]bool{}  // dead-lettered (limit 1 under ServerAttempts only)
		childSay = func(l string) {
			verb, rest, _ := strings.Cut(l, " ")
			id, extra, _ := strings.Cut(rest, " ")
			switch verb {
			case "got":
				got[id]++
				if got[id] == 1 {
					var a int
					fmt.Sscan(extra, &a)
					attempts[id] = a
				}
			case "done":
				done[id] = true
			case "holding":
				holding[id] = true
			case "released":
				delete(holding, id)
				released[id] = true
			default:
				t.Fatalf("brokertest: the child process said %q", l)
			}
		}
	)

	// Until the kill: both members acknowledge their share, and the child
	// holds an envelope.
	deadline := time.NewTimer(2 * s.timeout)
	defer deadline.Stop()
	parentShare := n / 4
	for len(done) < groupKillShare || len(holding) == 0 || len(before) < parentShare {
		select {
		case l, ok := <-c.lines:
			if !ok {
				<-c.done
				t.Fatalf("brokertest: the child process exited (%v) before it was killed; its stderr:\n%s", c.err, c.stderrText())
			}
			childSay(l)
			if !joined && len(got) > 0 {
				// The child receives envelopes: the parent joins. A
				// group that deals out partitions (Kafka) rebalances
				// now, and may take a while; the child meanwhile holds
				// what it gets, so the parent still finds work.
				join()
			}
		case e := <-parent:
			before[e.ID]++
		case err := <-published:
			if err != nil {
				t.Fatal(err)
			}
			published = nil
		case <-deadline.C:
			t.Fatalf("within %v of %d envelopes published: the child received %d, acknowledged %d and holds %v, the parent (joined: %v) acknowledged %d; want %d, one held and %d: the group does not share its work between the two processes; the child's stderr:\n%s",
				2*s.timeout, n, len(got), len(done), slices.Sorted(maps.Keys(holding)), joined, len(before), groupKillShare, parentShare, c.stderrText())
		}
	}
	c.kill(t)
	for l := range c.lines { // what the child wrote before it died
		childSay(l)
	}
	held := slices.Sorted(maps.Keys(holding))
	t.Logf("killed the child holding %v; before the kill the child acknowledged %d envelopes, the parent %d", held, len(done), len(before))
	if len(held) == 0 {
		t.Fatalf("the child released every envelope it held (%v) before it was killed: want it to hold one", slices.Sorted(maps.Keys(released)))
	}

	// After the kill: the parent handles the rest, the held envelopes
	// included, within a timeout of each other.
	handled := func(id string) bool {
		return done[id] || before[id] > 0 || len(after[id]) > 0 || dead[id]
	}
	missing := func() []string {
		var out []string
		for _, id := range ids {
			if !handled(id) {
				out = append(out, id)
			}
		}
		for _, id := range held {
			if len(after[id]) == 0 && !dead[id] && !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
		return out
	}
	progress := time.NewTimer(s.timeout)
	defer progress.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for published != nil || len(missing()) > 0 {
		select {
		case e := <-parent:
			after[e.ID] = append(after[e.ID], e.Attempts)
			progress.Reset(s.timeout)
		case err := <-published:
			if err != nil {
				t.Fatal(err)
			}
			published = nil
		case <-tick.C:
			if limit > 1 || !server {
				continue
			}
			for _, tp := range groupKillTopics {
				dl, err := b.PollDLQ(ctx, tp, 100)
				if err != nil {
					t.Fatalf("PollDLQ: %v", err)
				}
				for _, d := range dl {
					if d.Envelope.Attempts < 1 || d.Reason == "" {
						t.Fatalf("dead letter %+v: want attempts 1 and a reason (attempt limit 1)", d)
					}
					dead[d.Envelope.ID] = true
				}
			}
		case <-progress.C:
			m := missing()
			t.Fatalf("after the child was killed holding %v, nothing more handled within %v: %d envelopes neither acknowledged nor dead-lettered: %v", held, s.timeout, len(m), m)
		}
	}
	// Anything more would be a redelivery of something acknowledged.
	settle := time.After(s.settle)
	for settling := true; settling; {
		select {
		case e := <-parent:
			after[e.ID] = append(after[e.ID], e.Attempts)
		case <-settle:
			settling = false
		}
	}

	var again, doneAgain []string
	for _, id := range ids {
		if k := before[id] + len(after[id]); k > 1 {
			t.Errorf("the parent handled %s %d times (%d before the kill, attempts after it %v): a member that lives and acknowledges is not given an envelope again", id, k, before[id], after[id])
		}
		if before[id] > 0 && (done[id] || holding[id]) {
			t.Errorf("%s went to the parent before the kill although the child acknowledged or held it", id)
		}
		if got[id] > 1 {
			again = append(again, id)
		}
		if done[id] && len(after[id]) > 0 {
			doneAgain = append(doneAgain, id)
		}
	}
	for _, id := range held {
		t.Logf("%s, held by the killed child (delivered to it with attempts %d), handled by the survivor with attempts %v, dead-lettered: %v", id, attempts[id], after[id], dead[id])
		for _, a := range after[id] {
			if limit == 1 && server {
				t.Errorf("held envelope %s handed to the survivor (attempts %d) although the attempt limit is 1 and the server counts deliveries: want it dead-lettered", id, a)
			}
			if server && a < 1 {
				t.Errorf("held envelope %s handed to the survivor with attempts %d (first delivered with %d), want at least 1: the server counts deliveries (Guarantees.ServerAttempts)", id, a, attempts[id])
			}
		}
	}
	if len(again) > 0 {
		t.Logf("envelopes given to the child's handler more than once (after it gave them up): %v", again)
	}
	if len(doneAgain) > 0 {
		t.Logf("envelopes the child acknowledged just before it died, handled again by the parent: %v", doneAgain)
	}
	t.Logf("%d envelopes: the child acknowledged %d, the parent %d before the kill and %d after, %d dead-lettered", n, len(done), len(before), len(after), len(dead))
}

// publishAsync publishes an envelope for each of ids, made by env, from a
// goroutine: the returned channel receives nil once all are published,
// or the first error. The goroutine ends before t's cleanups that were
// registered before the call.
func (s *suite) publishAsync(t *testing.T, ctx context.Context, b broker.Broker, ids []string, env func(i int, id string) broker.Envelope) chan error {
	ctx, cancel := context.WithCancel(ctx)
	res := make(chan error, 1)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	wg.Go(func() {
		for i, id := range ids {
			if err := b.Publish(ctx, env(i, id)); err != nil {
				res <- fmt.Errorf("brokertest: publish %s: %w", id, err)
				return
			}
		}
		res <- nil
	})
	return res
}

// childGroupKill is the child's part of testGroupKill: join the group,
// acknowledge envelopes slowly, saying "got <id> <attempts>" as each
// arrives and "done <id>" before it is acknowledged, until it has
// acknowledged groupKillShare; then hold every further envelope, saying
// "holding <id>", until the process is killed, or "released <id>" when
// its handler's ctx ends first.
func (s *suite) childGroupKill(t *testing.T, spec childSpec) {
	ctx, cancel := context.WithTimeout(t.Context(), s.childLife())
	defer cancel()
	b := s.spreadOpen()(t, spec.Namespace)
	g, ok := b.(broker.GroupSubscriber)
	if !ok {
		t.Fatalf("brokertest: %T is not a broker.GroupSubscriber", b)
	}
	var mu sync.Mutex
	acked := 0
	sub, err := g.SubscribeGroup(ctx, spec.Group, spec.Pattern, func(hctx context.Context, e broker.Envelope) error {
		// Each line is one write to the pipe, which the parent reads
		// even after the process is killed.
		fmt.Printf("got %s %d\n", e.ID, e.Attempts)
		mu.Lock()
		hold := acked >= groupKillShare
		mu.Unlock()
		if hold {
			fmt.Printf("holding %s\n", e.ID)
			<-hctx.Done()
			fmt.Printf("released %s\n", e.ID)
			return hctx.Err()
		}
		select {
		case <-time.After(groupKillChildPace):
		case <-hctx.Done():
			fmt.Printf("released %s\n", e.ID)
			return hctx.Err()
		}
		mu.Lock()
		acked++
		mu.Unlock()
		fmt.Printf("done %s\n", e.ID)
		return nil
	})
	if err != nil {
		t.Fatalf("SubscribeGroup: %v", err)
	}
	fmt.Println("ready")
	<-ctx.Done()
	sub.Unsubscribe()
	t.Fatalf("brokertest: the child process was not killed within %v", s.childLife())
}
