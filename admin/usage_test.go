package admin_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/marketplacemetering"
	mmtypes "github.com/aws/aws-sdk-go-v2/service/marketplacemetering/types"
	"github.com/google/uuid"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/admin"
	"github.com/mpmeter/mpmeter/mpmetertest"
	"github.com/mpmeter/mpmeter/server"
)

const otherBuyer = "210987654321"

// usageWorld is a server with usage metered through aws-sdk-go-v2 over two
// UTC days: product rptprod1 (seats at 0.05 per User, gigabytes at 0.10,
// storage unpriced) for two buyers, and MeterUsage of the demo AMI.
type usageWorld struct {
	srv    *mpmetertest.Server
	subA   subscription      // BuyerAccount's rptprod1 agreement
	subB   subscription      // otherBuyer's
	ids    map[string]string // name → MeteringRecordId
	amiSub string            // the demo AMI subscription's agreement id
}

var (
	usageNow = time.Date(2026, 3, 2, 2, 30, 0, 0, time.UTC)
	day1     = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	day2     = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
)

func tags(kv ...string) []mmtypes.Tag {
	var out []mmtypes.Tag
	for i := 0; i < len(kv); i += 2 {
		out = append(out, mmtypes.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	return out
}

func newUsageWorld(t *testing.T, opts ...mpmetertest.Option) *usageWorld {
	t.Helper()
	w := &usageWorld{srv: newServer(t, opts...), ids: map[string]string{}}
	srv := w.srv
	srv.Clock.Set(usageNow)
	must(t, srv, http.StatusCreated, http.MethodPost, "/admin/v1/accounts", map[string]any{"id": otherBuyer, "name": "Other Buyer"}, nil)
	must(t, srv, http.StatusCreated, http.MethodPost, "/admin/v1/products", map[string]any{
		"code": "rptprod1", "seller_account_id": mpmetertest.SellerAccount, "type": "saas",
		"dimensions": []map[string]any{{"name": "seats", "unit": "Users", "price_per_unit": "0.05"}, {"name": "gigabytes", "unit": "GB", "price_per_unit": "0.10"}, {"name": "storage"}},
	}, nil)
	must(t, srv, http.StatusCreated, http.MethodPost, "/admin/v1/subscriptions", map[string]any{"account_id": mpmetertest.BuyerAccount, "product_code": "rptprod1", "offer_id": "offer-aaa111"}, &w.subA)
	must(t, srv, http.StatusCreated, http.MethodPost, "/admin/v1/subscriptions", map[string]any{"account_id": otherBuyer, "product_code": "rptprod1"}, &w.subB)

	seller := marketplacemetering.NewFromConfig(srv.AWSConfig(mpmetertest.SellerKey, mpmetertest.SellerSecret))
	type rec struct {
		name, customer, dimension string
		quantity                  int32
		ts                        time.Time
		allocs                    []mmtypes.UsageAllocation
	}
	recs := []rec{
		{"a-seats-d1", w.subA.CustomerIdentifier, "seats", 2, day1.Add(21*time.Hour + 10*time.Minute), nil},
		{"a-seats-d2", w.subA.CustomerIdentifier, "seats", 3, day2.Add(10 * time.Minute), []mmtypes.UsageAllocation{
			{AllocatedUsageQuantity: aws.Int32(2), Tags: tags("team", "a")}, {AllocatedUsageQuantity: aws.Int32(1), Tags: tags("team", "b")}}},
		{"a-gb-d2", w.subA.CustomerIdentifier, "gigabytes", 7, day2.Add(80 * time.Minute), []mmtypes.UsageAllocation{
			{AllocatedUsageQuantity: aws.Int32(7), Tags: tags("team", "a", "env", "prod")}}},
		{"b-seats-d2", w.subB.CustomerIdentifier, "seats", 5, day2.Add(65 * time.Minute), nil},
		{"b-storage-d1", w.subB.CustomerIdentifier, "storage", 4, day1.Add(23*time.Hour + 40*time.Minute), nil},
	}
	for _, r := range recs {
		out, err := seller.BatchMeterUsage(t.Context(), &marketplacemetering.BatchMeterUsageInput{ProductCode: aws.String("rptprod1"),
			UsageRecords: []mmtypes.UsageRecord{{CustomerIdentifier: aws.String(r.customer), Dimension: aws.String(r.dimension),
				Quantity: aws.Int32(r.quantity), Timestamp: aws.Time(r.ts), UsageAllocations: r.allocs}}})
		if err != nil || len(out.Results) != 1 || out.Results[0].Status != mmtypes.UsageRecordResultStatusSuccess {
			t.Fatalf("BatchMeterUsage %s = %+v, %v", r.name, out, err)
		}
		w.ids[r.name] = aws.ToString(out.Results[0].MeteringRecordId)
	}
	ec2 := marketplacemetering.NewFromConfig(srv.AWSConfig(mpmetertest.EC2Key, mpmetertest.EC2Secret))
	mo, err := ec2.MeterUsage(t.Context(), &marketplacemetering.MeterUsageInput{ProductCode: aws.String(mpmetertest.AMIProduct),
		UsageDimension: aws.String("vcpu_hours"), UsageQuantity: aws.Int32(6), Timestamp: aws.Time(day2.Add(2 * time.Hour))})
	if err != nil {
		t.Fatalf("MeterUsage: %v", err)
	}
	w.ids["ami"] = aws.ToString(mo.MeteringRecordId)
	var subs struct{ Items []subscription }
	must(t, srv, http.StatusOK, http.MethodGet, "/admin/v1/subscriptions?account_id="+mpmetertest.BuyerAccount+"&product_code="+mpmetertest.AMIProduct, nil, &subs)
	if len(subs.Items) != 1 {
		t.Fatalf("AMI subscriptions %+v", subs)
	}
	w.amiSub = subs.Items[0].AgreementID
	return w
}

// records lists with query q, every page.
func (w *usageWorld) records(t *testing.T, q string) []admin.UsageRecord {
	t.Helper()
	return w.recordsFrom(t, q, "")
}

// recordsFrom lists with query q from cursor on, every page.
func (w *usageWorld) recordsFrom(t *testing.T, q, cursor string) []admin.UsageRecord {
	t.Helper()
	var all []admin.UsageRecord
	for range 100 {
		var page admin.List[admin.UsageRecord]
		must(t, w.srv, http.StatusOK, http.MethodGet, "/admin/v1/usage/records?"+q+"&cursor="+url.QueryEscape(cursor), nil, &page)
		all = append(all, page.Items...)
		if page.NextCursor == "" {
			return all
		}
		cursor = page.NextCursor
	}
	t.Fatal("more than 100 pages")
	return nil
}

func ids(rs []admin.UsageRecord) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.MeteringRecordID)
	}
	return out
}

