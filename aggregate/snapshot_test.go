package aggregate_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nova-go/nova/aggregate"
)

// setupSnapshots is setup with snapshots every 3 events.
func setupSnapshots(t *testing.T, edit func(*aggregate.Config)) *fixture {
	t.Helper()
	snaps := newMemSnapshots()
	f := setup(t, func(c *aggregate.Config) {
		c.Snapshots = snaps
		c.SnapshotEvery = 3
		if edit != nil {
			edit(c)
		}
	})
	f.snaps = snaps
	return f
}

func deposit(t *testing.T, f *fixture, amounts ...int64) {
	t.Helper()
	_, err := f.repo.Update(t.Context(), "1", func(a *Account) ([]any, error) {
		var evs []any
		if a.Owner == "" {
			evs = append(evs, Opened{Owner: "ada"})
		}
		for _, n := range amounts {
			evs = append(evs, Deposited{Amount: n})
		}
		return evs, nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
}

func TestSnapshotTakenWhenASaveCrossesTheInterval(t *testing.T) {
	t.Parallel()
	f := setupSnapshots(t, nil)
	deposit(t, f, 1) // versions 1..2
	if _, ok := f.snaps.get("account-1"); ok {
		t.Fatal("snapshot taken before the stream reached 3 events")
	}
	deposit(t, f, 2, 3) // versions 3..4: crosses 3
	s, ok := f.snaps.get("account-1")
	if !ok {
		t.Fatal("no snapshot after the stream passed 3 events")
	}
	if s.Version != 4 || s.Schema != 1 || s.Stream != "account-1" || s.RecordedAt.IsZero() || s.RecordedAt.Location() != time.UTC {
		t.Fatalf("snapshot = %+v; want stream account-1, version 4, schema 1, a UTC time", s)
	}
	var state Account
	if err := json.Unmarshal(s.Data, &state); err != nil {
		t.Fatal(err)
	}
	if want := (Account{Owner: "ada", Balance: 6, Events: 4}); state != want {
		t.Fatalf("snapshot state = %+v, want %+v", state, want)
	}
	deposit(t, f, 4) // version 5: no multiple of 3 crossed
	if s, _ := f.snaps.get("account-1"); s.Version != 4 {
		t.Fatalf("snapshot moved to version %d without crossing a multiple of 3", s.Version)
	}
	deposit(t, f, 5) // version 6
	if s, _ := f.snaps.get("account-1"); s.Version != 6 {
		t.Fatalf("snapshot at version %d, want 6", s.Version)
	}
	if errs := f.reports.list(); len(errs) != 0 {
		t.Errorf("unexpected reports: %v", errs)
	}
}

func TestLoadStartsFromTheSnapshot(t *testing.T) {
	t.Parallel()
	f := setupSnapshots(t, nil)
	deposit(t, f, 1, 2, 3) // versions 1..4, snapshot at 4
	deposit(t, f, 4)       // version 5

	// Doctor the snapshot, so that a state built from it is recognisable.
	s, _ := f.snaps.get("account-1")
	s.Data = []byte(`{"Owner":"from-snapshot","Balance":1000,"Events":4}`)
	f.snaps.put(s)

	root, err := f.repo.Load(t.Context(), "1")
	if err != nil {
		t.Fatal(err)
	}
	if want := (Account{Owner: "from-snapshot", Balance: 1004, Events: 5}); *root.State != want || root.Version != 5 {
		t.Fatalf("Load = version %d, state %+v; want version 5, state %+v", root.Version, *root.State, want)
	}
	if from := f.store.lastReadFrom(); from != 4 {
		t.Errorf("read the stream from version %d, want 4 (the snapshot's, to confirm it)", from)
	}
}

func TestSnapshotIgnored(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		doctor   func(*aggregate.Snapshot)
		reported bool
	}{
		{"other shape", func(s *aggregate.Snapshot) { s.Schema = 2 }, false},
		{"does not decode", func(s *aggregate.Snapshot) { s.Data = []byte(`{"Balance":"lots"`) }, true},
		{"ahead of the stream", func(s *aggregate.Snapshot) { s.Version = 40 }, true},
		{"of another stream", func(s *aggregate.Snapshot) { s.Stream = "account-2" }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setupSnapshots(t, nil)
			deposit(t, f, 1, 2, 3) // versions 1..4, snapshot at 4
			s, _ := f.snaps.get("account-1")
			s.Data = []byte(`{"Owner":"untrusted","Balance":1000,"Events":4}`)
			tt.doctor(&s)
			// Store the doctored snapshot under the aggregate's stream,
			// whatever it says about itself.
			f.snaps.mu.Lock()
			f.snaps.snaps["account-1"] = s
			f.snaps.mu.Unlock()

			root, err := f.repo.Load(t.Context(), "1")
			if err != nil {
				t.Fatal(err)
			}
			if want := (Account{Owner: "ada", Balance: 6, Events: 4}); *root.State != want || root.Version != 4 {
				t.Fatalf("Load = version %d, state %+v; want the replayed version 4, %+v", root.Version, *root.State, want)
			}
			if got := len(f.reports.list()) > 0; got != tt.reported {
				t.Errorf("reported = %v (%v), want %v", got, f.reports.list(), tt.reported)
			}
		})
	}
}

