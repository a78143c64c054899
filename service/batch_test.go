package service_test

import (
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/service"
)

// rec is a usage record of the demo customer, metered now.
func rec(f *fixture, dim string, q int64) mpmeter.UsageRecord {
	return mpmeter.UsageRecord{CustomerIdentifier: ptr(customer), Dimension: ptr(dim), Quantity: ptr(q), Timestamp: ts(f.now)}
}

func batch(product string, recs ...mpmeter.UsageRecord) *mpmeter.BatchMeterUsageInput {
	in := &mpmeter.BatchMeterUsageInput{UsageRecords: recs}
	if product != "" {
		in.ProductCode = ptr(product)
	}
	return in
}

// Every whole-request failure of BatchMeterUsage: the error, and nothing
// stored (a good record in the same batch included).
func TestBatchMeterUsageRejects(t *testing.T) {
	other := "arn:aws:license-manager::444455556666:license/l-other"
	cases := []struct {
		name  string
		key   string // the caller; the seller when empty
		setup func(f *fixture)
		in    func(f *fixture) *mpmeter.BatchMeterUsageInput
		code  mpmeter.ErrorCode
	}{
		{name: "unknown product", code: mpmeter.CodeInvalidProductCode,
			in: func(f *fixture) *mpmeter.BatchMeterUsageInput { return batch("nosuchprod", rec(f, "users", 1)) }},
		{name: "another seller's product", code: mpmeter.CodeInvalidProductCode,
			in: func(f *fixture) *mpmeter.BatchMeterUsageInput { return batch(otherProduct, rec(f, "users", 1)) }},
		{name: "the caller's AMI product", code: mpmeter.CodeInvalidProductCode,
			in: func(f *fixture) *mpmeter.BatchMeterUsageInput { return batch(amiProduct, rec(f, "requests", 1)) }},
		{name: "a buyer calling", key: buyerKey, code: mpmeter.CodeInvalidProductCode,
			in: func(f *fixture) *mpmeter.BatchMeterUsageInput { return batch(saasProduct, rec(f, "users", 1)) }},
		{name: "dimension not the product's", code: mpmeter.CodeInvalidUsageDimension,
			in: func(f *fixture) *mpmeter.BatchMeterUsageInput {
				return batch(saasProduct, rec(f, "users", 1), rec(f, "vcpu_hours", 1))
			}},
		{name: "unknown customer identifier", code: mpmeter.CodeInvalidCustomerID,
			in: func(f *fixture) *mpmeter.BatchMeterUsageInput {
				r := rec(f, "users", 1)
				r.CustomerIdentifier = ptr("cust-nobody")
				return batch(saasProduct, rec(f, "gigabytes", 1), r)
			}},
		{name: "another product's customer identifier", code: mpmeter.CodeInvalidCustomerID,
			setup: func(f *fixture) {
				put(f, mpmeter.Subscription{AccountID: buyer, ProductCode: amiProduct, CustomerIdentifier: "cust-ami-only", LicenseArn: other, Status: mpmeter.SubscriptionActive})
			},
			in: func(f *fixture) *mpmeter.BatchMeterUsageInput {
				r := rec(f, "users", 1)
				r.CustomerIdentifier = ptr("cust-ami-only")
				return batch(saasProduct, r)
			}},
		{name: "license not the customer's agreement", code: mpmeter.CodeInvalidLicense,
			setup: func(f *fixture) {
				put(f, mpmeter.Subscription{AccountID: cancelledBuyer, ProductCode: saasProduct, CustomerIdentifier: "cust-x", LicenseArn: other, Status: mpmeter.SubscriptionActive})
			},
			in: func(f *fixture) *mpmeter.BatchMeterUsageInput {
				r := rec(f, "users", 1)
				r.LicenseArn = ptr(other)
				return batch(saasProduct, r)
			}},
		{name: "unknown license, by account", code: mpmeter.CodeInvalidLicense,
			in: func(f *fixture) *mpmeter.BatchMeterUsageInput {
				r := rec(f, "users", 1)
				r.CustomerIdentifier, r.CustomerAWSAccountId, r.LicenseArn = nil, ptr(buyer), ptr(other)
				return batch(saasProduct, r)
			}},
		{name: "license of another account", code: mpmeter.CodeInvalidLicense,
			in: func(f *fixture) *mpmeter.BatchMeterUsageInput {
				r := rec(f, "users", 1)
				r.CustomerIdentifier, r.CustomerAWSAccountId, r.LicenseArn = nil, ptr(cancelledBuyer), ptr(license)
				return batch(saasProduct, r)
			}},
		{name: "license of another product", code: mpmeter.CodeInvalidLicense,
			in: func(f *fixture) *mpmeter.BatchMeterUsageInput {
				r := rec(f, "users", 1)
				r.CustomerIdentifier, r.CustomerAWSAccountId = nil, ptr(buyer)
				r.LicenseArn = ptr(licenseOf(f, buyer, amiProduct))
				return batch(saasProduct, r)
			}},
		{name: "no product code, unknown license", code: mpmeter.CodeInvalidLicense,
			in: func(f *fixture) *mpmeter.BatchMeterUsageInput {
				r := rec(f, "users", 1)
				r.LicenseArn = ptr(other)
				return batch("", r)
			}},
		{name: "no product code, license of another seller's product", code: mpmeter.CodeInvalidLicense,
			in: func(f *fixture) *mpmeter.BatchMeterUsageInput {
				r := rec(f, "users", 1)
				r.CustomerIdentifier, r.CustomerAWSAccountId = nil, ptr(buyer)
				r.LicenseArn = ptr(licenseOf(f, buyer, otherProduct))
				return batch("", r)
			}},
		{name: "no product code, licenses of two products", code: mpmeter.CodeInvalidLicense,
			in: func(f *fixture) *mpmeter.BatchMeterUsageInput {
				a := rec(f, "users", 1)
				a.LicenseArn = ptr(license)
				b := rec(f, "users", 1)
				b.CustomerIdentifier, b.CustomerAWSAccountId = nil, ptr(buyer)
				b.LicenseArn = ptr(licenseOf(f, buyer, amiProduct))
				return batch("", a, b)
			}},
		{name: "timestamp older than the window", code: mpmeter.CodeTimestampOutOfBounds,
			in: func(f *fixture) *mpmeter.BatchMeterUsageInput {
				r := rec(f, "users", 1)
				r.Timestamp = ts(f.now.Add(-6*time.Hour - time.Second))
				return batch(saasProduct, rec(f, "gigabytes", 1), r)
			}},
		{name: "timestamp in the future", code: mpmeter.CodeTimestampOutOfBounds,
			in: func(f *fixture) *mpmeter.BatchMeterUsageInput {
				r := rec(f, "users", 1)
				r.Timestamp = ts(f.now.Add(service.DefaultFutureTolerance + time.Second))
				return batch(saasProduct, r)
			}},
		{name: "allocations not summing to the quantity", code: mpmeter.CodeInvalidUsageAllocations,
			in: func(f *fixture) *mpmeter.BatchMeterUsageInput {
				r := rec(f, "users", 5)
				r.UsageAllocations = []mpmeter.UsageAllocation{alloc(2, "team", "a"), alloc(2, "team", "b")}
				return batch(saasProduct, r)
			}},
		{name: "allocations with one tag set twice", code: mpmeter.CodeInvalidUsageAllocations,
			in: func(f *fixture) *mpmeter.BatchMeterUsageInput {
				r := rec(f, "users", 4)
				r.UsageAllocations = []mpmeter.UsageAllocation{alloc(2, "team", "a", "env", "prod"), alloc(2, "env", "prod", "team", "a")}
				return batch(saasProduct, r)
			}},
		{name: "tag key twice in an allocation", code: mpmeter.CodeInvalidTag,
			in: func(f *fixture) *mpmeter.BatchMeterUsageInput {
				r := rec(f, "users", 4)
				r.UsageAllocations = []mpmeter.UsageAllocation{alloc(4, "team", "a", "team", "b")}
				return batch(saasProduct, r)
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			if c.setup != nil {
				c.setup(f)
			}
			key := c.key
			if key == "" {
				key = sellerKey
			}
			out, err := f.svc.BatchMeterUsage(f.ctx, f.caller(key), c.in(f))
			if out != nil {
				t.Errorf("answer %+v with the error", out)
			}
			wantCode(t, err, c.code)
			f.wantStored(0)
		})
	}
}

