package novasqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novasqlite"
	"github.com/nova-go/nova/saga"
)

// schemaV3 is the file layout of schema version 3, as the version before
// the saga_runs indexes changed created it.
const schemaV3 = `PRAGMA journal_mode = WAL;
BEGIN IMMEDIATE;
CREATE TABLE streams (stream TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE events (
	position    INTEGER PRIMARY KEY AUTOINCREMENT,
	id          TEXT NOT NULL UNIQUE,
	stream      TEXT NOT NULL,
	version     INTEGER NOT NULL,
	type        TEXT NOT NULL,
	data        BLOB NOT NULL,
	metadata    TEXT,
	recorded_at INTEGER NOT NULL,
	UNIQUE (stream, version)
);
CREATE TABLE snapshots (
	stream TEXT PRIMARY KEY, version INTEGER NOT NULL, schema INTEGER NOT NULL,
	data BLOB NOT NULL, recorded_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE saga_runs (
	saga        TEXT NOT NULL,
	run_id      TEXT NOT NULL,
	status      TEXT NOT NULL,
	version     INTEGER NOT NULL,
	step        TEXT NOT NULL DEFAULT '',
	attempt     INTEGER NOT NULL DEFAULT 0,
	error       TEXT NOT NULL DEFAULT '',
	due_at      INTEGER NOT NULL DEFAULT 0,
	deadline_at INTEGER NOT NULL DEFAULT 0,
	lease_owner TEXT NOT NULL DEFAULT '',
	lease_until INTEGER NOT NULL DEFAULT 0,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL,
	PRIMARY KEY (saga, run_id)
) WITHOUT ROWID;
CREATE INDEX saga_runs_due ON saga_runs (due_at) WHERE due_at > 0;
CREATE INDEX saga_runs_status ON saga_runs (status, saga, run_id);
CREATE TABLE outbox (
	seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, topic TEXT NOT NULL,
	event_type TEXT NOT NULL, payload BLOB NOT NULL, key TEXT NOT NULL DEFAULT '',
	headers TEXT, attempts INTEGER NOT NULL DEFAULT 0, stamped_at INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL
);
CREATE TABLE checkpoints (
	name TEXT PRIMARY KEY, commit_pos INTEGER NOT NULL DEFAULT 0, prepare_pos INTEGER NOT NULL DEFAULT 0,
	lease_owner TEXT NOT NULL DEFAULT '', lease_until INTEGER NOT NULL DEFAULT 0,
	updated_at INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
PRAGMA user_version = 3;
PRAGMA application_id = 1313822273;
COMMIT;`

// TestRunStoreMigratesSchema3 opens a file made by the previous schema,
// holding a free run due now, a leased run and a run whose lease has
// expired: Open migrates it, claims find the free and the expired runs
// (through the new indexes) but not the leased one, and the leased run's
// owner records its transitions.
func TestRunStoreMigratesSchema3(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v3.db")
	c, err := sqlite3.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	past, future := now.Add(-time.Second).UnixNano(), now.Add(time.Hour).UnixNano()
	held := saga.StreamName("order", "held")
	err = c.Exec(schemaV3 + fmt.Sprintf(`;
		INSERT INTO streams VALUES ('%[1]s', 1);
		INSERT INTO events (id, stream, version, type, data, recorded_at) VALUES ('%[2]s', '%[1]s', 1, 'saga.started', x'7b7d', %[3]d);
		INSERT INTO saga_runs (saga, run_id, status, version, due_at, lease_owner, lease_until, created_at, updated_at) VALUES
			('order', 'free', 'running', 1, %[3]d, '', 0, %[3]d, %[3]d),
			('order', 'held', 'running', 1, %[3]d, 'w0', %[4]d, %[3]d, %[3]d),
			('order', 'expired', 'running', 1, %[3]d, 'w0', %[3]d, %[3]d, %[3]d),
			('order', 'done', 'completed', 1, 0, '', 0, %[3]d, %[3]d);
		INSERT INTO outbox (id, topic, event_type, payload, created_at) VALUES ('m1', 'saga.order', 'started', x'7b7d', %[3]d);`,
		held, nova.NewEventID(), past, future))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	s := open(t, novasqlite.Config{Path: path})
	rs := newRunStore(t, s)
	got, err := rs.Claim(ctx, saga.ClaimRequest{Sagas: []string{"order"}, Owner: "w1", Limit: 10, Lease: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range got {
		ids = append(ids, r.RunID)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"expired", "free"}) {
		t.Errorf("claimed %v, want [expired free]", ids)
	}
	for i, st := range []saga.Status{saga.Running, saga.Completed} {
		row, err := rs.Record(ctx, saga.Transition{
			Stream: held, Expected: nova.Exact(uint64(i + 1)),
			Events: []nova.EventData{{ID: nova.NewEventID(), Type: "saga.step", Data: []byte(`{}`)}},
			Run:    saga.RunInfo{Saga: "order", RunID: "held", Status: st, Step: fmt.Sprint(i)},
			Owner:  "w0", Lease: time.Minute,
		})
		if err != nil {
			t.Fatalf("Record %d: %v", i, err)
		}
		if row.Version != uint64(i+2) || row.Status != st || row.LeaseOwner != "w0" {
			t.Errorf("Record %d: row %+v", i, row)
		}
	}
	if msgs, err := rs.Outbox().Pending(ctx, 10); err != nil || len(msgs) != 1 || msgs[0].Envelope.ID != "m1" {
		t.Errorf("Pending = %+v, %v", msgs, err)
	}
	n, err := rs.Count(ctx, "order")
	if err != nil || n[saga.Running] != 2 || n[saga.Completed] != 2 {
		t.Errorf("Count = %v, %v", n, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	c, err = sqlite3.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, _, err := c.Prepare(`SELECT (SELECT user_version FROM pragma_user_version), group_concat(sql, ';') FROM sqlite_schema WHERE name LIKE 'saga_runs_%'`)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if !st.Step() {
		t.Fatal(st.Err())
	}
	if v, sql := st.ColumnInt(0), st.ColumnText(1); v != novasqlite.SchemaVersion || !strings.Contains(sql, "saga_runs_leased") || !strings.Contains(sql, "lease_owner = ''") {
		t.Errorf("after Open: schema version %d, indexes %s", v, sql)
	}
}
