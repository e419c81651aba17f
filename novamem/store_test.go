package novamem_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/aggregate"
	"github.com/nova-go/nova/novamem"
	"github.com/nova-go/nova/novatest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newStore returns a fresh store closed when t ends.
func newStore(t *testing.T) *novamem.Store {
	t.Helper()
	s, err := novamem.New(novamem.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func TestStore(t *testing.T) {
	novatest.RunStore(t, func(t *testing.T) nova.Store { return newStore(t) })
}

// TestStoreSmallPages runs the suite with tiny pages, so every read crosses
// many page boundaries.
func TestStoreSmallPages(t *testing.T) {
	novatest.RunStore(t, func(t *testing.T) nova.Store {
		s, err := novamem.New(novamem.Config{PageSize: 3})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}, novatest.WithScale(0.1))
}

func TestSnapshotStore(t *testing.T) {
	novatest.RunSnapshotStore(t, func(t *testing.T) aggregate.SnapshotStore { return newStore(t) })
}

func TestNewConfig(t *testing.T) {
	t.Parallel()
	fixed := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600))
	tests := []struct {
		name    string
		cfg     novamem.Config
		wantErr bool
	}{
		{"zero", novamem.Config{}, false},
		{"page size 1", novamem.Config{PageSize: 1}, false},
		{"negative page size", novamem.Config{PageSize: -1}, true},
		{"clock", novamem.Config{NowFunc: func() time.Time { return fixed }}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := novamem.New(tc.cfg)
			if tc.wantErr {
				if !errors.Is(err, nova.ErrInvalid) || s != nil || !strings.Contains(err.Error(), "novamem: Config.PageSize") {
					t.Fatalf("New(%+v) = %v, %v; want nil and an error naming Config.PageSize", tc.cfg, s, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%+v): %v", tc.cfg, err)
			}
			defer s.Close()
			novatest.MustAppend(t, s, "s", nova.NoStream, novatest.Events("e", 3)...)
			evs := novatest.MustReadAll(t, s)
			if len(evs) != 3 {
				t.Fatalf("read %d events, want 3", len(evs))
			}
			if tc.cfg.NowFunc != nil && !evs[0].RecordedAt.Equal(fixed) {
				t.Errorf("RecordedAt = %v, want the configured clock's %v", evs[0].RecordedAt, fixed)
			}
		})
	}
}

// TestPositions pins what the in-memory positions are: Commit counts the
// log from 1, Prepare stays zero, so checkpoints are plain sequence numbers.
func TestPositions(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	novatest.MustAppend(t, s, "a", nova.NoStream, novatest.Events("e", 2)...)
	res := novatest.MustAppend(t, s, "b", nova.NoStream, novatest.Events("e", 3)...)
	if want := (nova.Position{Commit: 5}); res.Position != want {
		t.Fatalf("position after 5 events = %s, want %s", res.Position, want)
	}
	// A position between two events, as another backend's checkpoint might
	// be, resumes after the event it follows.
	evs, err := novatest.Collect(s.ReadAll(t.Context(), nova.ReadAllOptions{From: nova.Position{Commit: 2, Prepare: 9}}), 0)
	if err != nil || len(evs) != 3 || evs[0].Position.Commit != 3 {
		t.Fatalf("ReadAll from 2/9: %d events starting at %v, error %v; want 3 starting at 3", len(evs), evs, err)
	}
}

// TestReadEventsOwnTheirData checks that the events of a read do not share
// bytes with the store, the appending caller or each other: the data of a
// page is copied into one buffer, cut so that writing to one event's data,
// or appending to it, changes nothing else.
func TestReadEventsOwnTheirData(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	in := []nova.EventData{
		{Type: "t", Data: []byte(`"a"`)},
		{Type: "t"},
		{Type: "t", Data: []byte{}},
		{Type: "t", Data: []byte(`"c"`)},
	}
	if _, err := s.Append(ctx, "s-1", nova.NoStream, in...); err != nil {
		t.Fatal(err)
	}
	in[0].Data[1] = 'X' // the caller reuses its buffer
	read := func() []nova.Event {
		var out []nova.Event
		for e, err := range s.ReadStream(ctx, "s-1", nova.ReadStreamOptions{}) {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, e)
		}
		return out
	}
	first := read()
	first[0].Data[1] = 'Y'
	first[0].Data = append(first[0].Data, '!')
	first[2].Data = append(first[2].Data, '?')
	for _, evs := range [][]nova.Event{first, read()} {
		if got := string(evs[3].Data); got != `"c"` {
			t.Errorf("event 4 data = %q, want %q", got, `"c"`)
		}
	}
	again := read()
	want := []string{`"a"`, "", "", `"c"`}
	for i, e := range again {
		if string(e.Data) != want[i] {
			t.Errorf("event %d data = %q, want %q", i+1, e.Data, want[i])
		}
	}
	if again[1].Data != nil || again[2].Data == nil {
		t.Errorf("nil and empty data read as %v and %v, want nil and empty", again[1].Data, again[2].Data)
	}
}
