package novamysql_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novamysql"
)

// isCode reports whether err is the server's error number code.
func isCode(err error, code uint16) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == code
}

// lockEvents takes a write lock on the events table of database name on a
// connection of its own, which shuts out the store's reads until the
// returned function releases it.
func lockEvents(t *testing.T, name string) (release func()) {
	t.Helper()
	db, _ := admin(t)
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "LOCK TABLES "+name+".nova_events WRITE"); err != nil {
		conn.Close()
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			if _, err := conn.ExecContext(context.Background(), "UNLOCK TABLES"); err != nil {
				t.Error(err)
			}
			conn.Close()
		})
	}
	t.Cleanup(release)
	return release
}

// TestReadErrorsAreTransient: a read that waits for a lock past the
// server's lock_wait_timeout, and a read whose connection is killed while
// it runs, fail with transient errors, which the projection runner and
// the saga workers wait out; once the lock is released the store reads
// again.
func TestReadErrorsAreTransient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	name, dsn := scratchDB(t)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["lock_wait_timeout"] = "1"
	s := open(t, novamysql.Config{DSN: cfg.FormatDSN()})
	dbNames.Store(s, name)
	if _, err := s.Append(ctx, "s", nova.NoStream, nova.EventData{Type: "t", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	readStream := func() error {
		for _, err := range s.ReadStream(ctx, "s", nova.ReadStreamOptions{}) {
			return err
		}
		return errors.New("no event")
	}

	release := lockEvents(t, name)
	err = readStream()
	if !nova.IsTransient(err) || !isCode(err, 1205) {
		t.Errorf("read past lock_wait_timeout = %v, want a transient lock wait timeout", err)
	}
	// Killed while waiting for the lock.
	errc := make(chan error, 1)
	go func() {
		for _, err := range s.ReadAll(ctx, nova.ReadAllOptions{}) {
			errc <- err
			return
		}
		errc <- errors.New("no event")
	}()
	time.Sleep(200 * time.Millisecond) // the read waits for the lock
	if err := killConns(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !nova.IsTransient(err) {
		t.Errorf("read whose connection was killed = %v, want a transient error", err)
	}
	release()
	if err := readStream(); err != nil {
		t.Fatalf("read after the lock is released: %v", err)
	}
}
