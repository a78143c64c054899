package admin_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/mpmetertest"
	"github.com/mpmeter/mpmeter/rollup"
	"github.com/mpmeter/mpmeter/seed"
	"github.com/mpmeter/mpmeter/server"
	"github.com/mpmeter/mpmeter/sqlstore"
)

// TestReportTimings times the usage reports over a large store (issue 12:
// "usage reports and summaries are timed at 10M stored records"). It is a
// measurement, not a test: it runs only with MPMETER_REPORT_BENCH_DB set (a
// SQLite file, kept between runs so one fill serves many) and asserts
// nothing about speed.
//
//	MPMETER_REPORT_BENCH_DB=/var/tmp/reports.db MPMETER_REPORT_BENCH_RECORDS=10000000 \
//	MPMETER_REPORT_BENCH_FILL_FOR=10m go test -run TestReportTimings -v -timeout 2h ./admin/
//
// The fill writes a month at the density of 10M records a month — every
// hour, one record per (customer, dimension) of benchCustomers customers
// and 3 dimensions of 2 products, with the service's dedup keys — hour by
// hour, through Store.RecordUsage in batches of 1,000, until it has
// RECORDS or FILL_FOR is over: a shorter fill has whole days of the full
// density, only fewer of them. Then the days are rolled up (package
// rollup; timed) before the reports are.
func TestReportTimings(t *testing.T) {
	path := os.Getenv("MPMETER_REPORT_BENCH_DB")
	if path == "" {
		t.Skip("set MPMETER_REPORT_BENCH_DB (and MPMETER_REPORT_BENCH_RECORDS, MPMETER_REPORT_BENCH_FILL_FOR) to time the reports")
	}
	want := envInt(t, "MPMETER_REPORT_BENCH_RECORDS", 10_000_000)
	fillFor, err := time.ParseDuration(cmpStr(os.Getenv("MPMETER_REPORT_BENCH_FILL_FOR"), "10m"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, path, sqlstore.WithKeyEncryptionKey(mpmetertest.KeyEncryptionKey), sqlstore.WithKDFParams(mpmetertest.TestKDFParams()))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	month := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	stored := benchFill(t, st, month, want, fillFor)

	srv, err := server.New(ctx, server.Config{Store: st, Seed: seed.Demo(), AdminToken: token, AuditOff: true, Clock: &mpmetertest.Clock{}, UsageRollupOff: true})
	if err != nil {
		t.Fatal(err)
	}
	// The roller's work, timed here rather than in the background: every
	// day of the month is closed by the wall clock. A kept file has its
	// days rolled up already, and this round finds nothing to do.
	start := time.Now()
	rolled, err := rollup.Round(ctx, rollup.Config{Store: st, Clock: srv.Clock, ClosedAfter: rollup.ClosedAfter(srv.Service.UsageWindow(), srv.Service.FutureTolerance())})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rolled up %d days (%d records) in %v", rolled.Days, rolled.Records, time.Since(start).Round(time.Millisecond))
	hs := httptest.NewServer(srv.Handler)
	defer hs.Close()
	prices := mpmeter.Product{Code: "benchprod1", SellerAccountID: mpmetertest.SellerAccount, Type: mpmeter.ProductSaaS, Dimensions: []string{"users", "gigabytes", "requests"},
		DimensionDetails: map[string]mpmeter.DimensionDetails{"users": {Unit: "Users", PricePerUnit: "0.05"}, "gigabytes": {Unit: "GB", PricePerUnit: "0.0125"}}}
	if err := srv.Store.PutProduct(ctx, prices); err != nil {
		t.Fatal(err)
	}
	p2 := prices
	p2.Code = "benchprod2"
	if err := srv.Store.PutProduct(ctx, p2); err != nil {
		t.Fatal(err)
	}

	day := month.Add(24 * time.Hour) // the second day: whole whatever the fill reached
	days := int(stored / (benchCustomers * 6 * 24))
	t.Logf("stored records: %d (%d whole days at %d records a day)", stored, days, benchCustomers*6*24)
	rfc := func(t time.Time) string { return t.Format(time.RFC3339) }
	dayQ := "from=" + rfc(day) + "&until=" + rfc(day.Add(24*time.Hour))
	monthQ := "from=" + rfc(month) + "&until=" + rfc(month.AddDate(0, 1, 0))
	for _, c := range []struct{ name, path string }{
		{"one day by product×customer×dimension, first page of 1,000 lines", "/admin/v1/usage/summaries?period=day&group_by=product,customer,dimension&limit=1000&" + dayQ},
		{"one day by product×customer×dimension, every line (summaries export, CSV)", "/admin/v1/usage/export?kind=summaries&format=csv&period=day&group_by=product,customer,dimension&" + dayQ},
		{"one day by product×dimension (with charges)", "/admin/v1/usage/summaries?period=day&group_by=product,dimension&" + dayQ},
		{"a month by day", "/admin/v1/usage/summaries?period=day&" + monthQ},
		{"a month by day and product", "/admin/v1/usage/summaries?period=day&group_by=product&" + monthQ},
		{"records: first page of 100 of a day", "/admin/v1/usage/records?limit=100&" + dayQ},
		{"records: first page of 100 of a day, newest first", "/admin/v1/usage/records?limit=100&order=newest&" + dayQ},
		{"records: first page of 1,000, one customer, a month", "/admin/v1/usage/records?limit=1000&customer=" + benchAccount(17) + "&" + monthQ},
		{"records: a day's records (records export, CSV)", "/admin/v1/usage/export?kind=records&format=csv&" + dayQ},
		{"feed: one day (feed export, CSV)", "/admin/v1/usage/export?kind=feed&format=csv&" + dayQ},
		{"feed: a month (feed export, CSV)", "/admin/v1/usage/export?kind=feed&format=csv&" + monthQ},
	} {
		var times []time.Duration
		var size int64
		for range 3 {
			start := time.Now()
			size = benchGet(t, hs.URL+c.path)
			times = append(times, time.Since(start))
		}
		slices.Sort(times)
		t.Logf("| %s | %v | %v | %d bytes |", c.name, times[0].Round(time.Millisecond), times[1].Round(time.Millisecond), size)
	}
}

const benchCustomers = 2315 // × 6 (product, dimension) × 24 hours × 30 days ≈ 10M

func benchAccount(i int) string { return fmt.Sprintf("%012d", 300000000000+i) }

// benchFill fills st up to want records (or for fillFor) and returns how
// many it holds.
func benchFill(t *testing.T, st *sqlstore.Store, month time.Time, want int, fillFor time.Duration) int64 {
	ctx := context.Background()
	// Resume where an earlier fill stopped: the last stored hour is redone
	// (its dedup keys make the repeat a no-op).
	var stored int64
	lastHour := -1
	for tot, err := range st.UsageSummary(ctx, mpmeter.UsageSummaryQuery{Period: time.Hour}) {
		if err != nil {
			t.Fatal(err)
		}
		stored += tot.Records
		lastHour = int(tot.Start.Sub(month) / time.Hour)
	}
	start := time.Now()
	batch := make([]mpmeter.MeteringRecord, 0, 1000)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		outs, err := st.RecordUsage(ctx, batch, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range outs {
			if o.Created {
				stored++
			}
		}
		batch = batch[:0]
	}
	filled := 0
	for h := max(lastHour, 0); h < 30*24 && stored < int64(want) && time.Since(start) < fillFor; h++ {
		hour := month.Add(time.Duration(h) * time.Hour)
		for c := range benchCustomers {
			acct := benchAccount(c)
			for p, product := range []string{"benchprod1", "benchprod2"} {
				license := "arn:aws:license-manager::" + acct + ":license/l-bench" + strconv.Itoa(p)
				for d, dim := range []string{"users", "gigabytes", "requests"} {
					batch = append(batch, mpmeter.MeteringRecord{MeteringRecordID: uuid.Must(uuid.NewV7()).String(), Kind: mpmeter.UsageBatch,
						ProductCode: product, SellerAccountID: mpmetertest.SellerAccount, CustomerAccountID: acct, CustomerIdentifier: "cust-" + acct + strconv.Itoa(p),
						LicenseArn: license, Dimension: dim, Timestamp: hour.Add(time.Duration(c%3600) * time.Second), Quantity: int64((c+d)%9 + 1),
						DedupKey:    "batch|" + license + "|" + dim + "|" + strconv.FormatInt(hour.Unix()/3600, 10),
						Fingerprint: "q=" + strconv.Itoa((c+d)%9+1), CreatedAt: hour.Add(time.Minute)})
					filled++
					if len(batch) == cap(batch) {
						flush()
					}
				}
			}
		}
		flush()
		if h%24 == 23 {
			el := time.Since(start)
			t.Logf("filled through hour %d: %d stored, %.0f records/s", h, stored, float64(filled)/el.Seconds())
		}
	}
	return stored
}

func benchGet(t *testing.T, url string) int64 {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d, %v", url, resp.StatusCode, err)
	}
	return n
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return n
}

func cmpStr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
