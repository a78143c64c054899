package storetest

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
)

// usageAPIFixture stores five records: a, b (buyer, product, users / gb,
// hour t0), c (buyer, tagged allocations, t0+1h), d (buyer2's AMI usage by a
// workload, t0+1h), e (buyer, users, next day).
func usageAPIFixture(t *testing.T, s mpmeter.Store) (a, b, c, d, e mpmeter.MeteringRecord) {
	t.Helper()
	seed(t, s)
	a, b, c = rec("rec-a", "key-a"), rec("rec-b", "key-b"), rec("rec-c", "key-c")
	b.Dimension, b.Quantity = "gb", 5
	c.Timestamp, c.Quantity = t0.Add(time.Hour), 10
	c.Allocations = []mpmeter.Allocation{
		{Quantity: 6, Tags: []mpmeter.AllocationTag{{Key: "team", Value: "red"}, {Key: "env", Value: "prod"}}},
		{Quantity: 3, Tags: []mpmeter.AllocationTag{{Key: "team", Value: "blue"}}},
		{Quantity: 1},
	}
	d = mpmeter.MeteringRecord{
		MeteringRecordID: "0190a5b2-7c1e-7a3b-8c4d-5e6f708192a3", Kind: mpmeter.UsageMeter, ProductCode: product2,
		SellerAccountID: seller2, CustomerAccountID: buyer2, WorkloadID: "i-0123456789abcdef0", Dimension: "hosts",
		Timestamp: t0.Add(time.Hour + time.Minute), Quantity: 2,
		DedupKey:    "meter|" + buyer2 + "|i-0123456789abcdef0|" + product2 + "|hosts|" + "1741064400",
		Fingerprint: "q=2", CreatedAt: t0.Add(2 * time.Hour),
	}
	e = rec("rec-e", "")
	e.Timestamp = t0.Add(24 * time.Hour)
	if _, err := s.RecordUsage(t.Context(), []mpmeter.MeteringRecord{a, b, c, d, e}, nil); err != nil {
		t.Fatal(err)
	}
	return a, b, c, d, e
}

func testUsageRecord(t *testing.T, s mpmeter.Store) {
	a, _, _, d, _ := usageAPIFixture(t, s)
	for _, want := range []mpmeter.MeteringRecord{a, d} {
		got, err := s.UsageRecord(t.Context(), want.MeteringRecordID)
		if err != nil {
			t.Fatalf("UsageRecord(%s): %v", want.MeteringRecordID, err)
		}
		wantRecord(t, "UsageRecord", got, want)
	}
	_, err := s.UsageRecord(t.Context(), "rec-nope")
	wantErr(t, "UsageRecord(unknown)", err, mpmeter.ErrNotFound)
}

func testUsageFilters(t *testing.T, s mpmeter.Store) {
	a, b, c, d, e := usageAPIFixture(t, s)
	cases := []struct {
		f    mpmeter.UsageFilter
		want []mpmeter.MeteringRecord
	}{
		{mpmeter.UsageFilter{}, []mpmeter.MeteringRecord{a, b, c, d, e}},
		{mpmeter.UsageFilter{Newest: true}, []mpmeter.MeteringRecord{e, d, c, b, a}},
		{mpmeter.UsageFilter{Dimension: "gb"}, []mpmeter.MeteringRecord{b}},
		{mpmeter.UsageFilter{CustomerIdentifier: customer}, []mpmeter.MeteringRecord{a, b, c, e}},
		{mpmeter.UsageFilter{LicenseArn: license, Dimension: "users"}, []mpmeter.MeteringRecord{a, c, e}},
		{mpmeter.UsageFilter{CustomerAccountID: buyer2}, []mpmeter.MeteringRecord{d}},
		{mpmeter.UsageFilter{Kind: mpmeter.UsageMeter}, []mpmeter.MeteringRecord{d}},
		{mpmeter.UsageFilter{TagKey: "team"}, []mpmeter.MeteringRecord{c}},
		{mpmeter.UsageFilter{TagKey: "team", TagValue: "blue"}, []mpmeter.MeteringRecord{c}},
		{mpmeter.UsageFilter{TagKey: "team", TagValue: "green"}, nil},
		{mpmeter.UsageFilter{TagKey: "nope"}, nil},
		{mpmeter.UsageFilter{Status: mpmeter.UsageRecordResultStatusSuccess, From: t0.Add(time.Hour), To: t0.Add(2 * time.Hour)}, []mpmeter.MeteringRecord{c, d}},
		{mpmeter.UsageFilter{Status: mpmeter.UsageRecordResultStatusDuplicateRecord}, nil},
		{mpmeter.UsageFilter{Newest: true, Limit: 2}, []mpmeter.MeteringRecord{e, d}},
	}
	for _, c := range cases {
		wantUsage(t, s, c.f, c.want...)
	}
	if _, err := s.Usage(t.Context(), mpmeter.UsageFilter{Status: "Maybe"}); err == nil {
		t.Error("Usage(Status: Maybe): no error")
	}
}

