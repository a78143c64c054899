package mpmetertest_test

// The aws-sdk-go-v2 suite: service/marketplacemetering, the client today's
// Go integrations use, against the in-process server, through
// mpmetertest's AWSConfig.

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	mm "github.com/aws/aws-sdk-go-v2/service/marketplacemetering"
	"github.com/aws/aws-sdk-go-v2/service/marketplacemetering/types"
	"github.com/aws/smithy-go"
	"github.com/golang-jwt/jwt/v5"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/mpmetertest"
	"github.com/mpmeter/mpmeter/seed"
	"github.com/mpmeter/mpmeter/server"
)

// v2Client returns an aws-sdk-go-v2 client signing with key/secret in
// region, with retries off so each test sees the first answer.
func v2Client(srv *mpmetertest.Server, key, secret, region string) *mm.Client {
	return mm.NewFromConfig(srv.AWSConfig(key, secret), func(o *mm.Options) {
		o.Region = region
		o.RetryMaxAttempts = 1
	})
}

func v2Seller(srv *mpmetertest.Server) *mm.Client {
	return v2Client(srv, mpmetertest.SellerKey, mpmetertest.SellerSecret, mpmetertest.Region)
}

func v2EC2(srv *mpmetertest.Server) *mm.Client {
	return v2Client(srv, mpmetertest.EC2Key, mpmetertest.EC2Secret, mpmetertest.Region)
}

// v2WantCode asserts err is an AWS error with this code and HTTP status,
// with a request id, and returns its message.
func v2WantCode(t *testing.T, err error, code string, status int) string {
	t.Helper()
	if err == nil {
		t.Fatalf("got success, want %s", code)
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("got %T %v, want an API error %s", err, err, code)
	}
	if apiErr.ErrorCode() != code {
		t.Fatalf("got %s (%s), want %s", apiErr.ErrorCode(), apiErr.ErrorMessage(), code)
	}
	var respErr *awshttp.ResponseError
	if !errors.As(err, &respErr) {
		t.Fatalf("%s: no HTTP response in %v", code, err)
	}
	if respErr.HTTPStatusCode() != status {
		t.Fatalf("%s: got HTTP %d, want %d", code, respErr.HTTPStatusCode(), status)
	}
	if respErr.ServiceRequestID() == "" {
		t.Errorf("%s: no request id", code)
	}
	return apiErr.ErrorMessage()
}

func v2Record(customer, dimension string, quantity int32, ts time.Time) types.UsageRecord {
	return types.UsageRecord{CustomerIdentifier: aws.String(customer), Dimension: aws.String(dimension), Quantity: aws.Int32(quantity), Timestamp: aws.Time(ts)}
}

func v2Batch(product string, recs ...types.UsageRecord) *mm.BatchMeterUsageInput {
	return &mm.BatchMeterUsageInput{ProductCode: aws.String(product), UsageRecords: recs}
}

func v2Meter(dim string, q int32, ts time.Time) *mm.MeterUsageInput {
	return &mm.MeterUsageInput{ProductCode: aws.String(mpmetertest.AMIProduct), UsageDimension: aws.String(dim), UsageQuantity: aws.Int32(q), Timestamp: aws.Time(ts)}
}

