package sqlstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// openPostgres opens a pool on the PostgreSQL database at dsn.
//
// Settings:
//   - Pool size (WithPoolSize, default 10): explicit, because database/sql's
//     default is unlimited and every node's pool draws on the same server's
//     max_connections.
//   - statement_timeout (WithStatementTimeout, default 30s): sent as a
//     startup parameter, so it holds for every statement on every pooled
//     connection.
//   - Connections are recycled after 30 minutes, so a pool rebalances after
//     a failover or a server-side change of settings.
//   - Isolation READ COMMITTED for write transactions; see postgresDialect.
func openPostgres(ctx context.Context, dsn string, cfg config) (*Store, error) {
	pc, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: parse PostgreSQL DSN: %w", err)
	}
	if _, set := pc.RuntimeParams["statement_timeout"]; cfg.statementTimeout > 0 || !set {
		st := cfg.statementTimeout
		if st <= 0 {
			st = 30 * time.Second
		}
		pc.RuntimeParams["statement_timeout"] = strconv.FormatInt(st.Milliseconds(), 10)
	}
	if _, set := pc.RuntimeParams["application_name"]; !set {
		pc.RuntimeParams["application_name"] = "mpmeter"
	}
	pool := cfg.poolSize
	if pool <= 0 {
		pool = 10
	}

	// Migrations first, on a connection of their own: it holds a session
	// advisory lock, which closing the connection releases however the
	// migration ends, and it has no statement_timeout, since a migration
	// may legitimately take long (and a node waiting for another's lock
	// should wait, bounded by ctx).
	mc := pc.Copy()
	mc.RuntimeParams["statement_timeout"] = "0"
	mdb := stdlib.OpenDB(*mc)
	mdb.SetMaxOpenConns(1)
	err = migratePostgres(ctx, mdb)
	if cerr := mdb.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open PostgreSQL: %w", err)
	}

	db := stdlib.OpenDB(*pc)
	db.SetMaxOpenConns(pool)
	db.SetMaxIdleConns(pool)
	db.SetConnMaxLifetime(30 * time.Minute)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &Store{d: postgresDialect, wdb: db, rdb: db, commitObserver: cfg.commitObserver, auditObserver: cfg.auditObserver, dicts: newDictionaries()}
	if err := s.prepare(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.setupSecrets(ctx, cfg); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}
