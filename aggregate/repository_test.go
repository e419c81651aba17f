package aggregate_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/aggregate"
)

func TestNewRepositoryRejectsBadConfig(t *testing.T) {
	t.Parallel()
	store, reg := newMemStore(), newRegistry(t)
	tests := []struct {
		name string
		cfg  aggregate.Config
	}{
		{"nil store", aggregate.Config{Registry: reg}},
		{"nil registry", aggregate.Config{Store: store}},
		{"negative snapshot interval", aggregate.Config{Store: store, Registry: reg, SnapshotEvery: -1}},
		{"negative snapshot schema", aggregate.Config{Store: store, Registry: reg, SnapshotSchema: -2}},
		{"negative attempts", aggregate.Config{Store: store, Registry: reg, MaxAttempts: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			repo, err := aggregate.NewRepository[Account](tt.cfg)
			if !errors.Is(err, nova.ErrInvalid) || repo != nil {
				t.Fatalf("NewRepository = %v, %v; want nil, ErrInvalid", repo, err)
			}
			if !strings.HasPrefix(err.Error(), "aggregate: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestLoadOfEmptyStreamIsNotFound(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	root, err := f.repo.Load(t.Context(), "1")
	if !errors.Is(err, nova.ErrNotFound) || root != nil {
		t.Fatalf("Load = %v, %v; want nil, ErrNotFound", root, err)
	}
}

func TestSaveThenLoad(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ctx := t.Context()

	root, err := f.repo.New("1")
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.repo.Save(ctx, root, []any{Opened{Owner: "ada"}, Deposited{Amount: 50}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.FirstVersion != 1 || res.LastVersion != 2 || root.Version != 2 {
		t.Fatalf("first save: result %+v, root version %d; want versions 1..2", res, root.Version)
	}
	if root.State.Owner != "ada" || root.State.Balance != 50 {
		t.Fatalf("state after save = %+v; want the saved events applied", *root.State)
	}
	// The root can be saved again: the next events number on from 3.
	res, err = f.repo.Save(ctx, root, []any{Withdrawn{Amount: 20}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.FirstVersion != 3 || res.LastVersion != 3 || root.Version != 3 {
		t.Fatalf("second save: result %+v, root version %d; want version 3", res, root.Version)
	}

	got, err := f.repo.Load(ctx, "1")
	if err != nil {
		t.Fatal(err)
	}
	want := Account{Owner: "ada", Balance: 30, Events: 3}
	if got.ID != "1" || got.Version != 3 || *got.State != want {
		t.Fatalf("Load = {ID %q, Version %d, State %+v}; want {1, 3, %+v}", got.ID, got.Version, *got.State, want)
	}

	evs := f.store.events("account-1")
	wantTypes := []string{"account.opened", "account.deposited", "account.withdrawn"}
	if len(evs) != len(wantTypes) {
		t.Fatalf("stream has %d events, want %d", len(evs), len(wantTypes))
	}
	for i, e := range evs {
		if e.Type != wantTypes[i] || e.Version != uint64(i+1) {
			t.Errorf("event %d = %s v%d; want %s v%d", i, e.Type, e.Version, wantTypes[i], i+1)
		}
	}
}

func TestSaveOfNoEventsWritesNothing(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	root, err := f.repo.New("1")
	if err != nil {
		t.Fatal(err)
	}
	root.Version = 7 // even a root at a version the stream lacks: nothing is checked or written
	for _, events := range [][]any{nil, {}} {
		res, err := f.repo.Save(t.Context(), root, events, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.LastVersion != 7 || res.FirstVersion != 0 || root.Version != 7 {
			t.Fatalf("Save(no events) = %+v, root version %d; want LastVersion 7 and nothing else", res, root.Version)
		}
	}
	if n := f.store.appendCount(); n != 0 {
		t.Fatalf("%d appends, want none", n)
	}
}

func TestStaleSaveFailsWithConcurrencyError(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ctx := t.Context()
	if _, err := f.repo.Update(ctx, "1", func(a *Account) ([]any, error) { return a.Open("ada") }, nil); err != nil {
		t.Fatal(err)
	}
	first, err := f.repo.Load(ctx, "1")
	if err != nil {
		t.Fatal(err)
	}
	second, err := f.repo.Load(ctx, "1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.repo.Save(ctx, first, []any{Deposited{Amount: 10}}, nil); err != nil {
		t.Fatal(err)
	}
	_, err = f.repo.Save(ctx, second, []any{Deposited{Amount: 99}}, nil)
	if !errors.Is(err, nova.ErrConcurrency) {
		t.Fatalf("stale Save = %v, want ErrConcurrency", err)
	}
	var ce *nova.ConcurrencyError
	if !errors.As(err, &ce) || ce.Stream != "account-1" || ce.Actual != 2 {
		t.Fatalf("stale Save error = %#v; want a *nova.ConcurrencyError for account-1 at actual version 2", err)
	}
	if v, ok := ce.Expected.Version(); !ok || v != 1 {
		t.Errorf("expected version in error = %s, want 1", ce.Expected)
	}
	if second.Version != 1 || second.State.Balance != 0 {
		t.Errorf("stale root changed to version %d, state %+v; want it left as loaded", second.Version, *second.State)
	}
	if got := len(f.store.events("account-1")); got != 2 {
		t.Errorf("stream has %d events, want 2", got)
	}
}

func TestSaveOfUnregisteredEventWritesNothing(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	root, err := f.repo.New("1")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.repo.Save(t.Context(), root, []any{Opened{Owner: "ada"}, Unregistered{}}, nil)
	if !errors.Is(err, nova.ErrUnknownType) {
		t.Fatalf("Save = %v, want ErrUnknownType", err)
	}
	if n := f.store.appendCount(); n != 0 {
		t.Fatalf("%d appends, want none", n)
	}
	if root.Version != 0 || root.State.Owner != "" {
		t.Errorf("root changed to version %d, state %+v", root.Version, *root.State)
	}
}

func TestSaveAppliesEventsAsLoadSeesThem(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	root, err := f.repo.New("1")
	if err != nil {
		t.Fatal(err)
	}
	// A pointer is encoded like its value, and Apply receives the value,
	// as it will on every load.
	if _, err := f.repo.Save(t.Context(), root, []any{&Opened{Owner: "ada"}}, nil); err != nil {
		t.Fatal(err)
	}
	if root.State.Owner != "ada" {
		t.Fatalf("state = %+v, want owner ada", *root.State)
	}
}

func TestSaveCarriesMetadata(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	root, err := f.repo.New("1")
	if err != nil {
		t.Fatal(err)
	}
	md := nova.Metadata{CorrelationID: "corr-1", CausationID: "cmd-7", Extra: map[string]string{"user": "ada"}}
	if _, err := f.repo.Save(t.Context(), root, []any{Opened{Owner: "ada"}, Deposited{Amount: 1}}, &aggregate.SaveOptions{Metadata: md}); err != nil {
		t.Fatal(err)
	}
	for _, e := range f.store.events("account-1") {
		want := md
		want.Schema = 1
		if !e.Metadata.Equal(want) {
			t.Errorf("event %d metadata = %+v, want %+v", e.Version, e.Metadata, want)
		}
	}
}

func TestLoadUpcastsOldEvents(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	// Shape 1 of account.deposited had the amount in whole units under
	// "units"; shape 2 is cents under "amount".
	err := f.reg.Upcast("account.deposited", 1, func(data []byte) ([]byte, error) {
		return []byte(strings.Replace(string(data), `"units":5`, `"amount":500`, 1)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.store.Append(t.Context(), "account-1", nova.NoStream,
		nova.EventData{Type: "account.opened", Data: []byte(`{"owner":"ada"}`)},
		nova.EventData{Type: "account.deposited", Data: []byte(`{"units":5}`)})
	if err != nil {
		t.Fatal(err)
	}
	root, err := f.repo.Load(t.Context(), "1")
	if err != nil {
		t.Fatal(err)
	}
	if root.State.Balance != 500 {
		t.Fatalf("balance = %d, want 500 from the upcast event", root.State.Balance)
	}
	// New events are written in the current shape.
	if _, err := f.repo.Save(t.Context(), root, []any{Deposited{Amount: 1}}, nil); err != nil {
		t.Fatal(err)
	}
	evs := f.store.events("account-1")
	if s := evs[2].Metadata.SchemaVersion(); s != 2 {
		t.Errorf("new event written in shape %d, want 2", s)
	}
}

func TestStreamNaming(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(*aggregate.Config)
		want string
	}{
		{"raw IDs", func(c *aggregate.Config) { c.Category = "" }, "42"},
		{"category", nil, "account-42"},
		{"stream func wins", func(c *aggregate.Config) { c.StreamFunc = func(id string) string { return "acct/" + id } }, "acct/42"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, tt.edit)
			if got := f.repo.StreamID("42"); got != tt.want {
				t.Errorf("StreamID = %q, want %q", got, tt.want)
			}
			if _, err := f.repo.Update(t.Context(), "42", func(a *Account) ([]any, error) { return a.Open("ada") }, nil); err != nil {
				t.Fatal(err)
			}
			if n := len(f.store.events(tt.want)); n != 1 {
				t.Errorf("stream %q has %d events, want 1", tt.want, n)
			}
		})
	}
}

func TestLoadFailsWhenApplyFails(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	_, err := f.store.Append(t.Context(), "account-1", nova.NoStream,
		nova.EventData{Type: "account.opened", Data: []byte(`{"owner":"ada"}`)},
		nova.EventData{Type: "account.poison", Data: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.repo.Load(t.Context(), "1")
	if err == nil || !strings.Contains(err.Error(), "version 2") {
		t.Fatalf("Load = %v, want an error naming version 2", err)
	}
}

func TestLoadFailsOnUndecodableEvent(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	_, err := f.store.Append(t.Context(), "account-1", nova.NoStream,
		nova.EventData{Type: "account.mystery", Data: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.repo.Load(t.Context(), "1"); !errors.Is(err, nova.ErrUnknownType) {
		t.Fatalf("Load = %v, want ErrUnknownType", err)
	}
}

func TestSaveWhoseApplyFailsBreaksTheRoot(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ctx := t.Context()
	root, err := f.repo.New("1")
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.repo.Save(ctx, root, []any{Opened{Owner: "ada"}, Poison{}}, nil)
	if err == nil || res.LastVersion != 2 {
		t.Fatalf("Save = %+v, %v; want the events saved (version 2) and an error", res, err)
	}
	if root.Version != 2 {
		t.Errorf("root version = %d, want 2 (the stream's)", root.Version)
	}
	// The root's state no longer matches its stream: it cannot be saved.
	if _, err := f.repo.Save(ctx, root, []any{Deposited{Amount: 1}}, nil); err == nil {
		t.Fatal("Save on a broken root succeeded")
	}
	if n := len(f.store.events("account-1")); n != 2 {
		t.Errorf("stream has %d events, want 2", n)
	}
}

func TestSaveReturnsStoreErrors(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	f.store.failErr = nova.ErrClosed
	root, err := f.repo.New("1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.repo.Save(t.Context(), root, []any{Opened{Owner: "ada"}}, nil); !errors.Is(err, nova.ErrClosed) {
		t.Fatalf("Save = %v, want ErrClosed", err)
	}
	if root.Version != 0 || root.State.Owner != "" {
		t.Errorf("root changed after a failed save: version %d, state %+v", root.Version, *root.State)
	}
}

// TestBadInput covers every public entry point of Repository: each bad
// call fails with ErrInvalid and writes nothing.
func TestBadInput(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ctx := t.Context()
	good, err := f.repo.New("1")
	if err != nil {
		t.Fatal(err)
	}
	decide := func(a *Account) ([]any, error) { return a.Open("ada") }
	long := strings.Repeat("x", nova.MaxStreamLen)

	tests := []struct {
		name string
		call func() error
	}{
		{"load empty ID", func() error { _, err := f.repo.Load(ctx, ""); return err }},
		{"load too long ID", func() error { _, err := f.repo.Load(ctx, long); return err }},
		{"load control char", func() error { _, err := f.repo.Load(ctx, "a\nb"); return err }},
		{"new empty ID", func() error { _, err := f.repo.New(""); return err }},
		{"save empty ID", func() error {
			_, err := f.repo.Save(ctx, &aggregate.Root[Account]{State: &Account{}}, []any{Opened{}}, nil)
			return err
		}},
		{"save nil event", func() error { _, err := f.repo.Save(ctx, good, []any{Opened{}, nil}, nil); return err }},
		{"save nil pointer event", func() error { _, err := f.repo.Save(ctx, good, []any{(*Opened)(nil)}, nil); return err }},
		{"save bad metadata", func() error {
			_, err := f.repo.Save(ctx, good, []any{Opened{}}, &aggregate.SaveOptions{Metadata: nova.Metadata{CorrelationID: "a\x00b"}})
			return err
		}},
		{"update empty ID", func() error { _, err := f.repo.Update(ctx, "", decide, nil); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, nova.ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
		})
	}
	if n := f.store.appendCount(); n != 0 {
		t.Errorf("%d appends after bad input, want none", n)
	}
	if good.Version != 0 {
		t.Errorf("root version moved to %d after bad input", good.Version)
	}
}

func TestLoadReturnsReadErrors(t *testing.T) {
	t.Parallel()
	for _, snapshots := range []bool{false, true} {
		t.Run(map[bool]string{false: "replay", true: "after snapshot"}[snapshots], func(t *testing.T) {
			t.Parallel()
			f := setupSnapshots(t, nil)
			if !snapshots {
				f = setup(t, nil)
			}
			deposit(t, f, 1, 2, 3, 4) // versions 1..5, snapshot at 3 when on
			boom := errors.New("connection reset")
			f.store.setReadErr(boom)
			if _, err := f.repo.Load(t.Context(), "1"); !errors.Is(err, boom) {
				t.Fatalf("Load = %v, want %v", err, boom)
			}
			if _, err := f.repo.Update(t.Context(), "1", func(a *Account) ([]any, error) { return a.Deposit(1) }, nil); !errors.Is(err, boom) {
				t.Fatalf("Update = %v, want %v", err, boom)
			}
		})
	}
}

func TestLoadRefusesAStreamWithAGap(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	deposit(t, f, 1, 2)
	f.store.corrupt("account-1", 2, 9)
	if _, err := f.repo.Load(t.Context(), "1"); err == nil || !strings.Contains(err.Error(), "jumps") {
		t.Fatalf("Load = %v, want an error about the gap", err)
	}
}

// A newer deployment wrote account.deposited in shape 2 (the amount in
// cents and a currency); this repository's registry knows shape 1 only.
// Load refuses the stream with an error matching nova.ErrEventTooNew
// instead of folding the event with its new fields dropped, from the
// first event and after a snapshot alike; Update fails the same way and
// writes nothing. A registry that allows newer shapes loads it.
func TestLoadRefusesEventsOfANewerShape(t *testing.T) {
	t.Parallel()
	newer := nova.EventData{Type: "account.deposited", Data: []byte(`{"amount":5,"cents":500,"currency":"EUR"}`), Metadata: nova.Metadata{Schema: 2}}
	for _, snapshots := range []bool{false, true} {
		t.Run(fmt.Sprintf("snapshots=%t", snapshots), func(t *testing.T) {
			t.Parallel()
			f := setup(t, nil)
			if snapshots {
				f = setupSnapshots(t, nil)
				deposit(t, f, 1, 2, 3) // versions 1..4: a snapshot at 4
				if _, ok := f.snaps.get("account-1"); !ok {
					t.Fatal("no snapshot to load from")
				}
			} else {
				deposit(t, f, 1)
			}
			before := len(f.store.events("account-1"))
			if _, err := f.store.Append(t.Context(), "account-1", nova.Exact(uint64(before)), newer); err != nil {
				t.Fatal(err)
			}
			_, err := f.repo.Load(t.Context(), "1")
			var tn *nova.EventTooNewError
			if !errors.Is(err, nova.ErrEventTooNew) || !errors.As(err, &tn) || tn.Schema != 2 || tn.Newest != 1 || tn.Version != uint64(before+1) {
				t.Fatalf("Load = %v, want an *EventTooNewError for shape 2 at version %d", err, before+1)
			}
			_, err = f.repo.Update(t.Context(), "1", func(a *Account) ([]any, error) { return a.Deposit(1) }, nil)
			if !errors.Is(err, nova.ErrEventTooNew) {
				t.Fatalf("Update = %v, want nova.ErrEventTooNew", err)
			}
			if n := len(f.store.events("account-1")); n != before+1 {
				t.Fatalf("the refused Update left %d events, want %d", n, before+1)
			}

			lenient := nova.NewRegistry(nova.RegistryOptions{AllowNewer: true})
			for _, err := range []error{nova.Register[Opened](lenient, "account.opened"), nova.Register[Deposited](lenient, "account.deposited")} {
				if err != nil {
					t.Fatal(err)
				}
			}
			repo, err := aggregate.NewRepository[Account](aggregate.Config{Store: f.store, Registry: lenient, Category: "account"})
			if err != nil {
				t.Fatal(err)
			}
			root, err := repo.Load(t.Context(), "1")
			if err != nil || root.Version != uint64(before+1) {
				t.Fatalf("Load with AllowNewer = %+v, %v", root, err)
			}
		})
	}
}
