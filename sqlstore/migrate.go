package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"
)

// Migrations are numbered SQL files, one directory per dialect:
// migrations/<dialect>/NNNN_name.sql. Version NNNN is applied once, in its
// own transaction together with its row in schema_migrations, so a migration
// is either wholly applied and recorded or not at all. Files must not contain
// BEGIN/COMMIT. Both dialects have the same versions (a test checks).
//
//go:embed migrations
var migrationsFS embed.FS

var migrationName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the dialect's migrations in version order, checking
// that versions run 1, 2, 3, ... without gaps or repeats.
func migrations(dialectName string) ([]migration, error) {
	dir := path.Join("migrations", dialectName)
	entries, err := fs.ReadDir(migrationsFS, dir)
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries { // ReadDir sorts by name, so by version
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration %s/%s: name is not NNNN_name.sql", dir, e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		if v != len(ms)+1 {
			return nil, fmt.Errorf("migration %s/%s: version %d, want %d", dir, e.Name(), v, len(ms)+1)
		}
		b, err := fs.ReadFile(migrationsFS, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: m[2], sql: string(b)})
	}
	return ms, nil
}

// migrationDB is what migrate needs: a *sql.DB or a *sql.Conn.
type migrationDB interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// migrate applies the dialect's pending migrations on db. It is safe against
// another process migrating the same database at the same time when db's
// transactions exclude each other's (SQLite: BEGIN IMMEDIATE; PostgreSQL:
// the caller holds an advisory lock): each migration re-checks inside its
// transaction that it is still pending.
//
// Versions in schema_migrations newer than this build knows are left alone:
// during a rolling upgrade a node that is not yet upgraded must still start
// against a schema the new version extended (migrations add, they do not
// break the previous version).
func migrate(ctx context.Context, db migrationDB, d *dialect, dialectName string) error {
	return migrateUpTo(ctx, db, d, dialectName, 0)
}

// migrateUpTo is migrate stopping after version upTo (0: the last); tests
// use it to build a database of an earlier schema.
func migrateUpTo(ctx context.Context, db migrationDB, d *dialect, dialectName string, upTo int) error {
	ms, err := migrations(dialectName)
	if err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, d.migrationsTable); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	applied, err := appliedVersions(ctx, db)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if applied[m.version] {
			continue
		}
		if upTo > 0 && m.version > upTo {
			break
		}
		if err := applyMigration(ctx, db, d, m); err != nil {
			return fmt.Errorf("migration %04d_%s: %w", m.version, m.name, err)
		}
	}
	return nil
}

func appliedVersions(ctx context.Context, db migrationDB) (map[int]bool, error) {
	rows, err := db.QueryContext(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	defer rows.Close()
	applied := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		applied[v] = true
	}
	return applied, rows.Err()
}

func applyMigration(ctx context.Context, db migrationDB, d *dialect, m migration) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // no-op after Commit
	var n int
	if err := tx.QueryRowContext(ctx, d.rebind("SELECT COUNT(*) FROM schema_migrations WHERE version = ?"), m.version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil // another process applied it since we looked
	}
	// No arguments: both drivers then run the file as a script of several
	// statements.
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return err
	}
	if step := goSteps[m.name]; step != nil {
		if err := step(ctx, tx, d); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, d.rebind("INSERT INTO schema_migrations (version, name) VALUES (?, ?)"), m.version, m.name); err != nil {
		return err
	}
	return tx.Commit()
}

// advisoryLockKey is the pg_advisory_lock key that serialises migrations of
// every mpmeter node on one database: the first 8 bytes of "mpmeter!" read as
// a big-endian integer, chosen only to be unlikely to collide with another
// application's key.
const advisoryLockKey int64 = 0x6d706d6574657221

// migratePostgres takes the advisory lock on one connection of db and runs
// the migrations on that connection, so several nodes starting at once apply
// each migration exactly once and none starts on a half-migrated schema.
// The caller closes db, which releases the lock.
func migratePostgres(ctx context.Context, db *sql.DB) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", advisoryLockKey); err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	if err := migrate(ctx, conn, postgresDialect, DialectPostgres); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", advisoryLockKey); err != nil {
		return fmt.Errorf("release migration lock: %w", err)
	}
	return nil
}
