package mpmetertest_test

//lint:file-ignore SA1019 aws-sdk-go v1 is deprecated, and still one of the real clients mpmeter must serve: it is tested on purpose.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go/aws"
	mm "github.com/aws/aws-sdk-go/service/marketplacemetering"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/mpmetertest"
	"github.com/mpmeter/mpmeter/server"
)

func TestBatchMeterUsageSuccessIdempotentAndDuplicate(t *testing.T) {
	srv := mpmetertest.New(t)
	c := seller(t, srv)
	ts := time.Now().Add(-time.Hour).Truncate(time.Second)
	in := &mm.BatchMeterUsageInput{
		ProductCode:  aws.String(mpmetertest.SaaSProduct),
		UsageRecords: []*mm.UsageRecord{record(mpmetertest.Customer, "users", 3, ts), record(mpmetertest.Customer, "gigabytes", 10, ts)},
	}
	out, err := c.BatchMeterUsage(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Results) != 2 || len(out.UnprocessedRecords) != 0 {
		t.Fatalf("results %d, unprocessed %d", len(out.Results), len(out.UnprocessedRecords))
	}
	ids := map[string]bool{}
	for i, r := range out.Results {
		if aws.StringValue(r.Status) != mm.UsageRecordResultStatusSuccess || aws.StringValue(r.MeteringRecordId) == "" {
			t.Fatalf("result %d: %v", i, r)
		}
		if aws.StringValue(r.UsageRecord.Dimension) != aws.StringValue(in.UsageRecords[i].Dimension) || !r.UsageRecord.Timestamp.Equal(ts) {
			t.Fatalf("result %d does not echo its record: %v", i, r.UsageRecord)
		}
		ids[*r.MeteringRecordId] = true
	}
	if len(ids) != 2 {
		t.Fatalf("two records got ids %v", ids)
	}

	// The same records again, and the same record later in the same hour:
	// Success with the original ids, nothing new stored.
	again, err := c.BatchMeterUsage(in)
	if err != nil {
		t.Fatal(err)
	}
	for i := range again.Results {
		if *again.Results[i].MeteringRecordId != *out.Results[i].MeteringRecordId || *again.Results[i].Status != "Success" {
			t.Fatalf("retry %d: %v, first %v", i, again.Results[i], out.Results[i])
		}
	}
	sameHour := ts.Truncate(time.Hour).Add(59 * time.Minute)
	if sameHour.After(time.Now()) {
		sameHour = ts.Truncate(time.Hour)
	}
	later, err := c.BatchMeterUsage(&mm.BatchMeterUsageInput{ProductCode: in.ProductCode, UsageRecords: []*mm.UsageRecord{record(mpmetertest.Customer, "users", 3, sameHour)}})
	if err != nil {
		t.Fatal(err)
	}
	if *later.Results[0].MeteringRecordId != *out.Results[0].MeteringRecordId {
		t.Fatalf("same customer, dimension, hour and quantity got a new id")
	}

	// Another quantity for that slot: DuplicateRecord, and nothing stored.
	dup, err := c.BatchMeterUsage(&mm.BatchMeterUsageInput{ProductCode: in.ProductCode, UsageRecords: []*mm.UsageRecord{record(mpmetertest.Customer, "users", 4, ts)}})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.StringValue(dup.Results[0].Status); got != mm.UsageRecordResultStatusDuplicateRecord {
		t.Fatalf("status %s, want DuplicateRecord", got)
	}
	if dup.Results[0].MeteringRecordId != nil {
		t.Fatalf("DuplicateRecord carries id %s", *dup.Results[0].MeteringRecordId)
	}
	recs, err := srv.Store.Usage(context.Background(), mpmeter.UsageFilter{ProductCode: mpmetertest.SaaSProduct})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Fatalf("stored %d records, want 2", len(recs))
	}
	for _, r := range recs {
		if r.CustomerAccountID != mpmetertest.BuyerAccount || r.LicenseArn != mpmetertest.CustomerLicense || r.SellerAccountID != mpmetertest.SellerAccount {
			t.Fatalf("stored record lacks the agreement: %+v", r)
		}
	}
}

