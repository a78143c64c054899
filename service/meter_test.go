package service_test

import (
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/service"
)

// meter is a MeterUsage of the demo AMI, now.
func meter(f *fixture, dim string, q int64) *mpmeter.MeterUsageInput {
	return &mpmeter.MeterUsageInput{ProductCode: ptr(amiProduct), UsageDimension: ptr(dim), UsageQuantity: ptr(q), Timestamp: ts(f.now)}
}

// Every failure of MeterUsage: the error, and nothing stored.
func TestMeterUsageRejects(t *testing.T) {
	cases := []struct {
		name   string
		key    string
		region string // the endpoint's, when not the demo region
		in     func(f *fixture) *mpmeter.MeterUsageInput
		code   mpmeter.ErrorCode
	}{
		{name: "a seller's key", key: sellerKey, code: mpmeter.CodeAccessDenied},
		{name: "the buyer's own key", key: buyerKey, code: mpmeter.CodeAccessDenied},
		{name: "another region's endpoint", key: ec2Key, region: "eu-west-1", code: mpmeter.CodeInvalidEndpointRegion},
		{name: "unknown product", key: ec2Key, code: mpmeter.CodeInvalidProductCode,
			in: func(f *fixture) *mpmeter.MeterUsageInput {
				in := meter(f, "requests", 1)
				in.ProductCode = ptr("nosuchprod")
				return in
			}},
		{name: "a SaaS product", key: ec2Key, code: mpmeter.CodeInvalidProductCode,
			in: func(f *fixture) *mpmeter.MeterUsageInput {
				in := meter(f, "users", 1)
				in.ProductCode = ptr(saasProduct)
				return in
			}},
		{name: "dimension not the product's", key: ec2Key, code: mpmeter.CodeInvalidUsageDimension,
			in: func(f *fixture) *mpmeter.MeterUsageInput { return meter(f, "pods", 1) }},
		{name: "timestamp older than the window", key: ec2Key, code: mpmeter.CodeTimestampOutOfBounds,
			in: func(f *fixture) *mpmeter.MeterUsageInput {
				in := meter(f, "requests", 1)
				in.Timestamp = ts(f.now.Add(-6*time.Hour - time.Second))
				return in
			}},
		{name: "timestamp in the future", key: ec2Key, code: mpmeter.CodeTimestampOutOfBounds,
			in: func(f *fixture) *mpmeter.MeterUsageInput {
				in := meter(f, "requests", 1)
				in.Timestamp = ts(f.now.Add(service.DefaultFutureTolerance + time.Second))
				return in
			}},
		{name: "allocations not summing to the quantity", key: ec2Key, code: mpmeter.CodeInvalidUsageAllocations,
			in: func(f *fixture) *mpmeter.MeterUsageInput {
				in := meter(f, "requests", 3)
				in.UsageAllocations = []mpmeter.UsageAllocation{alloc(1, "team", "a"), alloc(1)}
				return in
			}},
		{name: "allocations with one tag set twice", key: ec2Key, code: mpmeter.CodeInvalidUsageAllocations,
			in: func(f *fixture) *mpmeter.MeterUsageInput {
				in := meter(f, "requests", 2)
				in.UsageAllocations = []mpmeter.UsageAllocation{alloc(1), alloc(1)}
				return in
			}},
		{name: "tag key twice in an allocation", key: ec2Key, code: mpmeter.CodeInvalidTag,
			in: func(f *fixture) *mpmeter.MeterUsageInput {
				in := meter(f, "requests", 2)
				in.UsageAllocations = []mpmeter.UsageAllocation{alloc(2, "k", "a", "k", "a")}
				return in
			}},
		{name: "cancelled subscription", key: cancelledEC2, code: mpmeter.CodeCustomerNotEntitled},
		{name: "no subscription", key: ec2Key, code: mpmeter.CodeCustomerNotEntitled,
			in: func(f *fixture) *mpmeter.MeterUsageInput {
				if err := f.store.PutProduct(f.ctx, mpmeter.Product{Code: "newami1", SellerAccountID: "111122223333", Type: mpmeter.ProductAMI, Dimensions: []string{"hours"}}); err != nil {
					f.t.Fatal(err)
				}
				in := meter(f, "hours", 1)
				in.ProductCode = ptr("newami1")
				return in
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			caller := f.caller(c.key)
			if c.region != "" {
				caller.Region = c.region
			}
			in := meter(f, "requests", 1)
			if c.in != nil {
				in = c.in(f)
			}
			out, err := f.svc.MeterUsage(f.ctx, caller, in)
			if out != nil {
				t.Errorf("answer %+v with the error", out)
			}
			wantCode(t, err, c.code)
			f.wantStored(0)
		})
	}
}

