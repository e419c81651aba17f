package novapg

import "fmt"

// statements holds the store's SQL, with the schema filled in. pgx
// prepares each statement once per connection and caches it, so each
// execution is one round trip.
type statements struct {
	// appendBatch and appendOne append a batch, or one event, in one
	// statement, for each kind of expected version (the expect* indexes).
	appendBatch, appendOne [4]string
	// grouped maps each of those statements to its form for a group
	// commit, which also writes nothing (and returns no version) when
	// one of the events' IDs is already stored, instead of failing on
	// the unique index: an idempotent retry in a group must not abort
	// the group's transaction.
	grouped map[string]string
	// lookup returns the stored events with the given IDs.
	lookup string
	// version returns a stream's last version.
	version string
	// forwards and backwards read a stream's page.
	forwards, backwards string
	// guard takes the append's shared advisory lock on the clock's next
	// value; it runs, in the append's transaction, before the statement
	// that draws the label.
	guard string
	// clock stores the clock's next value (X) in the transaction-local
	// setting novapg.x; horizon, a later statement, returns the horizon
	// H = min(X, the smallest value guarded by a running append) and
	// stores it in novapg.h. Every event below H has committed or never
	// will, for a statement that starts after horizon ends.
	clock, horizon string
	// all reads a page of the log below a given horizon; live reads one
	// below the horizon in novapg.h; pending says whether events past a
	// position are at or past that horizon (committed but held back, or
	// not committed yet).
	all, live, pending string
	// holder describes the oldest running append that holds readers.
	holder string
	// streams lists streams.
	streams string
	// loadSnapshot and saveSnapshot read and write a snapshot.
	loadSnapshot, saveSnapshot string
}

// eventColumns are the columns scan reads, in order.
const eventColumns = `seq, label, stream, version, id, type, data, metadata, correlation_id, causation_id, recorded_at`

// Indexes of the append statements by expected version.
const (
	expectAny = iota
	expectNoStream
	expectExists
	expectExact
)

