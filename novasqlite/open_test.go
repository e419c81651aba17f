package novasqlite_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ncruces/go-sqlite3"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novasqlite"
	"github.com/nova-go/nova/novatest"
)

// foreignDB makes the database another program would: a table, and
// neither application_id nor user_version set (Python's sqlite3 default).
func foreignDB(t *testing.T) (path string, content []byte) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "precious.db")
	c, err := sqlite3.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Exec(`CREATE TABLE customers(id, name); INSERT INTO customers VALUES (1, 'Ada')`); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	content, err = os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, content
}

// unchanged fails the test unless the file at path holds content and has
// no journal, WAL or shared-memory file beside it.
func unchanged(t *testing.T, path string, content []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, content) {
		t.Errorf("%s changed (%d bytes, was %d): %v", path, len(got), len(content), err)
	}
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if _, err := os.Stat(path + suffix); err == nil {
			t.Errorf("%s%s was created", path, suffix)
		}
	}
}

// A database of another program carries neither Nova's application ID
// nor a schema version, but has tables: Open refuses it, migrating or not,
// and leaves every byte as it was.
func TestOpenRefusesAnotherProgramsDatabase(t *testing.T) {
	t.Parallel()
	for _, skip := range []bool{false, true} {
		path, content := foreignDB(t)
		s, err := novasqlite.Open(context.Background(), novasqlite.Config{Path: path, SkipMigrate: skip})
		if err == nil {
			s.Close()
			t.Fatalf("SkipMigrate %v: Open of another program's database succeeded", skip)
		}
		if !errors.Is(err, novasqlite.ErrNotDatabase) || !strings.Contains(err.Error(), "another application") {
			t.Errorf("SkipMigrate %v: Open: %v, want ErrNotDatabase naming another application", skip, err)
		}
		unchanged(t, path, content)
	}
}

func TestSkipMigrate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("missing file", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "typo.db")
		_, err := novasqlite.Open(ctx, novasqlite.Config{Path: path, SkipMigrate: true})
		if !errors.Is(err, novasqlite.ErrSchemaOutdated) || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("Open: %v, want ErrSchemaOutdated saying the file does not exist", err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Open created the file: %v", err)
		}
	})

	t.Run("empty file", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "empty.db")
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := novasqlite.Open(ctx, novasqlite.Config{Path: path, SkipMigrate: true})
		if !errors.Is(err, novasqlite.ErrSchemaOutdated) || !strings.Contains(err.Error(), "Migrate") {
			t.Errorf("Open: %v, want ErrSchemaOutdated asking for Migrate", err)
		}
		unchanged(t, path, nil)
	})

	t.Run("older schema", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "old.db")
		s := open(t, novasqlite.Config{Path: path})
		novatest.MustAppend(t, s, "a", nova.NoStream, novatest.Events("e", 1)...)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		setPragma(t, path, "user_version = 2; DROP TABLE checkpoints")
		before, _ := os.ReadFile(path)
		_, err := novasqlite.Open(ctx, novasqlite.Config{Path: path, SkipMigrate: true})
		if !errors.Is(err, novasqlite.ErrSchemaOutdated) || !strings.Contains(err.Error(), "version 2") {
			t.Errorf("Open: %v, want ErrSchemaOutdated naming version 2", err)
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
			t.Error("Open with SkipMigrate changed an outdated file")
		}
		// Migrate brings it forward; then SkipMigrate opens it.
		if v, err := novasqlite.Migrate(ctx, novasqlite.Config{Path: path}); err != nil || v != novasqlite.SchemaVersion {
			t.Fatalf("Migrate = %d, %v", v, err)
		}
		s = open(t, novasqlite.Config{Path: path, SkipMigrate: true})
		if n := len(novatest.MustReadAll(t, s)); n != 1 {
			t.Errorf("read %d events, want 1", n)
		}
	})

	t.Run("newer schema", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "new.db")
		if err := open(t, novasqlite.Config{Path: path}).Close(); err != nil {
			t.Fatal(err)
		}
		setPragma(t, path, "user_version = 99")
		if _, err := novasqlite.Open(ctx, novasqlite.Config{Path: path, SkipMigrate: true}); !errors.Is(err, novasqlite.ErrSchemaTooNew) {
			t.Errorf("Open: %v, want ErrSchemaTooNew", err)
		}
	})
}

// An empty file, or one that is an SQLite database with nothing in it, is
// where Open creates a store.
func TestOpenCreatesInAnEmptyDatabase(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "blank.db")
	setPragma(t, path, "user_version = 0")
	s := open(t, novasqlite.Config{Path: path})
	novatest.MustAppend(t, s, "a", nova.NoStream, novatest.Events("e", 1)...)
}

func TestIsStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	store := filepath.Join(dir, "store.db")
	s := open(t, novasqlite.Config{Path: store})
	novatest.MustAppend(t, s, "a", nova.NoStream, novatest.Events("e", 1)...)
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte("not a database at all, not even close\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	foreign, content := foreignDB(t)
	for _, tt := range []struct {
		path string
		want bool
	}{
		{store, true}, // open, with events in its WAL
		{text, false},
		{empty, false},
		{foreign, false},
		{filepath.Join(dir, "missing.db"), false},
	} {
		if got, err := novasqlite.IsStore(ctx, tt.path); got != tt.want || err != nil {
			t.Errorf("IsStore(%s) = %v, %v; want %v", filepath.Base(tt.path), got, err, tt.want)
		}
	}
	unchanged(t, foreign, content)
	if _, err := novasqlite.IsStore(ctx, ""); !errors.Is(err, nova.ErrInvalid) {
		t.Errorf("IsStore(\"\"): %v, want nova.ErrInvalid", err)
	}
}