func (w *usageWorld) names(ns ...string) []string {
	out := []string{}
	for _, n := range ns {
		out = append(out, w.ids[n])
	}
	return out
}

func TestUsageRecords(t *testing.T) {
	w := newUsageWorld(t)
	all := w.records(t, "")
	oldest := w.names("a-seats-d1", "b-storage-d1", "a-seats-d2", "b-seats-d2", "a-gb-d2", "ami")
	if got := ids(all); !slices.Equal(got, oldest) {
		t.Fatalf("records oldest first %v, want %v", got, oldest)
	}
	// What the SDK was told is what the record shows.
	r := all[2]
	want := admin.UsageRecord{MeteringRecordID: w.ids["a-seats-d2"], Operation: "BatchMeterUsage", Status: "Success", ProductCode: "rptprod1",
		SellerAccountID: mpmetertest.SellerAccount, CustomerAccountID: mpmetertest.BuyerAccount, CustomerIdentifier: w.subA.CustomerIdentifier,
		LicenseArn: w.subA.LicenseArn, AgreementID: w.subA.AgreementID, Dimension: "seats", Timestamp: day2.Add(10 * time.Minute), Quantity: 3,
		Allocations: []admin.UsageAllocation{{Quantity: 2, Tags: []admin.UsageTag{{Key: "team", Value: "a"}}}, {Quantity: 1, Tags: []admin.UsageTag{{Key: "team", Value: "b"}}}},
		CreatedAt:   r.CreatedAt}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("record\n%+v, want\n%+v", r, want)
	}
	if r.CreatedAt.Before(usageNow) || r.CreatedAt.After(usageNow.Add(time.Minute)) {
		t.Errorf("created_at %v, want the service clock's now (%v)", r.CreatedAt, usageNow)
	}
	ami := all[5]
	if ami.Operation != "MeterUsage" || ami.WorkloadID != mpmetertest.EC2Workload || ami.AgreementID != w.amiSub || ami.CustomerIdentifier != "" || ami.Quantity != 6 {
		t.Errorf("MeterUsage record %+v", ami)
	}
	// The JSON members, exactly (the CLI reads them).
	b := must(t, w.srv, http.StatusOK, http.MethodGet, "/admin/v1/usage/records/"+w.ids["a-seats-d2"], nil, nil)
	var m map[string]any
	json.Unmarshal(b, &m)
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	})
	wantKeys := []string{"agreement_id", "allocations", "created_at", "customer_account_id", "customer_identifier", "dimension", "license_arn",
		"metering_record_id", "operation", "product_code", "quantity", "seller_account_id", "status", "timestamp"}
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("record members %v, want %v", keys, wantKeys)
	}
	var one admin.UsageRecord
	must(t, w.srv, http.StatusOK, http.MethodGet, "/admin/v1/usage/records/"+w.ids["a-seats-d2"], nil, &one)
	if !reflect.DeepEqual(one, r) {
		t.Errorf("by id %+v, listed %+v", one, r)
	}
	st, body := call(t, w.srv.URL, token, http.MethodGet, "/admin/v1/usage/records/"+uuid.NewString(), nil, nil)
	wantError(t, st, body, http.StatusNotFound, "not_found")

	newest := slices.Clone(oldest)
	slices.Reverse(newest)
	if got := ids(w.records(t, "order=newest")); !slices.Equal(got, newest) {
		t.Errorf("newest first %v, want %v", got, newest)
	}

	for _, c := range []struct {
		q    string
		want []string
	}{
		{"product=rptprod1", w.names("a-seats-d1", "b-storage-d1", "a-seats-d2", "b-seats-d2", "a-gb-d2")},
		{"product=" + mpmetertest.AMIProduct, w.names("ami")},
		{"customer=" + otherBuyer, w.names("b-storage-d1", "b-seats-d2")},
		{"customer=" + w.subA.CustomerIdentifier, w.names("a-seats-d1", "a-seats-d2", "a-gb-d2")},
		{"customer=" + mpmetertest.BuyerAccount + "&product=rptprod1", w.names("a-seats-d1", "a-seats-d2", "a-gb-d2")},
		{"agreement_id=" + w.subB.AgreementID, w.names("b-storage-d1", "b-seats-d2")},
		{"agreement_id=agmt-doesnotexist", nil},
		{"license_arn=" + url.QueryEscape(w.subA.LicenseArn), w.names("a-seats-d1", "a-seats-d2", "a-gb-d2")},
		{"dimension=seats", w.names("a-seats-d1", "a-seats-d2", "b-seats-d2")},
		{"from=" + day2.Format(time.RFC3339), w.names("a-seats-d2", "b-seats-d2", "a-gb-d2", "ami")},
		{"until=" + day2.Format(time.RFC3339), w.names("a-seats-d1", "b-storage-d1")},
		{"from=2026-03-02T01:05:00Z&until=2026-03-02T02:00:00Z", w.names("b-seats-d2", "a-gb-d2")},
		{"operation=MeterUsage", w.names("ami")},
		{"operation=RegisterUsage", nil},
		{"status=Success", oldest},
		{"status=DuplicateRecord", nil},
		{"tag=team", w.names("a-seats-d2", "a-gb-d2")},
		{"tag=team%3Db", w.names("a-seats-d2")},
		{"tag=env%3Dprod", w.names("a-gb-d2")},
		{"tag=env%3Dtest", nil},
		{"dimension=seats&order=newest", w.names("b-seats-d2", "a-seats-d2", "a-seats-d1")},
	} {
		if got := ids(w.records(t, c.q)); !slices.Equal(got, append([]string{}, c.want...)) {
			t.Errorf("%s: %v, want %v", c.q, got, c.want)
		}
	}
	for _, q := range []string{"operation=Nope", "status=Maybe", "order=sideways", "from=yesterday", "limit=0", "limit=1001", "tag=%3Dv",
		"from=2026-03-02T00:00:00Z&until=2026-03-01T00:00:00Z", "cursor=garbage!"} {
		st, b := call(t, w.srv.URL, token, http.MethodGet, "/admin/v1/usage/records?"+q, nil, nil)
		wantError(t, st, b, http.StatusBadRequest, "validation_failed")
	}
}

