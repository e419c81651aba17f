package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/mysqltest"
	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/novapg"
	"github.com/nova-go/nova/novatest"
	"github.com/nova-go/nova/projection"
)

// TestDemoOnServers runs the demo twice, then streams and migrate, on each
// server backend, in a scratch schema, database or JetStream stream that the
// test drops afterwards.
func TestDemoOnServers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		scratch func(t *testing.T) string // returns the --store URL
	}{
		{"postgres", scratchPostgres},
		{"mysql", scratchMySQL},
		{"nats", scratchNATS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store := tt.scratch(t)

			code, out, stderr := runNova(t, "demo", "--store", store, "--orders", "6")
			if code != 0 {
				t.Fatalf("first demo: exit %d, stderr:\n%s", code, stderr)
			}
			first := eventsInStore(t, out)
			code, out, stderr = runNova(t, "demo", "--store", store, "--orders", "6")
			if code != 0 {
				t.Fatalf("second demo: exit %d, stderr:\n%s", code, stderr)
			}
			if second := eventsInStore(t, out); second <= first {
				t.Errorf("second run has %d events in the store, want more than %d", second, first)
			}
			if !strings.Contains(out, "continuing a store that had 6 orders") {
				t.Errorf("second report does not say it continued:\n%s", out)
			}

			code, out, _ = runNova(t, "streams", "--json", "--store", store)
			orderStreams := 0
			for _, l := range jsonLines(t, out) {
				if strings.HasPrefix(l["stream"].(string), "order-") {
					orderStreams++
				}
			}
			if code != 0 || orderStreams != 12 {
				t.Errorf("streams: exit %d, %d order streams, want 12:\n%s", code, orderStreams, out)
			}
			if tt.name != "nats" {
				// PostgreSQL and MySQL keep saga runs and projections
				// too: the demo runs whole.
				code, out, _ = runNova(t, "sagas", "--json", "--store", store)
				if n := len(jsonLines(t, out)); code != 0 || n != 12 {
					t.Errorf("sagas: exit %d, %d runs, want 12:\n%s", code, n, out)
				}
				code, out, _ = runNova(t, "projections", "--json", "--store", store)
				if l := jsonLines(t, out); code != 0 || len(l) != 1 || l[0]["lag_events"] != float64(0) {
					t.Errorf("projections: exit %d:\n%s", code, out)
				}
				// Each demo leaves one run stuck for an operator.
				code, out, _ = runNova(t, "sagas", "--json", "--status", "stuck", "--store", store)
				stuck := jsonLines(t, out)
				if code != 0 || len(stuck) != 2 {
					t.Fatalf("sagas --status stuck: exit %d, %d runs, want 2:\n%s", code, len(stuck), out)
				}
				ref := runRef(stuck[0]["saga"].(string), stuck[0]["run"].(string))
				code, out, _ = runNova(t, "saga", ref, "--json", "--store", store)
				if l := jsonLines(t, out); code != 0 || len(l) < 2 || l[len(l)-1]["status"] != "stuck" {
					t.Errorf("saga %s: exit %d:\n%s", ref, code, out)
				}
				code, out, stderr = runNova(t, "saga", "skip", ref, "--reason", "released by hand", "--store", store)
				if code != 0 {
					t.Errorf("saga skip %s: exit %d: %s%s", ref, code, out, stderr)
				}
			} else {
				// JetStream keeps checkpoints (the demo's lock is a
				// lease among them) but no saga runs or read models:
				// the demo says what it skipped, and the commands say
				// why.
				_, out, _ = runNova(t, "demo", "--store", store, "--orders", "1", "--json")
				if l := jsonLines(t, out); len(l) != 1 || len(l[0]["skipped"].([]any)) != 2 {
					t.Errorf("demo --json does not list the 2 parts it skipped:\n%s", out)
				}
				code, out, stderr = runNova(t, "projections", "--json", "--store", store)
				if code != 0 || len(jsonLines(t, out)) != 0 {
					t.Errorf("projections: exit %d, want 0 and no projection:\n%s%s", code, out, stderr)
				}
				code, _, stderr = runNova(t, "sagas", "--store", store)
				if code != 1 || !strings.Contains(stderr, "no saga runs") {
					t.Errorf("sagas: exit %d, stderr %q: want 1 saying it keeps no saga runs", code, stderr)
				}
			}
			code, out, _ = runNova(t, "read", "order-00001", "--json", "--store", store)
			if lines := jsonLines(t, out); code != 0 || len(lines) < 2 || lines[0]["type"] != "orders.placed" {
				t.Errorf("read order-00001: exit %d:\n%s", code, out)
			}
			code, out, stderr = runNova(t, "migrate", "--store", store)
			if code != 0 || !strings.Contains(out, "schema version") {
				t.Errorf("migrate: exit %d, out %q, stderr %q", code, out, stderr)
			}
		})
	}
}