// A container product is metered by MeterUsage too.
func TestMeterUsageContainerProduct(t *testing.T) {
	f := newFixture(t)
	in := meter(f, "pods", 2)
	in.ProductCode = ptr(containerProduct)
	out, err := f.svc.MeterUsage(f.ctx, f.caller(ecsKey), in)
	if err != nil {
		t.Fatal(err)
	}
	r := f.wantStored(1)[0]
	if r.MeteringRecordID != *out.MeteringRecordId || r.Kind != mpmeter.UsageMeter || r.ProductCode != containerProduct ||
		r.CustomerAccountID != buyer || r.WorkloadID != f.caller(ecsKey).Workload.ID || r.Quantity != 2 || r.SellerAccountID != "111122223333" {
		t.Errorf("stored %+v", r)
	}
}

// Deduplication: one record per workload, product, dimension and hour;
// AgentCore runtimes are never deduplicated.
func TestMeterUsageDedup(t *testing.T) {
	type step struct {
		name   string
		key    string
		in     func(f *fixture) *mpmeter.MeterUsageInput
		code   mpmeter.ErrorCode // the error, or "" for an answer
		same   bool              // the first step's MeteringRecordId
		stored int
	}
	first := func(f *fixture) *mpmeter.MeterUsageInput { return meter(f, "requests", 4) }
	steps := []step{
		{name: "first", key: ec2Key, in: first, stored: 1},
		{name: "the same request", key: ec2Key, in: first, same: true, stored: 1},
		{name: "the same later in the hour", key: ec2Key, same: true, stored: 1,
			in: func(f *fixture) *mpmeter.MeterUsageInput {
				f.now = t0.Add(29 * time.Minute)
				return first(f)
			}},
		{name: "another quantity", key: ec2Key, code: mpmeter.CodeDuplicateRequest, stored: 1,
			in: func(f *fixture) *mpmeter.MeterUsageInput { return meter(f, "requests", 5) }},
		{name: "allocations", key: ec2Key, code: mpmeter.CodeDuplicateRequest, stored: 1,
			in: func(f *fixture) *mpmeter.MeterUsageInput {
				in := first(f)
				in.UsageAllocations = []mpmeter.UsageAllocation{alloc(4, "team", "a")}
				return in
			}},
		{name: "another dimension", key: ec2Key, stored: 2,
			in: func(f *fixture) *mpmeter.MeterUsageInput { return meter(f, "vcpu_hours", 4) }},
		{name: "the next hour", key: ec2Key, stored: 3,
			in: func(f *fixture) *mpmeter.MeterUsageInput {
				f.now = t0.Add(31 * time.Minute)
				return first(f)
			}},
		{name: "an AgentCore runtime", key: agentKey, stored: 4, in: first},
		{name: "the same from the AgentCore runtime", key: agentKey, stored: 5, in: first},
		{name: "another quantity from the AgentCore runtime", key: agentKey, stored: 6,
			in: func(f *fixture) *mpmeter.MeterUsageInput { return meter(f, "requests", 9) }},
	}
	f := newFixture(t)
	var firstID string
	for _, s := range steps {
		out, err := f.svc.MeterUsage(f.ctx, f.caller(s.key), s.in(f))
		if s.code != "" {
			wantCode(t, err, s.code)
		} else if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		} else if firstID == "" {
			firstID = *out.MeteringRecordId
		} else if (*out.MeteringRecordId == firstID) != s.same {
			t.Errorf("%s: MeteringRecordId %s, first was %s", s.name, *out.MeteringRecordId, firstID)
		}
		f.wantStored(s.stored)
	}
	if f.seen["MeterUsage/accepted"] != 6 || f.seen["MeterUsage/identical"] != 2 || f.seen["MeterUsage/duplicate"] != 2 {
		t.Errorf("observed %v", f.seen)
	}
}

