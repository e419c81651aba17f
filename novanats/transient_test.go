package novanats_test

import (
	"context"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/novanats"
)

// TestConnectionLossIsTransient: reads of a store whose connection to the
// server is lost, and reconnecting, fail with transient errors, which the
// projection runner and the saga workers wait out; once the connection is
// back the store reads again.
func TestConnectionLossIsTransient(t *testing.T) {
	t.Parallel()
	url := testenv.Need(t, testenv.NATS)
	proxy := testenv.NewProxy(t, testenv.HostPort(url))
	cfg := scratchConfig(t, url)
	cfg.URL = "nats://" + proxy.Addr()
	cfg.Timeout = 300 * time.Millisecond
	s, err := novanats.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	if _, err := s.Append(ctx, "s", nova.NoStream, nova.EventData{Type: "t", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	reads := map[string]func() error{
		"ReadStream": func() error { return firstErr(s.ReadStream(ctx, "s", nova.ReadStreamOptions{})) },
		"ReadAll":    func() error { return firstErr(s.ReadAll(ctx, nova.ReadAllOptions{})) },
		"Streams": func() error {
			for _, err := range s.Streams(ctx, nova.StreamsOptions{}) {
				return err
			}
			return nil
		},
	}
	proxy.Cut()
	for name, read := range reads {
		if err := read(); !nova.IsTransient(err) {
			t.Errorf("%s with the connection lost = %v, want a transient error", name, err)
		}
	}
	proxy.Restore()
	for name, read := range reads {
		deadline := time.Now().Add(20 * time.Second)
		for {
			err := read()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s after the connection is back: %v", name, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// firstErr returns the error of the first item of seq, or nil.
func firstErr(seq func(yield func(nova.Event, error) bool)) error {
	for _, err := range seq {
		return err
	}
	return nil
}