func testUsagePages(t *testing.T, s mpmeter.Store) {
	a, b, c, d, e := usageAPIFixture(t, s)
	for _, newest := range []bool{false, true} {
		f := mpmeter.UsageFilter{Newest: newest}
		want := []mpmeter.MeteringRecord{a, b, c, d, e}
		if newest {
			want = []mpmeter.MeteringRecord{e, d, c, b, a}
		}
		var got []mpmeter.MeteringRecord
		cursor, pages := "", 0
		for {
			p, err := s.UsagePage(t.Context(), f, cursor, 2)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			got = append(got, p.Records...)
			if p.Next == "" {
				break
			}
			cursor = p.Next
			if pages > 5 {
				t.Fatal("pages do not end")
			}
		}
		if pages != 3 || len(got) != len(want) {
			t.Fatalf("newest=%v: %d pages, %s; want 3 pages, %s", newest, pages, ids(got), ids(want))
		}
		for i := range got {
			wantRecord(t, name("newest=%v record %d", newest, i), got[i], want[i])
		}
	}
	// A record stored after the first page, before the cursor, does not
	// shift later pages.
	p1, err := s.UsagePage(t.Context(), mpmeter.UsageFilter{}, "", 2)
	if err != nil {
		t.Fatal(err)
	}
	early := rec("rec-0", "key-0")
	early.Timestamp = t0.Add(-time.Hour)
	record1(t, t.Context(), s, early, nil)
	p2, err := s.UsagePage(t.Context(), mpmeter.UsageFilter{}, p1.Next, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(p2.Records) != 2 || p2.Records[0].MeteringRecordID != c.MeteringRecordID {
		t.Errorf("page 2 after an earlier insert: %s, want [%s %s]", ids(p2.Records), c.MeteringRecordID, d.MeteringRecordID)
	}
	if _, err := s.UsagePage(t.Context(), mpmeter.UsageFilter{}, "not a cursor!", 2); err == nil {
		t.Error("UsagePage(malformed cursor): no error")
	}
}

func testEachUsage(t *testing.T, s mpmeter.Store) {
	a, b, _, _, _ := usageAPIFixture(t, s)
	var got []mpmeter.MeteringRecord
	for r, err := range s.EachUsage(t.Context(), mpmeter.UsageFilter{ProductCode: product}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
		if len(got) == 2 {
			break // stopping early is allowed
		}
	}
	if len(got) != 2 || !sameRecord(got[0], a) || !sameRecord(got[1], b) {
		t.Errorf("EachUsage: %s, want [%s %s]", ids(got), a.MeteringRecordID, b.MeteringRecordID)
	}
}

func summary(t *testing.T, s mpmeter.Store, q mpmeter.UsageSummaryQuery) []mpmeter.UsageSummaryLine {
	t.Helper()
	lines := []mpmeter.UsageSummaryLine{}
	for l, err := range s.UsageSummary(t.Context(), q) {
		if err != nil {
			t.Fatalf("UsageSummary(%+v): %v", q, err)
		}
		l.Start = l.Start.UTC()
		lines = append(lines, l)
	}
	return lines
}

func testUsageSummary(t *testing.T, s mpmeter.Store) {
	usageAPIFixture(t, s)
	day := t0.Truncate(24 * time.Hour)
	type L = mpmeter.UsageSummaryLine
	cases := []struct {
		name string
		q    mpmeter.UsageSummaryQuery
		want []L
	}{
		{"per hour, nothing else", mpmeter.UsageSummaryQuery{Period: time.Hour}, []L{
			{Start: t0, Quantity: 12, Records: 2},
			{Start: t0.Add(time.Hour), Quantity: 12, Records: 2},
			{Start: t0.Add(24 * time.Hour), Quantity: 7, Records: 1},
		}},
		{"per day by product and dimension", mpmeter.UsageSummaryQuery{Period: 24 * time.Hour, ByProduct: true, ByDimension: true}, []L{
			{Start: day, ProductCode: product2, Dimension: "hosts", Quantity: 2, Records: 1},
			{Start: day, ProductCode: product, Dimension: "gb", Quantity: 5, Records: 1},
			{Start: day, ProductCode: product, Dimension: "users", Quantity: 17, Records: 2},
			{Start: day.Add(24 * time.Hour), ProductCode: product, Dimension: "users", Quantity: 7, Records: 1},
		}},
		{"per day by customer, one product", mpmeter.UsageSummaryQuery{Period: 24 * time.Hour, ByCustomer: true,
			Filter: mpmeter.UsageFilter{ProductCode: product, To: t0.Add(2 * time.Hour)}}, []L{
			{Start: day, CustomerAccountID: buyer, Quantity: 22, Records: 3},
		}},
		{"per hour by tag team", mpmeter.UsageSummaryQuery{Period: time.Hour, ByTag: "team",
			Filter: mpmeter.UsageFilter{From: t0, To: t0.Add(2 * time.Hour), ProductCode: product}}, []L{
			{Start: t0, Quantity: 12, Records: 2},
			{Start: t0.Add(time.Hour), Quantity: 1, Records: 1},
			{Start: t0.Add(time.Hour), TagValue: "blue", Quantity: 3, Records: 1},
			{Start: t0.Add(time.Hour), TagValue: "red", Quantity: 6, Records: 1},
		}},
		{"a status never stored", mpmeter.UsageSummaryQuery{Period: time.Hour,
			Filter: mpmeter.UsageFilter{Status: mpmeter.UsageRecordResultStatusCustomerNotSubscribed}}, []L{}},
	}
	for _, c := range cases {
		if got := summary(t, s, c.q); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, got, c.want)
		}
	}
	for _, err := range s.UsageSummary(t.Context(), mpmeter.UsageSummaryQuery{Period: time.Minute}) {
		if err == nil {
			t.Error("UsageSummary(Period: 1m): no error")
		}
	}
}

