// Package pgadmin creates and drops the throwaway PostgreSQL databases that
// the benchmark's targets and the multi-node tests run on: the one place
// outside the store that speaks PostgreSQL's administration SQL. The server
// never uses it; it migrates a database someone else created.
package pgadmin

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

var prefixRe = regexp.MustCompile(`^[a-z][a-z0-9_]{0,40}$`)

// CreateDatabase creates a new, empty database named prefix_<12 random hex
// digits> on the server of adminDSN (a postgres:// URL of a database whose
// user may create databases) and returns its URL: adminDSN with the path
// replaced. Drop it with DropDatabase.
func CreateDatabase(ctx context.Context, adminDSN, prefix string) (string, error) {
	u, err := parse(adminDSN)
	if err != nil {
		return "", err
	}
	if !prefixRe.MatchString(prefix) {
		return "", fmt.Errorf("pgadmin: database name prefix %q is not a lowercase identifier", prefix)
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	name := prefix + "_" + hex.EncodeToString(rnd[:])
	if err := exec(ctx, adminDSN, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("pgadmin: creating database %s: %w", name, err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// DropDatabase drops the database dsn names (one CreateDatabase made),
// through adminDSN, ending its sessions first (WITH (FORCE): a server that
// did not close its pool does not keep the database alive). A database that
// is gone already is no error.
func DropDatabase(ctx context.Context, adminDSN, dsn string) error {
	name, err := Name(dsn)
	if err != nil {
		return err
	}
	if err := exec(ctx, adminDSN, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("pgadmin: dropping database %s: %w", name, err)
	}
	return nil
}

// Size is the bytes on disk of dsn's database (pg_database_size).
func Size(ctx context.Context, dsn string) (int64, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int64
	err = db.QueryRowContext(ctx, "SELECT pg_database_size(current_database())").Scan(&n)
	return n, err
}

// Name is the database a postgres:// URL names.
func Name(dsn string) (string, error) {
	u, err := parse(dsn)
	if err != nil {
		return "", err
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" {
		return "", fmt.Errorf("pgadmin: the URL names no database")
	}
	return name, nil
}

func parse(dsn string) (*url.URL, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("pgadmin: a PostgreSQL DSN must be a postgres:// URL")
	}
	return u, nil
}

func exec(ctx context.Context, dsn, stmt string) error {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, stmt)
	return err
}
