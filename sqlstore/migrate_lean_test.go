package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/sqlstore"
)

// oldRecord is the i-th record of a database filled by schema 0004: the
// service's three kinds of records and dedup keys, a record without a key,
// UUID and text ids, allocations and fingerprints of both shapes.
func oldRecord(i int) mpmeter.MeteringRecord {
	// Keys are distinct: within an hour (1,000 records) every account has
	// each of its two dimensions once.
	hour := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i/1000) * time.Hour)
	acct := fmt.Sprintf("%012d", 100000000000+i%500)
	lic := "arn:aws:license-manager::" + acct + ":license/l-" + fmt.Sprintf("%032x", i%500)
	r := mpmeter.MeteringRecord{
		MeteringRecordID: uuid.NewSHA1(uuid.NameSpaceOID, []byte(strconv.Itoa(i))).String(),
		SellerAccountID:  "111122223333", CustomerAccountID: acct, Timestamp: hour.Add(time.Duration(i%3600) * time.Second),
		Quantity: int64(i % 97), CreatedAt: hour.Add(time.Hour),
	}
	r.Fingerprint = "q=" + strconv.FormatInt(r.Quantity, 10)
	switch i % 5 {
	case 0, 1: // BatchMeterUsage
		r.Kind, r.ProductCode, r.LicenseArn, r.CustomerIdentifier = mpmeter.UsageBatch, "saasprod", lic, "cust-"+acct
		r.Dimension = []string{"users", "gigabytes"}[(i/500)%2]
		r.DedupKey = "batch|" + lic + "|" + r.Dimension + "|" + strconv.FormatInt(r.Timestamp.Truncate(time.Hour).Unix(), 10)
		if i%5 == 1 {
			r.Allocations = []mpmeter.Allocation{{Quantity: r.Quantity, Tags: []mpmeter.AllocationTag{{Key: "team", Value: "t" + strconv.Itoa(i%3)}}}}
			r.Fingerprint += ";a=0123456789abcdef01234567"
		}
	case 2: // MeterUsage
		r.Kind, r.ProductCode, r.WorkloadID, r.Dimension = mpmeter.UsageMeter, "amiprod", fmt.Sprintf("i-%017x", i), "vcpu"
		r.DedupKey = "meter|" + acct + "|" + r.WorkloadID + "|amiprod|vcpu|" + strconv.FormatInt(r.Timestamp.Truncate(time.Hour).Unix(), 10)
	case 3: // RegisterUsage
		r.Kind, r.ProductCode, r.WorkloadID, r.Dimension = mpmeter.UsageRegister, "ctrprod", fmt.Sprintf("task-%d", i), "registration"
		r.DedupKey, r.Fingerprint = "register|"+acct+"|"+r.WorkloadID+"|ctrprod", "registration"
	case 4: // AgentCore: no key; a text id
		r.Kind, r.ProductCode, r.WorkloadID, r.Dimension = mpmeter.UsageMeter, "amiprod", "agent-1", "vcpu"
		r.MeteringRecordID = "legacy-" + strconv.Itoa(i)
	}
	return r
}

