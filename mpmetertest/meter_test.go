package mpmetertest_test

//lint:file-ignore SA1019 aws-sdk-go v1 is deprecated, and still one of the real clients mpmeter must serve: it is tested on purpose.

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go/aws"
	mm "github.com/aws/aws-sdk-go/service/marketplacemetering"
	"github.com/golang-jwt/jwt/v5"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/mpmetertest"
	"github.com/mpmeter/mpmeter/server"
)

func ec2(t *testing.T, srv *mpmetertest.Server) *mm.MarketplaceMetering {
	return client(t, srv, mpmetertest.EC2Key, mpmetertest.EC2Secret, mpmetertest.Region)
}

func meterInput(dim string, q int64, ts time.Time) *mm.MeterUsageInput {
	return &mm.MeterUsageInput{ProductCode: aws.String(mpmetertest.AMIProduct), UsageDimension: aws.String(dim), UsageQuantity: aws.Int64(q), Timestamp: aws.Time(ts)}
}

func TestMeterUsageHourlyRecord(t *testing.T) {
	srv := mpmetertest.New(t)
	c := ec2(t, srv)
	ts := time.Now().Add(-time.Hour)
	first, err := c.MeterUsage(meterInput("vcpu_hours", 4, ts))
	if err != nil {
		t.Fatal(err)
	}
	if aws.StringValue(first.MeteringRecordId) == "" {
		t.Fatal("no MeteringRecordId")
	}
	// aws-sdk-go fills ClientToken with a fresh UUID on every call, so this
	// retry is deduplicated by workload + product + dimension + hour.
	again, err := c.MeterUsage(meterInput("vcpu_hours", 4, ts.Truncate(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	if *again.MeteringRecordId != *first.MeteringRecordId {
		t.Fatal("the same hour's record got a new id")
	}
	_, err = c.MeterUsage(meterInput("vcpu_hours", 5, ts))
	wantCode(t, err, "DuplicateRequestException", 400)
	other, err := c.MeterUsage(meterInput("requests", 5, ts))
	if err != nil || *other.MeteringRecordId == *first.MeteringRecordId {
		t.Fatalf("another dimension: %v %v", other, err)
	}
	// Another workload of the same buyer has its own hour.
	ecs, err := client(t, srv, mpmetertest.ECSKey, mpmetertest.ECSSecret, mpmetertest.Region).MeterUsage(meterInput("vcpu_hours", 5, ts))
	if err != nil || *ecs.MeteringRecordId == *first.MeteringRecordId {
		t.Fatalf("another workload: %v %v", ecs, err)
	}
	recs, _ := srv.Store.Usage(context.Background(), mpmeter.UsageFilter{ProductCode: mpmetertest.AMIProduct})
	if len(recs) != 3 {
		t.Fatalf("stored %d records, want 3", len(recs))
	}
}

// ClientToken is newer than aws-sdk-go v1's model: raw signed requests here,
// boto3 and JS v3 in the CI suites.
func TestMeterUsageClientToken(t *testing.T) {
	srv := mpmetertest.New(t)
	ts := time.Now().Add(-time.Minute).Unix()
	meter := func(key, secret string, quantity int) (int, map[string]any) {
		t.Helper()
		status, raw := srv.Do(t, mpmetertest.Raw{Target: "MeterUsage", Key: key, Secret: secret,
			Body: fmt.Sprintf(`{"ProductCode":"exampleami1","Timestamp":%d,"UsageDimension":"requests","UsageQuantity":%d,"ClientToken":"token-1"}`, ts, quantity)})
		var out map[string]any
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatal(err)
		}
		return status, out
	}
	status, first := meter(mpmetertest.EC2Key, mpmetertest.EC2Secret, 10)
	if status != 200 || first["MeteringRecordId"] == nil {
		t.Fatalf("%d %v", status, first)
	}
	status, again := meter(mpmetertest.EC2Key, mpmetertest.EC2Secret, 10)
	if status != 200 || again["MeteringRecordId"] != first["MeteringRecordId"] {
		t.Fatalf("same token, same parameters: %d %v", status, again)
	}
	status, conflict := meter(mpmetertest.EC2Key, mpmetertest.EC2Secret, 11)
	if status != 400 || conflict["__type"] != "IdempotencyConflictException" {
		t.Fatalf("same token, other quantity: %d %v", status, conflict)
	}
	// Tokens belong to a workload: another workload may use the same one.
	if status, out := meter(mpmetertest.ECSKey, mpmetertest.ECSSecret, 11); status != 200 {
		t.Fatalf("another workload's token space: %d %v", status, out)
	}
}

// A DryRun that would succeed answers 200 with MeteringRecordId
// "DryRunOperation" and stores nothing; one that would fail answers the
// error the real call would get, the stored hour included.
func TestMeterUsageDryRun(t *testing.T) {
	srv := mpmetertest.New(t)
	c := ec2(t, srv)
	ts := time.Now().Add(-time.Minute)
	dry := func(in *mm.MeterUsageInput) *mm.MeterUsageInput {
		in.DryRun = aws.Bool(true)
		return in
	}
	out, err := c.MeterUsage(dry(meterInput("requests", 1, ts)))
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.StringValue(out.MeteringRecordId); got != "DryRunOperation" {
		t.Fatalf("MeteringRecordId %q, want DryRunOperation", got)
	}
	recs, _ := srv.Store.Usage(context.Background(), mpmeter.UsageFilter{})
	if len(recs) != 0 {
		t.Fatalf("DryRun stored %d records", len(recs))
	}
	// Nothing was stored: the real call with another quantity is no duplicate.
	first, err := c.MeterUsage(meterInput("requests", 2, ts))
	if err != nil {
		t.Fatal(err)
	}
	// The stored hour: the same record again would succeed, another quantity
	// would be DuplicateRequestException.
	if out, err := c.MeterUsage(dry(meterInput("requests", 2, ts))); err != nil || aws.StringValue(out.MeteringRecordId) != "DryRunOperation" {
		t.Fatalf("DryRun of the stored record: %v %v", out, err)
	}
	_, err = c.MeterUsage(dry(meterInput("requests", 3, ts)))
	wantCode(t, err, "DuplicateRequestException", 400)

	for name, tc := range map[string]struct {
		c    *mm.MarketplaceMetering
		in   *mm.MeterUsageInput
		code string
	}{
		"unknown dimension":    {c, meterInput("nosuchdim", 1, ts), "InvalidUsageDimensionException"},
		"too old":              {c, meterInput("requests", 1, ts.Add(-7*time.Hour)), "TimestampOutOfBoundsException"},
		"not entitled":         {client(t, srv, mpmetertest.CancelledEC2Key, mpmetertest.CancelledEC2Secret, mpmetertest.Region), meterInput("requests", 1, ts), "CustomerNotEntitledException"},
		"workload's region":    {client(t, srv, mpmetertest.EC2Key, mpmetertest.EC2Secret, "us-west-2"), meterInput("requests", 1, ts), "InvalidEndpointRegionException"},
		"region not offered":   {client(t, srv, mpmetertest.EC2Key, mpmetertest.EC2Secret, "cn-northwest-1"), meterInput("requests", 1, ts), "DisabledApiException"},
		"not a workload":       {seller(t, srv), meterInput("requests", 1, ts), "AccessDeniedException"},
		"not an AMI/container": {c, &mm.MeterUsageInput{ProductCode: aws.String(mpmetertest.SaaSProduct), UsageDimension: aws.String("users"), UsageQuantity: aws.Int64(1), Timestamp: aws.Time(ts)}, "InvalidProductCodeException"},
	} {
		_, err := tc.c.MeterUsage(dry(tc.in))
		t.Run(name, func(t *testing.T) { wantCode(t, err, tc.code, 400) })
	}
	recs, _ = srv.Store.Usage(context.Background(), mpmeter.UsageFilter{})
	if len(recs) != 1 || recs[0].MeteringRecordID != *first.MeteringRecordId {
		t.Fatalf("stored %d records, want only the real call's", len(recs))
	}
}

// ClientToken with DryRun (raw requests: aws-sdk-go v1's model has no
// ClientToken): a token reused with other parameters is
// IdempotencyConflictException, and a DryRun stores no token.
func TestMeterUsageDryRunClientToken(t *testing.T) {
	srv := mpmetertest.New(t)
	ts := time.Now().Add(-time.Minute).Unix()
	meter := func(token string, quantity int, dryRun bool) (int, map[string]any) {
		t.Helper()
		status, raw := srv.Do(t, mpmetertest.Raw{Target: "MeterUsage", Key: mpmetertest.EC2Key, Secret: mpmetertest.EC2Secret,
			Body: fmt.Sprintf(`{"ProductCode":"exampleami1","Timestamp":%d,"UsageDimension":"requests","UsageQuantity":%d,"ClientToken":%q,"DryRun":%t}`, ts, quantity, token, dryRun)})
		var out map[string]any
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatal(err)
		}
		return status, out
	}
	if status, out := meter("dry-token", 5, true); status != 200 || out["MeteringRecordId"] != "DryRunOperation" {
		t.Fatalf("DryRun with a new token: %d %v", status, out)
	}
	// The dry run stored no token: the real call may use it with other
	// parameters.
	if status, out := meter("dry-token", 6, false); status != 200 || out["MeteringRecordId"] == "DryRunOperation" {
		t.Fatalf("real call after a DryRun with its token: %d %v", status, out)
	}
	if status, out := meter("dry-token", 6, true); status != 200 || out["MeteringRecordId"] != "DryRunOperation" {
		t.Fatalf("DryRun repeating the real call: %d %v", status, out)
	}
	if status, out := meter("dry-token", 7, true); status != 400 || out["__type"] != "IdempotencyConflictException" {
		t.Fatalf("DryRun reusing the token with other parameters: %d %v", status, out)
	}
	if recs, _ := srv.Store.Usage(context.Background(), mpmeter.UsageFilter{}); len(recs) != 1 {
		t.Fatalf("stored %d records, want 1", len(recs))
	}
}

// The rate limit runs before the service: DryRun calls count.
func TestMeterUsageDryRunIsThrottled(t *testing.T) {
	srv := mpmetertest.New(t, mpmetertest.WithConfig(func(c *server.Config) {
		c.RateLimit, c.RateBurst = 0.001, 2 // two calls, then none for 1000 s
	}))
	c := ec2(t, srv)
	in := meterInput("requests", 1, time.Now())
	in.DryRun = aws.Bool(true)
	for i := range 2 {
		if _, err := c.MeterUsage(in); err != nil {
			t.Fatalf("DryRun %d within the burst: %v", i+1, err)
		}
	}
	_, err := c.MeterUsage(in)
	wantCode(t, err, "ThrottlingException", 400)
	// And they count toward the real calls' limit.
	_, err = c.MeterUsage(meterInput("requests", 1, time.Now()))
	wantCode(t, err, "ThrottlingException", 400)
}

func TestMeterUsageErrors(t *testing.T) {
	srv := mpmetertest.New(t)
	c := ec2(t, srv)
	now := time.Now()
	_, err := client(t, srv, mpmetertest.EC2Key, mpmetertest.EC2Secret, "us-west-2").MeterUsage(meterInput("requests", 1, now))
	wantCode(t, err, "InvalidEndpointRegionException", 400)
	in := meterInput("requests", 1, now)
	in.ProductCode = aws.String(mpmetertest.SaaSProduct)
	_, err = c.MeterUsage(in)
	wantCode(t, err, "InvalidProductCodeException", 400)
	in.ProductCode = aws.String("nosuchproduct")
	_, err = c.MeterUsage(in)
	wantCode(t, err, "InvalidProductCodeException", 400)
	_, err = c.MeterUsage(meterInput("nosuchdim", 1, now))
	wantCode(t, err, "InvalidUsageDimensionException", 400)
	_, err = c.MeterUsage(meterInput("requests", 1, now.Add(-7*time.Hour)))
	wantCode(t, err, "TimestampOutOfBoundsException", 400)
	alloc := meterInput("requests", 3, now)
	alloc.UsageAllocations = []*mm.UsageAllocation{{AllocatedUsageQuantity: aws.Int64(1)}}
	_, err = c.MeterUsage(alloc)
	wantCode(t, err, "InvalidUsageAllocationsException", 400)
	alloc.UsageAllocations = []*mm.UsageAllocation{{AllocatedUsageQuantity: aws.Int64(3), Tags: []*mm.Tag{{Key: aws.String("k"), Value: aws.String("a")}, {Key: aws.String("k"), Value: aws.String("b")}}}}
	_, err = c.MeterUsage(alloc)
	wantCode(t, err, "InvalidTagException", 400)
	_, err = client(t, srv, mpmetertest.CancelledEC2Key, mpmetertest.CancelledEC2Secret, mpmetertest.Region).MeterUsage(meterInput("requests", 1, now))
	wantCode(t, err, "CustomerNotEntitledException", 400)
	_, err = client(t, srv, mpmetertest.BuyerKey, mpmetertest.BuyerSecret, mpmetertest.Region).MeterUsage(meterInput("requests", 1, now))
	wantCode(t, err, "AccessDeniedException", 400)
	_, err = client(t, srv, mpmetertest.EC2Key, mpmetertest.EC2Secret, "cn-northwest-1").MeterUsage(meterInput("requests", 1, now))
	wantCode(t, err, "DisabledApiException", 400)
}

func TestMeterUsageAgentCoreReportsManyTimesAnHour(t *testing.T) {
	srv := mpmetertest.New(t)
	c := client(t, srv, mpmetertest.AgentKey, mpmetertest.AgentSecret, mpmetertest.Region)
	ids := map[string]bool{}
	ts := time.Now().Add(-time.Minute)
	for q := int64(1); q <= 3; q++ {
		in := meterInput("requests", q, ts)
		in.ProductCode = aws.String(mpmetertest.ContainerProduct)
		out, err := c.MeterUsage(in)
		if err != nil {
			t.Fatal(err)
		}
		ids[*out.MeteringRecordId] = true
	}
	if len(ids) != 3 {
		t.Fatalf("3 AgentCore reports in one hour got %d ids", len(ids))
	}
}

func TestMeterUsageConcurrentIdenticalCallsStoreOnce(t *testing.T) {
	srv := mpmetertest.New(t)
	c := ec2(t, srv)
	in := meterInput("vcpu_hours", 2, time.Now().Add(-time.Minute))
	const n = 16
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			out, err := c.MeterUsage(in)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = *out.MeteringRecordId
		}(i)
	}
	wg.Wait()
	for i := range ids {
		if ids[i] != ids[0] {
			t.Fatalf("concurrent identical calls got ids %v", ids)
		}
	}
	recs, _ := srv.Store.Usage(context.Background(), mpmeter.UsageFilter{})
	if len(recs) != 1 {
		t.Fatalf("stored %d records", len(recs))
	}
}

