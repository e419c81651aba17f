package novapg

import "fmt"

// statements holds the store's SQL, with the schema filled in. pgx
// prepares each statement once per connection and caches it, so each
// execution is one round trip.
type statements struct {
	// appendBatch and appendOne append a batch, or one event, in one
	// statement, for each kind of expected version (the expect* indexes).
	appendBatch, appendOne [4]string
	// lookup returns the stored events with the given IDs.
	lookup string
	// version returns a stream's last version.
	version string
	// forwards and backwards read a stream's page.
	forwards, backwards string
	// horizon returns the position below which the log is complete.
	horizon string
	// all reads a page of the log below a given horizon; live reads one
	// below the current horizon; pending says whether events past a
	// position are committed but held back by an older transaction.
	all, live, pending string
	// streams lists streams.
	streams string
	// loadSnapshot and saveSnapshot read and write a snapshot.
	loadSnapshot, saveSnapshot string
}

// eventColumns are the columns scan reads, in order.
const eventColumns = `seq, xid, stream, version, id, type, data, metadata, correlation_id, causation_id, recorded_at`

// Indexes of the append statements by expected version.
const (
	expectAny = iota
	expectNoStream
	expectExists
	expectExact
)

func newStatements(schema string) statements {
	// appendEvents updates or creates the stream's row in s, which returns
	// the stream's new version only when the expected version holds, and
	// inserts the batch from arrays after it. With no row from s nothing
	// is inserted and the result's version is NULL. The events take their
	// sequence numbers in batch order (the ORDER BY comes before the
	// defaults are computed) and the writing transaction's ID by default.
	appendEvents := func(streamRow string) string {
		return fmt.Sprintf(`WITH s AS (%s),
e AS (
	INSERT INTO %[2]s.events (stream, version, id, type, data, metadata, correlation_id, causation_id)
	SELECT $1, s.version - $2 + u.ord, u.id, u.type, u.data, NULLIF(u.md, '')::jsonb, NULLIF(u.corr, ''), NULLIF(u.caus, '')
	FROM s, unnest($3::uuid[], $4::text[], $5::bytea[], $6::text[], $7::text[], $8::text[]) WITH ORDINALITY AS u(id, type, data, md, corr, caus, ord)
	ORDER BY u.ord
	RETURNING version, xid, seq
)
SELECT max(version), max(xid), max(seq) FROM e`, streamRow, schema)
	}
	// appendEvent is appendEvents for one event, with plain parameters
	// instead of arrays, which costs the server less. It returns no row
	// when nothing was written.
	appendEvent := func(streamRow string) string {
		return fmt.Sprintf(`WITH s AS (%s)
INSERT INTO %[2]s.events (stream, version, id, type, data, metadata, correlation_id, causation_id)
SELECT $1, s.version, $3::uuid, $4::text, $5::bytea, NULLIF($6::text, '')::jsonb, NULLIF($7::text, ''), NULLIF($8::text, '')
FROM s
RETURNING version, xid, seq`, streamRow, schema)
	}
	streamRow := [4]string{
		fmt.Sprintf(`INSERT INTO %s.streams AS t (stream, version) VALUES ($1, $2)
	ON CONFLICT (stream) DO UPDATE SET version = t.version + excluded.version RETURNING version`, schema),
		fmt.Sprintf(`INSERT INTO %s.streams (stream, version) VALUES ($1, $2)
	ON CONFLICT (stream) DO NOTHING RETURNING version`, schema),
		fmt.Sprintf(`UPDATE %s.streams SET version = version + $2 WHERE stream = $1 RETURNING version`, schema),
		fmt.Sprintf(`UPDATE %s.streams SET version = version + $2 WHERE stream = $1 AND version = $9 RETURNING version`, schema),
	}
	var batch, single [4]string
	for i, row := range streamRow {
		batch[i], single[i] = appendEvents(row), appendEvent(row)
	}
	return statements{
		appendBatch: batch,
		appendOne:   single,

		lookup:  fmt.Sprintf(`SELECT %s FROM %s.events WHERE id = ANY($1::uuid[])`, eventColumns, schema),
		version: fmt.Sprintf(`SELECT COALESCE((SELECT version FROM %s.streams WHERE stream = $1), 0)`, schema),

		forwards:  fmt.Sprintf(`SELECT %s FROM %s.events WHERE stream = $1 AND version >= $2 ORDER BY version LIMIT $3`, eventColumns, schema),
		backwards: fmt.Sprintf(`SELECT %s FROM %s.events WHERE stream = $1 AND version <= $2 ORDER BY version DESC LIMIT $3`, eventColumns, schema),

		horizon: `SELECT pg_snapshot_xmin(pg_current_snapshot())`,
		all: fmt.Sprintf(`SELECT %s FROM %s.events WHERE (xid, seq) > ($1, $2) AND xid < $3
	ORDER BY xid, seq LIMIT $4`, eventColumns, schema),
		live: fmt.Sprintf(`SELECT %s FROM %s.events WHERE (xid, seq) > ($1, $2) AND xid < pg_snapshot_xmin(pg_current_snapshot())
	ORDER BY xid, seq LIMIT $3`, eventColumns, schema),
		pending: fmt.Sprintf(`SELECT EXISTS (SELECT FROM %s.events WHERE (xid, seq) > ($1, $2) AND xid >= pg_snapshot_xmin(pg_current_snapshot()))`, schema),

		streams: fmt.Sprintf(`SELECT stream, version FROM %s.streams WHERE stream > $1 ORDER BY stream LIMIT $2`, schema),

		loadSnapshot: fmt.Sprintf(`SELECT version, schema, data, recorded_at FROM %s.snapshots WHERE stream = $1`, schema),
		saveSnapshot: fmt.Sprintf(`INSERT INTO %[1]s.snapshots AS t (stream, version, schema, data, recorded_at) VALUES ($1, $2, $3, $4, $5)
	ON CONFLICT (stream) DO UPDATE SET version = excluded.version, schema = excluded.schema, data = excluded.data, recorded_at = excluded.recorded_at
	WHERE t.version <= excluded.version`, schema),
	}
}