// Pages of 2 walk every record once, also while records are added: a
// record after the cursor appears, none is seen twice.
func TestUsageRecordsPagination(t *testing.T) {
	w := newUsageWorld(t)
	for _, order := range []string{"oldest", "newest"} {
		whole := ids(w.records(t, "order="+order))
		paged := ids(w.records(t, "order="+order+"&limit=2"))
		if !slices.Equal(whole, paged) {
			t.Errorf("%s: pages of 2 %v, one page %v", order, paged, whole)
		}
	}
	var p1 admin.List[admin.UsageRecord]
	must(t, w.srv, http.StatusOK, http.MethodGet, "/admin/v1/usage/records?limit=3", nil, &p1)
	if len(p1.Items) != 3 || p1.NextCursor == "" {
		t.Fatalf("first page %+v", p1)
	}
	seller := marketplacemetering.NewFromConfig(w.srv.AWSConfig(mpmetertest.SellerKey, mpmetertest.SellerSecret))
	out, err := seller.BatchMeterUsage(t.Context(), &marketplacemetering.BatchMeterUsageInput{ProductCode: aws.String("rptprod1"),
		UsageRecords: []mmtypes.UsageRecord{
			{CustomerIdentifier: aws.String(w.subB.CustomerIdentifier), Dimension: aws.String("seats"), Quantity: aws.Int32(1), Timestamp: aws.Time(usageNow)},
			// Before the cursor: not on the following pages.
			{CustomerIdentifier: aws.String(w.subB.CustomerIdentifier), Dimension: aws.String("gigabytes"), Quantity: aws.Int32(1), Timestamp: aws.Time(day1.Add(21 * time.Hour))},
		}})
	if err != nil {
		t.Fatal(err)
	}
	rest := ids(w.recordsFrom(t, "limit=2", p1.NextCursor))
	want := append(w.names("b-seats-d2", "a-gb-d2", "ami"), aws.ToString(out.Results[0].MeteringRecordId))
	if !slices.Equal(rest, want) {
		t.Errorf("after adding records: rest %v, want %v", rest, want)
	}
}