// Each record's status, and what is stored for it.
func TestBatchMeterUsageStatuses(t *testing.T) {
	f := newFixture(t)
	byAccount := rec(f, "users", 2)
	byAccount.CustomerIdentifier, byAccount.CustomerAWSAccountId = nil, ptr(buyer)
	byLicense := rec(f, "gigabytes", 3)
	byLicense.LicenseArn = ptr(license)
	cancelled := rec(f, "users", 4)
	cancelled.CustomerIdentifier = ptr(cancelledCustomr)
	noAgreement := rec(f, "users", 5)
	noAgreement.CustomerIdentifier, noAgreement.CustomerAWSAccountId = nil, ptr("999988887777")
	oldest := rec(f, "users", 6)
	oldest.CustomerIdentifier, oldest.Timestamp = nil, ts(f.now.Add(-6*time.Hour+time.Second))
	oldest.CustomerAWSAccountId = ptr(buyer)
	allocated := rec(f, "gigabytes", 7)
	allocated.Timestamp = ts(f.now.Add(-time.Hour))
	allocated.UsageAllocations = []mpmeter.UsageAllocation{alloc(3, "team", "a"), alloc(4)}

	in := batch(saasProduct, byAccount, byLicense, cancelled, noAgreement, oldest, allocated)
	out, err := f.svc.BatchMeterUsage(f.ctx, f.caller(sellerKey), in)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Success", "Success", "CustomerNotSubscribed", "CustomerNotSubscribed", "Success", "Success"}
	if len(out.Results) != len(want) || len(out.UnprocessedRecords) != 0 {
		t.Fatalf("results %+v, unprocessed %+v", out.Results, out.UnprocessedRecords)
	}
	stored := map[string]mpmeter.MeteringRecord{}
	for _, r := range f.wantStored(4) {
		stored[r.MeteringRecordID] = r
	}
	for i, res := range out.Results {
		if *res.Status != want[i] {
			t.Errorf("record %d: status %s, want %s", i, *res.Status, want[i])
		}
		if res.UsageRecord != &in.UsageRecords[i] {
			t.Errorf("record %d: result does not carry its usage record", i)
		}
		if (res.MeteringRecordId != nil) != (want[i] == "Success") {
			t.Fatalf("record %d: MeteringRecordId %v with status %s", i, res.MeteringRecordId, *res.Status)
		}
		if res.MeteringRecordId == nil {
			continue
		}
		r, ok := stored[*res.MeteringRecordId]
		if !ok {
			t.Fatalf("record %d: %s not stored", i, *res.MeteringRecordId)
		}
		u := in.UsageRecords[i]
		if r.Kind != mpmeter.UsageBatch || r.ProductCode != saasProduct || r.SellerAccountID != "111122223333" ||
			r.CustomerAccountID != buyer || r.CustomerIdentifier != customer || r.LicenseArn != license ||
			r.Dimension != *u.Dimension || r.Quantity != *u.Quantity || !r.Timestamp.Equal(u.Timestamp.Time) {
			t.Errorf("record %d stored as %+v", i, r)
		}
	}
	if r := stored[*out.Results[5].MeteringRecordId]; len(r.Allocations) != 2 || r.Allocations[0].Quantity != 3 || r.Allocations[0].Tags[0] != (mpmeter.AllocationTag{Key: "team", Value: "a"}) || r.Allocations[1].Tags != nil {
		t.Errorf("allocations stored as %+v", r.Allocations)
	}
	if f.seen["BatchMeterUsage/accepted"] != 4 || f.seen["BatchMeterUsage/not_subscribed"] != 2 || len(f.seen) != 2 {
		t.Errorf("observed %v", f.seen)
	}
}

