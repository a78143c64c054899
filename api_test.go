package mpmeter_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
)

func TestTimestampAcceptsIntegersAndFractions(t *testing.T) {
	for in, want := range map[string]time.Time{
		`1795514700`:       time.Unix(1795514700, 0),
		`1795514700.25`:    time.Unix(1795514700, 250e6),
		`1.7955147001e9`:   time.Unix(1795514700, 100e6),
		`1795514700.12345`: time.Unix(1795514700, 123450e3),
	} {
		var ts mpmeter.Timestamp
		if err := json.Unmarshal([]byte(in), &ts); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if !ts.Equal(want) {
			t.Errorf("%s: got %v, want %v", in, ts.Time, want)
		}
	}
	for _, bad := range []string{`"2026-11-25T00:00:00Z"`, `"1795514700"`, `true`, `{}`, `[]`, `1e300`} {
		var ts mpmeter.Timestamp
		if err := json.Unmarshal([]byte(bad), &ts); err == nil {
			t.Errorf("%s accepted as %v", bad, ts)
		}
	}
}

func TestTimestampMarshalsNumbers(t *testing.T) {
	for ts, want := range map[time.Time]string{
		time.Unix(1795514700, 0):        `1795514700`,
		time.Unix(1795514700, 250e6):    `1795514700.25`,
		time.Unix(1795514700, 123456e3): `1795514700.123`,
	} {
		b, err := json.Marshal(mpmeter.Timestamp{Time: ts})
		if err != nil || string(b) != want {
			t.Errorf("%v: got %s %v, want %s", ts, b, err, want)
		}
	}
}

func TestValidatePathsAndCounts(t *testing.T) {
	s := func(v string) *string { return &v }
	n := func(v int64) *int64 { return &v }
	in := &mpmeter.BatchMeterUsageInput{
		ProductCode: s(strings.Repeat("p", 256)),
		UsageRecords: []mpmeter.UsageRecord{
			{Dimension: s("users"), Timestamp: mpmeter.NewTimestamp(time.Now())},
			{Dimension: s("users"), Quantity: n(1 << 31), UsageAllocations: []mpmeter.UsageAllocation{{Tags: []mpmeter.Tag{{Key: s(""), Value: s("v")}}}}},
		},
	}
	err := in.Validate()
	e, ok := err.(*mpmeter.Error)
	if !ok || e.Code != mpmeter.CodeValidation {
		t.Fatalf("got %v", err)
	}
	for _, want := range []string{
		"5 validation errors detected: ",
		"Value null at 'usageRecords.2.member.timestamp' failed to satisfy constraint: Member must not be null",
		"Value '2147483648' at 'usageRecords.2.member.quantity' failed to satisfy constraint: Member must have value less than or equal to 2147483647",
		"Value null at 'usageRecords.2.member.usageAllocations.1.member.allocatedUsageQuantity' failed to satisfy constraint: Member must not be null",
		"Value '' at 'usageRecords.2.member.usageAllocations.1.member.tags.1.member.key' failed to satisfy constraint: Member must have length greater than or equal to 1",
		"at 'productCode' failed to satisfy constraint: Member must have length less than or equal to 255",
	} {
		if !strings.Contains(e.Message, want) {
			t.Errorf("message lacks %q:\n%s", want, e.Message)
		}
	}
	ok2 := &mpmeter.ResolveCustomerInput{RegistrationToken: s("t")}
	if err := ok2.Validate(); err != nil {
		t.Fatalf("valid input: %v", err)
	}
}

// The model's LicenseArn pattern has a {0,1023} repeat that RE2 cannot
// compile as is; the generated pattern must still accept what it accepts.
func TestLicenseArnPatternKeepsItsLimit(t *testing.T) {
	arn := func(tail int) *string {
		v := "arn:aws:license-manager::444455556666:l" + strings.Repeat("x", tail)
		return &v
	}
	rec := func(a *string) *mpmeter.BatchMeterUsageInput {
		d := "users"
		acct := "444455556666"
		return &mpmeter.BatchMeterUsageInput{UsageRecords: []mpmeter.UsageRecord{{Dimension: &d, Timestamp: mpmeter.NewTimestamp(time.Now()), LicenseArn: a, CustomerAWSAccountId: &acct}}}
	}
	if err := rec(arn(1023)).Validate(); err != nil {
		t.Fatalf("1024-character resource accepted by the model, refused here: %v", err)
	}
	if err := rec(arn(1024)).Validate(); err == nil {
		t.Fatal("1025-character resource refused by the model, accepted here")
	}
}

