package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/uuidx"
	"github.com/nova-go/nova/novapg"
)

// Postgres returns the backend of package novapg, measured beside a
// hand-written pgx baseline, for a benchmark on the server url names (a
// postgres:// URL or key=value string, as pgxpool reads it).
//
// Every run, Nova's and the baseline's alike, gets a scratch schema of its
// own (nova_bench_ and random hex) in the database the URL names, created
// by novapg's migrations (so tables and indexes are the store's own) and
// dropped with everything in it after the run. The benchmark never reads
// or writes any other schema. The user must be allowed to create schemas.
// Both sides connect with a pool made from the same URL, so connection
// settings are the same, and so is pool size (pool_max_conns), except that
// the baseline's pool has at least as many connections as the scenario
// has writers (64 for append-1-64w), each writer's transactions on a
// connection of their own, as a careful engineer sizes the pool for them;
// the store keeps the URL's pool. cfg sets the
// store's tuning as for [novapg.Open]; its URL, Pool and Schema are
// ignored.
//
// The baseline is what a careful engineer writes by hand with pgx for the
// same rows: an append is a transaction on a pooled connection with
// pgx's cached prepared statements, BEGIN; INSERT the stream's row (new
// stream) or UPDATE it WHERE version = the expected one, checking that a
// row changed; the events, by INSERT for one and by COPY for more; COMMIT.
// The stream's row draws the append's label from the schema's clock
// sequence, as the store's does. Its reads are one query each, the whole
// stream by (stream, version) and the whole log by (label, seq) below
// the clock's next value (without the store's guard against appends
// still running), scanning every column into a [nova.Event] as the store
// does.
func Postgres(url string, cfg novapg.Config) (Backend, error) {
	if url == "" {
		return Backend{}, nova.Invalidf("bench", "empty PostgreSQL URL")
	}
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return Backend{}, nova.Invalidf("bench", "PostgreSQL URL: %v", err)
	}
	cfg.URL, cfg.Pool = url, nil
	// scratch creates a migrated schema and returns its name and the
	// function that drops it.
	scratch := func(ctx context.Context) (string, func() error, error) {
		var b [8]byte
		_, _ = rand.Read(b[:])
		schema := "nova_bench_" + hex.EncodeToString(b[:])
		drop := func() error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			conn, err := pgx.ConnectConfig(ctx, pc.ConnConfig.Copy())
			if err != nil {
				return fmt.Errorf("bench: drop scratch schema %s: %w", schema, err)
			}
			defer conn.Close(ctx)
			if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
				return fmt.Errorf("bench: drop scratch schema %s: %w", schema, err)
			}
			return nil
		}
		c := cfg
		c.Schema = schema
		if _, err := novapg.Migrate(ctx, c); err != nil {
			return "", nil, errors.Join(fmt.Errorf("bench: create scratch schema: %w", err), drop())
		}
		return schema, drop, nil
	}
	return Backend{
		Name: "postgres",
		NovaFunc: func(ctx context.Context) (nova.Store, func() error, error) {
			schema, drop, err := scratch(ctx)
			if err != nil {
				return nil, nil, err
			}
			c := cfg
			c.Schema = schema
			s, err := novapg.Open(ctx, c)
			if err != nil {
				return nil, nil, errors.Join(fmt.Errorf("bench: %w", err), drop())
			}
			return s, func() error { return errors.Join(s.Close(), drop()) }, nil
		},
		RawFunc: func(ctx context.Context) (Raw, func() error, error) {
			schema, drop, err := scratch(ctx)
			if err != nil {
				return nil, nil, err
			}
			rc := pc.Copy()
			// A writer by hand has a connection of its own: the server
			// then commits the writers' transactions side by side and
			// shares their flushes.
			rc.MaxConns = max(rc.MaxConns, int32(scenarioWriters(ctx)))
			pool, err := pgxpool.NewWithConfig(ctx, rc)
			if err != nil {
				return nil, nil, errors.Join(fmt.Errorf("bench: connect: %w", err), drop())
			}
			r := newPostgresRaw(pool, schema)
			return r, func() error { return errors.Join(r.Close(), drop()) }, nil
		},
		ServicesFunc: storeServices,
		workerSpecFunc: func(_ context.Context, s nova.Store) (workerSpec, error) {
			return workerSpec{Backend: "postgres", URL: url, Schema: s.(*novapg.Store).Schema()}, nil
		},
	}, nil
}

// postgresRaw is the PostgreSQL baseline: pgx used directly on novapg's
// tables.
type postgresRaw struct {
	pool                                  *pgxpool.Pool
	table                                 pgx.Identifier
	newStream, moveStream, insert, stream string
	log                                   string
}

