package novanats_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/testenv"
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

// The suite runs at testenv.ServerScale: every append is a round trip to
// a server that shares the test's two cores, so a tenth of the specified
// sizes by default; NOVA_TEST_SCALE=1 runs the specified figures.

// TestStorePrivate runs the whole conformance suite against a private
// nats-server 2.12 or later, which has atomic batches. The connection-drop
// case closes the store's client connection on the server; the connection
// reconnects by itself.
func TestStorePrivate(t *testing.T) {
	srv := startServer(t)
	novatest.RunStore(t, func(t *testing.T) nova.Store {
		return openStore(t, srv.url)
	},
		novatest.WithScale(testenv.ServerScale()),
		novatest.WithConnectionKiller(func(ctx context.Context, st nova.Store) error {
			return srv.dropClient(ctx, novanats.Conn(st.(*novanats.Store)))
		}),
	)
}

// TestStoreMachine runs the suite against the machine's server (nats-server
// 2.9.10 here, or NOVA_TEST_NATS_URL). Before 2.12 a server cannot store a
// batch atomically: the store's AtomicBatches says so, and the suite then
// skips the cases that append several events at once; TestBatchRefused
// checks what such an append does.
func TestStoreMachine(t *testing.T) {
	url := testenv.Need(t, testenv.NATS)
	novatest.RunStore(t, func(t *testing.T) nova.Store {
		return openStore(t, url)
	}, novatest.WithScale(testenv.ServerScale()))
}

// The suite finds out from the store whether to run the batch cases.
var _ novatest.AtomicBatcher = (*novanats.Store)(nil)

// TestBatchRefused: on a server without atomic batches, an append of
// several events fails with an error matching nova.ErrNotImplemented and
// writes nothing, while single events append.
func TestBatchRefused(t *testing.T) {
	t.Parallel()
	url := testenv.Need(t, testenv.NATS)
	st := openStore(t, url)
	if st.AtomicBatches() {
		t.Skip("the server at " + url + " has atomic batches")
	}
	ctx := t.Context()
	_, err := st.Append(ctx, "s", nova.NoStream, novatest.Events("e", 2)...)
	if !errors.Is(err, nova.ErrNotImplemented) || !errors.Is(err, novanats.ErrAtomicBatchUnsupported) {
		t.Fatalf("append of 2 events: %v, want ErrAtomicBatchUnsupported matching nova.ErrNotImplemented", err)
	}
	if evs := novatest.MustReadAll(t, st); len(evs) != 0 {
		t.Fatalf("a refused batch wrote %d events", len(evs))
	}
	for i := range 3 {
		res := novatest.MustAppend(t, st, "s", nova.Exact(uint64(i)), novatest.Events("e", 1)...)
		if res.LastVersion != uint64(i+1) {
			t.Fatalf("append %d: %+v", i, res)
		}
	}
	got := novatest.MustReadStream(t, st, "s", nova.ReadStreamOptions{Direction: nova.Backwards, From: 2})
	if len(got) != 2 || got[0].Version != 2 || got[1].Version != 1 {
		t.Fatalf("backwards from 2: %v", got)
	}
	novatest.MustAppend(t, st, "a.*", nova.NoStream, novatest.Events("e", 1)...)
	infos := novatest.MustStreams(t, st, nova.StreamsOptions{})
	if len(infos) != 2 || infos[0] != (nova.StreamInfo{Stream: "a.*", Version: 1}) || infos[1] != (nova.StreamInfo{Stream: "s", Version: 3}) {
		t.Fatalf("Streams = %v", infos)
	}
	if all := novatest.MustReadAll(t, st); len(all) != 4 || all[3].Stream != "a.*" {
		t.Fatalf("ReadAll = %v", all)
	}
}

// TestDuplicateProbe: a retry inside the duplicate window is recognized
// whatever the expected version, on a private server and the machine's.
func TestDuplicateProbe(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"private", func(t *testing.T) string { return startServer(t).url }},
		{"machine", func(t *testing.T) string { return testenv.Need(t, testenv.NATS) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := openStore(t, tc.url(t))
			ctx := t.Context()
			for i, exp := range []nova.ExpectedVersion{nova.Any, nova.StreamExists, nova.NoStream, nova.Exact(1)} {
				stream := fmt.Sprintf("probe-%d", i)
				if exp != nova.NoStream {
					novatest.MustAppend(t, st, stream, nova.NoStream, novatest.Events("prior", 1)...)
				}
				d := novatest.Events("e", 1)
				first, err := st.Append(ctx, stream, exp, d...)
				if err != nil {
					t.Fatalf("%s: %v", exp, err)
				}
				again, err := st.Append(ctx, stream, exp, d...)
				if err != nil || !again.Duplicate || again.Position != first.Position || again.LastVersion != first.LastVersion {
					t.Fatalf("retry with %s: %+v, %v; want the first result %+v as a duplicate", exp, again, err, first)
				}
				_, err = st.Append(ctx, fmt.Sprintf("elsewhere-%d", i), nova.Any, d...)
				if !errors.Is(err, nova.ErrDuplicateEvent) {
					t.Fatalf("ID reused in another stream with Any: %v, want nova.ErrDuplicateEvent", err)
				}
			}
		})
	}
}

