package sqlstore_test

import (
	"context"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/sqlstore"
	"github.com/mpmeter/mpmeter/storetest"
)

// Every SQLite store a test opens is a new file in t.TempDir(); every
// PostgreSQL store a new schema in the database MPMETER_TEST_POSTGRES_DSN
// names (see sqlstore.PostgresTestDSN), and without that variable the
// PostgreSQL tests are skipped.

func openSQLite(t testing.TB, opts ...sqlstore.Option) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "mpmeter.db"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// postgresDSN returns a DSN for a new, empty schema, or skips t.
func postgresDSN(t testing.TB) string { return sqlstore.PostgresTestDSN(t) }

func openPostgres(t testing.TB, opts ...sqlstore.Option) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), postgresDSN(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) mpmeter.Store {
		s := openSQLite(t)
		if s.Dialect() != sqlstore.DialectSQLite {
			t.Fatalf("Dialect() = %q", s.Dialect())
		}
		return s
	})
}

func TestPostgres(t *testing.T) {
	postgresDSN(t) // skip early when unset
	storetest.Run(t, func(t *testing.T) mpmeter.Store {
		s := openPostgres(t)
		if s.Dialect() != sqlstore.DialectPostgres {
			t.Fatalf("Dialect() = %q", s.Dialect())
		}
		return s
	})
}

// Several stores opening one new database at once (several processes, or
// nodes) all start, and each migration is applied once.
func TestConcurrentOpen(t *testing.T) {
	for _, tc := range []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "mpmeter.db") }},
		{"postgres", func(t *testing.T) string { return postgresDSN(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := tc.dsn(t)
			const n = 8
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					s, err := sqlstore.Open(context.Background(), dsn, sqlstore.WithPoolSize(2))
					if err == nil {
						err = s.AddSigningKey(context.Background(), mpmeter.SigningKey{Version: i + 1, PrivateKeyPEM: []byte("k"), PublicKeyPEM: []byte("k")})
						s.Close()
					}
					errs[i] = err
				})
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("store %d: %v", i, err)
				}
			}
			// Reopening finds nothing to do and the data in place.
			s, err := sqlstore.Open(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			keys, err := s.SigningKeys(context.Background())
			if err != nil || len(keys) != n {
				t.Errorf("SigningKeys = %d keys, %v; want %d", len(keys), err, n)
			}
		})
	}
}

// Both dialects have the same migration versions and names.
func TestMigrationsInStep(t *testing.T) {
	lite, err := sqlstore.MigrationsForTest(sqlstore.DialectSQLite)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := sqlstore.MigrationsForTest(sqlstore.DialectPostgres)
	if err != nil {
		t.Fatal(err)
	}
	if len(lite) == 0 || !reflect.DeepEqual(lite, pg) {
		t.Errorf("SQLite migrations %v, PostgreSQL migrations %v", lite, pg)
	}
}

func TestOpenRejectsMemory(t *testing.T) {
	for _, dsn := range []string{"", ":memory:", "file::memory:?cache=shared"} {
		if s, err := sqlstore.Open(context.Background(), dsn); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", dsn)
		}
	}
}
