package novanats_test

import (
	"context"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novanats"
	"github.com/nova-go/nova/novatest"
)

// openStore opens a store on a scratch stream of the server at url and
// closes it when t ends.
func openStore(t testing.TB, url string) *novanats.Store {
	t.Helper()
	s, err := novanats.Open(context.Background(), scratchConfig(t, url))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStoreEmbedded(t *testing.T) {
	srv := startServer(t)
	novatest.RunStore(t, func(t *testing.T) nova.Store {
		return openStore(t, srv.url)
	})
}
