package novanats_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/aggregate"
	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/novanats"
	"github.com/nova-go/nova/novatest"
	"github.com/nova-go/nova/projection"
)

// validKey is what JetStream takes as a key-value key (nats.go's
// jetstream.keyValid).
var validKey = regexp.MustCompile(`^[-/_=.a-zA-Z0-9]+$`)

func keyValid(k string) bool {
	return validKey.MatchString(k) && k[0] != '.' && k[len(k)-1] != '.' && !strings.Contains(k, "..")
}

func TestKVKey(t *testing.T) {
	t.Parallel()
	seen := map[string]string{}
	for _, name := range []string{"order-1", "Order-1", "a.b", ".lead", "trail.", "a..b", "*", ">", "a b", "注文/ü", "$KV", "p@rebuild", strings.Repeat("n", nova.MaxStreamLen)} {
		k := novanats.KVKey(name)
		if !keyValid(k) {
			t.Errorf("%q maps to %q, not a valid key", name, k)
		}
		if back, ok := novanats.KVName(k); !ok || back != name {
			t.Errorf("%q: key %q reads back as %q, %v", name, k, back, ok)
		}
		if other, dup := seen[k]; dup {
			t.Errorf("%q and %q map to one key %q", name, other, k)
		}
		seen[k] = name
	}
	for _, bad := range []string{"", "!!", "a.b", "/w=="} {
		if _, ok := novanats.KVName(bad); ok {
			t.Errorf("KVName(%q) succeeded", bad)
		}
	}
}

// FuzzKVKey: every valid name maps to a valid key that reads back as the
// name, and two names never share a key.
func FuzzKVKey(f *testing.F) {
	f.Add("order-1", "order-2")
	f.Add("a.b", "a..b")
	f.Add(".", "-")
	f.Add("P", "p")
	f.Fuzz(func(t *testing.T, a, b string) {
		if nova.ValidateStream(a) != nil {
			return
		}
		k := novanats.KVKey(a)
		if !keyValid(k) {
			t.Fatalf("%q maps to %q, not a valid key", a, k)
		}
		if back, ok := novanats.KVName(k); !ok || back != a {
			t.Fatalf("%q: key %q reads back as %q, %v", a, k, back, ok)
		}
		if nova.ValidateStream(b) == nil && a != b && novanats.KVKey(b) == k {
			t.Fatalf("%q and %q map to one key %q", a, b, k)
		}
	})
}

func TestSnapshots(t *testing.T) {
	t.Parallel()
	url := testenv.Need(t, testenv.NATS)
	novatest.RunSnapshotStore(t, func(t *testing.T) aggregate.SnapshotStore {
		return novanats.NewSnapshots(openStore(t, url))
	})
}

func TestCheckpoints(t *testing.T) {
	t.Parallel()
	url := testenv.Need(t, testenv.NATS)
	novatest.RunCheckpointStore(t, func(t *testing.T) projection.CheckpointStore {
		return novanats.NewCheckpoints(openStore(t, url))
	})
}

// TestKVPrivate runs both suites against a private nats-server of the
// current release too.
func TestKVPrivate(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	t.Run("snapshots", func(t *testing.T) {
		novatest.RunSnapshotStore(t, func(t *testing.T) aggregate.SnapshotStore {
			return novanats.NewSnapshots(openStore(t, srv.url))
		})
	})
	t.Run("checkpoints", func(t *testing.T) {
		novatest.RunCheckpointStore(t, func(t *testing.T) projection.CheckpointStore {
			return novanats.NewCheckpoints(openStore(t, srv.url))
		})
	})
}

// TestSnapshotTooLarge: a snapshot above the server's max_payload is
// refused before anything is sent.
func TestSnapshotTooLarge(t *testing.T) {
	t.Parallel()
	url := testenv.Need(t, testenv.NATS)
	st := openStore(t, url)
	snaps := novanats.NewSnapshots(st)
	limit := novanats.Conn(st).MaxPayload()
	if limit >= nova.MaxDataLen {
		t.Skipf("the server's max_payload %d is above nova.MaxDataLen", limit)
	}
	err := snaps.SaveSnapshot(t.Context(), aggregate.Snapshot{Stream: "s", Version: 1, Data: make([]byte, limit)})
	if !errors.Is(err, nova.ErrInvalid) || !strings.Contains(err.Error(), "max_payload") {
		t.Fatalf("save of %d bytes: %v, want nova.ErrInvalid naming max_payload", limit, err)
	}
	if _, err := snaps.LoadSnapshot(t.Context(), "s"); !errors.Is(err, nova.ErrNotFound) {
		t.Fatalf("after a refused save: %v, want nova.ErrNotFound", err)
	}
}

