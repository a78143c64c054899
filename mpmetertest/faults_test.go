package mpmetertest_test

// Fault injection against aws-sdk-go-v2's real retryers: what a seller's
// Go integration does when mpmeter throttles, fails, drops connections or
// returns records unprocessed (docs/retries.md).

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	mm "github.com/aws/aws-sdk-go-v2/service/marketplacemetering"
	"github.com/aws/aws-sdk-go-v2/service/marketplacemetering/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/mpmetertest"
	"github.com/mpmeter/mpmeter/seed"
)

// v2Standard is a seller client with the standard retryer (3 attempts),
// its backoff capped at 20 ms to keep the tests short: the decisions
// (what is retried, how often) are the retryer's own.
func v2Standard(srv *mpmetertest.Server, key, secret string) *mm.Client {
	return mm.NewFromConfig(srv.AWSConfig(key, secret), func(o *mm.Options) {
		o.Retryer = retry.NewStandard(func(o *retry.StandardOptions) { o.MaxBackoff = 20 * time.Millisecond })
	})
}

func addFault(t *testing.T, srv *mpmetertest.Server, r mpmeter.FaultRule) {
	t.Helper()
	if r.CreatedAt.IsZero() {
		r.CreatedAt = srv.Clock.Now()
	}
	if r.Count > 0 && r.Remaining == 0 {
		r.Remaining = r.Count
	}
	if err := srv.Store.AddFaultRule(context.Background(), r); err != nil {
		t.Fatal(err)
	}
}

// attempts is how many attempts the SDK made for out.
func attempts(t *testing.T, md middleware.Metadata) int {
	t.Helper()
	res, ok := retry.GetAttemptResults(md)
	if !ok {
		t.Fatal("no attempt results in the output's metadata")
	}
	return len(res.Results)
}

// faultedEvents are the audit events of op, and those marked with an
// injected fault.
func faultedEvents(t *testing.T, srv *mpmetertest.Server, op string) (all, faulted []mpmeter.AuditEvent) {
	t.Helper()
	for _, ev := range srv.AuditEvents(t, mpmeter.AuditFilter{EventName: op}) {
		all = append(all, ev)
		if ev.AdditionalEventData != nil && ev.AdditionalEventData.InjectedFault != nil {
			faulted = append(faulted, ev)
		}
	}
	return all, faulted
}

// The standard retryer retries each kind of error fault (throttling,
// 500, 503, a dropped connection) and the call succeeds on the third
// attempt; the server saw exactly three, two of them faulted, and stored
// the record once.
func TestFaultsV2StandardRetryer(t *testing.T) {
	kinds := []mpmeter.FaultKind{mpmeter.FaultThrottling, mpmeter.FaultInternalError, mpmeter.FaultServiceUnavailable, mpmeter.FaultDropConnection}
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			srv := mpmetertest.New(t)
			addFault(t, srv, mpmeter.FaultRule{ID: "f", Operation: mpmeter.OpBatchMeterUsage, Kind: kind, Count: 2})
			c := v2Standard(srv, mpmetertest.SellerKey, mpmetertest.SellerSecret)
			out, err := c.BatchMeterUsage(context.Background(), v2Batch(mpmetertest.SaaSProduct, v2Record(mpmetertest.Customer, "users", 3, time.Now())))
			if err != nil {
				t.Fatalf("after two %s faults and three attempts: %v", kind, err)
			}
			if n := attempts(t, out.ResultMetadata); n != 3 {
				t.Errorf("SDK attempts %d, want 3", n)
			}
			if len(out.Results) != 1 || out.Results[0].Status != types.UsageRecordResultStatusSuccess {
				t.Fatalf("results %+v", out.Results)
			}
			all, faulted := faultedEvents(t, srv, mpmeter.OpBatchMeterUsage)
			if len(all) != 3 || len(faulted) != 2 {
				t.Errorf("server saw %d calls, %d faulted; want 3 and 2", len(all), len(faulted))
			}
			for _, ev := range faulted {
				if f := ev.AdditionalEventData.InjectedFault; f.Kind != kind || f.RuleID != "f" {
					t.Errorf("event marked %+v", f)
				}
			}
			if recs := stored(t, srv, mpmeter.UsageFilter{ProductCode: mpmetertest.SaaSProduct}); len(recs) != 1 {
				t.Errorf("%d records stored, want exactly 1", len(recs))
			}
			if m := metricsText(t, srv); !strings.Contains(m, fmt.Sprintf(`mpmeter_faults_injected_total{kind="%s",operation="BatchMeterUsage"} 2`, kind)) {
				t.Errorf("metrics lack the two faults:\n%s", grepLines(m, "mpmeter_faults"))
			}
			rule, err := srv.Store.FaultRule(context.Background(), "f")
			if err != nil || rule.Remaining != 0 {
				t.Errorf("rule after: %+v %v", rule, err)
			}
		})
	}
}

