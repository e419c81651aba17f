package novatest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/aggregate"
)

// RunSnapshotStore runs the snapshot store conformance suite against the
// stores newStore returns. newStore must return a fresh, empty store each
// time it is called and register its cleanup with t; it is called from
// parallel subtests.
//
// The suite checks that a stream with no snapshot reports
// [nova.ErrNotFound]; that a snapshot round-trips (stream, version, schema,
// data) with its data copied, not shared; that the snapshot at the highest
// version wins whatever the order of saves, also when they race, and that
// a save at the stored version replaces it; that streams are isolated; and
// that bad input (nil or cancelled context, empty or invalid stream ID,
// version 0, negative schema) fails, with [nova.ErrInvalid] for the bad
// values, and stores nothing.
//
// Of the options, only [WithTimeout] applies: it bounds each case's calls.
func RunSnapshotStore(t *testing.T, newStore func(t *testing.T) aggregate.SnapshotStore, opts ...StoreOption) {
	t.Helper()
	o := storeOptions{scale: 1, timeout: time.Minute}
	for _, opt := range opts {
		opt(&o)
	}
	if o.timeout <= 0 {
		t.Fatalf("novatest: WithTimeout(%v): want a positive duration", o.timeout)
	}
	for _, c := range []struct {
		name string
		run  func(ctx context.Context, t *testing.T, s aggregate.SnapshotStore)
	}{
		{"Missing", snapMissing},
		{"RoundTrip", snapRoundTrip},
		{"DataIsCopied", snapDataIsCopied},
		{"HigherVersionKept", snapHigherVersionKept},
		{"SameVersionReplaces", snapSameVersionReplaces},
		{"RacingSaves", snapRacingSaves},
		{"StreamsIsolated", snapStreamsIsolated},
		{"BadInput", snapBadInput},
		{"CancelledContext", snapCancelledContext},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), o.timeout)
			defer cancel()
			c.run(ctx, t, newStore(t))
		})
	}
}

func snapshotAt(stream string, version uint64, schema int, data string) aggregate.Snapshot {
	return aggregate.Snapshot{Stream: stream, Version: version, Schema: schema, Data: []byte(data), RecordedAt: time.Now().UTC()}
}

func snapSave(ctx context.Context, t *testing.T, s aggregate.SnapshotStore, snap aggregate.Snapshot) {
	t.Helper()
	if err := s.SaveSnapshot(ctx, snap); err != nil {
		t.Fatalf("save snapshot of %q at version %d: %v", snap.Stream, snap.Version, err)
	}
}

func snapLoad(ctx context.Context, t *testing.T, s aggregate.SnapshotStore, stream string) aggregate.Snapshot {
	t.Helper()
	got, err := s.LoadSnapshot(ctx, stream)
	if err != nil {
		t.Fatalf("load snapshot of %q: %v", stream, err)
	}
	return got
}

// snapWant checks the fields a store must keep.
func snapWant(t *testing.T, got, want aggregate.Snapshot) {
	t.Helper()
	if got.Stream != want.Stream || got.Version != want.Version || got.Schema != want.Schema || !bytes.Equal(got.Data, want.Data) {
		t.Fatalf("loaded snapshot {%q v%d schema %d %q}, want {%q v%d schema %d %q}",
			got.Stream, got.Version, got.Schema, got.Data, want.Stream, want.Version, want.Schema, want.Data)
	}
}

func snapMissing(ctx context.Context, t *testing.T, s aggregate.SnapshotStore) {
	_, err := s.LoadSnapshot(ctx, "order-1")
	if !errors.Is(err, nova.ErrNotFound) {
		t.Fatalf("load of a stream with no snapshot: %v, want an error matching nova.ErrNotFound", err)
	}
}

func snapRoundTrip(ctx context.Context, t *testing.T, s aggregate.SnapshotStore) {
	before := time.Now()
	want := snapshotAt("order-1", 7, 3, `{"status":"paid","lines":["a","b"],"note":"é ✓"}`)
	snapSave(ctx, t, s, want)
	got := snapLoad(ctx, t, s, "order-1")
	snapWant(t, got, want)
	if got.RecordedAt.IsZero() {
		t.Error("loaded snapshot has no RecordedAt")
	}
	if d := got.RecordedAt.Sub(before); d < -time.Hour || d > time.Hour {
		t.Errorf("RecordedAt %v is far from the time of the save %v", got.RecordedAt, before)
	}
}

func snapDataIsCopied(ctx context.Context, t *testing.T, s aggregate.SnapshotStore) {
	want := snapshotAt("order-1", 2, 1, `{"n":1}`)
	snap := want
	snap.Data = bytes.Clone(want.Data)
	snapSave(ctx, t, s, snap)
	snap.Data[2] = 'X' // the caller reuses its buffer
	got := snapLoad(ctx, t, s, "order-1")
	snapWant(t, got, want)
	got.Data[2] = 'Y' // the caller scribbles on what it loaded
	snapWant(t, snapLoad(ctx, t, s, "order-1"), want)
}