// fillOld writes n records into metering_records as schema 0004 stored them.
func fillOld(t *testing.T, db *sql.DB, postgres bool, n int) {
	t.Helper()
	ctx := context.Background()
	const cols = 15
	for start := 0; start < n; start += 500 {
		var b strings.Builder
		var args []any
		b.WriteString(`INSERT INTO metering_records (metering_record_id, kind, product_code, seller_account_id,
			customer_account_id, customer_identifier, license_arn, workload_id, dimension, timestamp_ms, quantity,
			allocations, dedup_key, fingerprint, created_at_ms) VALUES `)
		for i := start; i < min(start+500, n); i++ {
			r := oldRecord(i)
			if i > start {
				b.WriteString(", ")
			}
			b.WriteString("(")
			for c := range cols {
				if c > 0 {
					b.WriteString(", ")
				}
				if postgres {
					b.WriteString("$" + strconv.Itoa(len(args)+c+1))
				} else {
					b.WriteString("?")
				}
			}
			b.WriteString(")")
			var allocs, key any
			if len(r.Allocations) > 0 {
				allocs = fmt.Sprintf(`[{"q":%d,"t":[{"k":"team","v":"%s"}]}]`, r.Quantity, r.Allocations[0].Tags[0].Value)
			}
			if r.DedupKey != "" {
				key = r.DedupKey
			}
			args = append(args, r.MeteringRecordID, r.Kind, r.ProductCode, r.SellerAccountID, r.CustomerAccountID,
				r.CustomerIdentifier, r.LicenseArn, r.WorkloadID, r.Dimension, r.Timestamp.UnixMilli(), r.Quantity,
				allocs, key, r.Fingerprint, r.CreatedAt.UnixMilli())
		}
		if _, err := db.ExecContext(ctx, b.String(), args...); err != nil {
			t.Fatal(err)
		}
	}
}

// migrationRecords is how many records the migration tests fill in;
// MPMETER_MIGRATION_TEST_RECORDS raises it to time the migration.
func migrationRecords(t *testing.T) int {
	if v := os.Getenv("MPMETER_MIGRATION_TEST_RECORDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	return 2000
}

func TestMigrateLeanRecordsSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlstore.MigrateUpToForTest(context.Background(), db, sqlstore.DialectSQLite, 9); err != nil {
		t.Fatal(err)
	}
	n := migrationRecords(t)
	fillOld(t, db, false, n)
	db.Close()
	checkMigrated(t, path, n)
}

func TestMigrateLeanRecordsPostgres(t *testing.T) {
	dsn := postgresDSN(t)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := sqlstore.MigrateUpToForTest(context.Background(), db, sqlstore.DialectPostgres, 9); err != nil {
		t.Fatal(err)
	}
	n := migrationRecords(t)
	fillOld(t, db, true, n)
	checkMigrated(t, dsn, n)
}

// checkMigrated opens the store at dsn (migrating it) and checks that every
// record reads back as it was stored and its dedup slot is still taken.
func checkMigrated(t *testing.T, dsn string, n int) {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	s, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d := time.Since(start)
	t.Logf("migrated %d records in %v (%.1f s per million)", n, d, d.Seconds()*1e6/float64(n))
	i := 0
	byID := map[string]int{}
	for j := range n {
		byID[oldRecord(j).MeteringRecordID] = j
	}
	for r, err := range s.EachUsage(ctx, mpmeter.UsageFilter{}) {
		if err != nil {
			t.Fatal(err)
		}
		j, ok := byID[r.MeteringRecordID]
		if !ok {
			t.Fatalf("unknown record %q after migration", r.MeteringRecordID)
		}
		want := oldRecord(j)
		want.Timestamp, want.CreatedAt = want.Timestamp.UTC(), want.CreatedAt.UTC()
		if fmt.Sprintf("%+v", r) != fmt.Sprintf("%+v", want) {
			t.Fatalf("record %d after migration:\n got %+v\nwant %+v", j, r, want)
		}
		i++
	}
	if i != n {
		t.Fatalf("%d records after migration, want %d", i, n)
	}
	// Every kind of slot stays taken: the same key again stores nothing.
	for j := range min(n, 5) {
		again := oldRecord(j)
		if again.DedupKey == "" {
			continue
		}
		again.MeteringRecordID = uuid.NewString()
		out, err := s.RecordUsage(ctx, []mpmeter.MeteringRecord{again}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if out[0].Created || out[0].Record.MeteringRecordID != oldRecord(j).MeteringRecordID {
			t.Errorf("record %d's slot after migration: Created %v, id %s", j, out[0].Created, out[0].Record.MeteringRecordID)
		}
	}
}
