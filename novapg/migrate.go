package novapg

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrSchemaTooNew is matched when the schema was migrated by a newer
// version of this package than the one running: the store refuses to use
// tables whose meaning it does not know.
var ErrSchemaTooNew = errors.New("novapg: schema is newer than this version of novapg")

// ErrSchemaOutdated is matched by Open with [Config.SkipMigrate] when the
// schema is missing or has migrations pending.
var ErrSchemaOutdated = errors.New("novapg: schema needs migrating")

// migration is one embedded migration, numbered from 1.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in order. Their file names
// start with their version: 0001_init.sql.
func migrations() []migration {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		panic("novapg: embedded migrations: " + err.Error()) // built into the binary
	}
	var out []migration
	for _, e := range entries {
		num, _, _ := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if err != nil || v != len(out)+1 {
			panic("novapg: embedded migration " + e.Name() + " is out of sequence")
		}
		b, err := migrationFiles.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			panic("novapg: embedded migrations: " + err.Error())
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	return out
}

// SchemaVersion is the schema version this package migrates to and
// works with.
var SchemaVersion = len(migrations())

// Migrate creates cfg.Schema when missing and applies the migrations it
// lacks, in one transaction, and returns the schema's version. Processes
// migrating the same schema at once take turns. A schema of a newer
// version fails with an error matching [ErrSchemaTooNew] and is left as
// it is. cfg.URL or cfg.Pool says where; the other fields but Schema are
// ignored.
func Migrate(ctx context.Context, cfg Config) (int, error) {
	if err := cfg.validate(); err != nil {
		return 0, err
	}
	cfg = cfg.withDefaults()
	pool, owned, err := openPool(ctx, cfg)
	if err != nil {
		return 0, err
	}
	if owned {
		defer pool.Close()
	}
	return migrate(ctx, pool, cfg.Schema)
}

func migrate(ctx context.Context, pool *pgxpool.Pool, schema string) (int, error) {
	q := quoteIdent(schema)
	var version int
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// Every process migrating this schema waits here for the one
		// before it, whose work it then sees.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('novapg.migrate.' || $1))`, schema); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+q); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+q+`.schema_version (version integer NOT NULL)`); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `SELECT version FROM `+q+`.schema_version`).Scan(&version)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			if _, err := tx.Exec(ctx, `INSERT INTO `+q+`.schema_version (version) VALUES (0)`); err != nil {
				return err
			}
		case err != nil:
			return err
		}
		if version > SchemaVersion {
			return tooNew(schema, version)
		}
		for _, m := range migrations()[version:] {
			if _, err := tx.Exec(ctx, strings.ReplaceAll(m.sql, "{{schema}}", q)); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			version = m.version
		}
		_, err = tx.Exec(ctx, `UPDATE `+q+`.schema_version SET version = $1`, version)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrSchemaTooNew) {
			return version, err
		}
		return 0, fmt.Errorf("novapg: migrate schema %s: %w", schema, err)
	}
	return version, nil
}

// checkVersion returns nil when schema is at SchemaVersion, and otherwise
// an error that says what is there and what to run. It only reads.
func checkVersion(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	var hasSchema, hasTable bool
	err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1), to_regclass($2) IS NOT NULL`,
		schema, quoteIdent(schema)+".schema_version").Scan(&hasSchema, &hasTable)
	switch {
	case err != nil:
		return fmt.Errorf("novapg: look for schema %s: %w", schema, err)
	case !hasSchema:
		return fmt.Errorf("%w: the database has no schema %s: check the schema's name, or create a store there with novapg.Migrate (nova migrate)",
			ErrSchemaOutdated, schema)
	case !hasTable:
		return fmt.Errorf("%w: schema %s holds no nova store (it has no table schema_version): create one with novapg.Migrate (nova migrate)",
			ErrSchemaOutdated, schema)
	}
	var version int
	err = pool.QueryRow(ctx, `SELECT COALESCE((SELECT version FROM `+quoteIdent(schema)+`.schema_version), 0)`).Scan(&version)
	switch {
	case err != nil:
		return fmt.Errorf("novapg: read the version of schema %s: %w", schema, err)
	case version > SchemaVersion:
		return tooNew(schema, version)
	case version < SchemaVersion:
		return fmt.Errorf("%w: schema %s is at version %d, this novapg needs %d: run novapg.Migrate (nova migrate) or open without SkipMigrate", ErrSchemaOutdated, schema, version, SchemaVersion)
	}
	return nil
}

func tooNew(schema string, version int) error {
	return fmt.Errorf("%w: schema %s is at version %d, this novapg knows versions up to %d: upgrade the program", ErrSchemaTooNew, schema, version, SchemaVersion)
}

// quoteIdent quotes a validated identifier.
func quoteIdent(s string) string {
	return pgx.Identifier{s}.Sanitize()
}
