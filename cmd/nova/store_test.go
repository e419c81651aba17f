package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ncruces/go-sqlite3"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novasqlite"
	"github.com/nova-go/nova/novatest"
)

// preciousDB makes another program's database as Python's sqlite3 makes
// it (application_id and user_version 0, one table), with python3 when
// there is one, and returns its path and bytes.
func preciousDB(t *testing.T) (path string, content []byte) {
	t.Helper()
	dir := t.TempDir()
	path = filepath.Join(dir, "precious.db")
	if py, err := exec.LookPath("python3"); err == nil {
		cmd := exec.Command(py, "-c", "import sqlite3;c=sqlite3.connect('precious.db');c.execute('create table customers(id,name)');c.commit()")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("python3: %v: %s", err, out)
		}
	} else {
		c, err := sqlite3.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Exec(`create table customers(id,name)`); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, content
}

// sameFile fails the test unless path holds content and nothing was
// made beside it.
func sameFile(t *testing.T, path string, content []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, content) {
		t.Errorf("%s changed: %d bytes, was %d (%v)", path, len(got), len(content), err)
	}
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if _, err := os.Stat(path + suffix); err == nil {
			t.Errorf("%s%s was created", path, suffix)
		}
	}
}

// `nova demo --reset` on another program's database refuses, exits
// non-zero and leaves the file byte for byte.
func TestResetRefusesAnotherProgramsDatabase(t *testing.T) {
	t.Parallel()
	path, content := preciousDB(t)
	code, out, stderr := runNova(t, "demo", "--reset", "--store", path)
	if code == 0 || !strings.Contains(stderr, "not a Nova store") || !strings.Contains(stderr, "leaving it alone") {
		t.Errorf("exit %d, stderr %q: want a refusal", code, stderr)
	}
	if out != "" {
		t.Errorf("the refused demo printed a report:\n%s", out)
	}
	sameFile(t, path, content)
	// Without --reset the demo refuses it too.
	if code, _, stderr := runNova(t, "demo", "--store", path); code == 0 || !strings.Contains(stderr, "another application") {
		t.Errorf("demo on it: exit %d, stderr %q: want a refusal", code, stderr)
	}
	sameFile(t, path, content)
}

// The commands that only read open an existing store and write nothing:
// on another program's database they refuse and leave it byte for byte.
func TestReadingCommandsLeaveAnotherProgramsDatabaseAlone(t *testing.T) {
	t.Parallel()
	path, content := preciousDB(t)
	for _, args := range [][]string{
		{"streams"}, {"read", "order-00001"}, {"sagas"}, {"saga", "fulfil/00001"}, {"projections"},
		{"projection", "rebuild", "order-summary"}, {"saga", "retry", "fulfil/00001"},
	} {
		code, _, stderr := runNova(t, append(args, "--store", path)...)
		if code != 1 || !strings.Contains(stderr, "not a Nova store") {
			t.Errorf("%s: exit %d, stderr %q: want 1 and a refusal", args, code, stderr)
		}
		sameFile(t, path, content)
	}
}

// On a path where there is no store, the reading commands create none and
// say how to create one.
func TestReadingCommandsOnAMissingStoreSayHowToCreateOne(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "typo.db")
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{missing, empty} {
		for _, args := range [][]string{{"streams"}, {"read", "order-00001"}, {"sagas"}, {"projections"}, {"projection", "rebuild", "order-summary"}} {
			code, _, stderr := runNova(t, append(args, "--store", path)...)
			if code != 1 || !strings.Contains(stderr, "no Nova store at "+path) || !strings.Contains(stderr, "nova migrate --store "+path+"\n") {
				t.Errorf("%s on %s: exit %d, stderr %q: want 1, naming the path and how to create a store", args, filepath.Base(path), code, stderr)
			}
		}
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("a reading command created %s", missing)
	}
	sameFile(t, empty, nil)
}

// A store of an older schema is not migrated by a reading command.
func TestReadingCommandsDoNotMigrate(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "old.db")
	s, err := novasqlite.Open(context.Background(), novasqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	novatest.MustAppend(t, s, "a", nova.NoStream, novatest.Events("e", 1)...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := sqlite3.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Exec(`PRAGMA user_version = 2; DROP TABLE checkpoints`); err != nil {
		t.Fatal(err)
	}
	c.Close()
	before, _ := os.ReadFile(path)
	code, _, stderr := runNova(t, "streams", "--store", path)
	if code != 1 || !strings.Contains(stderr, "schema version 2") || !strings.Contains(stderr, "nova migrate") {
		t.Errorf("streams: exit %d, stderr %q: want a refusal asking for nova migrate", code, stderr)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("streams changed an outdated store")
	}
	if code, out, stderr := runNova(t, "migrate", "--store", path); code != 0 || !strings.Contains(out, "schema version") {
		t.Fatalf("migrate: exit %d: %s %s", code, out, stderr)
	}
	if code, out, _ := runNova(t, "streams", "--store", path); code != 0 || !strings.Contains(out, "1 stream in") {
		t.Errorf("streams after migrate: exit %d:\n%s", code, out)
	}
}

// Store URLs are read strictly: what would be ignored or would drop a
// parameter is bad usage, and no message shows the password.
func TestStoreURLsAreReadStrictly(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ url, want string }{
		{"postgres://bob:secret@127.0.0.1:1/x?sslmode=disable;schema=orders", "semicolon"},
		{"postgres://bob:secret@127.0.0.1:1/x?shcema=orders", `unknown parameter "shcema"`},
		{"postgres://bob:secret@127.0.0.1:1/x?schema=a&schema=b", `"schema" is given twice`},
		{"postgres://bob:secret@127.0.0.1:1/x?schema=Orders", "lower-case identifier"},
		{"postgres://bob:secret@127.0.0.1:1/x#top", "fragment"},
		{"postgres:///x", "names no server"},
		{"mysql://bob:secret@127.0.0.1:1/x?parsetime=true", `unknown parameter "parsetime"`},
		{"mysql://bob:secret@127.0.0.1:1/x?parseTime=true;tls=false", "semicolon"},
		{"nats://bob:secret@127.0.0.1:1?streem=NOVA", `unknown parameter "streem"`},
		{"nats://bob:secret@127.0.0.1:1?stream=NOVA&stream=X", `"stream" is given twice`},
		{"nats://bob:secret@127.0.0.1:1?storage=disk", "storage"},
		{"postgres://bob:secret@127.0.0.1:1/x?schema=%zz", "invalid URL escape"},
		{"postgres://bob:sec ret@127.0.0.1:1/x", "not a URL"},
	} {
		for _, cmd := range []string{"streams", "migrate", "demo"} {
			code, out, stderr := runNova(t, cmd, "--store", tt.url)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Errorf("%s --store %s: exit %d, stderr %q: want 2 saying %q", cmd, tt.url, code, stderr, tt.want)
			}
			if strings.Contains(out+stderr, "secret") || strings.Contains(out+stderr, "sec ret") {
				t.Errorf("%s --store %s: output shows the password:\n%s%s", cmd, tt.url, out, stderr)
			}
		}
	}
}

