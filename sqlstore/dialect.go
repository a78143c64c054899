package sqlstore

import (
	"database/sql"
	"errors"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// dialect is what differs between the databases once connections are open.
// The two values below are immutable.
type dialect struct {
	name string
	// rebind turns a query written with ? placeholders into the dialect's.
	rebind func(q string) string
	// txOptions is passed to BeginTx for write transactions.
	txOptions *sql.TxOptions
	// retryable reports whether a write transaction that failed with err on
	// its attempt-th try should be run again.
	retryable func(err error, attempt int) bool
	// migrationsTable creates schema_migrations if it is missing.
	migrationsTable string

	// Allocations (JSON text) as the database reads them. tagExists(false)
	// is a condition with one parameter (the tag key), tagExists(true) with
	// two (key, value): r has an allocation carrying that tag. allocJoin
	// joins usage_records r with its allocations (one row, a NULL one for a
	// record without); allocQuantity is a row's quantity; tagValue (one
	// parameter, the key) the value of that key on the row's allocation.
	tagExists                          func(withValue bool) string
	allocJoin, allocQuantity, tagValue string
	// collateC orders text bytewise, as SQLite's BINARY does.
	collateC string
	// forUpdate ends a SELECT that locks the rows it reads until the
	// transaction ends: " FOR UPDATE" on PostgreSQL; empty on SQLite, whose
	// one writer holds the whole database already.
	forUpdate string
	// readSnapshot begins a read transaction whose statements all see one
	// snapshot (a summary reading the rollup and the records beside it).
	readSnapshot *sql.TxOptions
	// waitForWriters are the statements with which a roller's claim waits
	// for every write transaction that has inserted records to end, and
	// holds new ones off until it commits (see Store.RollUpUsage). None on
	// SQLite, where the claim's write transaction is alone anyway.
	waitForWriters []string
}

var sqliteDialect = &dialect{
	name:   DialectSQLite,
	rebind: func(q string) string { return q },
	// A deferred BEGIN on a read connection: the first SELECT takes the
	// WAL snapshot that the transaction keeps.
	readSnapshot: &sql.TxOptions{ReadOnly: true},
	// No options: the write connection's DSN sets _txlock=immediate, so
	// every write transaction starts with BEGIN IMMEDIATE and takes the
	// write lock up front. A DEFERRED transaction that reads first and then
	// writes must upgrade its lock, and when another connection (another
	// process) wrote in between the upgrade fails with SQLITE_BUSY at once,
	// without busy_timeout's wait.
	txOptions: nil,
	// With one writer connection there are no races between this process's
	// transactions; SQLITE_BUSY from another process has already waited
	// busy_timeout and is reported.
	retryable: func(err error, attempt int) bool {
		return errors.Is(err, errRetry) && attempt < maxAttempts
	},
	tagExists: func(withValue bool) string {
		c := `r.allocations IS NOT NULL AND EXISTS (SELECT 1 FROM json_each(r.allocations) a, json_each(a.value, '$.t') g
			WHERE json_extract(g.value, '$.k') = ?`
		if withValue {
			c += ` AND json_extract(g.value, '$.v') = ?`
		}
		return c + `)`
	},
	allocJoin:     `LEFT JOIN json_each(r.allocations) a`,
	allocQuantity: `CASE WHEN a.value IS NULL THEN r.quantity ELSE json_extract(a.value, '$.q') END`,
	tagValue: `COALESCE((SELECT json_extract(g.value, '$.v') FROM json_each(a.value, '$.t') g
		WHERE json_extract(g.value, '$.k') = ? LIMIT 1), '')`,
	migrationsTable: `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
	) STRICT`,
}

var postgresDialect = &dialect{
	forUpdate: " FOR UPDATE",
	name:      DialectPostgres,
	rebind:    rebindDollar,
	// READ COMMITTED, explicitly (whatever default_transaction_isolation
	// says): deduplication rests on unique constraints and INSERT ... ON
	// CONFLICT, which wait for a concurrent inserter of the same key and
	// then see its committed row, so no stronger isolation is needed and no
	// serialization failures are provoked. See recordUsageTx for the races.
	txOptions:    &sql.TxOptions{Isolation: sql.LevelReadCommitted},
	readSnapshot: &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true},
	// SHARE conflicts with the ROW EXCLUSIVE lock that an INSERT takes and
	// holds to the end of its transaction, and with nothing a reader
	// takes. The timeout bounds how long writers queued behind the claim
	// can wait (a claim that times out is tried again next round).
	waitForWriters: []string{
		`SET LOCAL lock_timeout = '` + strconv.FormatInt(rollupLockTimeout.Milliseconds(), 10) + `ms'`,
		`LOCK TABLE usage_records IN SHARE MODE`,
	},
	retryable: postgresRetryable,
	tagExists: func(withValue bool) string {
		c := `r.allocations IS NOT NULL AND EXISTS (SELECT 1 FROM jsonb_array_elements(r.allocations::jsonb) a(e),
			jsonb_array_elements(COALESCE(a.e->'t', '[]'::jsonb)) g(e) WHERE g.e->>'k' = ?`
		if withValue {
			c += ` AND g.e->>'v' = ?`
		}
		return c + `)`
	},
	allocJoin:     `LEFT JOIN LATERAL jsonb_array_elements(r.allocations::jsonb) a(e) ON true`,
	allocQuantity: `CASE WHEN a.e IS NULL THEN r.quantity ELSE (a.e->>'q')::bigint END`,
	tagValue: `COALESCE((SELECT g.e->>'v' FROM jsonb_array_elements(COALESCE(a.e->'t', '[]'::jsonb)) g(e)
		WHERE g.e->>'k' = ? LIMIT 1), '')`,
	collateC: ` COLLATE "C"`,
	migrationsTable: `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`,
}

// postgresRetryable: serialization failures and deadlocks (two batches
// inserting overlapping dedup keys; rare, since records are inserted in key
// order) are retried, never surfaced. So is one unique violation of the
// record id: two concurrent calls with the very same record (same id, same
// DedupKey) can race past ON CONFLICT's check of the dedup key and collide
// on the id instead; run again, the loser finds the winner's dedup key and
// deduplicates. A second id collision is a real duplicate id. (The record
// id is in the primary key and in usage_records_id; either may be where
// the race shows.)
func postgresRetryable(err error, attempt int) bool {
	if errors.Is(err, errRetry) {
		return attempt < maxAttempts
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case "40001", "40P01": // serialization_failure, deadlock_detected
		return attempt < maxAttempts
	case "23505": // unique_violation
		switch pe.ConstraintName {
		case "usage_records_pkey", "usage_records_id":
			return attempt == 1
		case "registration_tokens_id":
			// The id is derived from the token: two transactions putting
			// the same new token (nodes applying one seed at once) can race
			// past ON CONFLICT (token) and collide here instead; run again,
			// the loser updates the winner's row.
			return attempt < maxAttempts
		}
	}
	return false
}

// rebindDollar rewrites ? placeholders as $1, $2, ... Our queries have no ?
// inside literals or identifiers.
func rebindDollar(q string) string {
	n := strings.Count(q, "?")
	if n == 0 {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 2*n)
	i := 0
	for _, r := range q {
		if r == '?' {
			i++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(i))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