// summaries fetches all pages of a summary query.
func summaries(t *testing.T, srv *mpmetertest.Server, q string) []admin.UsageSummaryLine {
	t.Helper()
	var all []admin.UsageSummaryLine
	cursor := ""
	for range 100 {
		var page admin.List[admin.UsageSummaryLine]
		must(t, srv, http.StatusOK, http.MethodGet, "/admin/v1/usage/summaries?"+q+"&cursor="+url.QueryEscape(cursor), nil, &page)
		all = append(all, page.Items...)
		if page.NextCursor == "" {
			return all
		}
		cursor = page.NextCursor
	}
	t.Fatal("more than 100 pages")
	return nil
}

func str(s string) *string { return &s }

func TestUsageSummaries(t *testing.T) {
	w := newUsageWorld(t)
	srv := w.srv
	price := func(l admin.UsageSummaryLine, unit, p, c string) admin.UsageSummaryLine {
		l.Unit, l.PricePerUnit, l.EstimatedCharge = unit, p, c
		if c != "" {
			l.Currency = "USD"
		}
		return l
	}
	A, B := mpmetertest.BuyerAccount, otherBuyer
	P := "rptprod1"
	line := func(start time.Time, product, customer, dim string, q, n int64) admin.UsageSummaryLine {
		return admin.UsageSummaryLine{PeriodStart: start, ProductCode: product, CustomerAccountID: customer, Dimension: dim, Quantity: q, Records: n}
	}
	for _, c := range []struct {
		q    string
		want []admin.UsageSummaryLine
	}{
		{"period=day&group_by=product,customer,dimension&product=rptprod1", []admin.UsageSummaryLine{
			line(day1, P, B, "storage", 4, 1),
			price(line(day1, P, A, "seats", 2, 1), "Users", "0.05", "0.1"),
			price(line(day2, P, B, "seats", 5, 1), "Users", "0.05", "0.25"),
			price(line(day2, P, A, "gigabytes", 7, 1), "GB", "0.10", "0.7"),
			price(line(day2, P, A, "seats", 3, 1), "Users", "0.05", "0.15"),
		}},
		// Dimension without product grouping: priced through the product filter.
		{"group_by=dimension&product=rptprod1&customer=" + A, []admin.UsageSummaryLine{
			price(line(day1, "", "", "seats", 2, 1), "Users", "0.05", "0.1"),
			price(line(day2, "", "", "gigabytes", 7, 1), "GB", "0.10", "0.7"),
			price(line(day2, "", "", "seats", 3, 1), "Users", "0.05", "0.15"),
		}},
		// Without a product, a dimension name has no price.
		{"group_by=dimension&dimension=seats", []admin.UsageSummaryLine{line(day1, "", "", "seats", 2, 1), line(day2, "", "", "seats", 8, 2)}},
		{"group_by=customer", []admin.UsageSummaryLine{line(day1, "", B, "", 4, 1), line(day1, "", A, "", 2, 1), line(day2, "", B, "", 5, 1), line(day2, "", A, "", 16, 3)}},
		{"", []admin.UsageSummaryLine{line(day1, "", "", "", 6, 2), line(day2, "", "", "", 21, 4)}},
		{"period=hour&group_by=product&from=2026-03-02T00:00:00Z", []admin.UsageSummaryLine{
			line(day2, P, "", "", 3, 1), line(day2.Add(time.Hour), P, "", "", 12, 2), line(day2.Add(2*time.Hour), mpmetertest.AMIProduct, "", "", 6, 1)}},
		{"group_by=product,dimension,tag:team&product=rptprod1&from=2026-03-02T00:00:00Z", []admin.UsageSummaryLine{
			func() admin.UsageSummaryLine {
				l := price(line(day2, P, "", "gigabytes", 7, 1), "GB", "0.10", "0.7")
				l.TagKey, l.TagValue = "team", str("a")
				return l
			}(),
			func() admin.UsageSummaryLine {
				l := price(line(day2, P, "", "seats", 5, 1), "Users", "0.05", "0.25")
				l.TagKey, l.TagValue = "team", str("")
				return l
			}(),
			func() admin.UsageSummaryLine {
				l := price(line(day2, P, "", "seats", 2, 1), "Users", "0.05", "0.1")
				l.TagKey, l.TagValue = "team", str("a")
				return l
			}(),
			func() admin.UsageSummaryLine {
				l := price(line(day2, P, "", "seats", 1, 1), "Users", "0.05", "0.05")
				l.TagKey, l.TagValue = "team", str("b")
				return l
			}(),
		}},
		{"group_by=dimension&tag=team%3Db&product=rptprod1", []admin.UsageSummaryLine{price(line(day2, "", "", "seats", 3, 1), "Users", "0.05", "0.15")}},
	} {
		got := summaries(t, srv, c.q)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got  %s\n want %s", c.q, js(got), js(c.want))
		}
		// Pages of one line give the same lines.
		if paged := summaries(t, srv, c.q+"&limit=1"); !reflect.DeepEqual(paged, got) {
			t.Errorf("%s: pages of 1\n%s\nvs one page\n%s", c.q, js(paged), js(got))
		}
	}
	// The JSON members of a priced line, exactly.
	b := must(t, srv, http.StatusOK, http.MethodGet, "/admin/v1/usage/summaries?group_by=product,customer,dimension&dimension=seats&customer="+A+"&from=2026-03-02T00:00:00Z", nil, nil)
	if want := `{"items":[{"period_start":"2026-03-02T00:00:00Z","product_code":"rptprod1","customer_account_id":"444455556666","dimension":"seats","quantity":3,"records":1,"unit":"Users","price_per_unit":"0.05","estimated_charge":"0.15","currency":"USD"}],"next_cursor":""}`; strings.TrimSpace(string(b)) != want {
		t.Errorf("summary body\n%s, want\n%s", b, want)
	}
	for _, q := range []string{"period=week", "group_by=seller", "group_by=tag:", "group_by=tag:a,tag:b", "cursor=nope"} {
		st, b := call(t, srv.URL, token, http.MethodGet, "/admin/v1/usage/summaries?"+q, nil, nil)
		wantError(t, st, b, http.StatusBadRequest, "validation_failed")
	}
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// export fetches an export and returns its content type and body.
func export(t *testing.T, srv *mpmetertest.Server, q string) (string, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/admin/v1/usage/export?"+q, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("export %s: %d %s", q, resp.StatusCode, b)
	}
	return resp.Header.Get("Content-Type"), b
}