func newStatements(schema string, marker int64) statements {
	// next is the clock's next value: no label drawn after it is read is
	// smaller.
	next := fmt.Sprintf(`(SELECT last_value + is_called::int FROM %s.clock)`, schema)
	// guarded lists the values guarded by this store's running appends:
	// granted shared advisory locks of this database whose key carries
	// the store's marker in its high bits (the key's high 32 bits are
	// classid, its low 32 objid, and objsubid is 1 for a bigint key).
	guarded := fmt.Sprintf(`l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted AND l.mode = 'ShareLock'
	AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
	AND l.classid::bigint >> 16 = %d`, marker)
	guardedValue := `((l.classid::bigint & 65535) << 32 | l.objid::bigint)`
	// appendEvents updates or creates the stream's row in s, which returns
	// the stream's new version only when the expected version holds, and
	// inserts the batch from arrays after it. With no row from s nothing
	// is inserted and the result's version is NULL. The events take their
	// sequence numbers in batch order (the ORDER BY comes before the
	// defaults are computed) and the label the stream's row drew.
	appendEvents := func(streamRow string) string {
		return fmt.Sprintf(`WITH s AS (%s),
e AS (
	INSERT INTO %[2]s.events (label, stream, version, id, type, data, metadata, correlation_id, causation_id)
	SELECT s.last_label, $1, s.version - $2 + u.ord, u.id, u.type, u.data, NULLIF(u.md, '')::jsonb, NULLIF(u.corr, ''), NULLIF(u.caus, '')
	FROM s, unnest($3::uuid[], $4::text[], $5::bytea[], $6::text[], $7::text[], $8::text[]) WITH ORDINALITY AS u(id, type, data, md, corr, caus, ord)
	ORDER BY u.ord
	RETURNING version, label, seq
)
SELECT max(version), max(label), max(seq) FROM e`, streamRow, schema)
	}
	// appendEvent is appendEvents for one event, with plain parameters
	// instead of arrays, which costs the server less. It returns no row
	// when nothing was written.
	appendEvent := func(streamRow string) string {
		return fmt.Sprintf(`WITH s AS (%s)
INSERT INTO %[2]s.events (label, stream, version, id, type, data, metadata, correlation_id, causation_id)
SELECT s.last_label, $1, s.version, $3::uuid, $4::text, $5::bytea, NULLIF($6::text, '')::jsonb, NULLIF($7::text, ''), NULLIF($8::text, '')
FROM s
RETURNING version, label, seq`, streamRow, schema)
	}
	// The stream's row draws the append's label with nextval in the SET
	// of its UPDATE (or ON CONFLICT DO UPDATE), which PostgreSQL computes
	// on the locked, latest row version: an append that waited for the
	// row draws after the one before it committed, so one stream's labels
	// follow its versions. A new row draws in its VALUES. greatest keeps
	// the order should the clock ever be set back (a restore).
	label := fmt.Sprintf(`nextval('%s.clock')`, schema)
	streamRow := [4]string{
		fmt.Sprintf(`INSERT INTO %[1]s.streams AS t (stream, version, last_label) VALUES ($1, $2, %[2]s)
	ON CONFLICT (stream) DO UPDATE SET version = t.version + excluded.version, last_label = greatest(t.last_label, %[2]s)
	RETURNING version, last_label`, schema, label),
		fmt.Sprintf(`INSERT INTO %[1]s.streams (stream, version, last_label) VALUES ($1, $2, %[2]s)
	ON CONFLICT (stream) DO NOTHING RETURNING version, last_label`, schema, label),
		fmt.Sprintf(`UPDATE %[1]s.streams SET version = version + $2, last_label = greatest(last_label, %[2]s)
	WHERE stream = $1 RETURNING version, last_label`, schema, label),
		fmt.Sprintf(`UPDATE %[1]s.streams SET version = version + $2, last_label = greatest(last_label, %[2]s)
	WHERE stream = $1 AND version = $9 RETURNING version, last_label`, schema, label),
	}
	// The grouped forms draw the label only when none of the events' IDs
	// is stored (dup stands for that condition); parameters are cast, as
	// INSERT ... SELECT does not infer their types from the columns.
	groupedRow := [4]string{
		fmt.Sprintf(`INSERT INTO %[1]s.streams AS t (stream, version, last_label) SELECT $1::text, $2::bigint, %[2]s WHERE %[3]s
	ON CONFLICT (stream) DO UPDATE SET version = t.version + excluded.version, last_label = greatest(t.last_label, %[2]s)
	RETURNING version, last_label`, schema, label, "%[1]s"),
		fmt.Sprintf(`INSERT INTO %[1]s.streams (stream, version, last_label) SELECT $1::text, $2::bigint, %[2]s WHERE %[3]s
	ON CONFLICT (stream) DO NOTHING RETURNING version, last_label`, schema, label, "%[1]s"),
		fmt.Sprintf(`UPDATE %[1]s.streams SET version = version + $2, last_label = greatest(last_label, %[2]s)
	WHERE stream = $1 AND %[3]s RETURNING version, last_label`, schema, label, "%[1]s"),
		fmt.Sprintf(`UPDATE %[1]s.streams SET version = version + $2, last_label = greatest(last_label, %[2]s)
	WHERE stream = $1 AND version = $9 AND %[3]s RETURNING version, last_label`, schema, label, "%[1]s"),
	}
	dupOne := fmt.Sprintf(`NOT EXISTS (SELECT FROM %s.events WHERE id = $3::uuid)`, schema)
	dupBatch := fmt.Sprintf(`NOT EXISTS (SELECT FROM %s.events WHERE id = ANY($3::uuid[]))`, schema)
	var batch, single [4]string
	grouped := make(map[string]string, 8)
	for i, row := range streamRow {
		batch[i], single[i] = appendEvents(row), appendEvent(row)
		grouped[batch[i]] = appendEvents(fmt.Sprintf(groupedRow[i], dupBatch))
		grouped[single[i]] = appendEvent(fmt.Sprintf(groupedRow[i], dupOne))
	}
	return statements{
		appendBatch: batch,
		appendOne:   single,
		grouped:     grouped,

		lookup:  fmt.Sprintf(`SELECT %s FROM %s.events WHERE id = ANY($1::uuid[])`, eventColumns, schema),
		version: fmt.Sprintf(`SELECT COALESCE((SELECT version FROM %s.streams WHERE stream = $1), 0)`, schema),

		forwards:  fmt.Sprintf(`SELECT %s FROM %s.events WHERE stream = $1 AND version >= $2 ORDER BY version LIMIT $3`, eventColumns, schema),
		backwards: fmt.Sprintf(`SELECT %s FROM %s.events WHERE stream = $1 AND version <= $2 ORDER BY version DESC LIMIT $3`, eventColumns, schema),

		guard:   fmt.Sprintf(`SELECT pg_advisory_xact_lock_shared(%d::bigint << 48 | %s)`, marker, next),
		clock:   fmt.Sprintf(`SELECT set_config('novapg.x', %s::text, true)`, next),
		horizon: fmt.Sprintf(`SELECT set_config('novapg.h', least(current_setting('novapg.x')::bigint, (SELECT min(%s) FROM pg_locks l WHERE %s))::text, true)::bigint`, guardedValue, guarded),
		all: fmt.Sprintf(`SELECT %s FROM %s.events WHERE (label, seq) > ($1, $2) AND label < $3
	ORDER BY label, seq LIMIT $4`, eventColumns, schema),
		live: fmt.Sprintf(`SELECT %s FROM %s.events WHERE (label, seq) > ($1, $2) AND label < current_setting('novapg.h')::bigint
	ORDER BY label, seq LIMIT $3`, eventColumns, schema),
		pending: fmt.Sprintf(`SELECT EXISTS (SELECT FROM %s.events WHERE (label, seq) > ($1, $2) AND label >= current_setting('novapg.h')::bigint)`, schema),
		holder: fmt.Sprintf(`SELECT %[1]s AS guarded, l.pid, COALESCE(a.application_name, ''), a.xact_start, COALESCE(a.state, ''), COALESCE(a.query, '')
	FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
	WHERE %[2]s
	ORDER BY guarded LIMIT 1`, guardedValue, guarded),

		streams: fmt.Sprintf(`SELECT stream, version FROM %s.streams WHERE stream > $1 ORDER BY stream LIMIT $2`, schema),

		loadSnapshot: fmt.Sprintf(`SELECT version, schema, data, recorded_at FROM %s.snapshots WHERE stream = $1`, schema),
		saveSnapshot: fmt.Sprintf(`INSERT INTO %[1]s.snapshots AS t (stream, version, schema, data, recorded_at) VALUES ($1, $2, $3, $4, $5)
	ON CONFLICT (stream) DO UPDATE SET version = excluded.version, schema = excluded.schema, data = excluded.data, recorded_at = excluded.recorded_at
	WHERE t.version <= excluded.version`, schema),
	}
}
