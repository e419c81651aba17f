package services_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/aggregate"
	"github.com/nova-go/nova/internal/services"
	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/novamem"
	"github.com/nova-go/nova/novamysql"
	"github.com/nova-go/nova/novanats"
	"github.com/nova-go/nova/novasqlite"
	"github.com/nova-go/nova/projection"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(testenv.Main(m)) }

func TestFor(t *testing.T) {
	ctx := context.Background()
	mem, err := novamem.New(novamem.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	lite, err := novasqlite.Open(ctx, novasqlite.Config{Path: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	for _, s := range []nova.Store{mem, lite} {
		svc, err := services.For(s)
		if err != nil {
			t.Fatalf("%T: %v", s, err)
		}
		if svc.Runs == nil || svc.Checkpoints == nil {
			t.Fatalf("%T: services %+v", s, svc)
		}
		qs, err := svc.QueryStore(ctx, "t")
		if err != nil {
			t.Fatalf("%T: query store: %v", s, err)
		}
		if err := qs.UpsertRaw(ctx, "k", []byte(`{"a":1}`)); err != nil {
			t.Fatalf("%T: upsert: %v", s, err)
		}
		if _, err := svc.Runs.Count(ctx, ""); err != nil {
			t.Fatalf("%T: count runs: %v", s, err)
		}
		if got := svc.Table("t"); got != "t" {
			t.Errorf("%T: Table(t) = %q, want t", s, got)
		}
	}
	if _, err := services.For(eventsOnly{}); !errors.Is(err, services.ErrEventsOnly) {
		t.Errorf("events-only store: %v, want ErrEventsOnly", err)
	}
}

// eventsOnly is a store of a backend that serves nothing else.
type eventsOnly struct{ nova.Store }

// On MySQL, saga runs, checkpoints and query stores are the store's, in
// tables with its prefix.
func TestForMySQL(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.Need(t, testenv.MySQL)
	var b [6]byte
	rand.Read(b[:])
	prefix := "svc_" + hex.EncodeToString(b[:]) + "_"
	s, err := novamysql.Open(ctx, novamysql.Config{DSN: dsn, TablePrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		defer s.Close()
		rows, err := s.DB().QueryContext(ctx, `SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND LEFT(TABLE_NAME, ?) = ?`, len(prefix), prefix)
		if err != nil {
			t.Error(err)
			return
		}
		var names []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Error(err)
			}
			names = append(names, "`"+n+"`")
		}
		rows.Close()
		if len(names) > 0 {
			if _, err := s.DB().ExecContext(ctx, "DROP TABLE "+strings.Join(names, ", ")); err != nil {
				t.Errorf("drop the test's tables: %v", err)
			}
		}
	}()
	svc, err := services.For(s)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := svc.Runs.(*novamysql.RunStore); !ok {
		t.Errorf("runs: %T, want *novamysql.RunStore", svc.Runs)
	}
	if _, ok := svc.Checkpoints.(*novamysql.Checkpoints); !ok {
		t.Errorf("checkpoints: %T, want *novamysql.Checkpoints", svc.Checkpoints)
	}
	qs, err := svc.QueryStore(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := qs.UpsertRaw(ctx, "k", []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	if c, err := svc.Runs.Count(ctx, ""); err != nil || len(c) != 0 {
		t.Fatalf("count runs: %v, %v", c, err)
	}
	if err := svc.Checkpoints.Save(ctx, "p", nova.Position{Commit: 3}); err != nil {
		t.Fatal(err)
	}
	if got := svc.Table("t"); got != "t" {
		t.Errorf("Table(t) = %q, want t", got)
	}
}

// On JetStream, checkpoints (with leases) and snapshots are key-value
// buckets of the store's; there are no saga runs and no query stores,
// and the Need methods say so.
func TestForNATS(t *testing.T) {
	ctx := context.Background()
	url := testenv.Need(t, testenv.NATS)
	var b [6]byte
	rand.Read(b[:])
	stream := "SVC_" + strings.ToUpper(hex.EncodeToString(b[:]))
	s, err := novanats.Open(ctx, novanats.Config{URL: url, StreamName: stream, Storage: novanats.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		s.Close()
		nc, err := nats.Connect(url)
		if err != nil {
			t.Error(err)
			return
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		for _, name := range []string{stream, "KV_" + stream + "_checkpoints", "KV_" + stream + "_snapshots"} {
			if err := js.DeleteStream(ctx, name); err != nil {
				t.Errorf("delete %s: %v", name, err)
			}
		}
	}()
	svc, err := services.For(s)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := svc.Checkpoints.(projection.LeasedCheckpoints); !ok {
		t.Errorf("checkpoints: %T, want a projection.LeasedCheckpoints", svc.Checkpoints)
	}
	if err := svc.Checkpoints.Save(ctx, "p", nova.Position{Commit: 3}); err != nil {
		t.Fatal(err)
	}
	if err := svc.Snapshots.SaveSnapshot(ctx, aggregate.Snapshot{Stream: "s", Version: 1, Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if err := svc.NeedRuns(); !errors.Is(err, services.ErrNoRuns) || svc.Runs != nil {
		t.Errorf("NeedRuns = %v with Runs %v, want ErrNoRuns and nil", err, svc.Runs)
	}
	if err := svc.NeedQueryStore(); !errors.Is(err, services.ErrNoQueryStore) {
		t.Errorf("NeedQueryStore = %v, want ErrNoQueryStore", err)
	}
}