// The cross-field rules of BatchMeterUsage answer like the model's checks,
// one violation (the first) at a time, and only once the model's hold.
func TestBatchMeterUsageCrossFieldRules(t *testing.T) {
	s := func(v string) *string { return &v }
	rec := func(id, account, license string) mpmeter.UsageRecord {
		r := mpmeter.UsageRecord{Dimension: s("users"), Timestamp: mpmeter.NewTimestamp(time.Now())}
		if id != "" {
			r.CustomerIdentifier = s(id)
		}
		if account != "" {
			r.CustomerAWSAccountId = s(account)
		}
		if license != "" {
			r.LicenseArn = s(license)
		}
		return r
	}
	const arn = "arn:aws:license-manager::444455556666:license/l-0123456789abcdef"
	for _, c := range []struct {
		name string
		in   mpmeter.BatchMeterUsageInput
		want string // "" for valid
	}{
		{"product code and identifier", mpmeter.BatchMeterUsageInput{ProductCode: s("p"), UsageRecords: []mpmeter.UsageRecord{rec("c", "", "")}}, ""},
		{"licenses instead of a product code", mpmeter.BatchMeterUsageInput{UsageRecords: []mpmeter.UsageRecord{rec("", "444455556666", arn), rec("c", "", arn)}}, ""},
		{"no customer", mpmeter.BatchMeterUsageInput{ProductCode: s("p"), UsageRecords: []mpmeter.UsageRecord{rec("c", "", ""), rec("", "", "")}},
			"1 validation error detected: Value null at 'usageRecords.2.member.customerIdentifier' failed to satisfy constraint: Exactly one of CustomerIdentifier and CustomerAWSAccountId must be provided"},
		{"empty identifier is none", mpmeter.BatchMeterUsageInput{ProductCode: s("p"), UsageRecords: []mpmeter.UsageRecord{rec("", "", "")}},
			"1 validation error detected: Value null at 'usageRecords.1.member.customerIdentifier' failed to satisfy constraint: Exactly one of CustomerIdentifier and CustomerAWSAccountId must be provided"},
		{"both customers", mpmeter.BatchMeterUsageInput{ProductCode: s("p"), UsageRecords: []mpmeter.UsageRecord{rec("c", "444455556666", ""), rec("", "", "")}},
			"1 validation error detected: Value '444455556666' at 'usageRecords.1.member.customerAWSAccountId' failed to satisfy constraint: Exactly one of CustomerIdentifier and CustomerAWSAccountId must be provided"},
		{"no product code, a record without license", mpmeter.BatchMeterUsageInput{UsageRecords: []mpmeter.UsageRecord{rec("c", "", arn), rec("c", "", "")}},
			"1 validation error detected: Value null at 'productCode' failed to satisfy constraint: ProductCode is required when a usage record has no LicenseArn (usageRecords.2.member.licenseArn)"},
		{"empty product code is none", mpmeter.BatchMeterUsageInput{ProductCode: s(""), UsageRecords: []mpmeter.UsageRecord{rec("", "", "")}},
			"1 validation error detected: Value null at 'productCode' failed to satisfy constraint: ProductCode is required when a usage record has no LicenseArn (usageRecords.1.member.licenseArn)"},
		{"no product code, no records", mpmeter.BatchMeterUsageInput{UsageRecords: []mpmeter.UsageRecord{}},
			"1 validation error detected: Value null at 'productCode' failed to satisfy constraint: ProductCode is required when no usage record carries a LicenseArn"},
		{"model first", mpmeter.BatchMeterUsageInput{UsageRecords: []mpmeter.UsageRecord{{Timestamp: mpmeter.NewTimestamp(time.Now())}}},
			"1 validation error detected: Value null at 'usageRecords.1.member.dimension' failed to satisfy constraint: Member must not be null"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.in.Validate()
			if c.want == "" {
				if err != nil {
					t.Fatalf("valid input refused: %v", err)
				}
				return
			}
			e, ok := err.(*mpmeter.Error)
			if !ok || e.Code != mpmeter.CodeValidation || e.Message != c.want {
				t.Fatalf("got %v\nwant ValidationException: %s", err, c.want)
			}
		})
	}
}

// List lengths are checked for every list type (one generic helper) and the
// value is quoted as JSON.
func TestListLengths(t *testing.T) {
	s := func(v string) *string { return &v }
	n := func(v int64) *int64 { return &v }
	records := make([]mpmeter.UsageRecord, 26)
	for i := range records {
		records[i] = mpmeter.UsageRecord{CustomerIdentifier: s("c"), Dimension: s("d"), Timestamp: mpmeter.NewTimestamp(time.Unix(1795514700, 0))}
	}
	err := (&mpmeter.BatchMeterUsageInput{ProductCode: s("p"), UsageRecords: records}).Validate()
	if e, ok := err.(*mpmeter.Error); !ok || !strings.HasPrefix(e.Message, `1 validation error detected: Value '[{"Timestamp":1795514700,"CustomerIdentifier":"c","Dimension":"d"},`) ||
		!strings.HasSuffix(e.Message, `' at 'usageRecords' failed to satisfy constraint: Member must have length less than or equal to 25`) {
		t.Errorf("26 records: %v", err)
	}
	tags := make([]mpmeter.Tag, 6)
	for i := range tags {
		tags[i] = mpmeter.Tag{Key: s("k"), Value: s("v")}
	}
	in := &mpmeter.MeterUsageInput{ProductCode: s("p"), Timestamp: mpmeter.NewTimestamp(time.Now()), UsageDimension: s("d"),
		UsageAllocations: []mpmeter.UsageAllocation{{AllocatedUsageQuantity: n(1), Tags: tags}}}
	want := `1 validation error detected: Value '[{"Key":"k","Value":"v"},{"Key":"k","Value":"v"},{"Key":"k","Value":"v"},{"Key":"k","Value":"v"},{"Key":"k","Value":"v"},{"Key":"k","Value":"v"}]' at 'usageAllocations.1.member.tags' failed to satisfy constraint: Member must have length less than or equal to 5`
	if e, ok := in.Validate().(*mpmeter.Error); !ok || e.Message != want {
		t.Errorf("6 tags: %v", in.Validate())
	}
	in.UsageAllocations = []mpmeter.UsageAllocation{}
	want = `1 validation error detected: Value '[]' at 'usageAllocations' failed to satisfy constraint: Member must have length greater than or equal to 1`
	if e, ok := in.Validate().(*mpmeter.Error); !ok || e.Message != want {
		t.Errorf("no allocations: %v", in.Validate())
	}
}

