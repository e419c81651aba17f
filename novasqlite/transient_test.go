package novasqlite_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novasqlite"
)

// TestBusyReadIsTransient: a query on a reading connection that fails
// because another process holds the file's lock past BusyTimeout fails
// with a transient error, which the projection runner and the saga
// workers wait out, and succeeds once the lock is released. (In WAL mode
// a plain read rarely waits for a lock: while the file is recovered, or
// held in exclusive locking mode; the test takes the write lock on a
// reading connection to meet a lock on the path every read takes.)
func TestBusyReadIsTransient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "busy.db")
	holder := open(t, novasqlite.Config{Path: path})
	s := open(t, novasqlite.Config{Path: path, BusyTimeout: time.Millisecond})
	b := newBlocker()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := holder.WriteTx(ctx, b.fn); err != nil {
			t.Errorf("holder: %v", err)
		}
	})
	<-b.entered
	err := novasqlite.QueryWriteLock(ctx, s)
	close(b.release)
	wg.Wait()
	if err == nil || !nova.IsTransient(err) {
		t.Fatalf("read while another store holds the lock = %v, want a transient error", err)
	}
	if err := novasqlite.QueryWriteLock(ctx, s); err != nil {
		t.Fatalf("read after the lock is released: %v", err)
	}
}
