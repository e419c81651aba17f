package novapg_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/aggregate"
	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/novapg"
	"github.com/nova-go/nova/novatest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(testenv.Main(m))
}

// scratch is a fresh schema of its own for one test, dropped when the test
// ends. Its stores connect with the schema's name as application_name, so
// a test can find and terminate their sessions.
type scratch struct {
	url    string // the server's URL with application_name set
	admin  string // the server's URL
	schema string
}

func newScratch(t testing.TB) scratch {
	t.Helper()
	addr := testenv.Need(t, testenv.Postgres)
	var b [6]byte
	_, _ = rand.Read(b[:])
	sc := scratch{admin: addr, schema: "novapg_test_" + hex.EncodeToString(b[:])}
	u, err := url.Parse(addr)
	if err != nil || u.Scheme == "" {
		t.Fatalf("%s=%q: want a postgres:// URL", testenv.Postgres.Env, addr)
	}
	q := u.Query()
	q.Set("application_name", sc.schema)
	// Concurrent appends share disk flushes: the suite's 16 and 64
	// writers need more connections than pgxpool's default.
	if !q.Has("pool_max_conns") {
		q.Set("pool_max_conns", "16")
	}
	u.RawQuery = q.Encode()
	sc.url = u.String()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := sc.exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{sc.schema}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("drop scratch schema %s: %v", sc.schema, err)
		}
	})
	return sc
}

// exec runs sql on a connection of its own, outside every store.
func (sc scratch) exec(ctx context.Context, sql string, args ...any) (int64, error) {
	conn, err := pgx.Connect(ctx, sc.admin)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	tag, err := conn.Exec(ctx, sql, args...)
	return tag.RowsAffected(), err
}

// kill terminates every session of the scratch schema's stores.
func (sc scratch) kill(ctx context.Context) error {
	_, err := sc.exec(ctx, `SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()`, sc.schema)
	return err
}

// config returns a Config for the scratch schema.
func (sc scratch) config() novapg.Config {
	return novapg.Config{URL: sc.url, Schema: sc.schema}
}

// open opens a store, closed when t ends.
func open(t testing.TB, cfg novapg.Config) *novapg.Store {
	t.Helper()
	s, err := novapg.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// openTx appends in a transaction left open until commit.
func openTx(ctx context.Context, t *testing.T, st nova.Store, stream string, events []nova.EventData) (func() error, error) {
	s := st.(*novapg.Store)
	tx, err := s.Pool().Begin(ctx)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	if _, err := s.AppendTx(ctx, tx, stream, nova.NoStream, events...); err != nil {
		return nil, err
	}
	// No Notify after the commit: subscribers must find the events by
	// themselves.
	return func() error { return tx.Commit(context.Background()) }, nil
}

// killers maps the suite's stores to their scratch schemas.
var killers sync.Map

func TestStore(t *testing.T) {
	// Not parallel with the other tests: the suite's first cases watch
	// the process's goroutines and terminate sessions, and run before
	// the parallel tests resume.
	testenv.Need(t, testenv.Postgres)
	// Every append is a round trip to the server: a tenth of the suite's
	// sizes by default; NOVA_TEST_SCALE=1 runs the specified figures.
	novatest.RunStore(t, func(t *testing.T) nova.Store {
		sc := newScratch(t)
		s := open(t, sc.config())
		killers.Store(s, sc)
		return s
	}, novatest.WithScale(testenv.ServerScale()),
		novatest.WithOpenTransaction(openTx),
		novatest.WithConnectionKiller(func(ctx context.Context, st nova.Store) error {
			sc, ok := killers.Load(st)
			if !ok {
				return errors.New("no scratch schema for this store")
			}
			return sc.(scratch).kill(ctx)
		}))
}

func TestSnapshotStore(t *testing.T) {
	t.Parallel()
	testenv.Need(t, testenv.Postgres)
	novatest.RunSnapshotStore(t, func(t *testing.T) aggregate.SnapshotStore {
		return open(t, newScratch(t).config())
	})
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cases := []struct {
		name  string
		cfg   novapg.Config
		field string
	}{
		{"nothing", novapg.Config{}, "URL"},
		{"URL and pool", novapg.Config{URL: "postgres://x", Pool: new(pgxpool.Pool)}, "URL"},
		{"bad URL", novapg.Config{URL: "postgres://a b@:x:y/"}, "URL"},
		{"upper-case schema", novapg.Config{URL: "postgres://x", Schema: "Nova"}, "Schema"},
		{"quoted schema", novapg.Config{URL: "postgres://x", Schema: `a"b`}, "Schema"},
		{"schema with a dot", novapg.Config{URL: "postgres://x", Schema: "a.b"}, "Schema"},
		{"schema starting with a digit", novapg.Config{URL: "postgres://x", Schema: "1a"}, "Schema"},
		{"system schema", novapg.Config{URL: "postgres://x", Schema: "pg_catalog"}, "Schema"},
		{"long schema", novapg.Config{URL: "postgres://x", Schema: strings.Repeat("a", 49)}, "Schema"},
		{"negative poll", novapg.Config{URL: "postgres://x", PollInterval: -1}, "PollInterval"},
		{"negative coalesce", novapg.Config{URL: "postgres://x", NotifyCoalesce: -1}, "NotifyCoalesce"},
		{"negative page", novapg.Config{URL: "postgres://x", PageSize: -1}, "PageSize"},
		{"huge page", novapg.Config{URL: "postgres://x", PageSize: novapg.MaxPageSize + 1}, "PageSize"},
		{"negative group", novapg.Config{URL: "postgres://x", MaxGroup: -1}, "MaxGroup"},
		{"huge group", novapg.Config{URL: "postgres://x", MaxGroup: 10_001}, "MaxGroup"},
		{"negative writers", novapg.Config{URL: "postgres://x", Writers: -1}, "Writers"},
		{"too many writers", novapg.Config{URL: "postgres://x", Writers: 65}, "Writers"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s, err := novapg.Open(ctx, c.cfg)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, nova.ErrInvalid) || !strings.Contains(err.Error(), "Config."+c.field) {
				t.Errorf("Open: %v, want nova.ErrInvalid naming Config.%s", err, c.field)
			}
			if _, err := novapg.Migrate(ctx, c.cfg); !errors.Is(err, nova.ErrInvalid) {
				t.Errorf("Migrate: %v, want nova.ErrInvalid", err)
			}
		})
	}
}
