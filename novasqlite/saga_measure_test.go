package novasqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/novasqlite"
	"github.com/nova-go/nova/novatest"
	"github.com/nova-go/nova/saga"
)

// TestMeasureTransitionFrames counts the pages a saga transition writes
// to the WAL (each commit appends every page it changed as one frame),
// over 3-step runs that leave 200 finished runs behind them, as a
// benchmark's runs do. It runs only with NOVA_MEASURE=1:
//
//	NOVA_MEASURE=1 go test ./novasqlite -run MeasureTransitionFrames -v
func TestMeasureTransitionFrames(t *testing.T) {
	if os.Getenv("NOVA_MEASURE") == "" {
		t.Skip("set NOVA_MEASURE=1 to measure")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "frames.db")
	s, err := novasqlite.Open(ctx, novasqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	rs := novasqlite.NewRunStore(s)
	now, _ := rs.Now(ctx)
	// Each transition as saga.Run writes it: the run's start, two steps'
	// success with the next one's start, the last one's success with the
	// run's end.
	statuses := []saga.Status{saga.Running, saga.Running, saga.Running, saga.Completed}
	run := func(id string) {
		for step, st := range statuses {
			due := now
			if st == saga.Completed {
				due = time.Time{}
			}
			_, err := rs.Record(ctx, saga.Transition{
				Stream: saga.StreamName("order", id), Expected: nova.Exact(uint64(step)),
				Events: novatest.Events("saga.test", 1),
				Run:    saga.RunInfo{Saga: "order", RunID: id, Status: st, Step: fmt.Sprint(step), DueAt: due},
				Owner:  "w", Lease: time.Minute,
				Outbox: []broker.Envelope{{ID: nova.NewEventID(), Topic: "saga.order", EventType: "step", Payload: []byte(`{}`)}},
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range 200 {
		run(fmt.Sprint("old", i))
	}
	// Closing the store checkpoints the WAL and removes it: the next
	// commits start a new one.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, novasqlite.Config{Path: path})
	rs = novasqlite.NewRunStore(s)
	var pageSize int64
	if err := s.ReadTx(ctx, func(c *sqlite3.Conn) error {
		st, _, err := c.Prepare(`PRAGMA page_size`)
		if err != nil {
			return err
		}
		defer st.Close()
		st.Step()
		pageSize = st.ColumnInt64(0)
		return st.Err()
	}); err != nil {
		t.Fatal(err)
	}
	const runs = 20
	for i := range runs {
		run(fmt.Sprint("r", i))
	}
	st, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	frames := (st.Size() - 32) / (pageSize + 24)
	n := float64(runs * len(statuses))
	t.Logf("%.1f WAL frames (pages) a transition, %d frames for %d transitions", float64(frames)/n, frames, runs*len(statuses))
}