func stored(t *testing.T, srv *mpmetertest.Server, f mpmeter.UsageFilter) []mpmeter.MeteringRecord {
	t.Helper()
	recs, err := srv.Store.Usage(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestV2BatchMeterUsage(t *testing.T) {
	srv := mpmetertest.New(t)
	ctx := context.Background()
	c := v2Seller(srv)
	ts := time.Now().Add(-time.Hour)
	out, err := c.BatchMeterUsage(ctx, v2Batch(mpmetertest.SaaSProduct,
		v2Record(mpmetertest.Customer, "users", 3, ts),
		v2Record(mpmetertest.CancelledCustomer, "users", 1, ts)))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Results) != 2 || len(out.UnprocessedRecords) != 0 {
		t.Fatalf("results %+v, unprocessed %+v", out.Results, out.UnprocessedRecords)
	}
	first := out.Results[0]
	if first.Status != types.UsageRecordResultStatusSuccess || aws.ToString(first.MeteringRecordId) == "" ||
		aws.ToString(first.UsageRecord.CustomerIdentifier) != mpmetertest.Customer {
		t.Fatalf("first result %+v", first)
	}
	if out.Results[1].Status != types.UsageRecordResultStatusCustomerNotSubscribed {
		t.Fatalf("cancelled customer: %s", out.Results[1].Status)
	}

	// The same record in the same hour: the same id. Another quantity:
	// DuplicateRecord, the original kept.
	again, err := c.BatchMeterUsage(ctx, v2Batch(mpmetertest.SaaSProduct,
		v2Record(mpmetertest.Customer, "users", 3, ts.Truncate(time.Hour)),
		v2Record(mpmetertest.Customer, "gigabytes", 5, ts)))
	if err != nil {
		t.Fatal(err)
	}
	if r := again.Results[0]; r.Status != types.UsageRecordResultStatusSuccess || aws.ToString(r.MeteringRecordId) != aws.ToString(first.MeteringRecordId) {
		t.Fatalf("identical record: %+v", r)
	}
	dup, err := c.BatchMeterUsage(ctx, v2Batch(mpmetertest.SaaSProduct, v2Record(mpmetertest.Customer, "users", 4, ts)))
	if err != nil {
		t.Fatal(err)
	}
	if dup.Results[0].Status != types.UsageRecordResultStatusDuplicateRecord {
		t.Fatalf("another quantity: %s", dup.Results[0].Status)
	}

	// The current model's members: the account id and license instead of
	// the customer identifier and product code.
	byLicense, err := c.BatchMeterUsage(ctx, &mm.BatchMeterUsageInput{UsageRecords: []types.UsageRecord{{
		CustomerAWSAccountId: aws.String(mpmetertest.BuyerAccount), LicenseArn: aws.String(mpmetertest.CustomerLicense),
		Dimension: aws.String("users"), Quantity: aws.Int32(3), Timestamp: aws.Time(ts),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if r := byLicense.Results[0]; r.Status != types.UsageRecordResultStatusSuccess || aws.ToString(r.MeteringRecordId) != aws.ToString(first.MeteringRecordId) ||
		aws.ToString(r.UsageRecord.LicenseArn) != mpmetertest.CustomerLicense {
		t.Fatalf("by account id and license: %+v", r)
	}
	if n := len(stored(t, srv, mpmeter.UsageFilter{ProductCode: mpmetertest.SaaSProduct})); n != 2 {
		t.Fatalf("stored %d records, want 2 (users and gigabytes)", n)
	}
}

func TestV2BatchMeterUsageErrors(t *testing.T) {
	srv := mpmetertest.New(t)
	ctx := context.Background()
	c := v2Seller(srv)
	now := time.Now()
	good := v2Record(mpmetertest.Customer, "users", 1, now.Add(-time.Minute))
	withAllocations := func(q int32, allocs ...types.UsageAllocation) types.UsageRecord {
		r := v2Record(mpmetertest.Customer, "users", q, now)
		r.UsageAllocations = allocs
		return r
	}
	tag := func(k, v string) types.Tag { return types.Tag{Key: aws.String(k), Value: aws.String(v)} }
	for _, tc := range []struct {
		name    string
		product string
		rec     types.UsageRecord
		code    string
	}{
		{"unknown product", "nosuchproduct", good, "InvalidProductCodeException"},
		{"another seller's product", mpmetertest.OtherProduct, good, "InvalidProductCodeException"},
		{"unknown dimension", mpmetertest.SaaSProduct, v2Record(mpmetertest.Customer, "cpus", 1, now), "InvalidUsageDimensionException"},
		{"unknown customer", mpmetertest.SaaSProduct, v2Record("cust-nobody", "users", 1, now), "InvalidCustomerIdentifierException"},
		{"6 hours old", mpmetertest.SaaSProduct, v2Record(mpmetertest.Customer, "users", 1, now.Add(-6*time.Hour-time.Second)), "TimestampOutOfBoundsException"},
		{"20 minutes ahead", mpmetertest.SaaSProduct, v2Record(mpmetertest.Customer, "users", 1, now.Add(20*time.Minute)), "TimestampOutOfBoundsException"},
		{"allocations do not sum", mpmetertest.SaaSProduct, withAllocations(5, types.UsageAllocation{AllocatedUsageQuantity: aws.Int32(2)}), "InvalidUsageAllocationsException"},
		{"duplicate tag key", mpmetertest.SaaSProduct, withAllocations(2, types.UsageAllocation{AllocatedUsageQuantity: aws.Int32(2), Tags: []types.Tag{tag("team", "a"), tag("team", "b")}}), "InvalidTagException"},
		{"both customer members", mpmetertest.SaaSProduct, func() types.UsageRecord {
			r := good
			r.CustomerAWSAccountId = aws.String(mpmetertest.BuyerAccount)
			return r
		}(), "ValidationException"},
		{"unknown license", mpmetertest.SaaSProduct, func() types.UsageRecord {
			r := good
			r.LicenseArn = aws.String("arn:aws:license-manager::444455556666:license/l-ffffffffffffffff")
			return r
		}(), "InvalidLicenseException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A good record first: a bad record anywhere fails the batch and
			// stores nothing.
			_, err := c.BatchMeterUsage(ctx, v2Batch(tc.product, good, tc.rec))
			v2WantCode(t, err, tc.code, 400)
			if n := len(stored(t, srv, mpmeter.UsageFilter{})); n != 0 {
				t.Fatalf("a failed batch stored %d records", n)
			}
		})
	}
	// A modeled error arrives as the SDK's typed error.
	_, err := c.BatchMeterUsage(ctx, v2Batch("nosuchproduct", good))
	var typed *types.InvalidProductCodeException
	if !errors.As(err, &typed) || typed.ErrorMessage() == "" {
		t.Fatalf("got %T %v, want *types.InvalidProductCodeException", err, err)
	}
	// The SDK's own validation runs first: no request for a missing member.
	if _, err := c.BatchMeterUsage(ctx, &mm.BatchMeterUsageInput{}); err == nil || !strings.Contains(err.Error(), "UsageRecords") {
		t.Fatalf("no UsageRecords: %v", err)
	}
}

func TestV2MeterUsage(t *testing.T) {
	srv := mpmetertest.New(t)
	ctx := context.Background()
	c := v2EC2(srv)
	ts := time.Now().Add(-time.Hour)
	// aws-sdk-go-v2 fills ClientToken with a fresh UUID on every call, so a
	// retry is deduplicated by workload, product, dimension and hour.
	first, err := c.MeterUsage(ctx, v2Meter("vcpu_hours", 4, ts))
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.MeterUsage(ctx, v2Meter("vcpu_hours", 4, ts.Truncate(time.Hour)))
	if err != nil || aws.ToString(again.MeteringRecordId) != aws.ToString(first.MeteringRecordId) {
		t.Fatalf("the same hour's record: %v %v", again, err)
	}
	_, err = c.MeterUsage(ctx, v2Meter("vcpu_hours", 5, ts))
	v2WantCode(t, err, "DuplicateRequestException", 400)
	var typed *types.DuplicateRequestException
	if !errors.As(err, &typed) {
		t.Fatalf("got %T, want *types.DuplicateRequestException", err)
	}

	// A ClientToken of the caller's: the same parameters answer the first
	// answer, other parameters conflict.
	withToken := func(q int32) *mm.MeterUsageInput {
		in := v2Meter("requests", q, ts)
		in.ClientToken = aws.String("v2-token-1")
		return in
	}
	tok, err := c.MeterUsage(ctx, withToken(10))
	if err != nil {
		t.Fatal(err)
	}
	if retry, err := c.MeterUsage(ctx, withToken(10)); err != nil || aws.ToString(retry.MeteringRecordId) != aws.ToString(tok.MeteringRecordId) {
		t.Fatalf("same token, same parameters: %v %v", retry, err)
	}
	_, err = c.MeterUsage(ctx, withToken(11))
	v2WantCode(t, err, "IdempotencyConflictException", 400)
	if n := len(stored(t, srv, mpmeter.UsageFilter{ProductCode: mpmetertest.AMIProduct})); n != 2 {
		t.Fatalf("stored %d records, want 2", n)
	}
}

func TestV2MeterUsageErrors(t *testing.T) {
	srv := mpmetertest.New(t)
	ctx := context.Background()
	now := time.Now()
	saas := &mm.MeterUsageInput{ProductCode: aws.String(mpmetertest.SaaSProduct), UsageDimension: aws.String("users"), UsageQuantity: aws.Int32(1), Timestamp: aws.Time(now)}
	for _, tc := range []struct {
		name string
		c    *mm.Client
		in   *mm.MeterUsageInput
		code string
	}{
		{"a seller's key", v2Seller(srv), v2Meter("requests", 1, now), "AccessDeniedException"},
		{"another region than the workload's", v2Client(srv, mpmetertest.EC2Key, mpmetertest.EC2Secret, "us-west-2"), v2Meter("requests", 1, now), "InvalidEndpointRegionException"},
		{"a SaaS product", v2EC2(srv), saas, "InvalidProductCodeException"},
		{"unknown dimension", v2EC2(srv), v2Meter("nosuchdim", 1, now), "InvalidUsageDimensionException"},
		{"7 hours old", v2EC2(srv), v2Meter("requests", 1, now.Add(-7*time.Hour)), "TimestampOutOfBoundsException"},
		{"not entitled", v2Client(srv, mpmetertest.CancelledEC2Key, mpmetertest.CancelledEC2Secret, mpmetertest.Region), v2Meter("requests", 1, now), "CustomerNotEntitledException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.c.MeterUsage(ctx, tc.in)
			v2WantCode(t, err, tc.code, 400)
		})
	}
	if n := len(stored(t, srv, mpmeter.UsageFilter{})); n != 0 {
		t.Fatalf("failed calls stored %d records", n)
	}
}

// DryRun: 200 with MeteringRecordId "DryRunOperation" when the call would
// succeed, storing nothing; the real call's error when it would fail,
// including the stored hour and ClientToken.
func TestV2MeterUsageDryRun(t *testing.T) {
	srv := mpmetertest.New(t)
	ctx := context.Background()
	c := v2EC2(srv)
	ts := time.Now().Add(-time.Minute)
	dry := func(in *mm.MeterUsageInput) *mm.MeterUsageInput {
		in.DryRun = aws.Bool(true)
		return in
	}
	out, err := c.MeterUsage(ctx, dry(v2Meter("requests", 1, ts)))
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(out.MeteringRecordId); got != "DryRunOperation" {
		t.Fatalf("MeteringRecordId %q, want DryRunOperation", got)
	}
	if n := len(stored(t, srv, mpmeter.UsageFilter{})); n != 0 {
		t.Fatalf("DryRun stored %d records", n)
	}
	_, err = c.MeterUsage(ctx, dry(v2Meter("nosuchdim", 1, ts)))
	v2WantCode(t, err, "InvalidUsageDimensionException", 400)
	_, err = v2Client(srv, mpmetertest.CancelledEC2Key, mpmetertest.CancelledEC2Secret, mpmetertest.Region).MeterUsage(ctx, dry(v2Meter("requests", 1, ts)))
	v2WantCode(t, err, "CustomerNotEntitledException", 400)

	// The stored hour: the record again would succeed, another quantity
	// would be a DuplicateRequestException.
	real := v2Meter("requests", 2, ts)
	real.ClientToken = aws.String("dry-token")
	first, err := c.MeterUsage(ctx, real)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := c.MeterUsage(ctx, dry(v2Meter("requests", 2, ts))); err != nil || aws.ToString(out.MeteringRecordId) != "DryRunOperation" {
		t.Fatalf("DryRun of the stored record: %v %v", out, err)
	}
	_, err = c.MeterUsage(ctx, dry(v2Meter("requests", 3, ts)))
	v2WantCode(t, err, "DuplicateRequestException", 400)
	// The stored token: reused with other parameters.
	reuse := v2Meter("requests", 3, ts.Add(-2*time.Hour))
	reuse.ClientToken = aws.String("dry-token")
	_, err = c.MeterUsage(ctx, dry(reuse))
	v2WantCode(t, err, "IdempotencyConflictException", 400)

	recs := stored(t, srv, mpmeter.UsageFilter{})
	if len(recs) != 1 || recs[0].MeteringRecordID != aws.ToString(first.MeteringRecordId) {
		t.Fatalf("stored %d records, want only the real call's", len(recs))
	}
}

// The rate limit runs before the service, so DryRun calls count.
func TestV2MeterUsageDryRunIsThrottled(t *testing.T) {
	srv := mpmetertest.New(t, mpmetertest.WithConfig(func(c *server.Config) {
		c.RateLimit, c.RateBurst = 0.001, 1 // one call, then none for 1000 s
	}))
	ctx := context.Background()
	c := v2EC2(srv)
	in := v2Meter("requests", 1, time.Now())
	in.DryRun = aws.Bool(true)
	if _, err := c.MeterUsage(ctx, in); err != nil {
		t.Fatal(err)
	}
	_, err := c.MeterUsage(ctx, v2Meter("requests", 1, time.Now()))
	v2WantCode(t, err, "ThrottlingException", 400)
}

func TestV2ResolveCustomer(t *testing.T) {
	srv := mpmetertest.New(t)
	ctx := context.Background()
	c := v2Seller(srv)
	out, err := c.ResolveCustomer(ctx, &mm.ResolveCustomerInput{RegistrationToken: aws.String(mpmetertest.Token)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.CustomerIdentifier) != mpmetertest.Customer || aws.ToString(out.CustomerAWSAccountId) != mpmetertest.BuyerAccount ||
		aws.ToString(out.ProductCode) != mpmetertest.SaaSProduct || aws.ToString(out.LicenseArn) != mpmetertest.CustomerLicense {
		t.Fatalf("resolved %+v", out)
	}
	resolve := func(c *mm.Client, token string) error {
		_, err := c.ResolveCustomer(ctx, &mm.ResolveCustomerInput{RegistrationToken: aws.String(token)})
		return err
	}
	v2WantCode(t, resolve(c, "no-such-token"), "InvalidTokenException", 400)
	v2WantCode(t, resolve(c, mpmetertest.TokenOther), "InvalidTokenException", 400)
	v2WantCode(t, resolve(c, mpmetertest.TokenExpired), "ExpiredTokenException", 400)
	srv.Clock.Advance(4*time.Hour + time.Second)
	v2WantCode(t, resolve(c, mpmetertest.Token), "ExpiredTokenException", 400)
}

func TestV2RegisterUsage(t *testing.T) {
	srv := mpmetertest.New(t)
	ctx := context.Background()
	ecs := v2Client(srv, mpmetertest.ECSKey, mpmetertest.ECSSecret, mpmetertest.Region)
	in := func(product string, version int32) *mm.RegisterUsageInput {
		return &mm.RegisterUsageInput{ProductCode: aws.String(product), PublicKeyVersion: aws.Int32(version), Nonce: aws.String("n-v2")}
	}
	out, err := ecs.RegisterUsage(ctx, in(mpmetertest.ContainerProduct, 1))
	if err != nil {
		t.Fatal(err)
	}
	key := publicKey(t, srv, "1")
	claims := jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(aws.ToString(out.Signature), claims, func(*jwt.Token) (any, error) { return key, nil }, jwt.WithValidMethods([]string{"PS256"})); err != nil {
		t.Fatalf("token does not verify with the published key: %v", err)
	}
	if claims["productCode"] != mpmetertest.ContainerProduct || claims["nonce"] != "n-v2" || claims["customerAccountId"] != mpmetertest.BuyerAccount {
		t.Fatalf("claims %v", claims)
	}
	if out.PublicKeyRotationTimestamp != nil {
		t.Fatalf("current key version with a rotation timestamp %v", out.PublicKeyRotationTimestamp)
	}

	_, err = v2EC2(srv).RegisterUsage(ctx, in(mpmetertest.ContainerProduct, 1))
	v2WantCode(t, err, "PlatformNotSupportedException", 400)
	_, err = v2Client(srv, mpmetertest.ECSKey, mpmetertest.ECSSecret, "us-west-2").RegisterUsage(ctx, in(mpmetertest.ContainerProduct, 1))
	v2WantCode(t, err, "InvalidRegionException", 400)
	_, err = ecs.RegisterUsage(ctx, in(mpmetertest.AMIProduct, 1))
	v2WantCode(t, err, "InvalidProductCodeException", 400)
	_, err = ecs.RegisterUsage(ctx, in(mpmetertest.ContainerProduct, 99))
	v2WantCode(t, err, "InvalidPublicKeyVersionException", 400)
	_, err = v2Client(srv, mpmetertest.CancelledECSKey, mpmetertest.CancelledECSSecret, mpmetertest.Region).RegisterUsage(ctx, in(mpmetertest.ContainerProduct, 1))
	v2WantCode(t, err, "CustomerNotEntitledException", 400)
}

// eucsSeed is the demo marketplace plus a buyer in the AWS European
// Sovereign Cloud (eusc-de-east-1, partition aws-eusc).
const (
	euscRegion   = "eusc-de-east-1"
	euscBuyer    = "555566667777"
	euscEC2Key   = "AKIAEXAMPLEEUSC00001"
	euscEC2Secre = "eusc-secret"
	euscToken    = "eusc-token-1"
)

func euscSeed() *seed.File {
	f := seed.Demo()
	f.Accounts = append(f.Accounts, seed.Account{ID: euscBuyer, Name: "Sovereign Buyer", AccessKeys: []seed.AccessKey{{
		ID: euscEC2Key, Secret: euscEC2Secre,
		Workload: &seed.Workload{ID: "i-0eusc000000000001", Platform: mpmeter.PlatformEC2, Region: euscRegion},
	}}})
	f.Subscriptions = append(f.Subscriptions,
		seed.Subscription{Account: euscBuyer, Product: mpmetertest.SaaSProduct},
		seed.Subscription{Account: euscBuyer, Product: mpmetertest.AMIProduct})
	f.RegistrationTokens = append(f.RegistrationTokens, seed.RegistrationToken{Token: euscToken, Account: euscBuyer, Product: mpmetertest.SaaSProduct})
	return f
}

// The regions of today's SDK endpoint data: eusc-de-east-1 works for every
// operation, with license ARNs in the aws-eusc partition.
func TestV2SovereignCloudRegion(t *testing.T) {
	srv := mpmetertest.New(t, mpmetertest.WithSeed(euscSeed()))
	ctx := context.Background()
	c := v2Client(srv, mpmetertest.SellerKey, mpmetertest.SellerSecret, euscRegion)
	cust, err := c.ResolveCustomer(ctx, &mm.ResolveCustomerInput{RegistrationToken: aws.String(euscToken)})
	if err != nil {
		t.Fatal(err)
	}
	license := aws.ToString(cust.LicenseArn)
	if want := seed.LicenseArnInPartition("aws-eusc", euscBuyer, mpmetertest.SaaSProduct); license != want || !strings.HasPrefix(license, "arn:aws-eusc:license-manager::"+euscBuyer+":") {
		t.Fatalf("license ARN %q, want %q", license, want)
	}
	out, err := c.BatchMeterUsage(ctx, &mm.BatchMeterUsageInput{UsageRecords: []types.UsageRecord{{
		CustomerAWSAccountId: aws.String(euscBuyer), LicenseArn: aws.String(license),
		Dimension: aws.String("users"), Quantity: aws.Int32(2), Timestamp: aws.Time(time.Now()),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if out.Results[0].Status != types.UsageRecordResultStatusSuccess {
		t.Fatalf("BatchMeterUsage in %s: %+v", euscRegion, out.Results[0])
	}
	ec2 := v2Client(srv, euscEC2Key, euscEC2Secre, euscRegion)
	if _, err := ec2.MeterUsage(ctx, v2Meter("vcpu_hours", 1, time.Now())); err != nil {
		t.Fatalf("MeterUsage in %s: %v", euscRegion, err)
	}
	// The workload's region is compared as anywhere else.
	_, err = v2Client(srv, euscEC2Key, euscEC2Secre, mpmetertest.Region).MeterUsage(ctx, v2Meter("vcpu_hours", 1, time.Now()))
	v2WantCode(t, err, "InvalidEndpointRegionException", 400)
}

// Outside an operation's regions: DisabledApiException. --regions (here
// server.Config.Regions) offers more.
func TestV2Regions(t *testing.T) {
	ctx := context.Background()
	ts := time.Now().Add(-time.Minute)
	batch := func(srv *mpmetertest.Server, region string) error {
		_, err := v2Client(srv, mpmetertest.SellerKey, mpmetertest.SellerSecret, region).BatchMeterUsage(ctx,
			v2Batch(mpmetertest.SaaSProduct, v2Record(mpmetertest.Customer, "users", 1, ts)))
		return err
	}
	srv := mpmetertest.New(t)
	for _, region := range []string{"us-gov-west-1", "us-isob-west-1", "eu-future-1"} {
		v2WantCode(t, batch(srv, region), "DisabledApiException", 400)
	}
	_, err := v2Client(srv, mpmetertest.ECSKey, mpmetertest.ECSSecret, "me-south-1").RegisterUsage(ctx,
		&mm.RegisterUsageInput{ProductCode: aws.String(mpmetertest.ContainerProduct), PublicKeyVersion: aws.Int32(1)})
	v2WantCode(t, err, "DisabledApiException", 400)
	for _, region := range []string{"cn-northwest-1", "us-isob-east-1", euscRegion} {
		if err := batch(srv, region); err != nil {
			t.Errorf("BatchMeterUsage in %s: %v", region, err)
		}
	}

	regions := mpmeter.DefaultRegions()
	if err := regions.Add("eu-future-1,MeterUsage=us-isof-south-1"); err != nil {
		t.Fatal(err)
	}
	extended := mpmetertest.New(t, mpmetertest.WithConfig(func(c *server.Config) { c.Regions = regions }))
	if err := batch(extended, "eu-future-1"); err != nil {
		t.Fatalf("BatchMeterUsage in the added eu-future-1: %v", err)
	}
	v2WantCode(t, batch(extended, "us-isof-south-1"), "DisabledApiException", 400)
	// MeterUsage is offered there now; the demo workload runs in us-east-1.
	_, err = v2Client(extended, mpmetertest.EC2Key, mpmetertest.EC2Secret, "us-isof-south-1").MeterUsage(ctx, v2Meter("requests", 1, ts))
	v2WantCode(t, err, "InvalidEndpointRegionException", 400)
}

// The newer 24-hour window ends, for last month's usage, at 06:00 UTC on the
// first day of the month; the default 6-hour window is shorter anyway.
func TestV2UsageWindowAtMonthEnd(t *testing.T) {
	ctx := context.Background()
	day := mpmetertest.New(t, mpmetertest.WithConfig(func(c *server.Config) { c.UsageWindow = 24 * time.Hour }))
	six := mpmetertest.New(t)
	lastDay := time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC) // 20 hours before 06:00 on February 1st
	beforeCutoff := time.Date(2026, 2, 1, 5, 59, 59, 0, time.UTC)
	atCutoff := time.Date(2026, 2, 1, 6, 0, 0, 0, time.UTC)
	batch := func(srv *mpmetertest.Server, ts time.Time) error {
		_, err := v2Seller(srv).BatchMeterUsage(ctx, v2Batch(mpmetertest.SaaSProduct, v2Record(mpmetertest.Customer, "users", 1, ts)))
		return err
	}
	meter := func(srv *mpmetertest.Server, ts time.Time) error {
		_, err := v2EC2(srv).MeterUsage(ctx, v2Meter("requests", 1, ts))
		return err
	}

	day.Clock.Set(beforeCutoff)
	six.Clock.Set(beforeCutoff)
	if err := batch(day, lastDay); err != nil {
		t.Fatalf("24h window, 05:59:59 on the 1st, last month's record: %v", err)
	}
	if err := meter(day, lastDay.Add(time.Hour)); err != nil {
		t.Fatalf("24h window, 05:59:59 on the 1st, last month's MeterUsage: %v", err)
	}
	v2WantCode(t, batch(six, lastDay), "TimestampOutOfBoundsException", 400)

	day.Clock.Set(atCutoff)
	v2WantCode(t, batch(day, lastDay.Add(2*time.Hour)), "TimestampOutOfBoundsException", 400)
	msg := v2WantCode(t, meter(day, lastDay.Add(3*time.Hour)), "TimestampOutOfBoundsException", 400)
	if !strings.Contains(msg, "2026-02-01T06:00:00Z") {
		t.Errorf("message %q does not say when last month's usage closed", msg)
	}
	// This month's usage is unaffected.
	if err := batch(day, atCutoff.Add(-time.Hour)); err != nil {
		t.Fatalf("this month's record at 06:00 on the 1st: %v", err)
	}
}

// A client whose clock runs ahead of the server's: up to 15 minutes (the
// SigV4 skew it may have) by default.
func TestV2FutureTolerance(t *testing.T) {
	srv := mpmetertest.New(t)
	ctx := context.Background()
	c := v2Seller(srv)
	if _, err := c.BatchMeterUsage(ctx, v2Batch(mpmetertest.SaaSProduct, v2Record(mpmetertest.Customer, "users", 1, time.Now().Add(10*time.Minute)))); err != nil {
		t.Fatalf("10 minutes ahead: %v", err)
	}
	_, err := c.BatchMeterUsage(ctx, v2Batch(mpmetertest.SaaSProduct, v2Record(mpmetertest.Customer, "gigabytes", 1, time.Now().Add(20*time.Minute))))
	v2WantCode(t, err, "TimestampOutOfBoundsException", 400)
}
