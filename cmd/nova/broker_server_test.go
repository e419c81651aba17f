package main

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/nova-go/nova/internal/brokerns"
	"github.com/nova-go/nova/internal/testenv"
)

// syncBuffer is a bytes.Buffer for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// tailing runs `nova tail` with args until the test ends or stop is
// called, and returns its output buffers once it follows its pattern.
func tailing(t *testing.T, args ...string) (out, errOut *syncBuffer, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut = &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, append([]string{"tail"}, args...), out, errOut) }()
	var once sync.Once
	code := -1
	stop = func() int {
		once.Do(func() { cancel(); code = <-done })
		return code
	}
	t.Cleanup(func() { stop() })
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(errOut.String(), "following") {
		select {
		case c := <-done:
			done <- c
			t.Fatalf("tail exited %d before following: %s", c, errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("tail did not start following: %s", errOut.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return out, errOut, stop
}

func TestDemoRelaysToRabbitMQAndTailShowsIt(t *testing.T) {
	t.Parallel()
	server := testenv.Need(t, testenv.RabbitMQ)
	ns := strings.ToLower(scratchName("clitest-"))
	topics := map[string]bool{}
	t.Cleanup(func() {
		if err := brokerns.DropRabbitMQ(server, ns, slices.Sorted(maps.Keys(topics)), nil); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	demoRelaysAndTailShows(t, withQuery(t, server, "namespace", ns), topics)
}

func TestDemoRelaysToJetStreamAndTailShowsIt(t *testing.T) {
	t.Parallel()
	server := testenv.Need(t, testenv.NATS)
	ns := strings.ToLower(scratchName("clitest-"))
	t.Cleanup(func() {
		if err := brokerns.DropJetStream(context.Background(), server, ns); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	demoRelaysAndTailShows(t, withQuery(t, server, "namespace", ns), map[string]bool{})
}

func TestDemoRelaysToKafkaAndTailShowsIt(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	spec := "kafka://" + strings.Join(c.ListenAddrs(), ",") + "?namespace=clitest"
	demoRelaysAndTailShows(t, spec, map[string]bool{})
}

// demoRelaysAndTailShows runs the demo with --broker spec while tail
// follows its lifecycle events: tail must show every event the demo
// relayed, and dlq must find no dead letter. It records the topics it
// saw in topics.
func demoRelaysAndTailShows(t *testing.T, spec string, topics map[string]bool) {
	scheme, _, _ := strings.Cut(spec, "://")

	out, _, stop := tailing(t, "saga.#", "--broker", spec, "--json")
	db := t.TempDir() + "/demo.db"
	code, report, stderr := runNova(t, "demo", "--store", db, "--orders", "4", "--broker", spec, "--json")
	if code != 0 {
		t.Fatalf("demo --broker: exit %d: %s", code, stderr)
	}
	var rep demoJSON
	if err := json.Unmarshal([]byte(report), &rep); err != nil {
		t.Fatalf("demo report: %v\n%s", err, report)
	}
	if rep.Relayed == 0 || !strings.HasPrefix(rep.Broker, scheme+"://") || strings.Contains(rep.Broker, ":guest@") {
		t.Fatalf("demo report: %d relayed to %q; want some, to the %s URL without its password", rep.Relayed, rep.Broker, scheme)
	}

	ids := map[string]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for len(ids) < rep.Relayed {
		if time.Now().After(deadline) {
			t.Fatalf("tail showed %d distinct envelopes, the demo relayed %d:\n%s", len(ids), rep.Relayed, out.String())
		}
		time.Sleep(20 * time.Millisecond)
		clear(ids)
		for line := range strings.Lines(out.String()) {
			var l envelopeLine
			if err := json.Unmarshal([]byte(line), &l); err != nil {
				t.Fatalf("tail --json line %q: %v", line, err)
			}
			if !strings.HasPrefix(l.Topic, "saga.") || l.EventType != "saga.event" {
				t.Fatalf("tail showed %s %s, want saga lifecycle events only", l.Topic, l.EventType)
			}
			ids[l.ID] = true
			topics[l.Topic] = true
		}
	}
	if len(ids) != rep.Relayed {
		t.Fatalf("tail showed %d distinct envelopes, the demo relayed %d", len(ids), rep.Relayed)
	}
	if code := stop(); code != 0 {
		t.Fatalf("tail ended with exit %d on Ctrl-C, want 0", code)
	}

	// Nothing was dead-lettered; dlq says so and changes nothing.
	code, dl, stderr := runNova(t, "dlq", "saga.fulfil.saga.completed", "--broker", spec)
	if code != 0 || dl != "" || !strings.Contains(stderr, "listed 0 dead letters") {
		t.Fatalf("dlq: exit %d, stdout %q, stderr %q", code, dl, stderr)
	}
	topics["saga.fulfil.saga.completed"] = true
}
