package novapg_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novapg"
	"github.com/nova-go/nova/novatest"
	"github.com/nova-go/nova/projection"
)

func TestMigrateTwice(t *testing.T) {
	t.Parallel()
	sc := newScratch(t)
	ctx := context.Background()
	for i := range 2 {
		v, err := novapg.Migrate(ctx, sc.config())
		if err != nil || v != novapg.SchemaVersion {
			t.Fatalf("Migrate #%d = %d, %v; want %d, nil", i+1, v, err, novapg.SchemaVersion)
		}
	}
	s := open(t, sc.config())
	novatest.MustAppend(t, s, "a", nova.NoStream, novatest.Events("e", 2)...)
	if v, err := novapg.Migrate(ctx, sc.config()); err != nil || v != novapg.SchemaVersion {
		t.Fatalf("Migrate of a schema in use = %d, %v", v, err)
	}
	if n := len(novatest.MustReadAll(t, s)); n != 2 {
		t.Fatalf("after migrating again the log has %d events, want 2", n)
	}
}

func TestOpenConcurrentlyOnANewSchema(t *testing.T) {
	t.Parallel()
	sc := newScratch(t)
	var wg sync.WaitGroup
	stores := make([]*novapg.Store, 4)
	errs := make([]error, len(stores))
	for i := range stores {
		wg.Go(func() { stores[i], errs[i] = novapg.Open(context.Background(), sc.config()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open #%d: %v", i, err)
			continue
		}
		novatest.MustAppend(t, stores[i], fmt.Sprint("s-", i), nova.NoStream, novatest.Events("e", 1)...)
		if err := stores[i].Close(); err != nil {
			t.Errorf("Close #%d: %v", i, err)
		}
	}
}

func TestSchemaTooNew(t *testing.T) {
	t.Parallel()
	sc := newScratch(t)
	ctx := context.Background()
	s := open(t, sc.config())
	novatest.MustAppend(t, s, "a", nova.NoStream, novatest.Events("e", 1)...)
	newer := novapg.SchemaVersion + 1
	if _, err := sc.exec(ctx, fmt.Sprintf(`UPDATE %s.schema_version SET version = %d`, sc.schema, newer)); err != nil {
		t.Fatal(err)
	}
	for _, skip := range []bool{false, true} {
		cfg := sc.config()
		cfg.SkipMigrate = skip
		s2, err := novapg.Open(ctx, cfg)
		if err == nil {
			s2.Close()
			t.Fatalf("Open (SkipMigrate %v) of a newer schema succeeded", skip)
		}
		if !errors.Is(err, novapg.ErrSchemaTooNew) || !strings.Contains(err.Error(), fmt.Sprint(newer)) {
			t.Errorf("Open (SkipMigrate %v): %v, want ErrSchemaTooNew naming version %d", skip, err, newer)
		}
	}
	if v, err := novapg.Migrate(ctx, sc.config()); !errors.Is(err, novapg.ErrSchemaTooNew) || v != newer {
		t.Errorf("Migrate = %d, %v; want %d and ErrSchemaTooNew", v, err, newer)
	}
	if _, err := sc.exec(ctx, fmt.Sprintf(`UPDATE %s.schema_version SET version = %d`, sc.schema, novapg.SchemaVersion)); err != nil {
		t.Fatal(err)
	}
	if n := len(novatest.MustReadAll(t, open(t, sc.config()))); n != 1 {
		t.Errorf("after the refusals the log has %d events, want 1", n)
	}
}

func TestSkipMigrate(t *testing.T) {
	t.Parallel()
	sc := newScratch(t)
	ctx := context.Background()
	cfg := sc.config()
	cfg.SkipMigrate = true
	if s, err := novapg.Open(ctx, cfg); !errors.Is(err, novapg.ErrSchemaOutdated) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("Open with SkipMigrate of a new schema: %v, want ErrSchemaOutdated", err)
	}
	var exists bool
	if err := pgxQueryRow(ctx, sc, `SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)`, &exists, sc.schema); err != nil || exists {
		t.Fatalf("Open with SkipMigrate created the schema (exists %v, err %v)", exists, err)
	}
	if _, err := novapg.Migrate(ctx, sc.config()); err != nil {
		t.Fatal(err)
	}
	s := open(t, cfg)
	novatest.MustAppend(t, s, "a", nova.NoStream, novatest.Events("e", 1)...)
}

func pgxQueryRow(ctx context.Context, sc scratch, sql string, dst any, args ...any) error {
	pool, err := pgxpool.New(ctx, sc.admin)
	if err != nil {
		return err
	}
	defer pool.Close()
	return pool.QueryRow(ctx, sql, args...).Scan(dst)
}

func TestCallerOwnedPool(t *testing.T) {
	t.Parallel()
	sc := newScratch(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, sc.url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s, err := novapg.Open(ctx, novapg.Config{Pool: pool, Schema: sc.schema})
	if err != nil {
		t.Fatal(err)
	}
	novatest.MustAppend(t, s, "a", nova.NoStream, novatest.Events("e", 3)...)
	if s.Pool() != pool {
		t.Error("Pool() is not the caller's pool")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := pool.Ping(ctx); err != nil {
		t.Fatalf("the caller's pool no longer works after Close: %v", err)
	}
	var n int
	if err := pool.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM %s.events`, sc.schema)).Scan(&n); err != nil || n != 3 {
		t.Fatalf("events through the caller's pool: %d, %v; want 3", n, err)
	}
	if _, err := s.Append(ctx, "a", nova.Any, novatest.Events("e", 1)...); !errors.Is(err, nova.ErrClosed) {
		t.Fatalf("Append after Close: %v, want nova.ErrClosed", err)
	}
}

func TestSchemasAreIsolated(t *testing.T) {
	t.Parallel()
	a, b := open(t, newScratch(t).config()), open(t, newScratch(t).config())
	novatest.MustAppend(t, a, "s", nova.NoStream, novatest.Events("a", 2)...)
	novatest.MustAppend(t, b, "s", nova.NoStream, novatest.Events("b", 1)...)
	if n := len(novatest.MustReadAll(t, a)); n != 2 {
		t.Errorf("schema a holds %d events, want 2", n)
	}
	if got := novatest.MustReadAll(t, b); len(got) != 1 || got[0].Type != "b" {
		t.Errorf("schema b holds %v, want its one event", got)
	}
}

func TestAppendTx(t *testing.T) {
	// Parallel: the transaction it holds open holds the readers of its
	// own schema only.
	t.Parallel()
	sc := newScratch(t)
	s := open(t, sc.config())
	ctx := context.Background()
	if _, err := sc.exec(ctx, fmt.Sprintf(`CREATE TABLE %s.read_model (k text PRIMARY KEY, n int)`, sc.schema)); err != nil {
		t.Fatal(err)
	}

	t.Run("commits with the caller's writes", func(t *testing.T) {
		tx, err := s.Pool().Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		evs := novatest.Events("e", 2)
		res, err := s.AppendTx(ctx, tx, "tx", nova.NoStream, evs...)
		if err != nil || res.LastVersion != 2 {
			t.Fatalf("AppendTx = %+v, %v", res, err)
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf(`INSERT INTO %s.read_model VALUES ('tx', 2)`, sc.schema)); err != nil {
			t.Fatal(err)
		}
		if n := len(novatest.MustReadStream(t, s, "tx", nova.ReadStreamOptions{})); n != 0 {
			t.Fatalf("before commit the stream shows %d events", n)
		}
		// A retry in the same transaction is idempotent and keeps tx
		// usable; so is a conflict.
		if again, err := s.AppendTx(ctx, tx, "tx", nova.NoStream, evs...); err != nil || !again.Duplicate || again.Position != res.Position {
			t.Fatalf("retry in the transaction = %+v, %v; want the first result as a duplicate", again, err)
		}
		if _, err := s.AppendTx(ctx, tx, "tx", nova.Exact(1), novatest.Events("e", 1)...); !errors.Is(err, nova.ErrConcurrency) {
			t.Fatalf("conflict in the transaction: %v, want nova.ErrConcurrency", err)
		}
		if _, err := s.AppendTx(ctx, tx, "other", nova.Any, evs[0]); !errors.Is(err, nova.ErrDuplicateEvent) {
			t.Fatalf("reused ID in the transaction: %v, want nova.ErrDuplicateEvent", err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatalf("commit after the refused appends: %v", err)
		}
		s.Notify()
		got := novatest.MustReadStream(t, s, "tx", nova.ReadStreamOptions{})
		if len(got) != 2 || got[1].Position != res.Position {
			t.Fatalf("after commit the stream holds %d events, want the 2 at %s", len(got), res.Position)
		}
		if again := novatest.MustAppend(t, s, "tx", nova.NoStream, evs...); !again.Duplicate || again.Position != res.Position {
			t.Fatalf("Append retry after the commit = %+v, want the transaction's result as a duplicate", again)
		}
	})

	t.Run("rolls back with the caller", func(t *testing.T) {
		tx, err := s.Pool().Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.AppendTx(ctx, tx, "rolled", nova.NoStream, novatest.Events("e", 2)...); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		if n := len(novatest.MustReadStream(t, s, "rolled", nova.ReadStreamOptions{})); n != 0 {
			t.Fatalf("rolled-back stream holds %d events", n)
		}
		novatest.MustAppend(t, s, "rolled", nova.NoStream, novatest.Events("e", 1)...)
	})

	t.Run("bad input", func(t *testing.T) {
		tx, err := s.Pool().Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := s.AppendTx(ctx, tx, "", nova.Any, novatest.Events("e", 1)...); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("empty stream: %v, want nova.ErrInvalid", err)
		}
		if _, err := s.AppendTx(ctx, tx, "x", nova.Any); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("no events: %v, want nova.ErrInvalid", err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatalf("the refused calls spoiled the transaction: %v", err)
		}
	})
}

// TestNotificationsReachOtherStores has two stores on one schema, as two
// processes would be: an append through one wakes a subscriber of the
// other at once, through LISTEN/NOTIFY (the polling interval is far
// longer than the test's wait), also after the listener's connection
// was terminated.
func TestNotificationsReachOtherStores(t *testing.T) {
	t.Parallel()
	sc := newScratch(t)
	cfg := sc.config()
	cfg.PollInterval = time.Hour
	reader, writer := open(t, cfg), open(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	events := make(chan nova.Event)
	done := make(chan error, 1)
	go func() {
		for e, err := range reader.Subscribe(ctx, nova.SubscribeOptions{}) {
			if err != nil {
				done <- err
				return
			}
			select {
			case events <- e:
			case <-ctx.Done():
			}
		}
	}()
	for round := range 3 {
		if round == 2 {
			if err := sc.kill(ctx); err != nil {
				t.Fatal(err)
			}
		}
		// After the kill the writer's appends meet terminated sessions
		// and the store retries them; the reader's listener reconnects.
		d := novatest.NewEventData("e", "{}")
		if _, err := writer.Append(ctx, "s", nova.Any, d); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		select {
		case e := <-events:
			if e.ID != d.ID {
				t.Fatalf("round %d: got %s, want %s", round, e.ID, d.ID)
			}
		case err := <-done:
			t.Fatalf("subscription ended: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: no event within 10s of an append through another store", round)
		}
	}
	cancel()
	<-done
}

func TestOpenUnreachableServer(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := novapg.Open(ctx, novapg.Config{URL: "postgres://postgres@127.0.0.1:1/x?connect_timeout=2"})
	if err == nil {
		s.Close()
		t.Fatal("Open of an unreachable server succeeded")
	}
	if errors.Is(err, nova.ErrInvalid) || !strings.HasPrefix(err.Error(), "novapg: ") {
		t.Errorf("Open: %v, want a novapg error that is not nova.ErrInvalid", err)
	}
}

// TestForeignTransactionsHoldNothing holds transaction IDs open on
// connections of no store, in this database and in another, as any
// application on a shared server might: the store's readers must not
// wait for them. (With a horizon taken from the server's oldest running
// transaction, they held every reader back.) Polling is set to an hour,
// so the subscriber has the append from its wake-up, not from a poll.
func TestForeignTransactionsHoldNothing(t *testing.T) {
	t.Parallel()
	sc := newScratch(t)
	cfg := sc.config()
	cfg.PollInterval = time.Hour
	s := open(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first := novatest.MustAppend(t, s, "s", nova.NoStream, novatest.Events("before", 1)...)

	other, err := url.Parse(sc.admin)
	if err != nil {
		t.Fatal(err)
	}
	other.Path = "/postgres"
	for _, dsn := range []string{sc.admin, other.String()} {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(context.Background())
		if _, err := tx.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
			t.Fatal(err)
		}
	}

	sub, done := follow(ctx, s, first.Position)
	novatest.MustAppend(t, s, "s", nova.Exact(1), novatest.Events("after", 2)...)
	if got := novatest.MustReadAll(t, s); len(got) != 3 {
		t.Fatalf("ReadAll beside the foreign transactions returned %d events, want all 3", len(got))
	}
	for i := range 2 {
		select {
		case e := <-sub:
			if e.Version != uint64(i+2) {
				t.Fatalf("event %d: version %d, want %d", i, e.Version, i+2)
			}
		case err := <-done:
			t.Fatalf("subscription ended: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatalf("event %d was held back by a foreign transaction", i)
		}
	}
	if _, ok, err := s.Holder(ctx); err != nil || ok {
		t.Errorf("Holder beside foreign transactions = %v, %v; want none", ok, err)
	}
	cancel()
	<-done
}

// follow subscribes to s from pos in a goroutine that hands over each
// event on sub and the error that ends it on done; it ends with ctx.
func follow(ctx context.Context, s *novapg.Store, pos nova.Position) (sub chan nova.Event, done chan error) {
	sub, done = make(chan nova.Event, 4), make(chan error, 1)
	go func() {
		for e, err := range s.Subscribe(ctx, nova.SubscribeOptions{From: pos}) {
			if err != nil {
				done <- err
				return
			}
			sub <- e
		}
	}()
	return sub, done
}

// TestOpenAppendHoldsReadersAndLosesNothing leaves an AppendTx's
// transaction open: the events appended after it are held back from
// ReadAll and the subscriber (ReadAll still ends), Holder names the
// session, and once it commits the subscriber has every event, the held
// transaction's first, without a notification (polling is set to an
// hour: the subscriber's own short pauses find them).
func TestOpenAppendHoldsReadersAndLosesNothing(t *testing.T) {
	t.Parallel()
	sc := newScratch(t)
	cfg := sc.config()
	cfg.PollInterval = time.Hour
	s := open(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first := novatest.MustAppend(t, s, "s", nova.NoStream, novatest.Events("before", 1)...)

	held, err := pgx.ParseConfig(sc.admin)
	if err != nil {
		t.Fatal(err)
	}
	held.RuntimeParams["application_name"] = "held-by-test"
	conn, err := pgx.ConnectConfig(ctx, held)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := s.AppendTx(ctx, tx, "held", nova.NoStream, novatest.Events("held", 1)...); err != nil {
		t.Fatal(err)
	}

	sub, done := follow(ctx, s, first.Position)
	novatest.MustAppend(t, s, "s", nova.Exact(1), novatest.Events("after", 2)...)
	if got := novatest.MustReadAll(t, s); len(got) != 1 {
		t.Fatalf("ReadAll while an append is open returned %d events, want the 1 before it", len(got))
	}
	h, ok, err := s.Holder(ctx)
	if err != nil || !ok || h.Application != "held-by-test" || h.PID != int32(conn.PgConn().PID()) || h.State != "idle in transaction" || h.Since.IsZero() {
		t.Fatalf("Holder = %+v, %v, %v; want the session of the open transaction, idle in it", h, ok, err)
	}
	select {
	case e := <-sub:
		t.Fatalf("subscriber delivered %s while an append was open", e.ID)
	case <-time.After(300 * time.Millisecond):
	}
	// A projection's lag names the holder once it has held for
	// projection.HeldFor.
	cps := novapg.NewCheckpoints(s)
	time.Sleep(projection.HeldFor)
	lag, err := projection.StoredLag(ctx, s, cps, "summary", 0)
	if err != nil || !strings.Contains(lag.HeldBy, fmt.Sprintf("server process %d (held-by-test), idle in transaction", conn.PgConn().PID())) {
		t.Fatalf("StoredLag = %+v, %v; want HeldBy naming the open transaction's session", lag, err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"held", "after", "after"} {
		select {
		case e := <-sub:
			if e.Type != want {
				t.Fatalf("event %d after the commit: %s %s v%d, want a %s event", i, e.Type, e.Stream, e.Version, want)
			}
		case err := <-done:
			t.Fatalf("subscription ended: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatalf("event %d did not arrive within 10s of the commit", i)
		}
	}
	if _, ok, err := s.Holder(ctx); err != nil || ok {
		t.Errorf("Holder after the commit = %v, %v; want none", ok, err)
	}
	cancel()
	<-done
}

// TestVersionOrderWhenTheTransactionWroteFirst: a caller's transaction
// writes a row of its own first (taking a transaction ID), another
// writer then appends version 2 of a stream and commits, and the
// transaction appends version 3 with AppendTx and commits. The log must
// hold the stream's versions in order, 1, 2, 3: an order by transaction
// ID put version 3 before version 2, and a projection that skips
// versions it has passed lost it.
func TestVersionOrderWhenTheTransactionWroteFirst(t *testing.T) {
	t.Parallel()
	sc := newScratch(t)
	s := open(t, sc.config())
	ctx := context.Background()
	if _, err := sc.exec(ctx, fmt.Sprintf(`CREATE TABLE %s.read_model (k text PRIMARY KEY)`, sc.schema)); err != nil {
		t.Fatal(err)
	}
	novatest.MustAppend(t, s, "S", nova.NoStream, novatest.Events("e", 1)...)
	for _, kind := range []string{"exact", "exists", "any"} {
		tx, err := s.Pool().Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf(`INSERT INTO %s.read_model VALUES ($1)`, sc.schema), kind); err != nil {
			t.Fatal(err)
		}
		v := novatest.MustAppend(t, s, "S", nova.Any, novatest.Events("other", 1)...).LastVersion
		exp := map[string]nova.ExpectedVersion{"exact": nova.Exact(v), "exists": nova.StreamExists, "any": nova.Any}[kind]
		if _, err := s.AppendTx(ctx, tx, "S", exp, novatest.Events("tx", 1)...); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var got []uint64
	for _, e := range novatest.MustReadAll(t, s) {
		got = append(got, e.Version)
	}
	if fmt.Sprint(got) != fmt.Sprint([]uint64{1, 2, 3, 4, 5, 6, 7}) {
		t.Fatalf("ReadAll yields the stream's versions %v, want 1..7 in order", got)
	}
}

func TestParseURL(t *testing.T) {
	t.Parallel()
	cfg, err := novapg.ParseURL("postgres://app@db:5432/prod?sslmode=require&schema=orders")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Schema != "orders" || strings.Contains(cfg.URL, "schema") || !strings.Contains(cfg.URL, "sslmode=require") {
		t.Errorf("ParseURL = %+v, want schema orders and the URL without it", cfg)
	}
	if cfg, err := novapg.ParseURL("postgresql://db/x"); err != nil || cfg.Schema != "" {
		t.Errorf("ParseURL without a schema = %+v, %v", cfg, err)
	}
	for _, bad := range []string{"", "mysql://db/x", "/tmp/events.db", "postgres://db/x?schema=Bad-Name", "postgres://db/x?pool_max_conns=many"} {
		if _, err := novapg.ParseURL(bad); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("ParseURL(%q): %v, want nova.ErrInvalid", bad, err)
		}
	}
	// The schema parameter reaches the store, not the server.
	sc := newScratch(t)
	cfg, err = novapg.ParseURL(sc.url + "&schema=" + sc.schema)
	if err != nil {
		t.Fatal(err)
	}
	s := open(t, cfg)
	if s.Schema() != sc.schema {
		t.Errorf("store in schema %q, want %q", s.Schema(), sc.schema)
	}
}

// A store URL is read strictly: a separator other than '&' (which would
// hide the schema parameter), a repeated or unknown parameter, or a
// fragment is refused, naming the parameters that are known.
func TestParseURLRefusesMalformedURLs(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ url, want string }{
		{"postgres://db/x?sslmode=disable;schema=orders", "semicolon"},
		{"postgres://db/x?schema=a&schema=b", `"schema" is given twice`},
		{"postgres://db/x?shcema=orders", `unknown parameter "shcema"`},
		{"postgres://db/x?shcema=orders", "schema, "},
		{"postgres://db/x?schema=orders#frag", "fragment"},
		{"postgres://db/x?schema=%zz", "invalid URL escape"},
		{"postgres://bob:secret@db/x?nope=1", `unknown parameter "nope"`},
	} {
		_, err := novapg.ParseURL(tt.url)
		if !errors.Is(err, nova.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseURL(%q): %v, want nova.ErrInvalid saying %q", tt.url, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("ParseURL(%q): error %q shows the password", tt.url, err)
		}
	}
	for _, good := range []string{
		"postgres://db/x?schema=orders&sslmode=disable&pool_max_conns=8&application_name=app&connect_timeout=5",
		"postgres://bob:secret@db:5432/x",
	} {
		if _, err := novapg.ParseURL(good); err != nil {
			t.Errorf("ParseURL(%q): %v", good, err)
		}
	}
}

// A mistyped schema is reported, with how to create a store, and is not
// created.
func TestSkipMigrateNamesTheMissingSchema(t *testing.T) {
	t.Parallel()
	sc := newScratch(t)
	cfg := sc.config()
	cfg.Schema += "_typo"
	cfg.SkipMigrate = true
	_, err := novapg.Open(context.Background(), cfg)
	if !errors.Is(err, novapg.ErrSchemaOutdated) || !strings.Contains(err.Error(), "no schema "+cfg.Schema) || !strings.Contains(err.Error(), "nova migrate") {
		t.Fatalf("Open: %v, want ErrSchemaOutdated naming the missing schema and nova migrate", err)
	}
	var exists bool
	if err := pgxQueryRow(context.Background(), sc, `SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)`, &exists, cfg.Schema); err != nil || exists {
		t.Fatalf("the mistyped schema was created (exists %v, err %v)", exists, err)
	}
}