func scratchName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func scratchPostgres(t *testing.T) string {
	dsn := testenv.Need(t, testenv.Postgres)
	schema := scratchName("nova_cli_")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop scratch schema: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Errorf("drop scratch schema: %v", err)
		}
	})
	return withQuery(t, dsn, "schema", schema)
}

func scratchMySQL(t *testing.T) string {
	return mysqltest.URL(mysqltest.Scratch(t, "nova_cli_"))
}

func scratchNATS(t *testing.T) string {
	addr := testenv.Need(t, testenv.NATS)
	stream := strings.ToUpper(scratchName("NOVA_CLI_"))
	t.Cleanup(func() {
		nc, err := nats.Connect(addr)
		if err != nil {
			t.Errorf("delete scratch stream: %v", err)
			return
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Errorf("delete scratch stream: %v", err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := js.DeleteStream(ctx, stream); err != nil {
			t.Errorf("delete scratch stream %s: %v", stream, err)
		}
		// The store's key-value buckets, when a command made them (the
		// demo's lock is a lease in the checkpoint bucket).
		for _, kv := range []string{"KV_" + stream + "_checkpoints", "KV_" + stream + "_snapshots"} {
			if err := js.DeleteStream(ctx, kv); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
				t.Errorf("delete scratch bucket %s: %v", kv, err)
			}
		}
	})
	prefix := "nova.cli." + strings.ToLower(stream)
	return withQuery(t, addr, "stream", stream) + "&prefix=" + url.QueryEscape(prefix)
}

// withQuery adds key=value to a URL's query.
func withQuery(t *testing.T, raw, key, value string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// On PostgreSQL a mistyped schema is reported by every reading command,
// with how to create a store, and is not created.
func TestReadingCommandsOnAMistypedSchema(t *testing.T) {
	t.Parallel()
	store := scratchPostgres(t)
	if code, _, stderr := runNova(t, "migrate", "--store", store); code != 0 {
		t.Fatalf("migrate: %s", stderr)
	}
	u, err := url.Parse(store)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	typo := q.Get("schema") + "_typo"
	q.Set("schema", typo)
	u.RawQuery = q.Encode()
	for _, args := range [][]string{{"streams"}, {"read", "order-00001"}, {"sagas"}, {"saga", "fulfil/00001"}, {"projections"}, {"projection", "rebuild", "order-summary"}} {
		code, _, stderr := runNova(t, append(args, "--store", u.String())...)
		if code != 1 || !strings.Contains(stderr, "no schema "+typo) || !strings.Contains(stderr, "nova migrate --store") {
			t.Errorf("%s: exit %d, stderr %q: want 1, naming the schema and how to create a store", args, code, stderr)
		}
	}
	dsn := testenv.Need(t, testenv.Postgres)
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(context.Background(), `SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)`, typo).Scan(&exists); err != nil || exists {
		t.Errorf("schema %s exists after the reading commands (%v)", typo, err)
	}
}

// `nova projection rebuild` works on every backend that keeps read
// models, and says why on those that do not.
func TestRebuildOnEveryBackend(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		scratch func(t *testing.T) string
		want    string // in stderr when the rebuild cannot run
	}{
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "r.db") }, ""},
		{"postgres", scratchPostgres, ""},
		{"mysql", scratchMySQL, ""},
		{"nats", scratchNATS, "keeps no read models"},
		{"memory", func(*testing.T) string { return memorySpec }, "keeps nothing between commands"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store := tt.scratch(t)
			if code, _, stderr := runNova(t, "demo", "--store", store, "--orders", "5"); code != 0 {
				t.Fatalf("demo: exit %d: %s", code, stderr)
			}
			code, out, stderr := runNova(t, "projection", "rebuild", "order-summary", "--store", store, "--json")
			if tt.want != "" {
				if code != 1 || !strings.Contains(stderr, tt.want) {
					t.Errorf("rebuild: exit %d, stderr %q: want 1 saying %q", code, stderr, tt.want)
				}
				return
			}
			if code != 0 {
				t.Fatalf("rebuild: exit %d: %s", code, stderr)
			}
			if l := jsonLines(t, out); len(l) != 1 || l[0]["events"].(float64) < 5 {
				t.Errorf("rebuild --json: %v", l)
			}
			_, out, _ = runNova(t, "projections", "--store", store, "--json")
			if l := jsonLines(t, out); len(l) != 1 || l[0]["lag_events"] != float64(0) {
				t.Errorf("projections after the rebuild: %v", l)
			}
		})
	}
}

