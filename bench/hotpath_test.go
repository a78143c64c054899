package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/google/uuid"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/internal/pgadmin"
	"github.com/mpmeter/mpmeter/sigv4"
	"github.com/mpmeter/mpmeter/sqlstore"
)

// Go benchmarks of the server's hot paths, one piece at a time:
//
//	go test -run '^$' -bench . -benchmem ./bench/
//
// The store benchmarks run on SQLite, and on PostgreSQL too when
// MPMETER_TEST_POSTGRES_DSN is set (a new database each, dropped after).

// batchBody is a 25-record BatchMeterUsage request of the bench marketplace.
func batchBody(tb testing.TB, first int64) ([]byte, *Plan) {
	tb.Helper()
	plan, err := NewPlan(Marketplace(1000, 1), Region, "", "")
	if err != nil {
		tb.Fatal(err)
	}
	times := slotTimes(time.Now())
	var b bytes.Buffer
	writeBatchBody(&b, plan, first, &times)
	return b.Bytes(), plan
}

func signedBatchRequest(tb testing.TB, body []byte, when time.Time) *http.Request {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:8080/", bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", mpmeter.TargetPrefix+"."+OpBatch)
	sum := sha256.Sum256(body)
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: SellerKey, SecretAccessKey: SellerSecret},
		req, hex.EncodeToString(sum[:]), mpmeter.SigningName, Region, when)
	if err != nil {
		tb.Fatal(err)
	}
	return req
}

type keyMap map[string]mpmeter.AccessKey

func (k keyMap) AccessKey(_ context.Context, id string) (mpmeter.AccessKey, error) {
	if key, ok := k[id]; ok {
		return key, nil
	}
	return mpmeter.AccessKey{}, mpmeter.ErrNotFound
}

// BenchmarkSigV4Verify: the server's signature check of a 25-record batch
// (the access key from a map, not the database).
func BenchmarkSigV4Verify(b *testing.B) {
	body, _ := batchBody(b, 0)
	req := signedBatchRequest(b, body, time.Now())
	v := &sigv4.Verifier{Keys: keyMap{SellerKey: {ID: SellerKey, Secret: SellerSecret, AccountID: SellerAccount}}}
	ctx := context.Background()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, req, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSigV4Sign: the client's side, what every bench worker pays per
// request.
func BenchmarkSigV4Sign(b *testing.B) {
	body, _ := batchBody(b, 0)
	signer := v4.NewSigner()
	creds := aws.Credentials{AccessKeyID: SellerKey, SecretAccessKey: SellerSecret}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:8080/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", mpmeter.TargetPrefix+"."+OpBatch)
		sum := sha256.Sum256(body)
		if err := signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), mpmeter.SigningName, Region, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeValidateBatch25: json.Unmarshal of a 25-record batch into
// the API type and model validation, the equivalent of awsjson's decode
// step.
func BenchmarkDecodeValidateBatch25(b *testing.B) {
	body, _ := batchBody(b, 0)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var in mpmeter.BatchMeterUsageInput
		if err := json.Unmarshal(body, &in); err != nil {
			b.Fatal(err)
		}
		if err := in.Validate(); err != nil {
			b.Fatal(err)
		}
		if len(in.UsageRecords) != BatchSize {
			b.Fatalf("%d records", len(in.UsageRecords))
		}
	}
}

// BenchmarkEncodeBatchOutput25: json.Marshal of a 25-result answer (each
// result echoes its usage record, as AWS's does).
func BenchmarkEncodeBatchOutput25(b *testing.B) {
	body, _ := batchBody(b, 0)
	var in mpmeter.BatchMeterUsageInput
	if err := json.Unmarshal(body, &in); err != nil {
		b.Fatal(err)
	}
	out := &mpmeter.BatchMeterUsageOutput{Results: make([]mpmeter.UsageRecordResult, len(in.UsageRecords)), UnprocessedRecords: []mpmeter.UsageRecord{}}
	for i := range out.Results {
		id, status := uuid.NewString(), mpmeter.UsageRecordResultStatusSuccess
		out.Results[i] = mpmeter.UsageRecordResult{UsageRecord: &in.UsageRecords[i], MeteringRecordId: &id, Status: &status}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(out); err != nil {
			b.Fatal(err)
		}
	}
}

