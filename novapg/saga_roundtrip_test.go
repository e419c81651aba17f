package novapg_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/novapg"
	"github.com/nova-go/nova/novatest"
	"github.com/nova-go/nova/saga"
)

// TestMeasureTransitionRoundTrips counts what a saga transition sends to
// the server on a pool of one connection: round trips (the client
// writing after it has read: each time it waits for an answer) and
// frontend messages by kind (Sync ends a pipeline; Query is a simple
// query). It runs only with NOVA_MEASURE=1:
//
//	NOVA_MEASURE=1 go test ./novapg -run MeasureTransitionRoundTrips -v
func TestMeasureTransitionRoundTrips(t *testing.T) {
	if os.Getenv("NOVA_MEASURE") == "" {
		t.Skip("set NOVA_MEASURE=1 to measure")
	}
	ctx := context.Background()
	rs, w := countedRunStore(t, 1)
	now, err := rs.Now(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const runs, steps = 50, 3
	record := func(run string, step int) {
		t.Helper()
		_, err := rs.Record(ctx, saga.Transition{
			Stream: saga.StreamName("order", run), Expected: nova.Exact(uint64(step)),
			Events: novatest.Events("saga.test", 1),
			Run:    saga.RunInfo{Saga: "order", RunID: run, Status: saga.Running, Step: fmt.Sprint(step), DueAt: now.Add(time.Hour)},
			Owner:  "w", Lease: time.Minute,
			Outbox: []broker.Envelope{{ID: nova.NewEventID(), Topic: "saga.order", EventType: "step", Payload: []byte(`{}`)}},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	record("warm", 0) // statements prepared, the notification sent
	record("warm", 1)
	time.Sleep(100 * time.Millisecond)
	w.reset()
	start := time.Now()
	for i := range runs {
		for step := range steps {
			record(fmt.Sprint("r", i), step)
		}
	}
	took := time.Since(start)
	n := float64(runs * steps)
	trips, byKind := w.result()
	t.Logf("%s a transition; per transition: %.1f round trips; messages: %v", took/time.Duration(n), float64(trips)/n, byKind)
}

// countedRunStore returns a run store on a pool of conns connections
// whose frontend messages w counts.
func countedRunStore(t *testing.T, conns int32) (*novapg.RunStore, *pgWire) {
	t.Helper()
	ctx := context.Background()
	sc := newScratch(t)
	pc, err := pgxpool.ParseConfig(sc.url)
	if err != nil {
		t.Fatal(err)
	}
	w := &pgWire{}
	pc.MaxConns = conns
	pc.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &pgCountConn{Conn: c, w: w}, nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	// One notification at most while measuring: the first append's.
	s := open(t, novapg.Config{Pool: pool, Schema: sc.schema, NotifyCoalesce: time.Hour})
	return novapg.NewRunStore(s), w
}

// TestMeasureConcurrentTransitions counts what 8 runs recording their
// transitions at once send, on a pool of 8 connections: Syncs per
// transition are commits per transition (group commit shares one among
// the transitions that arrive while another commits). It runs only with
// NOVA_MEASURE=1:
//
//	NOVA_MEASURE=1 go test ./novapg -run MeasureConcurrentTransitions -v
func TestMeasureConcurrentTransitions(t *testing.T) {
	if os.Getenv("NOVA_MEASURE") == "" {
		t.Skip("set NOVA_MEASURE=1 to measure")
	}
	ctx := context.Background()
	const writers, runs, steps = 8, 40, 4
	rs, w := countedRunStore(t, writers)
	now, err := rs.Now(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rs.Record(ctx, transitionAt("warm", 0, "w").t); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	w.reset()
	start := time.Now()
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range runs {
				run := fmt.Sprint("w", g, "-", i)
				for step := range steps {
					tr := transitionAt(run, uint64(step), "w")
					tr.t.Run.DueAt = now.Add(time.Hour)
					if _, err := rs.Record(ctx, tr.t); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	n := float64(writers * runs * steps)
	trips, byKind := w.result()
	t.Logf("%.0f transitions/s; per transition: %.2f commits (Syncs), %.2f round trips; messages: %v",
		n/took.Seconds(), float64(byKind["Sync"])/n, float64(trips)/n, byKind)
}

// pgWire counts the frontend messages of the client's connections.
type pgWire struct {
	mu     sync.Mutex
	trips  int
	byKind map[string]int
}

func (w *pgWire) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.trips, w.byKind = 0, map[string]int{}
}

func (w *pgWire) result() (int, map[string]int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.trips, w.byKind
}

// pgCountConn counts the round trips and messages written to it. pgx
// writes whole messages; each starts with its kind's byte and a 4-byte
// length that counts itself.
type pgCountConn struct {
	net.Conn
	w      *pgWire
	mu     sync.Mutex
	reread bool // read since the last write
}

var pgKinds = map[byte]string{'P': "Parse", 'B': "Bind", 'D': "Describe", 'E': "Execute", 'S': "Sync", 'Q': "Query", 'H': "Flush", 'C': "Close"}

func (c *pgCountConn) Write(b []byte) (int, error) {
	w := c.w
	c.mu.Lock()
	newTrip := c.reread
	c.reread = false
	c.mu.Unlock()
	w.mu.Lock()
	if w.byKind != nil {
		if newTrip {
			w.trips++
		}
		for m := b; len(m) >= 5; {
			k, n := m[0], int(binary.BigEndian.Uint32(m[1:5]))
			name, ok := pgKinds[k]
			if !ok || n < 4 || n+1 > len(m) {
				break
			}
			w.byKind[name]++
			m = m[n+1:]
		}
	}
	w.mu.Unlock()
	return c.Conn.Write(b)
}

func (c *pgCountConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.mu.Lock()
	c.reread = true
	c.mu.Unlock()
	return n, err
}