// TestBucketsSkipMigrate: a store opened with SkipMigrate reads missing
// buckets as empty and creates nothing; its writes fail with
// ErrFormatOutdated until Migrate has made the buckets.
func TestBucketsSkipMigrate(t *testing.T) {
	t.Parallel()
	url := testenv.Need(t, testenv.NATS)
	ctx := t.Context()
	cfg := scratchConfig(t, url)
	first, err := novanats.Open(ctx, cfg) // the stream only
	if err != nil {
		t.Fatal(err)
	}
	first.Close()
	cfg.SkipMigrate = true
	st, err := novanats.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cps, snaps := novanats.NewCheckpoints(st), novanats.NewSnapshots(st)
	if pos, err := cps.Load(ctx, "p"); err != nil || pos != nova.Start {
		t.Fatalf("Load without a bucket = %s, %v", pos, err)
	}
	if list, err := cps.List(ctx); err != nil || len(list) != 0 {
		t.Fatalf("List without a bucket = %v, %v", list, err)
	}
	if err := cps.Release(ctx, "p", "o"); err != nil {
		t.Fatalf("Release without a bucket: %v", err)
	}
	if _, err := snaps.LoadSnapshot(ctx, "s"); !errors.Is(err, nova.ErrNotFound) {
		t.Fatalf("LoadSnapshot without a bucket: %v", err)
	}
	if err := cps.Save(ctx, "p", nova.Position{Commit: 1}); !errors.Is(err, novanats.ErrFormatOutdated) {
		t.Fatalf("Save without a bucket under SkipMigrate: %v, want ErrFormatOutdated", err)
	}
	if _, err := cps.Acquire(ctx, "p", "o", time.Minute); !errors.Is(err, novanats.ErrFormatOutdated) {
		t.Fatalf("Acquire without a bucket under SkipMigrate: %v, want ErrFormatOutdated", err)
	}
	if err := snaps.SaveSnapshot(ctx, aggregate.Snapshot{Stream: "s", Version: 1}); !errors.Is(err, novanats.ErrFormatOutdated) {
		t.Fatalf("SaveSnapshot without a bucket under SkipMigrate: %v, want ErrFormatOutdated", err)
	}
	cfg.SkipMigrate = false
	if _, err := novanats.Migrate(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := cps.Save(ctx, "p", nova.Position{Commit: 1}); err != nil {
		t.Fatalf("Save after Migrate: %v", err)
	}
	if err := snaps.SaveSnapshot(ctx, aggregate.Snapshot{Stream: "s", Version: 1}); err != nil {
		t.Fatalf("SaveSnapshot after Migrate: %v", err)
	}
}

// TestLeaseClock: the lease runs out by the clock of whoever asks, so a
// contender whose clock is ahead by the lease's length takes it early:
// the documented assumption that clocks agree to well within LeaseTTL.
// The old holder's saves are fenced all the same.
func TestLeaseClock(t *testing.T) {
	t.Parallel()
	url := testenv.Need(t, testenv.NATS)
	st := openStore(t, url)
	ctx := t.Context()
	holder, ahead := novanats.NewCheckpoints(st), novanats.NewCheckpoints(st)
	novanats.SetCheckpointClock(ahead, func() time.Time { return time.Now().Add(time.Minute) })
	if ok, err := holder.Acquire(ctx, "p", "one", 30*time.Second); !ok || err != nil {
		t.Fatalf("Acquire: %v, %v", ok, err)
	}
	if ok, err := ahead.Acquire(ctx, "p", "two", 30*time.Second); !ok || err != nil {
		t.Fatalf("Acquire by a clock a minute ahead of a 30 s lease: %v, %v; want it taken", ok, err)
	}
	if err := holder.SaveLeased(ctx, "p", "one", nova.Position{Commit: 1}); !errors.Is(err, projection.ErrLeaseLost) {
		t.Fatalf("SaveLeased by the holder whose lease was taken: %v, want ErrLeaseLost", err)
	}
}

// TestProjectionOnNATS: two runners of one projection on NATS
// checkpoints with leases: one runs, the other stands by, and the
// projection reaches the end of the log.
func TestProjectionOnNATS(t *testing.T) {
	t.Parallel()
	url := testenv.Need(t, testenv.NATS)
	st := openStore(t, url)
	ctx := t.Context()
	const n = 20
	for i := range n {
		novatest.MustAppend(t, st, "s", nova.Exact(uint64(i)), novatest.Events("e", 1)...)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	p, err := projection.New("count", nova.NewRegistry(nova.RegistryOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := projection.OnAny(p, func(_ context.Context, e nova.Event) error {
		mu.Lock()
		seen[e.ID]++
		mu.Unlock()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	cps := novanats.NewCheckpoints(st)
	var runners []*projection.Runner
	for _, owner := range []string{"a", "b"} {
		r, err := projection.NewRunner(projection.Config{Store: st, Projection: p, Checkpoints: cps, Leaser: cps, Owner: owner, LeaseTTL: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer r.Stop(context.Background())
		runners = append(runners, r)
	}
	last := novatest.MustReadAll(t, st)[n-1].Position
	deadline := time.Now().Add(30 * time.Second)
	for {
		cp, err := cps.Load(ctx, "count")
		if err != nil {
			t.Fatal(err)
		}
		if cp == last {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkpoint at %s after 30 s, want %s; runners %+v, %+v", cp, last, runners[0].Status(), runners[1].Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
	running := 0
	for _, r := range runners {
		if r.Status().State == projection.Running {
			running++
		}
	}
	if running != 1 {
		t.Errorf("%d runners running, want 1 (the other standing by)", running)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != n {
		t.Errorf("handled %d events, want %d", len(seen), n)
	}
}