// storeFor opens a store of dialect seeded with the bench marketplace.
func storeFor(b *testing.B, dialect string, customers int) mpmeter.Store {
	b.Helper()
	ctx := context.Background()
	m := Marketplace(customers, 1)
	var st *sqlstore.Store
	var err error
	switch dialect {
	case KindSQLite:
		st, err = sqlstore.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	case KindPostgres:
		dsn := os.Getenv("MPMETER_TEST_POSTGRES_DSN")
		if dsn == "" {
			b.Skip("MPMETER_TEST_POSTGRES_DSN is not set")
		}
		var created string
		if created, err = pgadmin.CreateDatabase(ctx, dsn, "bench"); err == nil {
			b.Cleanup(func() { pgadmin.DropDatabase(context.Background(), dsn, created) })
			st, err = sqlstore.Open(ctx, created)
		}
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if _, err := m.ApplyConcurrently(ctx, st, time.Now(), time.Hour, 8); err != nil {
		b.Fatal(err)
	}
	return st
}

// batchRecords are 25 records as the service builds them for slots
// [first, first+25).
func batchRecords(plan *Plan, first int64, now time.Time) []mpmeter.MeteringRecord {
	recs := make([]mpmeter.MeteringRecord, BatchSize)
	hour := now.Truncate(time.Hour)
	nc, nd := int64(len(plan.Subscriptions)), int64(len(plan.SaaSDimensions))
	for i := range recs {
		slot := first + int64(i)
		sub := plan.Subscriptions[slot%nc]
		q := slot / nc
		dim := plan.SaaSDimensions[q%nd]
		h := hour.Add(-time.Duration(q/nd) * time.Hour)
		recs[i] = mpmeter.MeteringRecord{
			MeteringRecordID: uuid.Must(uuid.NewV7()).String(), Kind: mpmeter.UsageBatch, ProductCode: plan.SaaSProduct,
			SellerAccountID: plan.SellerAccount, CustomerAccountID: sub.AccountID, CustomerIdentifier: sub.CustomerIdentifier,
			LicenseArn: sub.LicenseArn, Dimension: dim, Timestamp: h, Quantity: 3,
			DedupKey:    "batch|" + sub.LicenseArn + "|" + dim + "|" + strconv.FormatInt(h.Unix(), 10),
			Fingerprint: "q3", CreatedAt: now,
		}
	}
	return recs
}

// BenchmarkStoreBatchInsert25: Store.RecordUsage of one BatchMeterUsage's
// 25 records, one transaction (and, durable, one commit) per op. "new":
// every record takes a new slot; "dedup": every record's slot is taken
// (the retry of a stored batch).
func BenchmarkStoreBatchInsert25(b *testing.B) {
	for _, dialect := range []string{KindSQLite, KindPostgres} {
		for _, mode := range []string{"new", "dedup"} {
			b.Run(dialect+"/"+mode, func(b *testing.B) {
				const customers = 10000
				st := storeFor(b, dialect, customers)
				plan, _ := NewPlan(Marketplace(customers, 1), Region, "", "")
				ctx := context.Background()
				now := time.Now()
				if mode == "dedup" {
					if _, err := st.RecordUsage(ctx, batchRecords(plan, 0, now), nil); err != nil {
						b.Fatal(err)
					}
				}
				slot := int64(0)
				if mode == "new" {
					// Every customer metered once before the clock starts:
					// the steady state of a store whose agreements are known.
					for ; slot < customers; slot += BatchSize {
						if _, err := st.RecordUsage(ctx, batchRecords(plan, slot, now), nil); err != nil {
							b.Fatal(err)
						}
					}
				}
				written, writes := procIO("write_bytes"), procIO("syscw")
				b.ReportAllocs()
				for b.Loop() {
					recs := batchRecords(plan, slot, now)
					if mode == "new" {
						slot = (slot + BatchSize) % plan.BatchSlots()
					}
					out, err := st.RecordUsage(ctx, recs, nil)
					if err != nil {
						b.Fatal(err)
					}
					if out[0].Created != (mode == "new") {
						b.Fatalf("%s: Created %v", mode, out[0].Created)
					}
				}
				b.ReportMetric(float64(b.N*BatchSize)/b.Elapsed().Seconds(), "records/s")
				if dialect == KindSQLite && written >= 0 {
					// What SQLite made this process write: WAL frames and
					// checkpoints (PostgreSQL writes in its own processes).
					b.ReportMetric(float64(procIO("write_bytes")-written)/float64(b.N), "disk-B/op")
					b.ReportMetric(float64(procIO("syscw")-writes)/float64(b.N), "write-calls/op")
				}
			})
		}
	}
}

// BenchmarkSubscriptionsByCustomers: the read BatchMeterUsage makes for its
// records (25 customers a request).
func BenchmarkSubscriptionsByCustomers(b *testing.B) {
	for _, dialect := range []string{KindSQLite, KindPostgres} {
		b.Run(dialect, func(b *testing.B) {
			const customers = 10000
			st := storeFor(b, dialect, customers)
			ctx := context.Background()
			i := 0
			ids := make([]string, 25)
			b.ReportAllocs()
			for b.Loop() {
				for j := range ids {
					i = (i + 7919) % customers
					ids[j] = CustomerID(i)
				}
				got, err := st.SubscriptionsByCustomers(ctx, SaaSProduct, ids)
				if err != nil || len(got) != len(ids) {
					b.Fatal(fmt.Errorf("customers %v: %d found, %w", ids, len(got), err))
				}
			}
		})
	}
}