func parseCSV(t *testing.T, b []byte) ([]string, []map[string]string) {
	t.Helper()
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil || len(rows) == 0 {
		t.Fatalf("CSV: %v in %s", err, b)
	}
	var out []map[string]string
	for _, r := range rows[1:] {
		m := map[string]string{}
		for i, c := range rows[0] {
			m[c] = r[i]
		}
		out = append(out, m)
	}
	return rows[0], out
}

func jsonLines[T any](t *testing.T, b []byte) []T {
	t.Helper()
	var out []T
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("JSON line %q: %v", sc.Text(), err)
		}
		out = append(out, v)
	}
	return out
}

// Exports hold exactly what the list routes answer.
func TestUsageExports(t *testing.T) {
	w := newUsageWorld(t)
	srv := w.srv
	for _, q := range []string{"", "product=rptprod1&order=newest", "tag=team"} {
		listed := w.records(t, q)
		ct, b := export(t, srv, "kind=records&format=jsonl&"+q)
		if ct != "application/x-ndjson" {
			t.Errorf("content type %q", ct)
		}
		if got := jsonLines[admin.UsageRecord](t, b); !reflect.DeepEqual(got, listed) {
			t.Errorf("%s: JSONL records\n%s\nlisted\n%s", q, js(got), js(listed))
		}
		ct, b = export(t, srv, "kind=records&format=csv&"+q)
		if !strings.HasPrefix(ct, "text/csv") {
			t.Errorf("content type %q", ct)
		}
		header, rows := parseCSV(t, b)
		if want := []string{"metering_record_id", "operation", "status", "product_code", "seller_account_id", "customer_account_id", "customer_identifier",
			"license_arn", "agreement_id", "workload_id", "dimension", "timestamp", "quantity", "allocations", "created_at"}; !slices.Equal(header, want) {
			t.Errorf("CSV header %v", header)
		}
		if len(rows) != len(listed) {
			t.Fatalf("%s: %d CSV rows, %d listed", q, len(rows), len(listed))
		}
		for i, r := range listed {
			row := rows[i]
			ts, err1 := time.Parse(time.RFC3339Nano, row["timestamp"])
			created, err2 := time.Parse(time.RFC3339Nano, row["created_at"])
			qty, err3 := strconv.ParseInt(row["quantity"], 10, 64)
			var allocs []admin.UsageAllocation
			if row["allocations"] != "" {
				json.Unmarshal([]byte(row["allocations"]), &allocs)
			}
			got := admin.UsageRecord{MeteringRecordID: row["metering_record_id"], Operation: row["operation"], Status: row["status"], ProductCode: row["product_code"],
				SellerAccountID: row["seller_account_id"], CustomerAccountID: row["customer_account_id"], CustomerIdentifier: row["customer_identifier"],
				LicenseArn: row["license_arn"], AgreementID: row["agreement_id"], WorkloadID: row["workload_id"], Dimension: row["dimension"],
				Timestamp: ts, Quantity: qty, Allocations: allocs, CreatedAt: created}
			if err1 != nil || err2 != nil || err3 != nil || !reflect.DeepEqual(got, r) {
				t.Errorf("%s: CSV row %d %v, listed %+v", q, i, row, r)
			}
		}
	}

	sq := "period=day&group_by=product,customer,dimension,tag:team"
	listed := summaries(t, srv, sq)
	_, b := export(t, srv, "kind=summaries&format=jsonl&"+sq)
	if got := jsonLines[admin.UsageSummaryLine](t, b); !reflect.DeepEqual(got, listed) {
		t.Errorf("JSONL summaries\n%s\nlisted\n%s", js(got), js(listed))
	}
	_, b = export(t, srv, "kind=summaries&format=csv&"+sq)
	header, rows := parseCSV(t, b)
	if want := []string{"period_start", "product_code", "customer_account_id", "dimension", "tag_key", "tag_value", "quantity", "records", "unit", "price_per_unit", "estimated_charge", "currency"}; !slices.Equal(header, want) {
		t.Errorf("summary CSV header %v", header)
	}
	if len(rows) != len(listed) {
		t.Fatalf("%d summary CSV rows, %d listed", len(rows), len(listed))
	}
	for i, l := range listed {
		r := rows[i]
		if r["period_start"] != l.PeriodStart.Format(time.RFC3339Nano) || r["product_code"] != l.ProductCode || r["customer_account_id"] != l.CustomerAccountID ||
			r["dimension"] != l.Dimension || r["tag_key"] != "team" || l.TagValue == nil || r["tag_value"] != *l.TagValue || r["quantity"] != strconv.FormatInt(l.Quantity, 10) ||
			r["records"] != strconv.FormatInt(l.Records, 10) || r["unit"] != l.Unit || r["price_per_unit"] != l.PricePerUnit || r["estimated_charge"] != l.EstimatedCharge || r["currency"] != l.Currency {
			t.Errorf("summary CSV row %d %v, listed %+v", i, r, l)
		}
	}

	// The feed: one line per UTC day, agreement and dimension.
	_, b = export(t, srv, "kind=feed&format=csv")
	header, rows = parseCSV(t, b)
	wantHeader := []string{"valid_from", "insert_date", "update_date", "delete_date", "usage_feed_id", "usage_date", "product_id", "agreement_id",
		"end_user_account_id", "payer_account_id", "region", "dimension_key", "usage_unit", "usage_quantity", "pricing_currency",
		"estimated_revenue_in_pricing_currency", "offer_id", "usage_rate_per_unit_in_pricing_currency"}
	if !slices.Equal(header, wantHeader) {
		t.Fatalf("feed header %v", header)
	}
	type fl struct{ date, product, agreement, account, region, dim, unit, qty, revenue, offer, rate string }
	var got []fl
	feedIDs := map[string]bool{}
	for _, r := range rows {
		got = append(got, fl{r["usage_date"], r["product_id"], r["agreement_id"], r["end_user_account_id"], r["region"], r["dimension_key"], r["usage_unit"],
			r["usage_quantity"], r["estimated_revenue_in_pricing_currency"], r["offer_id"], r["usage_rate_per_unit_in_pricing_currency"]})
		if r["payer_account_id"] != r["end_user_account_id"] || r["pricing_currency"] != "USD" || r["delete_date"] != "" || r["valid_from"] == "" || len(r["usage_feed_id"]) != 32 {
			t.Errorf("feed row %v", r)
		}
		feedIDs[r["usage_feed_id"]] = true
	}
	if len(feedIDs) != len(rows) {
		t.Errorf("usage_feed_id not unique: %d ids for %d rows", len(feedIDs), len(rows))
	}
	rp, ami := admin.FeedProductID("rptprod1"), admin.FeedProductID(mpmetertest.AMIProduct)
	A, B := mpmetertest.BuyerAccount, otherBuyer
	wantFeed := []fl{
		{"2026-03-01", rp, w.subA.AgreementID, A, "us-east-1", "seats", "Users", "2", "0.1", "offer-aaa111", "0.05"},
		{"2026-03-01", rp, w.subB.AgreementID, B, "us-east-1", "storage", "", "4", "", "", ""},
		{"2026-03-02", ami, w.amiSub, A, "us-east-1", "vcpu_hours", "", "6", "", "", ""},
		{"2026-03-02", rp, w.subA.AgreementID, A, "us-east-1", "gigabytes", "GB", "7", "0.7", "offer-aaa111", "0.10"},
		{"2026-03-02", rp, w.subA.AgreementID, A, "us-east-1", "seats", "Users", "3", "0.15", "offer-aaa111", "0.05"},
		{"2026-03-02", rp, w.subB.AgreementID, B, "us-east-1", "seats", "Users", "5", "0.25", "", "0.05"},
	}
	// Lines of a day are ordered by product id (derived), then account,
	// agreement, dimension, region.
	slices.SortFunc(wantFeed, func(x, y fl) int {
		return strings.Compare(x.date+x.product+x.account+x.agreement+x.dim, y.date+y.product+y.account+y.agreement+y.dim)
	})
	slices.SortFunc(got, func(x, y fl) int {
		return strings.Compare(x.date+x.product+x.account+x.agreement+x.dim, y.date+y.product+y.account+y.agreement+y.dim)
	})
	if !reflect.DeepEqual(got, wantFeed) {
		t.Errorf("feed\n%+v\nwant\n%+v", got, wantFeed)
	}
	// The same export again: the same ids (stable), and JSONL the same values.
	_, again := export(t, srv, "kind=feed&format=jsonl")
	lines := jsonLines[map[string]any](t, again)
	if len(lines) != len(rows) {
		t.Fatalf("%d JSONL feed lines, %d CSV", len(lines), len(rows))
	}
	for i, l := range lines {
		for _, c := range wantHeader {
			want := rows[i][c]
			v := l[c]
			if c == "usage_quantity" {
				if n, ok := v.(float64); !ok || strconv.FormatFloat(n, 'f', -1, 64) != want {
					t.Errorf("JSONL feed %d %s = %v, CSV %q", i, c, v, want)
				}
				continue
			}
			if c == "valid_from" || c == "insert_date" || c == "update_date" {
				continue // the export's time
			}
			if v != want {
				t.Errorf("JSONL feed %d %s = %v, CSV %q", i, c, v, want)
			}
		}
	}
	// A filter that matches nothing: the header alone.
	_, b = export(t, srv, "kind=records&format=csv&operation=RegisterUsage")
	if h, rows := parseCSV(t, b); len(rows) != 0 || len(h) != 15 {
		t.Errorf("empty export %q", b)
	}
	st, eb := call(t, srv.URL, token, http.MethodGet, "/admin/v1/usage/export?kind=everything", nil, nil)
	wantError(t, st, eb, http.StatusBadRequest, "validation_failed")
}

