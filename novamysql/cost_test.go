package novamysql_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nova-go/nova/internal/bench"
	"github.com/nova-go/nova/novamysql"
)

// TestMeasureCounterCost measures what serializing on the counter row
// costs, by hand-written transactions on the store's tables: writers each
// append one event per transaction to their own stream, once taking the
// counter row's lock as the store does, once with positions each writer
// takes from a range of its own (not gap-free: what the lock buys is
// exactly what this leaves out), the two taking turns in short slices. It runs only with NOVA_MEASURE=1:
//
//	NOVA_MEASURE=1 go test ./novamysql -run MeasureCounterCost -v
func TestMeasureCounterCost(t *testing.T) {
	if os.Getenv("NOVA_MEASURE") == "" {
		t.Skip("set NOVA_MEASURE=1 to measure")
	}
	ctx := context.Background()
	// The two variants take turns in slices of half a second, on a
	// database each, so that both see the same load on a shared machine.
	dbs := [2]*sql.DB{costDB(ctx, t), costDB(ctx, t)}
	for _, writers := range []int{1, 8, 16, 32} {
		var n [2]int64
		var d [2]time.Duration
		for slice := range 12 {
			for _, v := range []int{slice % 2, 1 - slice%2} {
				k, took := costSlice(ctx, t, dbs[v], v == 0, writers, slice, 500*time.Millisecond)
				n[v] += k
				d[v] += took
			}
		}
		with, without := float64(n[0])/d[0].Seconds(), float64(n[1])/d[1].Seconds()
		t.Logf("%2d writers: with the counter lock %5.0f appends/s, without %5.0f appends/s, ratio %.2f", writers, with, without, with/without)
	}
}

// costDB returns a pool on a scratch database with the store's tables.
func costDB(ctx context.Context, t *testing.T) *sql.DB {
	_, dsn := scratchDB(t)
	if _, err := novamysql.Migrate(ctx, novamysql.Config{DSN: dsn}); err != nil {
		t.Fatal(err)
	}
	// Statements with arguments in one round trip each, as prepared
	// statements would run.
	db, err := sql.Open("mysql", dsn+"?interpolateParams=true")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxIdleConns(64)
	return db
}

// costSlice has writers append single events for d, each to a stream of
// its own for this slice, and returns how many appends they made.
func costSlice(ctx context.Context, t *testing.T, db *sql.DB, lock bool, writers, slice int, d time.Duration) (int64, time.Duration) {
	var n atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	stop := start.Add(d)
	for w := range writers {
		wg.Go(func() {
			stream := fmt.Sprintf("w%d-%d-%d", writers, slice, w)
			for v := uint64(0); time.Now().Before(stop); v++ {
				ev := bench.Events(1)[0]
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					t.Error(err)
					return
				}
				// Without the lock, positions come from a range of the
				// writer's own: unique, but not in commit order.
				pos := uint64(writers)<<56 | uint64(slice)<<48 | uint64(w)<<32 | (v + 1)
				if lock {
					res, err := tx.Exec(`UPDATE nova_counter SET position = LAST_INSERT_ID(position + 1) WHERE id = 1`)
					if err == nil {
						var p int64
						p, err = res.LastInsertId()
						pos = uint64(p)
					}
					if err != nil {
						t.Error(err)
						tx.Rollback()
						return
					}
				}
				if v == 0 {
					_, err = tx.Exec(`INSERT INTO nova_streams (stream, version) VALUES (?, 1)`, stream)
				} else {
					_, err = tx.Exec(`UPDATE nova_streams SET version = ? WHERE stream = ? AND version = ?`, v+1, stream, v)
				}
				if err == nil {
					_, err = tx.Exec(`INSERT INTO nova_events (position, id, stream, version, type, data, correlation_id, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6))`,
						pos, ev.ID, stream, v+1, ev.Type, ev.Data, ev.Metadata.CorrelationID)
				}
				if err == nil {
					err = tx.Commit()
				} else {
					tx.Rollback()
				}
				if err != nil {
					t.Error(err)
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	return n.Load(), time.Since(start)
}