// ClientToken: the same token with the same parameters answers the first
// answer; with others IdempotencyConflictException; tokens are the calling
// workload's and are forgotten after ClientTokenTTL.
func TestMeterUsageClientToken(t *testing.T) {
	type step struct {
		name   string
		key    string
		in     func(f *fixture) *mpmeter.MeterUsageInput
		code   mpmeter.ErrorCode
		same   bool
		stored int
	}
	withToken := func(in *mpmeter.MeterUsageInput, tok string) *mpmeter.MeterUsageInput {
		in.ClientToken = ptr(tok)
		return in
	}
	first := func(f *fixture) *mpmeter.MeterUsageInput {
		in := meter(f, "requests", 4)
		in.UsageAllocations = []mpmeter.UsageAllocation{alloc(1, "team", "<a&b>"), alloc(3)}
		return withToken(in, "tok-1")
	}
	steps := []step{
		{name: "first", key: agentKey, in: first, stored: 1},
		// AgentCore: no hourly dedup, so only the token keeps the retry
		// from being a second record.
		{name: "the retry", key: agentKey, in: first, same: true, stored: 1},
		{name: "the retry later", key: agentKey, same: true, stored: 1,
			in: func(f *fixture) *mpmeter.MeterUsageInput {
				at := f.now
				f.now = f.now.Add(2 * time.Hour)
				in := first(f)
				in.Timestamp = ts(at)
				return in
			}},
		{name: "another quantity", key: agentKey, code: mpmeter.CodeIdempotencyConflict, stored: 1,
			in: func(f *fixture) *mpmeter.MeterUsageInput {
				in := first(f)
				in.Timestamp = ts(t0)
				in.UsageQuantity = ptr(int64(5))
				in.UsageAllocations = []mpmeter.UsageAllocation{alloc(2, "team", "<a&b>"), alloc(3)}
				return in
			}},
		{name: "another timestamp", key: agentKey, code: mpmeter.CodeIdempotencyConflict, stored: 1, in: first},
		{name: "another dimension", key: agentKey, code: mpmeter.CodeIdempotencyConflict, stored: 1,
			in: func(f *fixture) *mpmeter.MeterUsageInput {
				in := meter(f, "vcpu_hours", 4)
				in.Timestamp = ts(t0)
				return withToken(in, "tok-1")
			}},
		{name: "no allocations", key: agentKey, code: mpmeter.CodeIdempotencyConflict, stored: 1,
			in: func(f *fixture) *mpmeter.MeterUsageInput {
				in := meter(f, "requests", 4)
				in.Timestamp = ts(t0)
				return withToken(in, "tok-1")
			}},
		{name: "DryRun does not count", key: agentKey, same: true, stored: 1,
			in: func(f *fixture) *mpmeter.MeterUsageInput {
				in := first(f)
				in.Timestamp = ts(t0)
				in.DryRun = ptr(false)
				return in
			}},
		{name: "another token", key: agentKey, stored: 2,
			in: func(f *fixture) *mpmeter.MeterUsageInput {
				in := first(f)
				in.ClientToken = ptr("tok-2")
				return in
			}},
		{name: "the token from another workload", key: ec2Key, stored: 3,
			in: func(f *fixture) *mpmeter.MeterUsageInput { return withToken(meter(f, "requests", 7), "tok-1") }},
		{name: "after the token's TTL", key: agentKey, stored: 4,
			in: func(f *fixture) *mpmeter.MeterUsageInput {
				f.now = t0.Add(service.DefaultClientTokenTTL + time.Second)
				return withToken(meter(f, "requests", 8), "tok-1")
			}},
	}
	f := newFixture(t)
	var firstID string
	for _, s := range steps {
		out, err := f.svc.MeterUsage(f.ctx, f.caller(s.key), s.in(f))
		if s.code != "" {
			wantCode(t, err, s.code)
		} else if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		} else if firstID == "" {
			firstID = *out.MeteringRecordId
		} else if (*out.MeteringRecordId == firstID) != s.same {
			t.Errorf("%s: MeteringRecordId %s, first was %s", s.name, *out.MeteringRecordId, firstID)
		}
		f.wantStored(s.stored)
	}
}