// More faults than attempts: the SDK gives up with the fault's error, and
// nothing is stored; the next call stores the record once.
func TestFaultsV2RetriesExhausted(t *testing.T) {
	srv := mpmetertest.New(t)
	addFault(t, srv, mpmeter.FaultRule{ID: "f", Operation: mpmeter.OpMeterUsage, Kind: mpmeter.FaultInternalError, Count: 3})
	c := v2Standard(srv, mpmetertest.EC2Key, mpmetertest.EC2Secret)
	in := v2Meter("vcpu_hours", 2, time.Now())
	_, err := c.MeterUsage(context.Background(), in)
	v2WantCode(t, err, "InternalServiceErrorException", 500)
	if recs := stored(t, srv, mpmeter.UsageFilter{ProductCode: mpmetertest.AMIProduct}); len(recs) != 0 {
		t.Fatalf("faulted calls stored %d records", len(recs))
	}
	out, err := c.MeterUsage(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if n := attempts(t, out.ResultMetadata); n != 1 {
		t.Errorf("attempts %d after the count was spent, want 1", n)
	}
	if recs := stored(t, srv, mpmeter.UsageFilter{ProductCode: mpmetertest.AMIProduct}); len(recs) != 1 {
		t.Errorf("%d records stored, want 1", len(recs))
	}
}

// A latency fault longer than the client's timeout: the call fails on the
// client's side, the server stores nothing, and the retry stores once.
func TestFaultsV2LatencyVersusClientTimeout(t *testing.T) {
	srv := mpmetertest.New(t)
	addFault(t, srv, mpmeter.FaultRule{ID: "slow", Operation: mpmeter.OpBatchMeterUsage, Kind: mpmeter.FaultLatency, Latency: time.Minute, Count: 1})
	c := v2Seller(srv)
	in := v2Batch(mpmetertest.SaaSProduct, v2Record(mpmetertest.Customer, "users", 3, time.Now()))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := c.BatchMeterUsage(ctx, in)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the client's deadline", err)
	}
	out, err := c.BatchMeterUsage(context.Background(), in)
	if err != nil || len(out.Results) != 1 || out.Results[0].Status != types.UsageRecordResultStatusSuccess {
		t.Fatalf("retry: %+v %v", out, err)
	}
	// The faulted call ends when the server notices the client left.
	deadline := time.Now().Add(10 * time.Second)
	for {
		all, faulted := faultedEvents(t, srv, mpmeter.OpBatchMeterUsage)
		if len(all) == 2 {
			if len(faulted) != 1 || faulted[0].AdditionalEventData.InjectedFault.LatencyMS != 60000 || faulted[0].ResponseElements != nil {
				t.Errorf("faulted events %+v", faulted)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events, want 2", len(all))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if recs := stored(t, srv, mpmeter.UsageFilter{ProductCode: mpmetertest.SaaSProduct}); len(recs) != 1 {
		t.Errorf("%d records stored, want 1", len(recs))
	}
}

// A short latency fault delays a call that then succeeds.
func TestFaultsLatencyThenSuccess(t *testing.T) {
	srv := mpmetertest.New(t)
	addFault(t, srv, mpmeter.FaultRule{ID: "slow", Kind: mpmeter.FaultLatency, Latency: 10 * time.Millisecond, Rate: 1})
	out, err := v2Seller(srv).ResolveCustomer(context.Background(), &mm.ResolveCustomerInput{RegistrationToken: aws.String(mpmetertest.Token)})
	if err != nil || aws.ToString(out.CustomerIdentifier) != mpmetertest.Customer {
		t.Fatalf("%+v %v", out, err)
	}
	_, faulted := faultedEvents(t, srv, mpmeter.OpResolveCustomer)
	if len(faulted) != 1 || faulted[0].ErrorCode != "" || faulted[0].AdditionalEventData.InjectedFault.Kind != mpmeter.FaultLatency {
		t.Errorf("events %+v", faulted)
	}
}

// unprocessed_records: the client sees UnprocessedRecords, resends them,
// and every record is stored once.
func TestFaultsUnprocessedRecords(t *testing.T) {
	srv := mpmetertest.New(t)
	addFault(t, srv, mpmeter.FaultRule{ID: "u", Kind: mpmeter.FaultUnprocessedRecords, Count: 2})
	c := v2Seller(srv)
	now := time.Now()
	var recs []types.UsageRecord
	for i := range 5 {
		recs = append(recs, v2Record(mpmetertest.Customer, "users", int32(i+1), now.Add(-time.Duration(i)*time.Hour)))
	}
	out, err := c.BatchMeterUsage(context.Background(), v2Batch(mpmetertest.SaaSProduct, recs...))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Results) != 3 || len(out.UnprocessedRecords) != 2 {
		t.Fatalf("%d results, %d unprocessed; want 3 and 2", len(out.Results), len(out.UnprocessedRecords))
	}
	if q := *out.UnprocessedRecords[0].Quantity; q != 1 {
		t.Errorf("first unprocessed record has quantity %d, want the batch's first (1)", q)
	}
	if n := len(stored(t, srv, mpmeter.UsageFilter{ProductCode: mpmetertest.SaaSProduct})); n != 3 {
		t.Fatalf("%d stored before the resend, want 3", n)
	}
	again, err := c.BatchMeterUsage(context.Background(), v2Batch(mpmetertest.SaaSProduct, out.UnprocessedRecords...))
	if err != nil || len(again.Results) != 2 || len(again.UnprocessedRecords) != 0 {
		t.Fatalf("resend: %+v %v", again, err)
	}
	var total int64
	for _, r := range stored(t, srv, mpmeter.UsageFilter{ProductCode: mpmetertest.SaaSProduct}) {
		total += r.Quantity
	}
	if total != 1+2+3+4+5 {
		t.Errorf("stored quantity %d, want 15", total)
	}
	_, faulted := faultedEvents(t, srv, mpmeter.OpBatchMeterUsage)
	if len(faulted) != 1 || faulted[0].AdditionalEventData.InjectedFault.UnprocessedRecords != 2 || faulted[0].ErrorCode != "" {
		t.Errorf("faulted events %+v", faulted)
	}
}

// Scopes: a rule naming an account, a product or an operation faults only
// those calls; a DryRun is faulted like the call it rehearses.
func TestFaultsScopesAndDryRun(t *testing.T) {
	srv := mpmetertest.New(t)
	addFault(t, srv, mpmeter.FaultRule{ID: "other-seller", AccountID: "777788889999", Kind: mpmeter.FaultThrottling, Rate: 1})
	addFault(t, srv, mpmeter.FaultRule{ID: "container", ProductCode: mpmetertest.ContainerProduct, Kind: mpmeter.FaultServiceUnavailable, Rate: 1})
	addFault(t, srv, mpmeter.FaultRule{ID: "meter", Operation: mpmeter.OpMeterUsage, Kind: mpmeter.FaultThrottling, Count: 1})
	ctx := context.Background()

	if _, err := v2Seller(srv).BatchMeterUsage(ctx, &mm.BatchMeterUsageInput{ProductCode: aws.String(mpmetertest.SaaSProduct), UsageRecords: []types.UsageRecord{}}); err != nil {
		t.Errorf("the demo seller is not in scope: %v", err)
	}
	_, err := v2Client(srv, mpmetertest.OtherSellerKey, mpmetertest.OtherSellerSecret, mpmetertest.Region).BatchMeterUsage(ctx, &mm.BatchMeterUsageInput{ProductCode: aws.String(mpmetertest.OtherProduct), UsageRecords: []types.UsageRecord{}})
	v2WantCode(t, err, "ThrottlingException", 400)

	dry := v2Meter("vcpu_hours", 1, time.Now())
	dry.DryRun = aws.Bool(true)
	_, err = v2EC2(srv).MeterUsage(ctx, dry)
	v2WantCode(t, err, "ThrottlingException", 400)
	if out, err := v2EC2(srv).MeterUsage(ctx, dry); err != nil || aws.ToString(out.MeteringRecordId) != "DryRunOperation" {
		t.Errorf("second dry run (count spent): %+v %v", out, err)
	}

	_, err = v2Client(srv, mpmetertest.ECSKey, mpmetertest.ECSSecret, mpmetertest.Region).RegisterUsage(ctx, &mm.RegisterUsageInput{
		ProductCode: aws.String(mpmetertest.ContainerProduct), PublicKeyVersion: aws.Int32(1)})
	v2WantCode(t, err, "ServiceUnavailable", 503)
	// The product rule applies after validation: an invalid request is
	// answered as invalid.
	_, err = v2Client(srv, mpmetertest.ECSKey, mpmetertest.ECSSecret, mpmetertest.Region).RegisterUsage(ctx, &mm.RegisterUsageInput{
		ProductCode: aws.String(mpmetertest.ContainerProduct), PublicKeyVersion: aws.Int32(0)})
	v2WantCode(t, err, "ValidationException", 400)
}

// An expired rule faults nothing (service clock); deleting rules is seen
// at once by this node.
func TestFaultsExpiryAndDelete(t *testing.T) {
	srv := mpmetertest.New(t)
	now := srv.Clock.Now()
	addFault(t, srv, mpmeter.FaultRule{ID: "t", Kind: mpmeter.FaultThrottling, Rate: 1, ExpiresAt: now.Add(time.Hour)})
	ctx := context.Background()
	_, err := v2Seller(srv).ResolveCustomer(ctx, &mm.ResolveCustomerInput{RegistrationToken: aws.String(mpmetertest.Token)})
	v2WantCode(t, err, "ThrottlingException", 400)
	srv.Clock.Advance(time.Hour)
	if _, err := v2Seller(srv).ResolveCustomer(ctx, &mm.ResolveCustomerInput{RegistrationToken: aws.String(mpmetertest.Token)}); err != nil {
		t.Errorf("expired rule still faults: %v", err)
	}
	addFault(t, srv, mpmeter.FaultRule{ID: "t2", Kind: mpmeter.FaultThrottling, Rate: 1})
	if _, err := srv.Store.DeleteFaultRules(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := v2Seller(srv).ResolveCustomer(ctx, &mm.ResolveCustomerInput{RegistrationToken: aws.String(mpmetertest.Token)}); err != nil {
		t.Errorf("cleared rule still faults: %v", err)
	}
}

// Seed-file faults apply at start; applying the seed again keeps a count
// that was spent (it does not start over).
func TestFaultsFromSeed(t *testing.T) {
	f := seed.Demo()
	f.Faults = []seed.Fault{{Operation: mpmeter.OpResolveCustomer, Kind: "throttling", Count: 1}}
	srv := mpmetertest.New(t, mpmetertest.WithSeed(f))
	ctx := context.Background()
	call := func() error {
		_, err := v2Seller(srv).ResolveCustomer(ctx, &mm.ResolveCustomerInput{RegistrationToken: aws.String(mpmetertest.Token)})
		return err
	}
	v2WantCode(t, call(), "ThrottlingException", 400)
	if err := call(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Apply(ctx, srv.Store, srv.Clock.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := call(); err != nil {
		t.Errorf("re-applying the seed reset the count: %v", err)
	}
	rules, _ := srv.Store.FaultRules(ctx)
	if len(rules) != 1 || !strings.HasPrefix(rules[0].ID, "seed-") || rules[0].Remaining != 0 {
		t.Errorf("rules %+v", rules)
	}
}