func TestBatchMeterUsageCustomerNotSubscribed(t *testing.T) {
	srv := mpmetertest.New(t)
	ts := time.Now().Add(-time.Minute)
	out, err := seller(t, srv).BatchMeterUsage(&mm.BatchMeterUsageInput{
		ProductCode: aws.String(mpmetertest.SaaSProduct),
		UsageRecords: []*mm.UsageRecord{
			record(mpmetertest.CancelledCustomer, "users", 1, ts),
			record(mpmetertest.Customer, "users", 1, ts),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"CustomerNotSubscribed", "Success"}
	for i, w := range want {
		if got := aws.StringValue(out.Results[i].Status); got != w {
			t.Fatalf("record %d: %s, want %s", i, got, w)
		}
	}
	if out.Results[0].MeteringRecordId != nil {
		t.Fatal("a record that was not honored has a MeteringRecordId")
	}
	recs, _ := srv.Store.Usage(context.Background(), mpmeter.UsageFilter{ProductCode: mpmetertest.SaaSProduct})
	if len(recs) != 1 {
		t.Fatalf("stored %d records, want only the subscribed one", len(recs))
	}
}

// The newer model (service-2.current.json): customers by account id and
// licenses instead of product codes. aws-sdk-go v1's model predates both
// members, so these go as raw signed requests (JS v3 and boto3 cover them
// with a real SDK in the CI suites).
func TestBatchMeterUsageAccountIDAndLicenseArn(t *testing.T) {
	srv := mpmetertest.New(t)
	ts := time.Now().Add(-2 * time.Hour).Unix()
	batch := func(body string) (int, map[string]any) {
		t.Helper()
		status, raw := srv.Do(t, mpmetertest.Raw{Target: "BatchMeterUsage", Key: mpmetertest.SellerKey, Secret: mpmetertest.SellerSecret, Body: body})
		var out map[string]any
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		return status, out
	}
	firstResult := func(out map[string]any) map[string]any {
		t.Helper()
		results, _ := out["Results"].([]any)
		if len(results) != 1 {
			t.Fatalf("results: %v", out)
		}
		return results[0].(map[string]any)
	}
	rec := func(customer string, quantity int, extra string) string {
		return fmt.Sprintf(`{"UsageRecords":[{%s"Dimension":"users","Quantity":%d,"Timestamp":%d%s}]`, customer, quantity, ts, extra)
	}
	_, byID := batch(rec(`"CustomerIdentifier":"cust-example-1",`, 7, "") + `,"ProductCode":"exampleprod1"}`)
	_, byAccount := batch(rec(`"CustomerAWSAccountId":"444455556666",`, 7, "") + `,"ProductCode":"exampleprod1"}`)
	if id := firstResult(byAccount)["MeteringRecordId"]; id == nil || id != firstResult(byID)["MeteringRecordId"] {
		t.Fatalf("customer by account id is not the same slot as by identifier: %v vs %v", byAccount, byID)
	}
	// No ProductCode: the license names the product (and the agreement).
	status, byLicense := batch(rec(`"CustomerAWSAccountId":"444455556666",`, 7, `,"LicenseArn":"`+mpmetertest.CustomerLicense+`"`) + `}`)
	r := firstResult(byLicense)
	if status != 200 || r["Status"] != "Success" || r["MeteringRecordId"] != firstResult(byID)["MeteringRecordId"] {
		t.Fatalf("by license: %d %v", status, byLicense)
	}
	if echoed := r["UsageRecord"].(map[string]any); echoed["LicenseArn"] != mpmetertest.CustomerLicense || echoed["CustomerAWSAccountId"] != mpmetertest.BuyerAccount {
		t.Fatalf("record not echoed: %v", echoed)
	}
	if list, ok := byLicense["UnprocessedRecords"].([]any); !ok || len(list) != 0 {
		t.Fatalf("UnprocessedRecords should be an empty list: %v", byLicense)
	}

	for name, body := range map[string]string{
		"unknown license":          rec(`"CustomerAWSAccountId":"444455556666",`, 1, `,"LicenseArn":"arn:aws:license-manager::444455556666:license/l-ffffffffffffffff"`) + `}`,
		"license of other account": rec(`"CustomerAWSAccountId":"123456789012",`, 1, `,"LicenseArn":"`+mpmetertest.CustomerLicense+`"`) + `,"ProductCode":"exampleprod1"}`,
		"license of other id":      rec(`"CustomerIdentifier":"cust-cancelled-1",`, 1, `,"LicenseArn":"`+mpmetertest.CustomerLicense+`"`) + `,"ProductCode":"exampleprod1"}`,
		"no product, no license":   rec(`"CustomerAWSAccountId":"444455556666",`, 1, ``) + `}`,
		"both customer fields":     rec(`"CustomerIdentifier":"cust-example-1","CustomerAWSAccountId":"444455556666",`, 1, ``) + `,"ProductCode":"exampleprod1"}`,
		"no customer field":        rec(``, 1, ``) + `,"ProductCode":"exampleprod1"}`,
	} {
		t.Run(name, func(t *testing.T) {
			status, out := batch(body)
			want := "InvalidLicenseException"
			if strings.HasPrefix(name, "no ") || strings.HasPrefix(name, "both") {
				want = "ValidationException"
			}
			if status != 400 || out["__type"] != want {
				t.Fatalf("got %d %v, want %s", status, out, want)
			}
		})
	}
	recs, _ := srv.Store.Usage(context.Background(), mpmeter.UsageFilter{})
	if len(recs) != 1 {
		t.Fatalf("stored %d records, want 1", len(recs))
	}
}

func TestBatchMeterUsageWholeRequestErrors(t *testing.T) {
	srv := mpmetertest.New(t)
	c := seller(t, srv)
	now := time.Now()
	good := record(mpmetertest.Customer, "users", 1, now.Add(-time.Minute))
	cases := []struct {
		name    string
		client  *mm.MarketplaceMetering
		product string
		rec     *mm.UsageRecord
		code    string
	}{
		{"unknown product", c, "nosuchproduct", good, "InvalidProductCodeException"},
		{"another seller's product", c, mpmetertest.OtherProduct, good, "InvalidProductCodeException"},
		{"not a SaaS product", c, mpmetertest.AMIProduct, good, "InvalidProductCodeException"},
		{"buyer meters", client(t, srv, mpmetertest.BuyerKey, mpmetertest.BuyerSecret, mpmetertest.Region), mpmetertest.SaaSProduct, good, "InvalidProductCodeException"},
		{"unknown dimension", c, mpmetertest.SaaSProduct, record(mpmetertest.Customer, "cpus", 1, now), "InvalidUsageDimensionException"},
		{"unknown customer", c, mpmetertest.SaaSProduct, record("cust-nobody", "users", 1, now), "InvalidCustomerIdentifierException"},
		{"older than 6 hours", c, mpmetertest.SaaSProduct, record(mpmetertest.Customer, "users", 1, now.Add(-6*time.Hour-time.Minute)), "TimestampOutOfBoundsException"},
		{"in the future", c, mpmetertest.SaaSProduct, record(mpmetertest.Customer, "users", 1, now.Add(20*time.Minute)), "TimestampOutOfBoundsException"},
		{"allocations do not sum", c, mpmetertest.SaaSProduct, &mm.UsageRecord{
			CustomerIdentifier: aws.String(mpmetertest.Customer), Dimension: aws.String("users"), Quantity: aws.Int64(5), Timestamp: aws.Time(now),
			UsageAllocations: []*mm.UsageAllocation{{AllocatedUsageQuantity: aws.Int64(2)}, {AllocatedUsageQuantity: aws.Int64(2), Tags: []*mm.Tag{{Key: aws.String("team"), Value: aws.String("a")}}}},
		}, "InvalidUsageAllocationsException"},
		{"same tag set twice", c, mpmetertest.SaaSProduct, &mm.UsageRecord{
			CustomerIdentifier: aws.String(mpmetertest.Customer), Dimension: aws.String("users"), Quantity: aws.Int64(4), Timestamp: aws.Time(now),
			UsageAllocations: []*mm.UsageAllocation{{AllocatedUsageQuantity: aws.Int64(2), Tags: []*mm.Tag{{Key: aws.String("team"), Value: aws.String("a")}}}, {AllocatedUsageQuantity: aws.Int64(2), Tags: []*mm.Tag{{Key: aws.String("team"), Value: aws.String("a")}}}},
		}, "InvalidUsageAllocationsException"},
		{"duplicate tag key", c, mpmetertest.SaaSProduct, &mm.UsageRecord{
			CustomerIdentifier: aws.String(mpmetertest.Customer), Dimension: aws.String("users"), Quantity: aws.Int64(2), Timestamp: aws.Time(now),
			UsageAllocations: []*mm.UsageAllocation{{AllocatedUsageQuantity: aws.Int64(2), Tags: []*mm.Tag{{Key: aws.String("team"), Value: aws.String("a")}, {Key: aws.String("team"), Value: aws.String("b")}}}},
		}, "InvalidTagException"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// A good record first: a bad record anywhere fails the batch and
			// stores nothing.
			_, err := tc.client.BatchMeterUsage(&mm.BatchMeterUsageInput{ProductCode: aws.String(tc.product), UsageRecords: []*mm.UsageRecord{good, tc.rec}})
			wantCode(t, err, tc.code, 400)
			recs, err := srv.Store.Usage(context.Background(), mpmeter.UsageFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 0 {
				t.Fatalf("a failed batch stored %d records", len(recs))
			}
		})
	}
}

func TestBatchMeterUsageWindowFollowsServiceClock(t *testing.T) {
	srv := mpmetertest.New(t)
	c := seller(t, srv)
	past := time.Now().Add(-30 * 24 * time.Hour)
	in := &mm.BatchMeterUsageInput{ProductCode: aws.String(mpmetertest.SaaSProduct), UsageRecords: []*mm.UsageRecord{record(mpmetertest.Customer, "users", 1, past)}}
	_, err := c.BatchMeterUsage(in)
	wantCode(t, err, "TimestampOutOfBoundsException", 400)
	// Moving the service clock back makes the same record current, and the
	// request's real-time signature still verifies.
	srv.Clock.Set(past.Add(time.Hour))
	if _, err := c.BatchMeterUsage(in); err != nil {
		t.Fatal(err)
	}
}

func TestBatchMeterUsageConcurrentIdenticalBatchesStoreOnce(t *testing.T) {
	srv := mpmetertest.New(t)
	c := seller(t, srv)
	ts := time.Now().Add(-time.Hour)
	var recs []*mm.UsageRecord
	for h := 0; h < 5; h++ {
		recs = append(recs, record(mpmetertest.Customer, "users", int64(h+1), ts.Add(-time.Duration(h)*time.Hour)))
	}
	in := &mm.BatchMeterUsageInput{ProductCode: aws.String(mpmetertest.SaaSProduct), UsageRecords: recs}
	const n = 16
	results := make([][]string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			out, err := c.BatchMeterUsage(in)
			if err != nil {
				t.Error(err)
				return
			}
			for _, r := range out.Results {
				if *r.Status != "Success" {
					t.Errorf("status %s", *r.Status)
				}
				results[i] = append(results[i], aws.StringValue(r.MeteringRecordId))
			}
		}(i)
	}
	wg.Wait()
	for i := 1; i < n; i++ {
		if strings.Join(results[i], ",") != strings.Join(results[0], ",") {
			t.Fatalf("caller %d got ids %v, caller 0 %v", i, results[i], results[0])
		}
	}
	stored, _ := srv.Store.Usage(context.Background(), mpmeter.UsageFilter{})
	if len(stored) != len(recs) {
		t.Fatalf("stored %d records, want %d", len(stored), len(recs))
	}
}

func TestBatchMeterUsageEmptyAndLimits(t *testing.T) {
	srv := mpmetertest.New(t)
	out, err := seller(t, srv).BatchMeterUsage(&mm.BatchMeterUsageInput{ProductCode: aws.String(mpmetertest.SaaSProduct), UsageRecords: []*mm.UsageRecord{}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Results) != 0 {
		t.Fatalf("empty batch: %v", out)
	}

	// 26 records: SDKs refuse to send them, so send them raw.
	var parts []string
	for i := 0; i < 26; i++ {
		parts = append(parts, fmt.Sprintf(`{"CustomerIdentifier":"c%d","Dimension":"users","Timestamp":%d}`, i, time.Now().Unix()))
	}
	status, body := srv.Do(t, mpmetertest.Raw{Target: "BatchMeterUsage", Key: mpmetertest.SellerKey, Secret: mpmetertest.SellerSecret,
		Body: `{"ProductCode":"exampleprod1","UsageRecords":[` + strings.Join(parts, ",") + `]}`})
	code, msg := rawError(t, body)
	if status != 400 || code != "ValidationException" || !strings.Contains(msg, "at 'usageRecords' failed to satisfy constraint: Member must have length less than or equal to 25") {
		t.Fatalf("26 records: %d %s %s", status, code, msg)
	}
}

// Model validation, AWS's message format, as the SDKs do not pre-validate
// everything and JS v3 validates nothing.
func TestValidationMessages(t *testing.T) {
	srv := mpmetertest.New(t)
	ts := time.Now().Unix()
	cases := []struct {
		body, want string
	}{
		{`{"UsageRecords":[{"CustomerIdentifier":"c","Dimension":"","Timestamp":` + fmt.Sprint(ts) + `}],"ProductCode":"exampleprod1"}`,
			"1 validation error detected: Value '' at 'usageRecords.1.member.dimension' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{`{"ProductCode":"exampleprod1"}`,
			"1 validation error detected: Value null at 'usageRecords' failed to satisfy constraint: Member must not be null"},
		{`{"ProductCode":"bad code!","UsageRecords":[{"CustomerIdentifier":"c","Dimension":"users","Quantity":-1}]}`,
			"3 validation errors detected: Value null at 'usageRecords.1.member.timestamp' failed to satisfy constraint: Member must not be null; Value '-1' at 'usageRecords.1.member.quantity' failed to satisfy constraint: Member must have value greater than or equal to 0; Value 'bad code!' at 'productCode' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[-a-zA-Z0-9/=:_.@]*$"},
		{`{"ProductCode":"exampleprod1","UsageRecords":[{"CustomerIdentifier":"c","Dimension":"users","Timestamp":` + fmt.Sprint(ts) + `,"UsageAllocations":[{"AllocatedUsageQuantity":1,"Tags":[{"Key":"k","Value":"v?"}]}]}]}`,
			"Value 'v?' at 'usageRecords.1.member.usageAllocations.1.member.tags.1.member.value' failed to satisfy constraint: Member must satisfy regular expression pattern"},
		{`{"ProductCode":"exampleprod1","UsageRecords":[{"CustomerAWSAccountId":"12ab","Dimension":"users","Timestamp":1}]}`,
			"Value '12ab' at 'usageRecords.1.member.customerAWSAccountId' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[0-9]+$"},
		{`{"RegistrationToken":""}`, "Value '' at 'registrationToken' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\s\\S]+"},
	}
	for _, tc := range cases {
		target := "BatchMeterUsage"
		if strings.Contains(tc.body, "RegistrationToken") {
			target = "ResolveCustomer"
		}
		status, body := srv.Do(t, mpmetertest.Raw{Target: target, Body: tc.body, Key: mpmetertest.SellerKey, Secret: mpmetertest.SellerSecret})
		code, msg := rawError(t, body)
		if status != 400 || code != "ValidationException" || !strings.Contains(msg, tc.want) {
			t.Errorf("%s\n got %d %s %q\nwant ValidationException containing %q", tc.body, status, code, msg, tc.want)
		}
	}
}

func TestProtocolErrors(t *testing.T) {
	srv := mpmetertest.New(t)
	sign := func(r mpmetertest.Raw) mpmetertest.Raw {
		r.Key, r.Secret = mpmetertest.SellerKey, mpmetertest.SellerSecret
		return r
	}
	cases := []struct {
		name   string
		raw    mpmetertest.Raw
		status int
		code   string
	}{
		{"unknown operation", sign(mpmetertest.Raw{Target: "DescribeEverything", Body: `{}`}), 400, "UnknownOperationException"},
		{"malformed JSON", sign(mpmetertest.Raw{Target: "ResolveCustomer", Body: `{"RegistrationToken":`}), 400, "SerializationException"},
		{"not an object", sign(mpmetertest.Raw{Target: "ResolveCustomer", Body: `["demo-token-1"]`}), 400, "SerializationException"},
		{"wrong member type", sign(mpmetertest.Raw{Target: "ResolveCustomer", Body: `{"RegistrationToken":42}`}), 400, "SerializationException"},
		{"timestamp as string", sign(mpmetertest.Raw{Target: "BatchMeterUsage", Body: `{"ProductCode":"exampleprod1","UsageRecords":[{"CustomerIdentifier":"cust-example-1","Dimension":"users","Timestamp":"2026-11-25T00:00:00Z"}]}`}), 400, "SerializationException"},
		{"fractional quantity", sign(mpmetertest.Raw{Target: "BatchMeterUsage", Body: `{"ProductCode":"exampleprod1","UsageRecords":[{"CustomerIdentifier":"cust-example-1","Dimension":"users","Quantity":1.5,"Timestamp":1}]}`}), 400, "SerializationException"},
		{"empty body is {}", sign(mpmetertest.Raw{Target: "ResolveCustomer", Body: ``}), 400, "ValidationException"},
		{"unsigned", mpmetertest.Raw{Target: "ResolveCustomer", Body: `{}`}, 403, "MissingAuthenticationTokenException"},
		{"wrong service scope", mpmetertest.Raw{Target: "ResolveCustomer", Body: `{}`, Key: mpmetertest.SellerKey, Secret: mpmetertest.SellerSecret, Service: "s3"}, 403, "InvalidSignatureException"},
		{"signed an hour ago", mpmetertest.Raw{Target: "ResolveCustomer", Body: `{}`, Key: mpmetertest.SellerKey, Secret: mpmetertest.SellerSecret, SignTime: time.Now().Add(-time.Hour)}, 403, "InvalidSignatureException"},
		{"too large", sign(mpmetertest.Raw{Target: "ResolveCustomer", Body: `{"RegistrationToken":"` + strings.Repeat("x", 1<<20) + `"}`}), 413, "RequestEntityTooLargeException"},
		{"disabled region", mpmetertest.Raw{Target: "ResolveCustomer", Body: `{"RegistrationToken":"demo-token-1"}`, Key: mpmetertest.SellerKey, Secret: mpmetertest.SellerSecret, Region: "us-gov-west-1"}, 400, "DisabledApiException"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := srv.Do(t, tc.raw)
			code, msg := rawError(t, body)
			if status != tc.status || code != tc.code {
				t.Fatalf("got %d %s (%s), want %d %s", status, code, msg, tc.status, tc.code)
			}
		})
	}
	// A successful answer carries the protocol's headers.
	req, _ := http.NewRequest("GET", srv.URL+"/healthz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
}

func TestSignatureErrorsThroughSDK(t *testing.T) {
	srv := mpmetertest.New(t)
	in := &mm.ResolveCustomerInput{RegistrationToken: aws.String(mpmetertest.Token)}
	_, err := client(t, srv, "AKIANOSUCHKEY0000001", "x", mpmetertest.Region).ResolveCustomer(in)
	msg := wantCode(t, err, "UnrecognizedClientException", 403)
	if msg != "The security token included in the request is invalid." {
		t.Errorf("message %q", msg)
	}
	_, err = client(t, srv, mpmetertest.SellerKey, "wrong-secret", mpmetertest.Region).ResolveCustomer(in)
	msg = wantCode(t, err, "InvalidSignatureException", 403)
	if !strings.HasPrefix(msg, "The request signature we calculated does not match the signature you provided.") {
		t.Errorf("message %q", msg)
	}
	_, err = client(t, srv, mpmetertest.SellerKey, mpmetertest.SellerSecret, "cn-north-1").ResolveCustomer(in)
	wantCode(t, err, "DisabledApiException", 400)
	_, err = client(t, srv, mpmetertest.SellerKey, mpmetertest.SellerSecret, "us-gov-east-1").BatchMeterUsage(&mm.BatchMeterUsageInput{ProductCode: aws.String(mpmetertest.SaaSProduct), UsageRecords: []*mm.UsageRecord{}})
	wantCode(t, err, "DisabledApiException", 400)
}

func TestThrottling(t *testing.T) {
	srv := mpmetertest.New(t, mpmetertest.WithConfig(func(c *server.Config) { c.RateLimit, c.RateBurst = 0.001, 2 }))
	s := seller(t, srv)
	ec2 := client(t, srv, mpmetertest.EC2Key, mpmetertest.EC2Secret, mpmetertest.Region)
	ecs := client(t, srv, mpmetertest.ECSKey, mpmetertest.ECSSecret, mpmetertest.Region)
	calls := []struct {
		op   string
		call func() error
	}{
		{"ResolveCustomer", func() error {
			_, err := s.ResolveCustomer(&mm.ResolveCustomerInput{RegistrationToken: aws.String(mpmetertest.Token)})
			return err
		}},
		{"BatchMeterUsage", func() error {
			_, err := s.BatchMeterUsage(&mm.BatchMeterUsageInput{ProductCode: aws.String(mpmetertest.SaaSProduct), UsageRecords: []*mm.UsageRecord{}})
			return err
		}},
		{"MeterUsage", func() error {
			_, err := ec2.MeterUsage(meterInput("requests", 1, time.Now().Add(-time.Minute)))
			return err
		}},
		{"RegisterUsage", func() error {
			_, err := ecs.RegisterUsage(&mm.RegisterUsageInput{ProductCode: aws.String(mpmetertest.ContainerProduct), PublicKeyVersion: aws.Int64(1)})
			return err
		}},
	}
	// Each operation has its own bucket per account: two calls pass, the
	// third is throttled, and throttling one does not throttle the next.
	for _, c := range calls {
		for i := 0; i < 2; i++ {
			if err := c.call(); err != nil {
				t.Fatalf("%s call %d: %v", c.op, i, err)
			}
		}
		wantCode(t, c.call(), "ThrottlingException", 400)
	}
}

func TestInternalErrorsDoNotLeak(t *testing.T) {
	srv := mpmetertest.New(t)
	ec2 := client(t, srv, mpmetertest.EC2Key, mpmetertest.EC2Secret, mpmetertest.Region)
	ecs := client(t, srv, mpmetertest.ECSKey, mpmetertest.ECSSecret, mpmetertest.Region)
	s := seller(t, srv)
	// Warm the marketplace cache, so the calls below get past
	// authentication and fail where the database is needed.
	for _, c := range []*mm.MarketplaceMetering{ec2, ecs, s} {
		c.ResolveCustomer(&mm.ResolveCustomerInput{RegistrationToken: aws.String("warm")})
	}
	if _, err := s.BatchMeterUsage(&mm.BatchMeterUsageInput{ProductCode: aws.String(mpmetertest.SaaSProduct), UsageRecords: []*mm.UsageRecord{record(mpmetertest.Customer, "users", 1, time.Now())}}); err != nil {
		t.Fatal(err)
	}
	srv.Store.Close() // the database is gone
	calls := map[string]func() error{
		"BatchMeterUsage": func() error {
			_, err := s.BatchMeterUsage(&mm.BatchMeterUsageInput{ProductCode: aws.String(mpmetertest.SaaSProduct), UsageRecords: []*mm.UsageRecord{record(mpmetertest.Customer, "users", 2, time.Now())}})
			return err
		},
		"ResolveCustomer": func() error {
			_, err := s.ResolveCustomer(&mm.ResolveCustomerInput{RegistrationToken: aws.String(mpmetertest.Token)})
			return err
		},
		"MeterUsage": func() error {
			_, err := ec2.MeterUsage(meterInput("requests", 1, time.Now()))
			return err
		},
		"RegisterUsage": func() error {
			_, err := ecs.RegisterUsage(&mm.RegisterUsageInput{ProductCode: aws.String(mpmetertest.ContainerProduct), PublicKeyVersion: aws.Int64(1)})
			return err
		},
	}
	for op, call := range calls {
		t.Run(op, func(t *testing.T) {
			msg := wantCode(t, call(), "InternalServiceErrorException", 500)
			if strings.Contains(strings.ToLower(msg), "sql") || strings.Contains(msg, "closed") {
				t.Fatalf("internal detail leaked: %q", msg)
			}
		})
	}
}