// Deduplication: one record per agreement, dimension and hour.
func TestBatchMeterUsageDedup(t *testing.T) {
	type step struct {
		name   string
		record func(f *fixture) mpmeter.UsageRecord
		status string
		same   bool // the MeteringRecordId of the first step
		stored int  // records stored after the step
	}
	first := func(f *fixture) mpmeter.UsageRecord {
		r := rec(f, "users", 5)
		r.UsageAllocations = []mpmeter.UsageAllocation{alloc(2, "team", "a", "env", "prod"), alloc(3, "team", "b")}
		return r
	}
	steps := []step{
		{name: "first", record: first, status: "Success", stored: 1},
		{name: "the same record later in the hour", status: "Success", same: true, stored: 1,
			record: func(f *fixture) mpmeter.UsageRecord {
				f.now = t0.Add(29 * time.Minute) // the clock moves on; the record is of now
				return first(f)
			}},
		{name: "the same record by account id and license", status: "Success", same: true, stored: 1,
			record: func(f *fixture) mpmeter.UsageRecord {
				r := first(f)
				r.CustomerIdentifier, r.CustomerAWSAccountId, r.LicenseArn = nil, ptr(buyer), ptr(license)
				return r
			}},
		{name: "the same allocations in another order", status: "Success", same: true, stored: 1,
			record: func(f *fixture) mpmeter.UsageRecord {
				r := first(f)
				r.UsageAllocations = []mpmeter.UsageAllocation{alloc(3, "team", "b"), alloc(2, "env", "prod", "team", "a")}
				return r
			}},
		{name: "other allocations of the same quantity", status: "DuplicateRecord", stored: 1,
			record: func(f *fixture) mpmeter.UsageRecord {
				r := first(f)
				r.UsageAllocations = []mpmeter.UsageAllocation{alloc(1, "team", "a", "env", "prod"), alloc(4, "team", "b")}
				return r
			}},
		{name: "no allocations", status: "DuplicateRecord", stored: 1,
			record: func(f *fixture) mpmeter.UsageRecord { return rec(f, "users", 5) }},
		{name: "another quantity", status: "DuplicateRecord", stored: 1,
			record: func(f *fixture) mpmeter.UsageRecord { return rec(f, "users", 6) }},
		{name: "the earlier hour", status: "Success", stored: 2,
			record: func(f *fixture) mpmeter.UsageRecord {
				r := rec(f, "users", 6)
				r.Timestamp = ts(t0.Add(-31 * time.Minute))
				return r
			}},
		{name: "another dimension", status: "Success", stored: 3,
			record: func(f *fixture) mpmeter.UsageRecord { return rec(f, "gigabytes", 5) }},
	}
	f := newFixture(t)
	var firstID string
	for _, s := range steps {
		out, err := f.svc.BatchMeterUsage(f.ctx, f.caller(sellerKey), batch(saasProduct, s.record(f)))
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		res := out.Results[0]
		if *res.Status != s.status {
			t.Errorf("%s: status %s, want %s", s.name, *res.Status, s.status)
		}
		switch {
		case s.status != "Success":
			if res.MeteringRecordId != nil {
				t.Errorf("%s: MeteringRecordId %s with %s", s.name, *res.MeteringRecordId, s.status)
			}
		case firstID == "":
			firstID = *res.MeteringRecordId
		case (*res.MeteringRecordId == firstID) != s.same:
			t.Errorf("%s: MeteringRecordId %s, first was %s", s.name, *res.MeteringRecordId, firstID)
		}
		f.wantStored(s.stored)
	}
	want := map[string]int{"BatchMeterUsage/accepted": 3, "BatchMeterUsage/identical": 3, "BatchMeterUsage/duplicate": 3}
	for k, n := range want {
		if f.seen[k] != n {
			t.Errorf("observed %v, want %v", f.seen, want)
			break
		}
	}
}