// The demo on a store URL with a password runs, and prints the password
// nowhere; the commands it prints hide it too.
func TestDemoHidesThePassword(t *testing.T) {
	t.Parallel()
	store := scratchPostgres(t)
	u, err := url.Parse(store)
	if err != nil {
		t.Fatal(err)
	}
	if _, has := u.User.Password(); has {
		t.Skip("the test server's URL has a password of its own")
	}
	user := "postgres"
	if u.User != nil && u.User.Username() != "" {
		user = u.User.Username()
	}
	u.User = url.UserPassword(user, "pw-s3cr3t")
	withPassword := u.String()
	code, out, stderr := runNova(t, "demo", "--store", withPassword, "--orders", "3")
	if code != 0 {
		if strings.Contains(stderr, "password authentication failed") {
			t.Skip("the test server checks passwords")
		}
		t.Fatalf("demo: exit %d: %s", code, stderr)
	}
	if strings.Contains(out+stderr, "s3cr3t") || !strings.Contains(out, user+":xxxxx@") || !strings.Contains(out, "password is hidden") {
		t.Errorf("demo output shows the password or lacks the hidden one:\n%s%s", out, stderr)
	}
	for _, args := range [][]string{{"streams"}, {"sagas"}, {"projections"}, {"read", "order-00001"}} {
		code, out, stderr := runNova(t, append(args, "--store", withPassword)...)
		if code != 0 || strings.Contains(out+stderr, "s3cr3t") {
			t.Errorf("%s: exit %d, output shows the password or failed:\n%s%s", args, code, out, stderr)
		}
	}
}

// TestProjectionsNameTheAppendThatHoldsReaders leaves an append's
// transaction open on PostgreSQL: `nova projections` says that readers
// are held back and by which server process, in text and in JSON.
func TestProjectionsNameTheAppendThatHoldsReaders(t *testing.T) {
	spec := scratchPostgres(t)
	if code, _, stderr := runNova(t, "demo", "--store", spec); code != 0 {
		t.Fatalf("demo: exit %d: %s", code, stderr)
	}
	ctx := t.Context()
	cfg, err := novapg.ParseURL(spec)
	if err != nil {
		t.Fatal(err)
	}
	s, err := novapg.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tx, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := s.AppendTx(ctx, tx, "held", nova.NoStream, novatest.Events("held", 1)...); err != nil {
		t.Fatal(err)
	}
	var pid int32
	if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	time.Sleep(projection.HeldFor + 100*time.Millisecond)

	code, stdout, stderr := runNova(t, "projections", "--store", spec)
	if code != 0 {
		t.Fatalf("projections: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "readers are held back") || !strings.Contains(stdout, fmt.Sprintf("server process %d", pid)) {
		t.Errorf("projections does not name the holding session %d:\n%s", pid, stdout)
	}
	code, stdout, stderr = runNova(t, "projections", "--json", "--store", spec)
	if code != 0 {
		t.Fatalf("projections --json: exit %d: %s", code, stderr)
	}
	lines := jsonLines(t, stdout)
	if len(lines) == 0 {
		t.Fatalf("projections --json printed no projection:\n%s", stdout)
	}
	for _, l := range lines {
		held, _ := l["held_by"].(map[string]any)
		if held == nil || held["pid"] != float64(pid) || held["state"] != "idle in transaction" {
			t.Errorf("projection %v: held_by = %v, want process %d idle in transaction", l["name"], l["held_by"], pid)
		}
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if _, stdout, _ := runNova(t, "projections", "--store", spec); strings.Contains(stdout, "held back") {
		t.Errorf("after the rollback, projections still says readers are held:\n%s", stdout)
	}
}
