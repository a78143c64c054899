package sqlstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/sqlstore"
	"github.com/mpmeter/mpmeter/storecache"
)

// Benchmarks run on SQLite always and on PostgreSQL when MPMETER_TEST_POSTGRES_DSN
// is set. records/s counts records handed to RecordUsage, stored or deduplicated.

var benchDialects = []struct {
	name string
	open func(testing.TB, ...sqlstore.Option) *sqlstore.Store
}{
	{"sqlite", openSQLite},
	{"postgres", openPostgres},
}

func benchRecord(id, key string) mpmeter.MeteringRecord {
	ts := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	return mpmeter.MeteringRecord{
		MeteringRecordID: id, Kind: mpmeter.UsageBatch, ProductCode: "prod-bench",
		SellerAccountID: "111111111111", CustomerAccountID: "222222222222",
		CustomerIdentifier: "cust-bench", LicenseArn: "arn:aws:license-manager::1:license:l-bench",
		Dimension: "users", Timestamp: ts, Quantity: 3,
		Allocations: []mpmeter.Allocation{{Quantity: 3, Tags: []mpmeter.AllocationTag{{Key: "team", Value: "a"}}}},
		DedupKey:    key, Fingerprint: "fp-" + key, CreatedAt: ts,
	}
}

// BenchmarkRecordUsage25: one BatchMeterUsage-sized call of 25 new records
// (distinct keys), one transaction and one commit per op.
func BenchmarkRecordUsage25(b *testing.B) {
	for _, d := range benchDialects {
		b.Run(d.name, func(b *testing.B) {
			s := d.open(b)
			ctx := context.Background()
			batch := make([]mpmeter.MeteringRecord, 25)
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				for i := range batch {
					n++
					batch[i] = benchRecord(fmt.Sprintf("rec-%d", n), fmt.Sprintf("key-%d", n))
				}
				if _, err := s.RecordUsage(ctx, batch, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkRecordUsageDup: 25 records whose keys are all stored already (a
// client retrying a batch): per record, an INSERT that does nothing and a
// SELECT of the stored record.
func BenchmarkRecordUsageDup(b *testing.B) {
	for _, d := range benchDialects {
		b.Run(d.name, func(b *testing.B) {
			s := d.open(b)
			ctx := context.Background()
			batch := make([]mpmeter.MeteringRecord, 25)
			for i := range batch {
				batch[i] = benchRecord(fmt.Sprintf("rec-%d", i), fmt.Sprintf("key-%d", i))
			}
			if _, err := s.RecordUsage(ctx, batch, nil); err != nil {
				b.Fatal(err)
			}
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				for i := range batch {
					n++
					batch[i].MeteringRecordID = fmt.Sprintf("retry-%d", n)
				}
				out, err := s.RecordUsage(ctx, batch, nil)
				if err != nil {
					b.Fatal(err)
				}
				if out[0].Created {
					b.Fatal("a duplicate was stored")
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkRecordUsage1Parallel: MeterUsage-shaped calls (one record, an
// idempotency token) from many goroutines at once; the baseline that group
// commit is to improve on SQLite, where each call is its own fsync.
func BenchmarkRecordUsage1Parallel(b *testing.B) {
	for _, d := range benchDialects {
		b.Run(d.name, func(b *testing.B) {
			s := d.open(b)
			var n atomic.Int64
			b.SetParallelism(8)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					i := n.Add(1)
					id := fmt.Sprintf("rec-%d", i)
					tok := &mpmeter.IdempotencyToken{Scope: "w", Token: id, Fingerprint: "f", ExpiresAt: time.Unix(1e10, 0)}
					if _, err := s.RecordUsage(ctx, []mpmeter.MeteringRecord{benchRecord(id, id)}, tok); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(n.Load())/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkAccessKey: the lookup SigV4 makes on every request when the
// marketplace cache misses (at most once per key and --cache-ttl), with
// secrets stored plain and sealed; "cached" is the hit every other request
// takes (storecache), which never decrypts.
func BenchmarkAccessKey(b *testing.B) {
	for _, d := range benchDialects {
		for _, mode := range []struct {
			name string
			opts []sqlstore.Option
		}{{"plain", nil}, {"sealed", withKEK("bench-kek")}} {
			b.Run(d.name+"/"+mode.name, func(b *testing.B) {
				s := d.open(b, mode.opts...)
				ctx := context.Background()
				if err := s.PutAccount(ctx, mpmeter.Account{ID: "111122223333"}); err != nil {
					b.Fatal(err)
				}
				k := mpmeter.AccessKey{ID: "AKIABENCH", Secret: "bench-secret-0123456789abcdefghijklmn", AccountID: "111122223333"}
				if err := s.PutAccessKey(ctx, k); err != nil {
					b.Fatal(err)
				}
				b.Run("store", func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if got, err := s.AccessKey(ctx, k.ID); err != nil || got.Secret != k.Secret {
							b.Fatal(got, err)
						}
					}
				})
				b.Run("cached", func(b *testing.B) {
					c := storecache.New(s, time.Hour, nil)
					b.ReportAllocs()
					for b.Loop() {
						if got, err := c.AccessKey(ctx, k.ID); err != nil || got.Secret != k.Secret {
							b.Fatal(got, err)
						}
					}
				})
			})
		}
	}
}
