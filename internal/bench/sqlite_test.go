package bench_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/bench"
	"github.com/nova-go/nova/novasqlite"
)

// listDir returns the names in dir.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// novaFile creates a store file at path holding n events.
func novaFile(t *testing.T, path string, n int) {
	t.Helper()
	ctx := context.Background()
	s, err := novasqlite.Open(ctx, novasqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if n > 0 {
		if _, err := s.Append(ctx, "user-stream", nova.Any, bench.Events(n)...); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSQLiteRefusesAFileWithEvents(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "user.db")
	novaFile(t, path, 3)
	before := listDir(t, dir)
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	_, err = bench.SQLite(path, novasqlite.Config{})
	if !errors.Is(err, bench.ErrHoldsEvents) {
		t.Fatalf("err = %v, want one matching ErrHoldsEvents", err)
	}
	if after := listDir(t, dir); !slices.Equal(after, before) {
		t.Errorf("directory holds %v after the refusal, had %v", after, before)
	}
	if after, err := os.ReadFile(path); err != nil || !bytes.Equal(after, content) {
		t.Errorf("the refused file changed (read error %v)", err)
	}
}

func TestSQLiteRefusesAStoreInUseWithEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "live.db")
	s, err := novasqlite.Open(ctx, novasqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Append(ctx, "user-stream", nova.NoStream, bench.Events(1)...); err != nil {
		t.Fatal(err)
	}
	if _, err := bench.SQLite(path, novasqlite.Config{}); !errors.Is(err, bench.ErrHoldsEvents) {
		t.Fatalf("err = %v, want one matching ErrHoldsEvents", err)
	}
}

func TestSQLiteRefusesWhatIsNotADatabase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte("a user's notes, not a database, long enough to have a header\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{text, sub, "", "bad\x00.db"} {
		before := listDir(t, dir)
		b, err := bench.SQLite(path, novasqlite.Config{})
		if err == nil {
			b.Close()
			t.Errorf("SQLite(%q) succeeded, want a refusal", path)
		}
		if after := listDir(t, dir); !slices.Equal(after, before) {
			t.Errorf("SQLite(%q): directory holds %v, had %v", path, after, before)
		}
	}
}

func TestSQLiteRunsBesideAnEmptyPathAndCleansUp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(t *testing.T, path string)
	}{
		{"missing", func(t *testing.T, path string) {}},
		{"empty file", func(t *testing.T, path string) {
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"store without events", func(t *testing.T, path string) { novaFile(t, path, 0) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "bench.db")
			tt.setup(t, path)
			before := listDir(t, dir)

			b, err := bench.SQLite(path, novasqlite.Config{})
			if err != nil {
				t.Fatal(err)
			}
			res, err := bench.Run(context.Background(), b, bench.Options{Scale: tiny, Runs: 1, Warmup: -1})
			if cerr := b.Close(); cerr != nil {
				t.Errorf("close: %v", cerr)
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != len(bench.DefaultScenarioNames()) {
				t.Fatalf("%d results, want %d", len(res), len(bench.DefaultScenarioNames()))
			}
			for _, r := range res {
				if r.Backend != "sqlite" || r.NovaPerSec <= 0 || r.RawPerSec <= 0 {
					t.Errorf("result %+v, want sqlite with positive rates", r)
				}
			}
			if after := listDir(t, dir); !slices.Equal(after, before) {
				t.Errorf("directory holds %v after the benchmark, had %v", after, before)
			}
		})
	}
}

func TestSQLiteRunsAtAPathThatLooksLikeAURI(t *testing.T) {
	// Not parallel: it changes the working directory.
	t.Chdir(t.TempDir())
	b, err := bench.SQLite("file:bench.db", novasqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bench.Run(context.Background(), b, bench.Options{Scenarios: []string{"append-1"}, Scale: tiny, Runs: 1, Warmup: -1})
	if cerr := b.Close(); cerr != nil {
		t.Errorf("close: %v", cerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if left := listDir(t, "."); len(left) != 0 {
		t.Errorf("left %v behind", left)
	}
}

func TestSQLiteRawMatchesTheStore(t *testing.T) {
	t.Parallel()
	// What the raw baseline writes, the store reads back as its own.
	dir := t.TempDir()
	b, err := bench.SQLite(filepath.Join(dir, "bench.db"), novasqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	raw, cleanup, err := b.RawFunc(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	evs := bench.Events(3)
	if err := raw.Append(ctx, "s", 0, evs[:2]); err != nil {
		t.Fatal(err)
	}
	if err := raw.Append(ctx, "s", 2, evs[2:]); err != nil {
		t.Fatal(err)
	}
	if err := raw.Append(ctx, "s", 1, bench.Events(1)); err == nil {
		t.Fatal("append at a stale version succeeded")
	}
	if n, err := raw.ReadStream(ctx, "s"); err != nil || n != 3 {
		t.Fatalf("ReadStream = %d, %v; want 3", n, err)
	}
	if n, err := raw.ReadAll(ctx); err != nil || n != 3 {
		t.Fatalf("ReadAll = %d, %v; want 3", n, err)
	}
}
