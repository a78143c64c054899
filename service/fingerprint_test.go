package service_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/service"
)

// The encodings before they were written out: json.Marshal of the domain
// and API types, as stored by earlier versions. Kept here to make
// old-format rows.

func legacyRecordFingerprint(quantity int64, allocs []mpmeter.Allocation) string {
	if len(allocs) == 0 {
		return fmt.Sprintf("q=%d", quantity)
	}
	b, _ := json.Marshal(allocs)
	sum := sha256.Sum256(b)
	return fmt.Sprintf("q=%d;a=%s", quantity, hex.EncodeToString(sum[:12]))
}

func legacyTokenFingerprint(in *mpmeter.MeterUsageInput) string {
	b, _ := json.Marshal([]any{*in.ProductCode, in.Timestamp.UnixMicro(), *in.UsageDimension, *in.UsageQuantity, in.UsageAllocations})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// domainAllocations is what the service makes of a request's allocations.
func domainAllocations(in []mpmeter.UsageAllocation) []mpmeter.Allocation {
	if in == nil {
		return nil
	}
	out := make([]mpmeter.Allocation, len(in))
	for i, a := range in {
		out[i].Quantity = *a.AllocatedUsageQuantity
		for _, t := range a.Tags {
			out[i].Tags = append(out[i].Tags, mpmeter.AllocationTag{Key: *t.Key, Value: *t.Value})
		}
	}
	return out
}

// randomAllocations makes up to 4 allocations of distinct tag sets from a
// character set that includes what JSON escapes (the model's pattern allows
// " & < \).
func randomAllocations(r *rand.Rand) []mpmeter.UsageAllocation {
	const chars = `ab Z09+-=._:/@"&<\`
	word := func() string {
		b := make([]byte, 1+r.IntN(6))
		for i := range b {
			b[i] = chars[r.IntN(len(chars))]
		}
		return string(b)
	}
	n := r.IntN(5)
	if n == 0 {
		return nil
	}
	out := make([]mpmeter.UsageAllocation, n)
	for i := range out {
		var kv []string
		for j := range r.IntN(4) {
			kv = append(kv, "k"+strconv.Itoa(j)+word(), word())
		}
		kv = append(kv, "unique", strconv.Itoa(i)) // distinct tag sets
		if i == 0 && r.IntN(2) == 0 {
			kv = nil // the untagged bucket
		}
		out[i] = alloc(r.Int64N(1000), kv...)
	}
	return out
}

// The explicit encodings produce what earlier versions stored: record
// fingerprints for allocations already in canonical order (one allocation,
// or sorted ones), every ClientToken fingerprint.
func TestFingerprintsMatchTheEarlierEncoding(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	if got := service.Fingerprint(7, nil); got != "q=7" {
		t.Errorf("fingerprint without allocations = %q", got)
	}
	one := []mpmeter.Allocation{{Quantity: 3, Tags: []mpmeter.AllocationTag{{Key: "b", Value: "<x>"}, {Key: "a", Value: "&"}}}}
	sortedOne := []mpmeter.Allocation{{Quantity: 3, Tags: []mpmeter.AllocationTag{{Key: "a", Value: "&"}, {Key: "b", Value: "<x>"}}}}
	if got, want := service.Fingerprint(3, one), legacyRecordFingerprint(3, sortedOne); got != want {
		t.Errorf("fingerprint = %q, the earlier encoding %q", got, want)
	}
	for i := range 500 {
		in := &mpmeter.MeterUsageInput{
			ProductCode: ptr("prod" + strconv.Itoa(i)), UsageDimension: ptr(`dim"<&` + strconv.Itoa(i)),
			UsageQuantity: ptr(r.Int64N(1 << 40)), Timestamp: ts(time.UnixMicro(r.Int64N(1 << 52))),
			UsageAllocations: randomAllocations(r),
		}
		got := service.MeterRequestFingerprint(*in.ProductCode, in.Timestamp.Time, *in.UsageDimension, *in.UsageQuantity, domainAllocations(in.UsageAllocations))
		if want := legacyTokenFingerprint(in); got != want {
			b, _ := json.Marshal(in)
			t.Fatalf("token fingerprint of %s = %s, the earlier encoding %s", b, got, want)
		}
	}
}

// A record's fingerprint does not depend on the order of its allocations or
// of their tags, and does depend on every quantity, key and value.
func TestRecordFingerprintIsCanonical(t *testing.T) {
	a := domainAllocations([]mpmeter.UsageAllocation{alloc(1, "team", "a", "env", "prod"), alloc(2), alloc(3, "team", "b")})
	b := domainAllocations([]mpmeter.UsageAllocation{alloc(3, "team", "b"), alloc(1, "env", "prod", "team", "a"), alloc(2)})
	if service.Fingerprint(6, a) != service.Fingerprint(6, b) {
		t.Error("the order of allocations or tags changes the fingerprint")
	}
	for name, other := range map[string][]mpmeter.UsageAllocation{
		"quantity moved": {alloc(2, "team", "a", "env", "prod"), alloc(1), alloc(3, "team", "b")},
		"value":          {alloc(1, "team", "a", "env", "dev"), alloc(2), alloc(3, "team", "b")},
		"key":            {alloc(1, "team", "a", "stage", "prod"), alloc(2), alloc(3, "team", "b")},
		"tag moved":      {alloc(1, "team", "a"), alloc(2, "env", "prod"), alloc(3, "team", "b")},
	} {
		if service.Fingerprint(6, a) == service.Fingerprint(6, domainAllocations(other)) {
			t.Errorf("%s: same fingerprint", name)
		}
	}
	if service.Fingerprint(6, a) == service.Fingerprint(7, a) {
		t.Error("the quantity does not change the fingerprint")
	}
}