func testPurgeExpired(t *testing.T, s mpmeter.Store) {
	ctx := t.Context()
	seed(t, s)
	for i, exp := range []time.Time{t0.Add(-time.Hour), t0, t0.Add(time.Hour)} {
		r := rec(name("rec-%d", i), name("key-%d", i))
		r.CreatedAt = exp.Add(-time.Minute)
		tok := &mpmeter.IdempotencyToken{Scope: "w", Token: name("tok-%d", i), Fingerprint: "f", ExpiresAt: exp}
		record1(t, ctx, s, r, tok)
	}
	retention := mpmeter.RegistrationTokenRetention
	for i, exp := range []time.Time{t0.Add(-retention - time.Second), t0.Add(-retention + time.Second)} {
		must(t, s.PutRegistrationToken(ctx, mpmeter.RegistrationToken{Token: name("reg-%d", i), AccountID: buyer,
			ProductCode: product, LicenseArn: license, CreatedAt: exp.Add(-time.Hour), ExpiresAt: exp}))
	}
	res, err := s.PurgeExpired(ctx, t0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if res != (mpmeter.PurgeResult{IdempotencyTokens: 1, RegistrationTokens: 1}) {
		t.Errorf("first purge (limit 1): %+v, want 1 and 1", res)
	}
	res, err = s.PurgeExpired(ctx, t0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if res != (mpmeter.PurgeResult{IdempotencyTokens: 1}) {
		t.Errorf("second purge: %+v, want 1 idempotency token", res)
	}
	if _, err := s.RegistrationToken(ctx, "reg-0"); !errors.Is(err, mpmeter.ErrNotFound) {
		t.Errorf("purged registration token: %v, want ErrNotFound", err)
	}
	if _, err := s.RegistrationToken(ctx, "reg-1"); err != nil {
		t.Errorf("registration token within retention: %v", err)
	}
	// The unexpired token still answers its first record; the purged ones
	// are gone (a new call with them stores anew).
	r := rec("rec-again", "key-again")
	r.CreatedAt = t0
	o := record1(t, ctx, s, r, &mpmeter.IdempotencyToken{Scope: "w", Token: "tok-2", Fingerprint: "f", ExpiresAt: t0.Add(time.Hour)})
	if o.Created || o.Record.MeteringRecordID != "rec-2" {
		t.Errorf("unexpired token after purge: Created %v, record %s; want rec-2", o.Created, o.Record.MeteringRecordID)
	}
	if got := count(t, s); got != 3 {
		t.Errorf("%d records after purging, want 3 (records are never purged)", got)
	}
}