// gatedStore lets a test hold EachUsage after some records.
type gatedStore struct {
	mpmeter.Store
	after  int
	held   chan struct{} // closed when the iterator waits at the gate
	open   chan struct{} // closed by the test to let it go on
	sample func(n int)   // called every sampleEvery records
}

const sampleEvery = 10000

func (g gatedStore) EachUsage(ctx context.Context, f mpmeter.UsageFilter) iter.Seq2[mpmeter.MeteringRecord, error] {
	return func(yield func(mpmeter.MeteringRecord, error) bool) {
		n := 0
		for r, err := range g.Store.EachUsage(ctx, f) {
			if n == g.after && g.held != nil {
				close(g.held)
				<-g.open
			}
			n++
			if g.sample != nil && n%sampleEvery == 0 {
				g.sample(n)
			}
			if !yield(r, err) {
				return
			}
		}
	}
}

// fill stores n records directly (no API: fast), spread over one day.
func fill(t *testing.T, st mpmeter.Store, n int) {
	t.Helper()
	const batch = 1000
	recs := make([]mpmeter.MeteringRecord, 0, batch)
	for i := range n {
		acct := fmt.Sprintf("%012d", 100000000000+i%50)
		recs = append(recs, mpmeter.MeteringRecord{MeteringRecordID: uuid.Must(uuid.NewV7()).String(), Kind: mpmeter.UsageBatch, ProductCode: "bulkprod1",
			SellerAccountID: mpmetertest.SellerAccount, CustomerAccountID: acct, CustomerIdentifier: "cust-" + acct,
			LicenseArn: "arn:aws:license-manager::" + acct + ":license/l-bulk", Dimension: "users",
			Timestamp: day1.Add(time.Duration(i) * (24 * time.Hour / time.Duration(n))), Quantity: int64(i%7 + 1), CreatedAt: usageNow})
		if len(recs) == batch || i == n-1 {
			if _, err := st.RecordUsage(context.Background(), recs, nil); err != nil {
				t.Fatal(err)
			}
			recs = recs[:0]
		}
	}
}

