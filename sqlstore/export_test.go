package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"
)

// MigrationsForTest returns the dialect's migrations as "NNNN_name".
func MigrationsForTest(dialectName string) ([]string, error) {
	ms, err := migrations(dialectName)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, m := range ms {
		names = append(names, fmt.Sprintf("%04d_%s", m.version, m.name))
	}
	return names, nil
}

// PostgresTestEnv names the PostgreSQL DSN the tests use; without it the
// PostgreSQL tests are skipped.
const PostgresTestEnv = "MPMETER_TEST_POSTGRES_DSN"

// PostgresTestDSN returns a DSN whose search_path is a new, empty schema in
// the database PostgresTestEnv names, dropped when t ends; it skips t when
// PostgresTestEnv is unset. Every PostgreSQL store a test opens gets one, so
// tests never see each other's rows nor leave tables behind.
func PostgresTestDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(PostgresTestEnv)
	if dsn == "" {
		t.Skip(PostgresTestEnv + " is not set")
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	schema := "mpmeter_test_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		admin.Close()
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// MigrateUpToForTest brings the database at db (opened with database/sql,
// driver "sqlite" or "pgx") to schema version upTo.
func MigrateUpToForTest(ctx context.Context, db *sql.DB, dialectName string, upTo int) error {
	d := sqliteDialect
	if dialectName == DialectPostgres {
		d = postgresDialect
	}
	return migrateUpTo(ctx, db, d, dialectName, upTo)
}

// RolledDaysForTest returns the UTC days that are rolled up and those that
// are claimed by a roller, oldest first.
func RolledDaysForTest(ctx context.Context, s *Store) (rolled, claimed []time.Time, err error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT day_ms, state FROM usage_rolled_days ORDER BY day_ms`)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var d, state int64
		if err := rows.Scan(&d, &state); err != nil {
			return nil, nil, err
		}
		if state == dayRolledUp {
			rolled = append(rolled, fromMS(d))
		} else {
			claimed = append(claimed, fromMS(d))
		}
	}
	return rolled, claimed, rows.Err()
}

// AddToDailySumsForTest adds delta to the quantity of every daily sum of
// day: what a summary reads from the rollup shows it, what it reads from
// the records does not.
func AddToDailySumsForTest(ctx context.Context, s *Store, day time.Time, delta int64) error {
	return s.write(ctx, "test", func(w *txn) error {
		_, err := w.exec(`UPDATE usage_daily_sums SET quantity = quantity + ? WHERE day_ms = ?`, delta, ms(day))
		return err
	})
}

// ClaimDayForTest stores a claim of day by a roller that is not s's, made
// at claimedAt (service clock).
func ClaimDayForTest(ctx context.Context, s *Store, day, claimedAt time.Time) error {
	return s.write(ctx, "test", func(w *txn) error {
		_, err := w.exec(`INSERT INTO usage_rolled_days (day_ms, state, claim, claimed_at_ms) VALUES (?, ?, ?, ?)`,
			ms(day), dayClaimed, -1, ms(claimedAt))
		return err
	})
}
