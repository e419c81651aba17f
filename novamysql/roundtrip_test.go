package novamysql_test

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/novamysql"
	"github.com/nova-go/nova/novatest"
	"github.com/nova-go/nova/saga"
)

// TestMeasureTransitionRoundTrips counts the commands a saga transition
// sends to the server, on a pool of one connection: all of them, and
// those sent while the transaction holds the position counter's lock
// (from the first statement naming the counter to COMMIT). Every command
// but COM_STMT_CLOSE waits for its answer: one round trip. It runs only
// with NOVA_MEASURE=1:
//
//	NOVA_MEASURE=1 go test ./novamysql -run MeasureTransitionRoundTrips -v
func TestMeasureTransitionRoundTrips(t *testing.T) {
	if os.Getenv("NOVA_MEASURE") == "" {
		t.Skip("set NOVA_MEASURE=1 to measure")
	}
	ctx := context.Background()
	_, dsn := scratchDB(t)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	w := &wire{}
	mysql.RegisterDialContext("novacount", func(ctx context.Context, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return &countConn{Conn: c, w: w}, nil
	})
	cfg.Net = "novacount"
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	s, err := novamysql.Open(ctx, novamysql.Config{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rs := novamysql.NewRunStore(s)
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
	record("warm", 0) // statements prepared
	w.reset()
	start := time.Now()
	for i := range runs {
		for step := range steps {
			record(fmt.Sprint("r", i), step)
		}
	}
	took := time.Since(start)
	n := float64(runs * steps)
	t.Logf("%s a transition; per transition: %.1f commands, %.1f round trips, %.1f of them holding the counter's lock; by command: %v",
		took/time.Duration(n), float64(w.commands)/n, float64(w.commands-w.closes)/n, float64(w.locked)/n, w.byKind)
}

// wire counts the commands of the client's connection.
type wire struct {
	mu                       sync.Mutex
	commands, closes, locked int
	holding                  bool
	byKind                   map[string]int
	// preparing is set while the answer to a prepare of a statement
	// naming the counter is awaited; counterIDs are those statements.
	preparing  bool
	counterIDs map[uint32]bool
}

// lockID reports whether the execute packet b runs a statement naming
// the counter.
func (w *wire) lockID(b []byte) bool {
	return len(b) >= 9 && w.counterIDs[binary.LittleEndian.Uint32(b[5:9])]
}

func (w *wire) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.commands, w.closes, w.locked, w.byKind = 0, 0, 0, map[string]int{}
}

// countConn counts the commands written to it: go-sql-driver writes each
// packet, its 4-byte header included, in one Write.
type countConn struct {
	net.Conn
	w *wire
}

func (c *countConn) Write(b []byte) (int, error) {
	if len(b) > 4 && b[3] == 0 { // sequence 0: a command
		w := c.w
		w.mu.Lock()
		kind, text := fmt.Sprintf("0x%02x", b[4]), string(b[5:])
		switch b[4] {
		case 0x03:
			kind = "query"
		case 0x16:
			kind = "prepare"
			w.preparing = strings.Contains(text, "counter")
		case 0x17:
			kind = "execute"
		case 0x19:
			kind = "close"
			w.closes++
		}
		if w.byKind != nil {
			w.commands++
			w.byKind[kind]++
			if !w.holding && (b[4] == 0x03 || b[4] == 0x17) && (strings.Contains(text, "counter") || b[4] == 0x17 && w.lockID(b)) {
				w.holding = true
			}
			if w.holding && b[4] != 0x19 {
				w.locked++
			}
			if b[4] == 0x03 && (strings.HasPrefix(text, "COMMIT") || strings.HasPrefix(text, "ROLLBACK")) {
				w.holding = false
			}
		}
		w.mu.Unlock()
	}
	return c.Conn.Write(b)
}

func (c *countConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	w := c.w
	w.mu.Lock()
	if w.preparing && n >= 9 && b[4] == 0 { // COM_STMT_PREPARE_OK
		if w.counterIDs == nil {
			w.counterIDs = map[uint32]bool{}
		}
		w.counterIDs[binary.LittleEndian.Uint32(b[5:9])] = true
	}
	w.preparing = false
	w.mu.Unlock()
	return n, err
}