// An export streams: its first rows reach the client while the store's
// query is still held at a gate (a handler that collected the result first
// could send nothing), and memory stays bounded while it sends far more
// than the heap grows.
func TestUsageExportStreams(t *testing.T) {
	g := &gatedStore{after: 2000, held: make(chan struct{}), open: make(chan struct{})}
	var heap []uint64
	g.sample = func(int) {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heap = append(heap, ms.HeapAlloc)
	}
	srv := newServer(t, mpmetertest.WithConfig(func(c *server.Config) {
		c.AdminToken = token
		g.Store = c.Store
		c.Store = g
	}))
	const n = 60000
	fill(t, g.Store, n)

	type result struct {
		body *bufio.Reader
		err  error
	}
	got := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/admin/v1/usage/export?kind=records&format=csv", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- result{err: err}
			return
		}
		t.Cleanup(func() { resp.Body.Close() })
		br := bufio.NewReader(resp.Body)
		for range 1000 {
			if _, err := br.ReadString('\n'); err != nil {
				got <- result{err: err}
				return
			}
		}
		got <- result{body: br}
	}()
	// The query has yielded 2,000 records and waits at the gate.
	<-g.held
	var br *bufio.Reader
	select {
	case r := <-got:
		if r.err != nil {
			t.Fatal(r.err)
		}
		br = r.body
	case <-time.After(2 * time.Minute):
		// Not a speed goal: a handler that sends nothing before its query
		// ends would wait here for ever.
		close(g.open)
		t.Fatal("no 1,000 lines reached the client while the query was held: the export is not streamed")
	}
	// 1,000 lines arrived while the query was held: streamed.
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	close(g.open)
	rest, err := io.Copy(io.Discard, br)
	if err != nil {
		t.Fatal(err)
	}
	peak := slices.Max(heap)
	growth := int64(peak) - int64(before.HeapAlloc)
	t.Logf("sent %d bytes after the gate; live heap %d before, peak %d (samples %d)", rest, before.HeapAlloc, peak, len(heap))
	if len(heap) < n/sampleEvery {
		t.Errorf("%d heap samples, want %d", len(heap), n/sampleEvery)
	}
	// A handler holding the result would grow the heap by more than the
	// bytes it sent; a streaming one by a small, fixed amount.
	if growth > rest/4 {
		t.Errorf("live heap grew by %d bytes while %d bytes were exported: not bounded", growth, rest)
	}
}
