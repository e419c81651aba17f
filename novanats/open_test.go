package novanats_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novanats"
	"github.com/nova-go/nova/novatest"
)

// SkipMigrate opens an existing stream only: a missing one is reported
// and not created.
func TestSkipMigrate(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	ctx := t.Context()
	cfg := scratchConfig(t, srv.url)
	cfg.SkipMigrate = true
	if _, err := novanats.Open(ctx, cfg); !errors.Is(err, novanats.ErrFormatOutdated) || !strings.Contains(err.Error(), cfg.StreamName) {
		t.Fatalf("Open of a missing stream: %v, want ErrFormatOutdated naming it", err)
	}
	nc, err := nats.Connect(srv.url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.Stream(ctx, cfg.StreamName); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("after Open with SkipMigrate the stream lookup says %v, want not found", err)
	}
	if _, err := novanats.Migrate(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	s, err := novanats.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	novatest.MustAppend(t, s, "a", nova.NoStream, novatest.Events("e", 1)...)
}

// A connection error does not show the password of the URL.
func TestConnectErrorHidesThePassword(t *testing.T) {
	t.Parallel()
	_, err := novanats.Open(t.Context(), novanats.Config{URL: "nats://bob:hunter2@127.0.0.1:1"})
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "bob:xxxxx@") {
		t.Errorf("Open: %v, want a connection error with the password hidden", err)
	}
}
