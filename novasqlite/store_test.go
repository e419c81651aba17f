package novasqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/aggregate"
	"github.com/nova-go/nova/novasqlite"
	"github.com/nova-go/nova/novatest"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path) // never returns: the parent kills it
	}
	goleak.VerifyTestMain(m)
}

// open opens a store on a fresh file in t's temporary directory, closed
// when t ends.
func open(t testing.TB, cfg novasqlite.Config) *novasqlite.Store {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), "events.db")
	}
	s, err := novasqlite.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open(%+v): %v", cfg, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestStore(t *testing.T) {
	t.Parallel()
	var opts []novatest.StoreOption
	if raceEnabled {
		// NOVA_TEST_SCALE=10 restores the full sizes.
		opts = append(opts, novatest.WithScale(0.1))
	}
	for _, sync := range []novasqlite.Synchronous{novasqlite.SyncFull, novasqlite.SyncNormal} {
		t.Run(sync.String(), func(t *testing.T) {
			t.Parallel()
			novatest.RunStore(t, func(t *testing.T) nova.Store {
				return open(t, novasqlite.Config{Synchronous: sync})
			}, opts...)
		})
	}
}

func TestSnapshotStore(t *testing.T) {
	t.Parallel()
	novatest.RunSnapshotStore(t, func(t *testing.T) aggregate.SnapshotStore {
		return open(t, novasqlite.Config{Synchronous: novasqlite.SyncNormal})
	})
}
