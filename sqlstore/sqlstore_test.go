package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/seed"
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

// Group commit is the SQLite default; the suite also holds without it.
func TestSQLiteWithoutGroupCommit(t *testing.T) {
	storetest.Run(t, func(t *testing.T) mpmeter.Store { return openSQLite(t, sqlstore.WithoutGroupCommit()) })
}

// Concurrent callers share commits, each is answered with its own outcome,
// one caller's conflict does not fail the others, and the observer counts
// every committed record once.
func TestGroupCommit(t *testing.T) {
	var mu sync.Mutex
	commits, committed := 0, 0
	s := openSQLite(t, sqlstore.WithCommitObserver(func(records int, d time.Duration) {
		mu.Lock()
		commits++
		committed += records
		mu.Unlock()
	}))
	ctx := context.Background()
	const callers = 64
	var wg sync.WaitGroup
	errs := make([]error, callers)
	outs := make([][]mpmeter.MeteringOutcome, callers)
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var tok *mpmeter.IdempotencyToken
			fp := "same"
			if i%8 == 7 {
				fp = fmt.Sprint("other-", i) // every 8th caller conflicts on the token of caller i-7
			}
			tok = &mpmeter.IdempotencyToken{Scope: "s", Token: fmt.Sprint("t-", i/8), Fingerprint: fp, ExpiresAt: time.Now().Add(time.Hour)}
			r := testRecord(fmt.Sprint("id-", i), fmt.Sprint("key-", i/8))
			outs[i], errs[i] = s.RecordUsage(ctx, []mpmeter.MeteringRecord{r}, tok)
		}(i)
	}
	wg.Wait()
	conflicts := 0
	for i := 0; i < callers; i++ {
		switch {
		case errors.Is(errs[i], mpmeter.ErrIdempotencyConflict):
			conflicts++
		case errs[i] != nil:
			t.Fatalf("caller %d: %v", i, errs[i])
		}
	}
	all, err := s.Usage(ctx, mpmeter.UsageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != callers/8 {
		t.Fatalf("stored %d records, want %d (one per dedup key)", len(all), callers/8)
	}
	// Each token's group of 8: 7 agree, and the 8th conflicts unless it
	// came first (then the other 7 conflict with it).
	if conflicts < callers/8 {
		t.Fatalf("%d conflicts, want at least %d", conflicts, callers/8)
	}
	mu.Lock()
	defer mu.Unlock()
	if committed != callers-conflicts {
		t.Fatalf("observer counted %d records, want %d", committed, callers-conflicts)
	}
	if commits >= callers {
		t.Logf("no two callers shared a commit (%d commits for %d callers): a slow machine can do this, but suspicious", commits, callers)
	}
}

func testRecord(id, key string) mpmeter.MeteringRecord {
	now := time.Now()
	return mpmeter.MeteringRecord{MeteringRecordID: id, Kind: mpmeter.UsageMeter, ProductCode: "p", SellerAccountID: "111122223333",
		CustomerAccountID: "444455556666", WorkloadID: "w", Dimension: "d", Timestamp: now, Quantity: 1, DedupKey: key, Fingerprint: "f", CreatedAt: now}
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

// Nodes that start at once apply one seed at once: concurrent replacements
// of a subscription's entitlements, each by its own store (its own pool, as
// separate processes have), all succeed and leave one set.
func TestConcurrentPutEntitlementsPostgres(t *testing.T) {
	dsn := postgresDSN(t) // one schema, shared by every store below
	ctx := context.Background()
	first, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { first.Close() })
	if _, err := seed.Demo().Apply(ctx, first, time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	const license = "arn:aws:license-manager::444455556666:license/l-0c0a000000000001"
	ents := []mpmeter.Entitlement{{LicenseArn: license, Dimension: "users", Value: mpmeter.EntitlementInteger(10)}}
	const nodes = 6
	stores := make([]*sqlstore.Store, nodes)
	for i := range stores {
		s, err := sqlstore.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	for round := range 5 {
		var wg sync.WaitGroup
		errs := make([]error, nodes)
		for i, s := range stores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.PutEntitlements(ctx, license, ents)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, node %d: %v", round, i, err)
			}
		}
	}
	got, err := first.Entitlements(ctx, mpmeter.EntitlementFilter{ProductCode: "examplecontract1", LicenseArns: []string{license}})
	if err != nil || len(got) != 1 {
		t.Fatalf("Entitlements = %+v, %v; want the one put", got, err)
	}
}