func newPostgresRaw(pool *pgxpool.Pool, schema string) *postgresRaw {
	q := pgx.Identifier{schema}.Sanitize()
	const columns = `seq, label, stream, version, id, type, data, metadata, correlation_id, causation_id, recorded_at`
	return &postgresRaw{
		pool:       pool,
		table:      pgx.Identifier{schema, "events"},
		newStream:  `INSERT INTO ` + q + `.streams (stream, version, last_label) VALUES ($1, $2, nextval('` + q + `.clock')) RETURNING last_label`,
		moveStream: `UPDATE ` + q + `.streams SET version = $3, last_label = nextval('` + q + `.clock') WHERE stream = $1 AND version = $2 RETURNING last_label`,
		insert:     `INSERT INTO ` + q + `.events (label, stream, version, id, type, data, metadata, correlation_id, causation_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		stream:     `SELECT ` + columns + ` FROM ` + q + `.events WHERE stream = $1 ORDER BY version`,
		log:        `SELECT ` + columns + ` FROM ` + q + `.events WHERE label <= (SELECT last_value FROM ` + q + `.clock) ORDER BY label, seq`,
	}
}

// Close closes the pool.
func (r *postgresRaw) Close() error {
	r.pool.Close()
	return nil
}

// Append is one transaction: move the stream's row with the version
// check, insert the events, commit.
func (r *postgresRaw) Append(ctx context.Context, stream string, version uint64, events []nova.EventData) error {
	return pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		next := int64(version) + int64(len(events))
		var label int64
		if version == 0 {
			if err := tx.QueryRow(ctx, r.newStream, stream, next).Scan(&label); err != nil {
				return fmt.Errorf("bench: create stream: %w", err)
			}
		} else {
			err := tx.QueryRow(ctx, r.moveStream, stream, int64(version), next).Scan(&label)
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("bench: stream %q is not at version %d", stream, version)
			}
			if err != nil {
				return fmt.Errorf("bench: set stream version: %w", err)
			}
		}
		rows := make([][]any, len(events))
		for i, e := range events {
			var id pgtype.UUID
			if err := id.Scan(e.ID); err != nil {
				return fmt.Errorf("bench: event ID: %w", err)
			}
			var md, corr, caus *string
			if e.Metadata.Schema != 0 || len(e.Metadata.Extra) > 0 {
				b, err := json.Marshal(struct {
					Schema int               `json:"schema,omitempty"`
					Extra  map[string]string `json:"extra,omitempty"`
				}{e.Metadata.Schema, e.Metadata.Extra})
				if err != nil {
					return fmt.Errorf("bench: encode metadata: %w", err)
				}
				s := string(b)
				md = &s
			}
			if e.Metadata.CorrelationID != "" {
				corr = &e.Metadata.CorrelationID
			}
			if e.Metadata.CausationID != "" {
				caus = &e.Metadata.CausationID
			}
			rows[i] = []any{label, stream, int64(version) + int64(i) + 1, id, e.Type, e.Data, md, corr, caus}
		}
		if len(rows) == 1 {
			if _, err := tx.Exec(ctx, r.insert, rows[0]...); err != nil {
				return fmt.Errorf("bench: insert event: %w", err)
			}
			return nil
		}
		_, err := tx.CopyFrom(ctx, r.table,
			[]string{"label", "stream", "version", "id", "type", "data", "metadata", "correlation_id", "causation_id"},
			pgx.CopyFromRows(rows))
		if err != nil {
			return fmt.Errorf("bench: copy events: %w", err)
		}
		return nil
	})
}

func (r *postgresRaw) ReadStream(ctx context.Context, stream string) (int, error) {
	return r.read(ctx, r.stream, stream)
}

func (r *postgresRaw) ReadAll(ctx context.Context) (int, error) {
	return r.read(ctx, r.log)
}

// read runs a query of events, scanning every row into a nova.Event.
func (r *postgresRaw) read(ctx context.Context, sql string, args ...any) (int, error) {
	rows, err := r.pool.Query(ctx, sql, args...)
	if err != nil {
		return 0, fmt.Errorf("bench: read: %w", err)
	}
	defer rows.Close()
	n := 0
	var (
		seq, version int64
		label        int64
		id           pgtype.UUID
		md           []byte
		corr, caus   pgtype.Text
		recorded     time.Time
	)
	for rows.Next() {
		var e nova.Event
		md = nil
		if err := rows.Scan(&seq, &label, &e.Stream, &version, &id, &e.Type, &e.Data, &md, &corr, &caus, &recorded); err != nil {
			return n, fmt.Errorf("bench: read: %w", err)
		}
		e.Position = nova.Position{Commit: uint64(label), Prepare: uint64(seq)}
		e.Version = uint64(version)
		e.ID = uuidx.Format(id.Bytes)
		e.Metadata = nova.Metadata{CorrelationID: corr.String, CausationID: caus.String}
		if len(md) > 0 {
			if err := json.Unmarshal(md, &e.Metadata); err != nil {
				return n, fmt.Errorf("bench: decode metadata: %w", err)
			}
		}
		e.RecordedAt = recorded.UTC()
		if e.Version > 0 {
			n++
		}
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("bench: read: %w", err)
	}
	return n, nil
}