func TestOperationRegions(t *testing.T) {
	r := mpmeter.DefaultRegions()
	for _, c := range []struct {
		op, region string
		want       bool
	}{
		{mpmeter.OpBatchMeterUsage, "us-east-1", true},
		{mpmeter.OpBatchMeterUsage, "cn-northwest-1", true},
		{mpmeter.OpBatchMeterUsage, "us-gov-west-1", false},
		{mpmeter.OpMeterUsage, "us-gov-west-1", true},
		{mpmeter.OpMeterUsage, "cn-northwest-1", false},
		{mpmeter.OpRegisterUsage, "me-south-1", false},
		{mpmeter.OpRegisterUsage, "ca-central-1", true},
		// Only in the SDKs' endpoint data: every operation.
		{mpmeter.OpBatchMeterUsage, "eusc-de-east-1", true},
		{mpmeter.OpResolveCustomer, "eusc-de-east-1", true},
		{mpmeter.OpMeterUsage, "us-isob-east-1", true},
		{mpmeter.OpRegisterUsage, "us-isob-east-1", true},
		{mpmeter.OpBatchMeterUsage, "us-isob-west-1", false},
		{mpmeter.OpBatchMeterUsage, "cn-north-1", false},
		{mpmeter.OpResolveCustomer, "", false},
		{mpmeter.OpResolveCustomer, "us-east-1 us-west-2", false},
		{"Nope", "us-east-1", false},
	} {
		if got := r.Offers(c.op, c.region); got != c.want {
			t.Errorf("%s in %q: %v", c.op, c.region, got)
		}
	}
}

func TestRegionsAdd(t *testing.T) {
	r := mpmeter.DefaultRegions()
	if err := r.Add("eu-future-1, MeterUsage=us-isof-south-1"); err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{mpmeter.OpBatchMeterUsage, mpmeter.OpMeterUsage, mpmeter.OpRegisterUsage, mpmeter.OpResolveCustomer} {
		if !r.Offers(op, "eu-future-1") {
			t.Errorf("%s not offered in the added eu-future-1", op)
		}
	}
	if !r.Offers(mpmeter.OpMeterUsage, "us-isof-south-1") || r.Offers(mpmeter.OpBatchMeterUsage, "us-isof-south-1") {
		t.Error("MeterUsage=us-isof-south-1 added the region to other operations, or not to MeterUsage")
	}
	if mpmeter.DefaultRegions().Offers(mpmeter.OpMeterUsage, "eu-future-1") {
		t.Error("Add changed the defaults")
	}
	for _, bad := range []string{"Meter=us-east-1", "not a region", "us-east-1=MeterUsage", "US-EAST-1", "MeterUsage="} {
		if err := mpmeter.DefaultRegions().Add(bad); err == nil {
			t.Errorf("Add(%q) accepted", bad)
		}
	}
}

func TestPartitionOf(t *testing.T) {
	for region, want := range map[string]string{
		"us-east-1": "aws", "eu-central-2": "aws", "mx-central-1": "aws",
		"cn-northwest-1": "aws-cn", "us-gov-west-1": "aws-us-gov",
		"us-iso-east-1": "aws-iso", "us-isob-east-1": "aws-iso-b", "eu-isoe-west-1": "aws-iso-e",
		"us-isof-south-1": "aws-iso-f", "eusc-de-east-1": "aws-eusc",
		"xx-unknown-1": "aws",
	} {
		if got := mpmeter.PartitionOf(region); got != want {
			t.Errorf("PartitionOf(%q) = %q, want %q", region, got, want)
		}
		if !mpmeter.IsPartition(want) {
			t.Errorf("IsPartition(%q) = false", want)
		}
	}
	if got := mpmeter.ARNPartition("arn:aws-eusc:license-manager::444455556666:license/l-1"); got != "aws-eusc" {
		t.Errorf("ARNPartition = %q", got)
	}
	if got := mpmeter.ARNPartition("l-1"); got != "" {
		t.Errorf("ARNPartition of a non-ARN = %q", got)
	}
}