// publicKey fetches a version's PEM over HTTP, as a seller's container would.
func publicKey(t *testing.T, srv *mpmetertest.Server, version string) any {
	t.Helper()
	resp, err := http.Get(srv.URL + "/keys/public/" + version)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /keys/public/%s: %d %s", version, resp.StatusCode, body)
	}
	block, _ := pem.Decode(body)
	if block == nil || block.Type != "PUBLIC KEY" {
		t.Fatalf("not a PEM public key: %s", body)
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func TestRegisterUsageTokenVerifies(t *testing.T) {
	srv := mpmetertest.New(t)
	c := client(t, srv, mpmetertest.ECSKey, mpmetertest.ECSSecret, mpmetertest.Region)
	out, err := c.RegisterUsage(&mm.RegisterUsageInput{ProductCode: aws.String(mpmetertest.ContainerProduct), PublicKeyVersion: aws.Int64(1), Nonce: aws.String("n-123")})
	if err != nil {
		t.Fatal(err)
	}
	if out.PublicKeyRotationTimestamp != nil {
		t.Fatalf("the current key version has a rotation timestamp %v", out.PublicKeyRotationTimestamp)
	}
	key := publicKey(t, srv, "1")
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(*out.Signature, claims, func(*jwt.Token) (any, error) { return key, nil }, jwt.WithValidMethods([]string{"PS256"}))
	if err != nil || !tok.Valid {
		t.Fatalf("token does not verify with the published key: %v", err)
	}
	if claims["productCode"] != mpmetertest.ContainerProduct || claims["publicKeyVersion"] != float64(1) || claims["nonce"] != "n-123" {
		t.Fatalf("claims %v", claims)
	}
	if iat, _ := claims["iat"].(float64); time.Since(time.Unix(int64(iat), 0)).Abs() > time.Minute {
		t.Fatalf("iat %v", claims["iat"])
	}
	if tok.Header["typ"] != "JWT" {
		t.Fatalf("header %v", tok.Header)
	}
	// Tampering breaks it.
	if _, err := jwt.Parse(*out.Signature+"x", func(*jwt.Token) (any, error) { return key, nil }); err == nil {
		t.Fatal("a tampered token verified")
	}
	recs, _ := srv.Store.Usage(context.Background(), mpmeter.UsageFilter{Kind: mpmeter.UsageRegister})
	if len(recs) != 1 || recs[0].ProductCode != mpmetertest.ContainerProduct || recs[0].CustomerAccountID != mpmetertest.BuyerAccount {
		t.Fatalf("registration not recorded: %+v", recs)
	}
}

func TestRegisterUsageRotation(t *testing.T) {
	srv := mpmetertest.New(t)
	c := client(t, srv, mpmetertest.ECSKey, mpmetertest.ECSSecret, mpmetertest.Region)
	_, err := c.RegisterUsage(&mm.RegisterUsageInput{ProductCode: aws.String(mpmetertest.ContainerProduct), PublicKeyVersion: aws.Int64(2)})
	wantCode(t, err, "InvalidPublicKeyVersionException", 400)
	v, err := srv.Keys.Rotate(context.Background())
	if err != nil || v != 2 {
		t.Fatalf("rotate: %d %v", v, err)
	}
	for version, wantRotated := range map[int64]bool{1: true, 2: false} {
		out, err := c.RegisterUsage(&mm.RegisterUsageInput{ProductCode: aws.String(mpmetertest.ContainerProduct), PublicKeyVersion: aws.Int64(version)})
		if err != nil {
			t.Fatal(err)
		}
		if (out.PublicKeyRotationTimestamp != nil) != wantRotated {
			t.Fatalf("version %d: rotation timestamp %v", version, out.PublicKeyRotationTimestamp)
		}
		key := publicKey(t, srv, map[int64]string{1: "1", 2: "2.pem"}[version])
		if _, err := jwt.Parse(*out.Signature, func(*jwt.Token) (any, error) { return key, nil }); err != nil {
			t.Fatalf("version %d token: %v", version, err)
		}
	}
}

func TestRegisterUsageErrors(t *testing.T) {
	srv := mpmetertest.New(t)
	ecs := client(t, srv, mpmetertest.ECSKey, mpmetertest.ECSSecret, mpmetertest.Region)
	in := func(product string, version int64) *mm.RegisterUsageInput {
		return &mm.RegisterUsageInput{ProductCode: aws.String(product), PublicKeyVersion: aws.Int64(version)}
	}
	_, err := ec2(t, srv).RegisterUsage(in(mpmetertest.ContainerProduct, 1))
	wantCode(t, err, "PlatformNotSupportedException", 400)
	_, err = client(t, srv, mpmetertest.ECSKey, mpmetertest.ECSSecret, "us-west-2").RegisterUsage(in(mpmetertest.ContainerProduct, 1))
	wantCode(t, err, "InvalidRegionException", 400)
	_, err = ecs.RegisterUsage(in(mpmetertest.AMIProduct, 1))
	wantCode(t, err, "InvalidProductCodeException", 400)
	_, err = ecs.RegisterUsage(in(mpmetertest.ContainerProduct, 99))
	wantCode(t, err, "InvalidPublicKeyVersionException", 400)
	_, err = client(t, srv, mpmetertest.CancelledECSKey, mpmetertest.CancelledECSSecret, mpmetertest.Region).RegisterUsage(in(mpmetertest.ContainerProduct, 1))
	wantCode(t, err, "CustomerNotEntitledException", 400)
	_, err = client(t, srv, mpmetertest.ECSKey, mpmetertest.ECSSecret, "sa-east-1").RegisterUsage(in(mpmetertest.ContainerProduct, 1))
	wantCode(t, err, "InvalidRegionException", 400)
	_, err = client(t, srv, mpmetertest.ECSKey, mpmetertest.ECSSecret, "me-south-1").RegisterUsage(in(mpmetertest.ContainerProduct, 1))
	wantCode(t, err, "DisabledApiException", 400)
	// Raw: version 0 is below the model's minimum.
	status, body := srv.Do(t, mpmetertest.Raw{Target: "RegisterUsage", Key: mpmetertest.ECSKey, Secret: mpmetertest.ECSSecret, Body: `{"ProductCode":"examplecontainer1","PublicKeyVersion":0}`})
	if code, msg := rawError(t, body); status != 400 || code != "ValidationException" || msg != "1 validation error detected: Value '0' at 'publicKeyVersion' failed to satisfy constraint: Member must have value greater than or equal to 1" {
		t.Fatalf("%d %s %s", status, code, msg)
	}
}

// A task that registered keeps working after the buyer unsubscribes; a new
// task of the same buyer is refused.
func TestRegisterUsageSurvivesUnsubscribe(t *testing.T) {
	srv := mpmetertest.New(t)
	ctx := context.Background()
	ecs := client(t, srv, mpmetertest.ECSKey, mpmetertest.ECSSecret, mpmetertest.Region)
	in := &mm.RegisterUsageInput{ProductCode: aws.String(mpmetertest.ContainerProduct), PublicKeyVersion: aws.Int64(1)}
	if _, err := ecs.RegisterUsage(in); err != nil {
		t.Fatal(err)
	}
	subs, err := srv.Store.SubscriptionsOf(ctx, mpmetertest.BuyerAccount, mpmetertest.ContainerProduct)
	if err != nil || len(subs) != 1 {
		t.Fatalf("subscriptions: %v %v", subs, err)
	}
	subs[0].Status = mpmeter.SubscriptionCancelled
	if err := srv.Store.PutSubscription(ctx, subs[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := ecs.RegisterUsage(in); err != nil {
		t.Fatalf("the registered task was refused after unsubscribing: %v", err)
	}
	_, err = client(t, srv, mpmetertest.EKSKey, mpmetertest.EKSSecret, mpmetertest.Region).RegisterUsage(in)
	wantCode(t, err, "CustomerNotEntitledException", 400)
	recs, _ := srv.Store.Usage(ctx, mpmeter.UsageFilter{Kind: mpmeter.UsageRegister})
	if len(recs) != 1 {
		t.Fatalf("registrations stored: %d, want 1 (one per workload and product)", len(recs))
	}
}