// dropClient closes the server side of nc's connection, as a server
// restart or a network fault would, and returns once the server has let
// it go. nc reconnects by itself; a connection still reconnecting from an
// earlier drop is waited for first.
func (s *private) dropClient(ctx context.Context, nc *nats.Conn) error {
	var last error
	for {
		if nc.IsConnected() {
			id, err := nc.GetClientID()
			if err == nil {
				if err = s.kick(ctx, id); err == nil {
					return nil
				}
			}
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("drop the store's connection: %w (last try: %v)", ctx.Err(), last)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// An event larger than the server's max_payload is refused before anything
// is sent, with an error matching nova.ErrInvalid that names the setting
// and its value, on a server with a small max_payload and on the machine's
// (1 MiB by default); an append of several events of which one is too
// large writes none. An event that fits is stored.
func TestEventOverMaxPayload(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"private with max_payload 64 KiB", func(t *testing.T) string {
			return startServerWith(t, func(o *serverOptions) { o.MaxPayload = 64 << 10 }).url
		}},
		{"machine", func(t *testing.T) string { return testenv.Need(t, testenv.NATS) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := openStore(t, tc.url(t))
			max := novanats.Conn(st).MaxPayload() // from the server's INFO
			if max <= 0 || max >= nova.MaxEventLen {
				t.Skipf("the server's max_payload is %d: every event fits", max)
			}
			ctx := t.Context()
			over := nova.EventData{ID: nova.NewEventID(), Type: "big", Data: make([]byte, max)}
			fits := nova.EventData{ID: nova.NewEventID(), Type: "small", Data: make([]byte, max-4096)}
			_, err := st.Append(ctx, "s", nova.NoStream, over)
			if !errors.Is(err, nova.ErrInvalid) || !strings.Contains(err.Error(), "max_payload of "+strconv.FormatInt(max, 10)) ||
				!strings.Contains(err.Error(), "raise max_payload") || !strings.Contains(err.Error(), "event 0") {
				t.Fatalf("append of an event over max_payload: %v, want nova.ErrInvalid naming max_payload of %d, how to raise it and event 0", err, max)
			}
			if st.AtomicBatches() {
				_, err = st.Append(ctx, "s", nova.NoStream, fits, over)
				if !errors.Is(err, nova.ErrInvalid) || !strings.Contains(err.Error(), "event 1") {
					t.Fatalf("append of a batch with an event over max_payload: %v, want nova.ErrInvalid naming event 1", err)
				}
			}
			if evs := novatest.MustReadAll(t, st); len(evs) != 0 {
				t.Fatalf("refused appends wrote %d events", len(evs))
			}
			if _, err := st.Append(ctx, "s", nova.NoStream, fits); err != nil {
				t.Fatalf("append of an event that fits: %v", err)
			}
		})
	}
}

// Two stores with different stream names on one server, neither given a
// subject prefix, are apart: each derives its subjects from its stream
// name, so both open, and neither reads, lists or conflicts with the
// other's events, on the same stream IDs.
func TestTwoStoresOnOneServer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"private", func(t *testing.T) string { return startServer(t).url }},
		{"machine", func(t *testing.T) string { return testenv.Need(t, testenv.NATS) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url := tc.url(t)
			ctx := t.Context()
			var stores [2]*novanats.Store
			for i := range stores {
				cfg := scratchConfig(t, url)
				cfg.SubjectPrefix = "" // the default
				s, err := novanats.Open(ctx, cfg)
				if err != nil {
					t.Fatalf("open store %d (stream %s) beside the other: %v", i, cfg.StreamName, err)
				}
				t.Cleanup(func() { s.Close() })
				if want := "nova." + cfg.StreamName; novanats.SubjectPrefix(s) != want {
					t.Errorf("store %d: subject prefix %q, want %q", i, novanats.SubjectPrefix(s), want)
				}
				stores[i] = s
			}
			for i, s := range stores {
				for v, e := range novatest.Events(fmt.Sprint("from-", i), 1+i) { // one at a time: old servers
					novatest.MustAppend(t, s, "order-1", nova.Exact(uint64(v)), e)
				}
			}
			for i, s := range stores {
				all := novatest.MustReadAll(t, s)
				if len(all) != 1+i {
					t.Fatalf("store %d reads %d events, want its own %d", i, len(all), 1+i)
				}
				for _, e := range all {
					if e.Type != fmt.Sprint("from-", i) {
						t.Fatalf("store %d reads an event of type %q", i, e.Type)
					}
				}
				if got := novatest.MustStreams(t, s, nova.StreamsOptions{}); len(got) != 1 || got[0] != (nova.StreamInfo{Stream: "order-1", Version: uint64(1 + i)}) {
					t.Fatalf("store %d lists %v", i, got)
				}
			}
		})
	}
}

// A store that exists keeps the subjects it captures when it is opened
// without a prefix, whatever it was created with (a stream made before
// subjects were derived from its name captures nova.events.>), and a
// prefix given that differs from them is refused.
func TestOpenKeepsTheStreamsSubjects(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	ctx := t.Context()
	cfg := scratchConfig(t, srv.url)
	cfg.SubjectPrefix = "nova.events"
	s, err := novanats.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	novatest.MustAppend(t, s, "order-1", nova.NoStream, novatest.Events("e", 2)...)
	s.Close()

	cfg.SubjectPrefix = ""
	s, err = novanats.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("reopen without a prefix: %v", err)
	}
	defer s.Close()
	if got := novanats.SubjectPrefix(s); got != "nova.events" {
		t.Fatalf("reopened with subject prefix %q, want the stream's nova.events", got)
	}
	novatest.MustAppend(t, s, "order-1", nova.Exact(2), novatest.Events("e", 1)...)
	if got := novatest.MustReadStream(t, s, "order-1", nova.ReadStreamOptions{}); len(got) != 3 {
		t.Fatalf("stream has %d events after reopening, want 3", len(got))
	}
	cfg.SubjectPrefix = "other.prefix"
	if _, err := novanats.Open(ctx, cfg); err == nil || !strings.Contains(err.Error(), "nova.events") {
		t.Fatalf("open with another prefix: %v, want a refusal naming the stream's subjects", err)
	}
}
