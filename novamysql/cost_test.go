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
// exactly what this leaves out). It runs only with NOVA_MEASURE=1:
//
//	NOVA_MEASURE=1 go test ./novamysql -run MeasureCounterCost -v
func TestMeasureCounterCost(t *testing.T) {
	if os.Getenv("NOVA_MEASURE") == "" {
		t.Skip("set NOVA_MEASURE=1 to measure")
	}
	ctx := context.Background()
	for _, writers := range []int{1, 8, 16} {
		for _, lock := range []bool{true, false} {
			rate := measureRaw(ctx, t, writers, lock, 3*time.Second)
			t.Logf("%2d writers, counter lock %-5v: %6.0f appends/s", writers, lock, rate)
		}
	}
}

func measureRaw(ctx context.Context, t *testing.T, writers int, lock bool, d time.Duration) float64 {
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
	defer db.Close()
	db.SetMaxIdleConns(writers)
	var n atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	for w := range writers {
		wg.Go(func() {
			stream := fmt.Sprintf("w-%d", w)
			for v := uint64(0); time.Now().Before(stop); v++ {
				ev := bench.Events(1)[0]
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					t.Error(err)
					return
				}
				pos := uint64(w)<<40 + v + 1
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
	start := time.Now()
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}