// One slot named twice in one batch is stored once; both answer its id.
func TestBatchMeterUsageSameSlotTwiceInABatch(t *testing.T) {
	f := newFixture(t)
	byAccount := rec(f, "users", 1)
	byAccount.CustomerIdentifier, byAccount.CustomerAWSAccountId = nil, ptr(buyer)
	out, err := f.svc.BatchMeterUsage(f.ctx, f.caller(sellerKey), batch(saasProduct, rec(f, "users", 1), byAccount, rec(f, "users", 2)))
	if err != nil {
		t.Fatal(err)
	}
	r := out.Results
	if *r[0].Status != "Success" || *r[1].Status != "Success" || *r[2].Status != "DuplicateRecord" || *r[0].MeteringRecordId != *r[1].MeteringRecordId {
		t.Errorf("results %s %s %s", *r[0].Status, *r[1].Status, *r[2].Status)
	}
	if recs := f.wantStored(1); recs[0].MeteringRecordID != *r[0].MeteringRecordId {
		t.Errorf("stored %s, answered %s", recs[0].MeteringRecordID, *r[0].MeteringRecordId)
	}
}

// put stores a subscription.
func put(f *fixture, s mpmeter.Subscription) {
	f.t.Helper()
	if err := f.store.PutSubscription(f.ctx, s); err != nil {
		f.t.Fatal(err)
	}
}

// licenseOf is the license ARN of account's first agreement for product.
func licenseOf(f *fixture, account, product string) string {
	f.t.Helper()
	subs, err := f.store.SubscriptionsOf(f.ctx, account, product)
	if err != nil || len(subs) == 0 {
		f.t.Fatalf("subscriptions of %s to %s: %v %v", account, product, subs, err)
	}
	return subs[0].LicenseArn
}
