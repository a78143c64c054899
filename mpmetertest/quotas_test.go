package mpmetertest_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	mm "github.com/aws/aws-sdk-go-v2/service/marketplacemetering"
	"github.com/aws/aws-sdk-go-v2/service/marketplacemetering/types"

	"github.com/mpmeter/mpmeter/mpmetertest"
	"github.com/mpmeter/mpmeter/ratelimit"
	"github.com/mpmeter/mpmeter/server"
)

// Under AWS's quotas, aws-sdk-go-v2's standard retryer rides out the
// ThrottlingExceptions of a burst: every call of 20 in a row succeeds, some
// after retries. (Its backoff is capped at 200 ms here to keep the test
// short; the retry decision is the standard retryer's own.)
func TestV2StandardRetryerRidesOutQuotas(t *testing.T) {
	srv := mpmetertest.New(t, mpmetertest.WithConfig(func(c *server.Config) { c.Quotas = ratelimit.AWSQuotas() }))
	c := mm.NewFromConfig(srv.AWSConfig(mpmetertest.SellerKey, mpmetertest.SellerSecret), func(o *mm.Options) {
		o.Retryer = retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 10
			o.MaxBackoff = 200 * time.Millisecond
		})
	})
	ctx := context.Background()
	retried := 0
	for i := range 20 {
		out, err := c.BatchMeterUsage(ctx, &mm.BatchMeterUsageInput{ProductCode: aws.String(mpmetertest.SaaSProduct), UsageRecords: []types.UsageRecord{}})
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if res, ok := retry.GetAttemptResults(out.ResultMetadata); ok && len(res.Results) > 1 {
			retried++
		}
	}
	// 20 calls in far less than a second: at most 10 + the refill fit.
	if retried == 0 {
		t.Fatal("no call was throttled and retried")
	}
}

// Quotas are per account and region; DryRun calls count; ResolveCustomer
// has no AWS quota.
func TestV2Quotas(t *testing.T) {
	srv := mpmetertest.New(t, mpmetertest.WithConfig(func(c *server.Config) {
		c.Quotas = ratelimit.AWSQuotas()
		c.Quotas["MeterUsage"] = ratelimit.Rate{PerSecond: 0.001, Burst: 2} // two calls, then none for 1000 s
	}))
	ctx := context.Background()
	ec2 := v2EC2(srv)
	dry := v2Meter("requests", 1, time.Now())
	dry.DryRun = aws.Bool(true)
	for range 2 {
		if _, err := ec2.MeterUsage(ctx, dry); err != nil {
			t.Fatal(err)
		}
	}
	_, err := ec2.MeterUsage(ctx, v2Meter("requests", 1, time.Now()))
	if msg := v2WantCode(t, err, "ThrottlingException", 400); msg != "Rate exceeded" {
		t.Errorf("message %q", msg)
	}

	seller := v2Seller(srv)
	west := v2Client(srv, mpmetertest.SellerKey, mpmetertest.SellerSecret, "us-west-2")
	throttled := false
	for range 30 {
		if _, err := seller.BatchMeterUsage(ctx, &mm.BatchMeterUsageInput{ProductCode: aws.String(mpmetertest.SaaSProduct), UsageRecords: []types.UsageRecord{}}); err != nil {
			v2WantCode(t, err, "ThrottlingException", 400)
			throttled = true
		}
	}
	if !throttled {
		t.Fatal("30 BatchMeterUsage calls at once, none throttled")
	}
	if _, err := west.BatchMeterUsage(ctx, &mm.BatchMeterUsageInput{ProductCode: aws.String(mpmetertest.SaaSProduct), UsageRecords: []types.UsageRecord{}}); err != nil {
		t.Fatalf("another region shares the bucket: %v", err)
	}
	for range 30 {
		if _, err := seller.ResolveCustomer(ctx, &mm.ResolveCustomerInput{RegistrationToken: aws.String(mpmetertest.Token)}); err != nil {
			t.Fatalf("ResolveCustomer limited: %v", err)
		}
	}
}