func snapHigherVersionKept(ctx context.Context, t *testing.T, s aggregate.SnapshotStore) {
	high := snapshotAt("order-1", 10, 1, `{"v":10}`)
	snapSave(ctx, t, s, snapshotAt("order-1", 5, 1, `{"v":5}`))
	snapSave(ctx, t, s, high)
	snapWant(t, snapLoad(ctx, t, s, "order-1"), high)
	// A late save of an older state does not replace a newer one.
	snapSave(ctx, t, s, snapshotAt("order-1", 8, 1, `{"v":8}`))
	snapWant(t, snapLoad(ctx, t, s, "order-1"), high)
}

func snapSameVersionReplaces(ctx context.Context, t *testing.T, s aggregate.SnapshotStore) {
	snapSave(ctx, t, s, snapshotAt("order-1", 4, 1, `{"shape":1}`))
	want := snapshotAt("order-1", 4, 2, `{"shape":2}`)
	snapSave(ctx, t, s, want)
	snapWant(t, snapLoad(ctx, t, s, "order-1"), want)
}

func snapRacingSaves(ctx context.Context, t *testing.T, s aggregate.SnapshotStore) {
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			// Writer w saves versions w+1, w+1+writers, ... so versions
			// interleave across writers.
			for i := range each {
				v := uint64(w + 1 + i*writers)
				if err := s.SaveSnapshot(ctx, snapshotAt("order-1", v, 1, fmt.Sprintf(`{"v":%d}`, v))); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("racing save: %v", err)
	}
	const top = writers * each
	snapWant(t, snapLoad(ctx, t, s, "order-1"), snapshotAt("order-1", top, 1, fmt.Sprintf(`{"v":%d}`, top)))
}

func snapStreamsIsolated(ctx context.Context, t *testing.T, s aggregate.SnapshotStore) {
	a := snapshotAt("order-1", 3, 1, `{"id":1}`)
	b := snapshotAt("order-10", 1, 1, `{"id":10}`)
	snapSave(ctx, t, s, a)
	snapSave(ctx, t, s, b)
	snapWant(t, snapLoad(ctx, t, s, "order-1"), a)
	snapWant(t, snapLoad(ctx, t, s, "order-10"), b)
	for _, other := range []string{"order-2", "order", "order-1 ", "ORDER-1"} {
		if _, err := s.LoadSnapshot(ctx, other); !errors.Is(err, nova.ErrNotFound) {
			t.Errorf("load snapshot of %q: %v, want nova.ErrNotFound", other, err)
		}
	}
}

func snapBadInput(ctx context.Context, t *testing.T, s aggregate.SnapshotStore) {
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"load empty stream", func() error { _, err := s.LoadSnapshot(ctx, ""); return err }},
		{"load control character", func() error { _, err := s.LoadSnapshot(ctx, "order\n1"); return err }},
		{"save empty stream", func() error { return s.SaveSnapshot(ctx, snapshotAt("", 1, 1, `{}`)) }},
		{"save invalid UTF-8 stream", func() error { return s.SaveSnapshot(ctx, snapshotAt("order-\xff", 1, 1, `{}`)) }},
		{"save version 0", func() error { return s.SaveSnapshot(ctx, snapshotAt("order-1", 0, 1, `{}`)) }},
		{"save negative schema", func() error { return s.SaveSnapshot(ctx, snapshotAt("order-1", 1, -1, `{}`)) }},
	} {
		if err := c.call(); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("%s: %v, want an error matching nova.ErrInvalid", c.name, err)
		}
	}
	if _, err := s.LoadSnapshot(ctx, "order-1"); !errors.Is(err, nova.ErrNotFound) {
		t.Errorf("after rejected saves, load snapshot: %v, want nova.ErrNotFound (nothing stored)", err)
	}
}

func snapCancelledContext(ctx context.Context, t *testing.T, s aggregate.SnapshotStore) {
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.SaveSnapshot(cancelled, snapshotAt("order-1", 1, 1, `{}`)); !errors.Is(err, context.Canceled) {
		t.Errorf("save with a cancelled context: %v, want context.Canceled", err)
	}
	if _, err := s.LoadSnapshot(cancelled, "order-1"); !errors.Is(err, context.Canceled) {
		t.Errorf("load with a cancelled context: %v, want context.Canceled", err)
	}
	if _, err := s.LoadSnapshot(ctx, "order-1"); !errors.Is(err, nova.ErrNotFound) {
		t.Errorf("after a cancelled save, load snapshot: %v, want nova.ErrNotFound (nothing stored)", err)
	}
}
