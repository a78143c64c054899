package admin_test

import (
	"cmp"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/marketplacemetering"
	mmtypes "github.com/aws/aws-sdk-go-v2/service/marketplacemetering/types"

	"github.com/mpmeter/mpmeter/admin"
	"github.com/mpmeter/mpmeter/mpmetertest"
	"github.com/mpmeter/mpmeter/rollup"
	"github.com/mpmeter/mpmeter/server"
)

// The usage routes answer the same whether days are rolled up or not: the
// summaries (per day and per hour, grouped, filtered, by tag) and the daily
// usage feed, before and after the roller has rolled the days up; after the
// virtual clock was set back and the service stored usage into a rolled-up
// day through aws-sdk-go-v2; and once the roller, with the clock moved on,
// has rolled that day up again.
func TestUsageReportsFromTheRollup(t *testing.T) {
	w := newUsageWorld(t, mpmetertest.WithConfig(func(c *server.Config) {
		c.AdminToken = token
		c.UsageRollupInterval = 24 * time.Hour // only the round at start (before any usage) and the test's
	}))
	srv := w.srv
	if srv.UsageRollup == nil {
		t.Fatal("the server runs no usage roller")
	}
	queries := []string{
		"period=day&group_by=product,customer,dimension", "", "group_by=dimension&product=rptprod1",
		"group_by=customer&from=2026-03-01T12:00:00Z&until=2026-03-03T00:00:00Z", "group_by=product&operation=MeterUsage",
		"period=hour&group_by=product", "group_by=product,tag:team", "group_by=dimension&tag=team",
	}
	type reports struct {
		Summaries map[string][]admin.UsageSummaryLine
		Feed      []map[string]string
	}
	read := func() reports {
		t.Helper()
		r := reports{Summaries: map[string][]admin.UsageSummaryLine{}}
		for _, q := range queries {
			r.Summaries[q] = summaries(t, srv, q)
		}
		_, b := export(t, srv, "kind=feed&format=csv")
		_, r.Feed = parseCSV(t, b)
		for _, row := range r.Feed {
			delete(row, "valid_from") // the export's own time
			delete(row, "insert_date")
			delete(row, "update_date")
		}
		return r
	}
	// The first query, summed here from the records as listed.
	checkRecords := func(r reports) {
		t.Helper()
		type key struct {
			day                          time.Time
			product, customer, dimension string
		}
		sums := map[key]*admin.UsageSummaryLine{}
		for _, rec := range w.records(t, "") {
			k := key{rec.Timestamp.Truncate(24 * time.Hour), rec.ProductCode, rec.CustomerAccountID, rec.Dimension}
			if sums[k] == nil {
				sums[k] = &admin.UsageSummaryLine{PeriodStart: k.day, ProductCode: k.product, CustomerAccountID: k.customer, Dimension: k.dimension}
			}
			sums[k].Quantity += rec.Quantity
			sums[k].Records++
		}
		var want []admin.UsageSummaryLine
		for _, l := range sums {
			want = append(want, *l)
		}
		slices.SortFunc(want, func(a, b admin.UsageSummaryLine) int {
			return cmp.Or(a.PeriodStart.Compare(b.PeriodStart), strings.Compare(a.ProductCode, b.ProductCode),
				strings.Compare(a.CustomerAccountID, b.CustomerAccountID), strings.Compare(a.Dimension, b.Dimension))
		})
		var got []admin.UsageSummaryLine
		for _, l := range r.Summaries[queries[0]] {
			got = append(got, admin.UsageSummaryLine{PeriodStart: l.PeriodStart, ProductCode: l.ProductCode, CustomerAccountID: l.CustomerAccountID,
				Dimension: l.Dimension, Quantity: l.Quantity, Records: l.Records})
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("summary by day, product, customer and dimension\n got %s\nwant %s (the records')", js(got), js(want))
		}
	}
	round := func(wantDays int) {
		t.Helper()
		res, err := rollup.Round(t.Context(), *srv.UsageRollup)
		if err != nil || res.Days != wantDays {
			t.Fatalf("roll-up round at %v: %+v, %v; want %d days", srv.Clock.Now(), res, err, wantDays)
		}
	}

	fromRecords := read()
	checkRecords(fromRecords)
	round(0) // 2026-03-02 02:30: the service still accepts usage of both days
	srv.Clock.Set(time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC))
	round(2)
	if got := read(); !reflect.DeepEqual(got, fromRecords) {
		t.Fatalf("reports with both days rolled up\n%s\nfrom the records\n%s", js(got), js(fromRecords))
	}

	// The clock set back: at 02:40 the service accepts usage of 23:50 the
	// day before, into the rolled-up 2026-03-01.
	srv.Clock.Set(usageNow.Add(10 * time.Minute))
	seller := marketplacemetering.NewFromConfig(srv.AWSConfig(mpmetertest.SellerKey, mpmetertest.SellerSecret))
	out, err := seller.BatchMeterUsage(t.Context(), &marketplacemetering.BatchMeterUsageInput{ProductCode: aws.String("rptprod1"),
		UsageRecords: []mmtypes.UsageRecord{{CustomerIdentifier: aws.String(w.subB.CustomerIdentifier), Dimension: aws.String("gigabytes"),
			Quantity: aws.Int32(9), Timestamp: aws.Time(day1.Add(23*time.Hour + 50*time.Minute))}}})
	if err != nil || len(out.Results) != 1 || out.Results[0].Status != mmtypes.UsageRecordResultStatusSuccess {
		t.Fatalf("BatchMeterUsage into the rolled-up day: %+v, %v", out, err)
	}
	late := read()
	checkRecords(late)
	if reflect.DeepEqual(late.Feed, fromRecords.Feed) {
		t.Fatal("the feed does not show the late record")
	}
	round(0) // 2026-03-01 is open again by this clock
	srv.Clock.Set(time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC))
	round(1)
	if got := read(); !reflect.DeepEqual(got, late) {
		t.Fatalf("reports with the day rolled up again\n%s\nbefore\n%s", js(got), js(late))
	}
}
