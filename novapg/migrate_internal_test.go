package novapg

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/internal/uuidx"
)

// TestMigrationKeepsTheLogsOrder fills a schema of version 3, whose
// events carry their transaction IDs, and opens it: the migration keeps
// every stored event at its position (so stored checkpoints stay
// valid), and events appended afterwards come after them, for ReadAll
// and for a subscription resumed from the last old position.
func TestMigrationKeepsTheLogsOrder(t *testing.T) {
	t.Parallel()
	dsn := testenv.Need(t, testenv.Postgres)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "novapg_migrate_" + hex.EncodeToString(b[:])
	q := quoteIdent(schema)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	t.Cleanup(func() {
		if _, err := conn.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+q+` CASCADE`); err != nil {
			t.Errorf("drop %s: %v", schema, err)
		}
	})
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`CREATE SCHEMA ` + q)
	exec(`CREATE TABLE ` + q + `.schema_version (version integer NOT NULL)`)
	exec(`INSERT INTO ` + q + `.schema_version VALUES (3)`)
	for _, m := range migrations()[:3] {
		exec(strings.ReplaceAll(m.sql, "{{schema}}", q))
	}
	// Three appends as version 3 wrote them, each in its transaction.
	for i, stream := range []string{"a", "b", "a"} {
		exec(`INSERT INTO `+q+`.streams AS t (stream, version) VALUES ($1, 1)
			ON CONFLICT (stream) DO UPDATE SET version = t.version + 1`, stream)
		exec(`INSERT INTO `+q+`.events (stream, version, id, type, data)
			SELECT $1, version, gen_random_uuid(), 'old', $2 FROM `+q+`.streams WHERE stream = $1`, stream, []byte{byte('0' + i)})
	}
	var old []nova.Position
	rows, err := conn.Query(ctx, `SELECT xid::text::bigint, seq FROM `+q+`.events ORDER BY xid, seq`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var xid, seq int64
		if err := rows.Scan(&xid, &seq); err != nil {
			t.Fatal(err)
		}
		old = append(old, nova.Position{Commit: uint64(xid), Prepare: uint64(seq)})
	}
	if err := rows.Err(); err != nil || len(old) != 3 {
		t.Fatalf("old events: %v, %v", old, err)
	}

	s, err := Open(ctx, Config{URL: dsn, Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got []nova.Position
	for e, err := range s.ReadAll(ctx, nova.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Position)
	}
	if len(got) != 3 || got[0] != old[0] || got[1] != old[1] || got[2] != old[2] {
		t.Fatalf("after the migration ReadAll has positions %v, want the stored %v", got, old)
	}
	res, err := s.Append(ctx, "a", nova.Exact(2), nova.EventData{ID: newUUID(), Type: "new", Data: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	if !old[2].Less(res.Position) {
		t.Fatalf("the first append after the migration is at %s, not after the stored %s", res.Position, old[2])
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	for e, err := range s.Subscribe(sctx, nova.SubscribeOptions{From: old[2]}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Type != "new" || e.Version != 3 || e.Position != res.Position {
			t.Fatalf("subscription from the last stored position delivered %s v%d at %s, want the new event", e.Type, e.Version, e.Position)
		}
		break
	}
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return uuidx.Format(b)
}
