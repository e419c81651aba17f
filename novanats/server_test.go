package novanats_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nova-go/nova/novanats"
)

// embedded is a nats-server running in the test process with JetStream on
// a random port and a store directory of the test's own.
type embedded struct {
	srv *server.Server
	url string
}

// startServer starts an embedded server and stops it when t ends. Its
// limits allow what the conformance suite appends: 8 MiB payloads and
// atomic batches of nova.MaxBatch events.
func startServer(t testing.TB) *embedded {
	t.Helper()
	return startServerWith(t, nil)
}

// startServerWith starts an embedded server whose options edit has
// changed, if edit is not nil.
func startServerWith(t testing.TB, edit func(*server.Options)) *embedded {
	t.Helper()
	opts := &server.Options{
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   t.TempDir(),
		NoLog:      true,
		NoSigs:     true,
		MaxPayload: 16 << 20,
		JetStreamLimits: server.JSLimitOpts{
			MaxBatchSize: 10_000,
		},
	}
	if edit != nil {
		edit(opts)
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("start nats-server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		t.Fatal("nats-server did not become ready")
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return &embedded{srv: srv, url: srv.ClientURL()}
}

var scratch atomic.Int64

// scratchConfig returns a Config for a JetStream stream no other test
// uses, on the server at url, and deletes that stream when t ends.
func scratchConfig(t testing.TB, url string) novanats.Config {
	t.Helper()
	n := scratch.Add(1)
	suffix := fmt.Sprintf("%d_%d", time.Now().UnixNano()%1e9, n)
	cfg := novanats.Config{
		URL:           url,
		StreamName:    "NOVA_TEST_" + suffix,
		SubjectPrefix: "novatest." + suffix,
		Storage:       novanats.MemoryStorage,
		// A request whose answer a dropped connection lost fails after
		// this long; short, so the connection-drop case runs quickly.
		Timeout: 4 * time.Second,
	}
	t.Cleanup(func() { deleteStream(t, url, cfg.StreamName) })
	return cfg
}

// deleteStream removes a scratch stream, if it exists.
func deleteStream(t testing.TB, url, name string) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Errorf("connect to delete stream %s: %v", name, err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Error(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, name); err != nil && !errorsIsNotFound(err) {
		t.Errorf("delete stream %s: %v", name, err)
	}
}

func errorsIsNotFound(err error) bool {
	return err != nil && (err == jetstream.ErrStreamNotFound || jetstream.ErrStreamNotFound.Error() == err.Error())
}