// No output shows a store URL's password: not the errors of the drivers,
// which quote what they could not reach.
func TestPasswordsAreNeverPrinted(t *testing.T) {
	t.Parallel()
	for _, url := range []string{
		"postgres://bob:s3cr3t-pw@127.0.0.1:1/x?connect_timeout=2",
		"mysql://bob:s3cr3t-pw@127.0.0.1:1/x?timeout=2s",
		"nats://bob:s3cr3t-pw@127.0.0.1:1",
		"postgres://bob:s3cr3t%2Dpw@127.0.0.1:1/x?connect_timeout=2",
	} {
		for _, args := range [][]string{{"streams"}, {"migrate"}, {"demo", "--orders", "1"}, {"sagas"}, {"bench", "--runs", "1", "--scale", "0.01"}} {
			code, out, stderr := runNova(t, append(args, "--store", url)...)
			if code == 0 {
				t.Errorf("%s on %s succeeded", args, url)
			}
			if strings.Contains(out+stderr, "s3cr3t") {
				t.Errorf("%s on %s shows the password:\n%s%s", args, url, out, stderr)
			}
		}
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"postgres://bob:secret@db/x", "postgres://bob:xxxxx@db/x"},
		{"mysql://bob:p@ss@db:3306/x", "mysql://bob:xxxxx@db:3306/x"},
		{"postgres://bob:secret@db/x?application_name=a@b", "postgres://bob:xxxxx@db/x?application_name=a@b"},
		{"nats://db:4222", "nats://db:4222"},
		{"postgres://bob@db/x", "postgres://bob@db/x"},
		{"./nova-demo.db", "./nova-demo.db"},
	}
	for _, tt := range tests {
		if got := redact(tt.in); got != tt.want {
			t.Errorf("redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	spec := "postgres://bob:p%40ss-word@db/x"
	for _, text := range []string{"failed: password=p@ss-word", "url postgres://bob:p%40ss-word@db/x", "pw=p%40ss-word"} {
		if got := hideSecrets(text, spec); strings.Contains(got, "ss-word") {
			t.Errorf("hideSecrets(%q) = %q: shows the password", text, got)
		}
	}
	// A short password is hidden where it follows the user, and nowhere
	// else, lest every such letter go.
	if got := hideSecrets("bob:ab@db: a cab", "postgres://bob:ab@db/x"); got != "bob:xxxxx@db: a cab" {
		t.Errorf("hideSecrets with a short password = %q", got)
	}
}

// FuzzParseStore: no --store value makes parseStore panic; what it
// accepts as a URL it accepts again after redact only if it has no
// password, and a refusal never shows the password.
func FuzzParseStore(f *testing.F) {
	for _, s := range []string{
		"", "memory:", "./nova-demo.db", "postgres://bob:pw@db/x?schema=s", "postgres://db/x?a=1;schema=s",
		"mysql://u:p@h:3306/d?parseTime=true", "nats://h:4222?stream=S&prefix=p.q", "redis://x", "postgres://%zz",
		"postgres://bob:pw@db/x#f", "nats://u:p@h1,nats://h2", "postgresql://[::1]:5432/x?schema=a&schema=b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		b, err := parseStore(spec)
		pairs := secrets(spec)
		for i := 0; err != nil && i < len(pairs); i += 2 {
			// The error may quote the redacted spec, which may hold the
			// password's text elsewhere (in the host of
			// "nats://:00: @0000", the scheme of ":0!@://:0!@"): what is
			// left of the error must not hold it.
			s := pairs[i]
			rest := strings.ReplaceAll(err.Error(), redact(spec), "")
			if len(s) >= 4 && strings.Contains(rest, s) && !strings.Contains(redact(spec), s) {
				t.Fatalf("parseStore(%q): error %q shows the password", spec, err)
			}
		}
		if err == nil && b == nil {
			t.Fatalf("parseStore(%q): no backend and no error", spec)
		}
		_ = redact(spec)
		_ = hideSecrets(spec, spec)
	})
}