func TestSnapshotSchemaBumpIgnoresOldSnapshots(t *testing.T) {
	t.Parallel()
	f := setupSnapshots(t, nil)
	deposit(t, f, 1, 2, 3) // snapshot at 4, schema 1
	repo2, err := aggregate.NewRepository[Account](aggregate.Config{
		Store: f.store, Registry: f.reg, Category: "account",
		Snapshots: f.snaps, SnapshotEvery: 3, SnapshotSchema: 2, ErrorFunc: f.reports.add,
	})
	if err != nil {
		t.Fatal(err)
	}
	root, err := repo2.Load(t.Context(), "1")
	if err != nil {
		t.Fatal(err)
	}
	if from := f.store.lastReadFrom(); from != 0 {
		t.Errorf("read from version %d, want a full replay", from)
	}
	if _, err := repo2.Save(t.Context(), root, []any{Deposited{Amount: 1}, Deposited{Amount: 1}}, nil); err != nil {
		t.Fatal(err)
	}
	if s, _ := f.snaps.get("account-1"); s.Schema != 2 || s.Version != 6 {
		t.Errorf("snapshot = version %d schema %d, want version 6 schema 2", s.Version, s.Schema)
	}
}

func TestSnapshotSaveFailureDoesNotFailTheSave(t *testing.T) {
	t.Parallel()
	f := setupSnapshots(t, nil)
	boom := errors.New("disk full")
	f.snaps.saveErr = boom
	deposit(t, f, 1, 2, 3)
	if n := len(f.store.events("account-1")); n != 4 {
		t.Fatalf("stream has %d events, want 4", n)
	}
	errs := f.reports.list()
	if len(errs) != 1 || !errors.Is(errs[0], boom) {
		t.Fatalf("reports = %v, want one wrapping %v", errs, boom)
	}
}

func TestSnapshotLoadFailureFallsBackToReplay(t *testing.T) {
	t.Parallel()
	f := setupSnapshots(t, nil)
	deposit(t, f, 1, 2, 3)
	boom := errors.New("snapshot table unreachable")
	f.snaps.loadErr = boom
	root, err := f.repo.Load(t.Context(), "1")
	if err != nil {
		t.Fatal(err)
	}
	if root.Version != 4 || root.State.Balance != 6 {
		t.Fatalf("Load = version %d, state %+v", root.Version, *root.State)
	}
	errs := f.reports.list()
	if len(errs) != 1 || !errors.Is(errs[0], boom) {
		t.Fatalf("reports = %v, want one wrapping %v", errs, boom)
	}
}

func TestSnapshotsOffByDefault(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	for range 5 {
		deposit(t, f, 1, 1, 1)
	}
	if n := len(f.snaps.all()); n != 0 {
		t.Fatalf("%d snapshots without Config.Snapshots", n)
	}
}