// A database written by an earlier version: a record whose fingerprint
// hashed its allocations as listed, and a ClientToken. Honest retries still
// find them.
func TestEarlierFingerprintsInTheDatabase(t *testing.T) {
	f := newFixture(t)
	allocs := []mpmeter.UsageAllocation{alloc(3, "team", "b"), alloc(2, "team", "a", "env", "prod")}
	old := mpmeter.MeteringRecord{
		MeteringRecordID: "00000000-0000-4000-8000-000000000001", Kind: mpmeter.UsageBatch,
		ProductCode: saasProduct, SellerAccountID: "111122223333", CustomerAccountID: buyer,
		CustomerIdentifier: customer, LicenseArn: license, Dimension: "users", Timestamp: t0, Quantity: 5,
		Allocations: domainAllocations(allocs),
		DedupKey:    "batch|" + license + "|users|" + strconv.FormatInt(t0.Truncate(time.Hour).Unix(), 10),
		Fingerprint: legacyRecordFingerprint(5, domainAllocations(allocs)),
		CreatedAt:   t0,
	}
	if old.Fingerprint == service.Fingerprint(5, old.Allocations) {
		t.Fatal("test premise: the stored fingerprint is not the current one")
	}
	meterIn := meter(f, "requests", 4)
	meterIn.UsageAllocations = []mpmeter.UsageAllocation{alloc(3, "z", "1"), alloc(1, "a", "<&>")}
	meterIn.ClientToken = ptr("tok-old")
	agent := f.caller(agentKey)
	oldMeter := mpmeter.MeteringRecord{
		MeteringRecordID: "00000000-0000-4000-8000-000000000002", Kind: mpmeter.UsageMeter,
		ProductCode: amiProduct, SellerAccountID: "111122223333", CustomerAccountID: buyer, WorkloadID: agent.Workload.ID,
		Dimension: "requests", Timestamp: t0, Quantity: 4, Allocations: domainAllocations(meterIn.UsageAllocations),
		Fingerprint: legacyRecordFingerprint(4, domainAllocations(meterIn.UsageAllocations)), CreatedAt: t0,
	}
	tok := &mpmeter.IdempotencyToken{Scope: "MeterUsage|" + buyer + "|" + agent.Workload.ID, Token: "tok-old",
		Fingerprint: legacyTokenFingerprint(meterIn), ExpiresAt: t0.Add(time.Hour)}
	for _, w := range []struct {
		rec mpmeter.MeteringRecord
		tok *mpmeter.IdempotencyToken
	}{{old, nil}, {oldMeter, tok}} {
		if _, err := f.store.RecordUsage(f.ctx, []mpmeter.MeteringRecord{w.rec}, w.tok); err != nil {
			t.Fatal(err)
		}
	}

	r := rec(f, "users", 5)
	r.UsageAllocations = allocs
	out, err := f.svc.BatchMeterUsage(f.ctx, f.caller(sellerKey), batch(saasProduct, r))
	if err != nil {
		t.Fatal(err)
	}
	if res := out.Results[0]; *res.Status != "Success" || *res.MeteringRecordId != old.MeteringRecordID {
		t.Errorf("the same record again: %s %v, want Success %s", *res.Status, res.MeteringRecordId, old.MeteringRecordID)
	}
	r.UsageAllocations = []mpmeter.UsageAllocation{alloc(2, "env", "prod", "team", "a"), alloc(3, "team", "b")}
	out, err = f.svc.BatchMeterUsage(f.ctx, f.caller(sellerKey), batch(saasProduct, r))
	if err != nil {
		t.Fatal(err)
	}
	if res := out.Results[0]; *res.Status != "Success" || *res.MeteringRecordId != old.MeteringRecordID {
		t.Errorf("the same record, allocations reordered: %s %v, want Success %s", *res.Status, res.MeteringRecordId, old.MeteringRecordID)
	}
	r.UsageAllocations = []mpmeter.UsageAllocation{alloc(1, "team", "b"), alloc(4, "team", "a", "env", "prod")}
	out, err = f.svc.BatchMeterUsage(f.ctx, f.caller(sellerKey), batch(saasProduct, r))
	if err != nil {
		t.Fatal(err)
	}
	if res := out.Results[0]; *res.Status != "DuplicateRecord" {
		t.Errorf("other allocations: %s, want DuplicateRecord", *res.Status)
	}

	mout, err := f.svc.MeterUsage(f.ctx, agent, meterIn)
	if err != nil {
		t.Fatalf("the ClientToken's retry: %v", err)
	}
	if *mout.MeteringRecordId != oldMeter.MeteringRecordID {
		t.Errorf("the ClientToken's retry answered %s, want %s", *mout.MeteringRecordId, oldMeter.MeteringRecordID)
	}
	meterIn.UsageQuantity = ptr(int64(5))
	meterIn.UsageAllocations = []mpmeter.UsageAllocation{alloc(4, "z", "1"), alloc(1, "a", "<&>")}
	_, err = f.svc.MeterUsage(f.ctx, agent, meterIn)
	wantCode(t, err, mpmeter.CodeIdempotencyConflict)
	f.wantStored(2)
}
