package mpmetertest_test

// Concurrent Agreements products, through aws-sdk-go-v2 (v1's model has no
// LicenseArn): the demo's exampleca1, whose buyer holds two agreements.

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	mmv2 "github.com/aws/aws-sdk-go-v2/service/marketplacemetering"
	"github.com/aws/aws-sdk-go-v2/service/marketplacemetering/types"
	"github.com/aws/smithy-go"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/mpmetertest"
	"github.com/mpmeter/mpmeter/seed"
)

// sellerV2 is an aws-sdk-go-v2 client with the demo seller's key, retries
// off.
func sellerV2(srv *mpmetertest.Server) *mmv2.Client {
	return mmv2.New(mmv2.Options{
		Region:       srv.Region,
		BaseEndpoint: aws.String(srv.URL),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: mpmetertest.SellerKey, SecretAccessKey: mpmetertest.SellerSecret}, nil
		}),
		RetryMaxAttempts: 1,
	})
}

// wantAPIError asserts err is the modeled AWS error code and returns its
// message.
func wantAPIError(t *testing.T, err error, code string) string {
	t.Helper()
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("got %v, want %s", err, code)
	}
	if apiErr.ErrorCode() != code {
		t.Fatalf("got %s (%s), want %s", apiErr.ErrorCode(), apiErr.ErrorMessage(), code)
	}
	return apiErr.ErrorMessage()
}

// caRecord is a usage record naming the customer by account id and license.
func caRecord(account, license, dimension string, quantity int32, ts time.Time) types.UsageRecord {
	r := types.UsageRecord{CustomerAWSAccountId: aws.String(account), Dimension: aws.String(dimension), Quantity: aws.Int32(quantity), Timestamp: aws.Time(ts)}
	if license != "" {
		r.LicenseArn = aws.String(license)
	}
	return r
}

func TestConcurrentAgreementsResolveCustomer(t *testing.T) {
	srv := mpmetertest.New(t)
	c := sellerV2(srv)
	ctx := context.Background()
	for token, license := range map[string]string{mpmetertest.TokenCA1: mpmetertest.CALicense1, mpmetertest.TokenCA2: mpmetertest.CALicense2} {
		out, err := c.ResolveCustomer(ctx, &mmv2.ResolveCustomerInput{RegistrationToken: aws.String(token)})
		if err != nil {
			t.Fatal(err)
		}
		if out.CustomerIdentifier != nil {
			t.Errorf("%s: CustomerIdentifier %q, want it not populated", token, *out.CustomerIdentifier)
		}
		if aws.ToString(out.CustomerAWSAccountId) != mpmetertest.BuyerAccount || aws.ToString(out.LicenseArn) != license || aws.ToString(out.ProductCode) != mpmetertest.CAProduct {
			t.Errorf("%s resolved to account %s license %s product %s; want %s %s %s", token,
				aws.ToString(out.CustomerAWSAccountId), aws.ToString(out.LicenseArn), aws.ToString(out.ProductCode),
				mpmetertest.BuyerAccount, license, mpmetertest.CAProduct)
		}
	}
	// The member is absent from the wire, not an empty string.
	status, body := srv.Do(t, mpmetertest.Raw{Target: "ResolveCustomer", Key: mpmetertest.SellerKey, Secret: mpmetertest.SellerSecret,
		Body: `{"RegistrationToken":"` + mpmetertest.TokenCA1 + `"}`})
	if status != 200 || strings.Contains(string(body), "CustomerIdentifier") {
		t.Errorf("raw answer %d %s", status, body)
	}
	// An existing product's token still resolves with its CustomerIdentifier.
	out, err := c.ResolveCustomer(ctx, &mmv2.ResolveCustomerInput{RegistrationToken: aws.String(mpmetertest.Token)})
	if err != nil || aws.ToString(out.CustomerIdentifier) != mpmetertest.Customer || aws.ToString(out.LicenseArn) != mpmetertest.CustomerLicense {
		t.Errorf("existing product's token: %+v, %v", out, err)
	}
}

// A token of a concurrent-agreements product names one agreement. One
// stored without a LicenseArn (seed always sets it) resolves only when the
// account holds exactly one agreement.
func TestConcurrentAgreementsTokenWithoutLicense(t *testing.T) {
	f := seed.Demo()
	f.Subscriptions = append(f.Subscriptions, seed.Subscription{Account: mpmetertest.CancelledAccount, Product: mpmetertest.CAProduct})
	srv := mpmetertest.New(t, mpmetertest.WithSeed(f))
	ctx := context.Background()
	now := srv.Clock.Now()
	for _, tok := range []mpmeter.RegistrationToken{
		{Token: "ca-no-license-two", AccountID: mpmetertest.BuyerAccount, ProductCode: mpmetertest.CAProduct, CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
		{Token: "ca-no-license-one", AccountID: mpmetertest.CancelledAccount, ProductCode: mpmetertest.CAProduct, CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
	} {
		if err := srv.Store.PutRegistrationToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	c := sellerV2(srv)
	_, err := c.ResolveCustomer(ctx, &mmv2.ResolveCustomerInput{RegistrationToken: aws.String("ca-no-license-two")})
	wantAPIError(t, err, "InvalidTokenException")
	out, err := c.ResolveCustomer(ctx, &mmv2.ResolveCustomerInput{RegistrationToken: aws.String("ca-no-license-one")})
	if err != nil {
		t.Fatal(err)
	}
	if out.CustomerIdentifier != nil || aws.ToString(out.LicenseArn) != seed.LicenseArnFor(mpmetertest.CancelledAccount, mpmetertest.CAProduct) {
		t.Errorf("resolved %+v", out)
	}
}

func TestConcurrentAgreementsBatchMeterUsage(t *testing.T) {
	srv := mpmetertest.New(t)
	c := sellerV2(srv)
	ctx := context.Background()
	ts := srv.Clock.Now().Add(-time.Hour).Truncate(time.Second)

	// The same account, dimension and hour on two agreements: two slots.
	in := &mmv2.BatchMeterUsageInput{
		ProductCode: aws.String(mpmetertest.CAProduct),
		UsageRecords: []types.UsageRecord{
			caRecord(mpmetertest.BuyerAccount, mpmetertest.CALicense1, "users", 3, ts),
			caRecord(mpmetertest.BuyerAccount, mpmetertest.CALicense2, "users", 5, ts),
		},
	}
	out, err := c.BatchMeterUsage(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Results) != 2 || len(out.UnprocessedRecords) != 0 {
		t.Fatalf("results %+v, unprocessed %+v", out.Results, out.UnprocessedRecords)
	}
	ids := make([]string, 2)
	for i, r := range out.Results {
		if r.Status != types.UsageRecordResultStatusSuccess || aws.ToString(r.MeteringRecordId) == "" {
			t.Fatalf("result %d: %s %v", i, r.Status, aws.ToString(r.MeteringRecordId))
		}
		if aws.ToString(r.UsageRecord.LicenseArn) != aws.ToString(in.UsageRecords[i].LicenseArn) {
			t.Errorf("result %d echoes license %s", i, aws.ToString(r.UsageRecord.LicenseArn))
		}
		ids[i] = *r.MeteringRecordId
	}
	if ids[0] == ids[1] {
		t.Fatalf("two agreements share record %s", ids[0])
	}

	// LicenseArn instead of ProductCode (AWS's new integration) is the same
	// slot: the same records again answer the original ids; another
	// quantity on one agreement is a duplicate there only.
	again, err := c.BatchMeterUsage(ctx, &mmv2.BatchMeterUsageInput{UsageRecords: []types.UsageRecord{
		caRecord(mpmetertest.BuyerAccount, mpmetertest.CALicense1, "users", 3, ts.Add(time.Second)),
		caRecord(mpmetertest.BuyerAccount, mpmetertest.CALicense2, "users", 6, ts),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if r := again.Results[0]; r.Status != types.UsageRecordResultStatusSuccess || aws.ToString(r.MeteringRecordId) != ids[0] {
		t.Errorf("same record again: %s %s, want Success %s", r.Status, aws.ToString(r.MeteringRecordId), ids[0])
	}
	if r := again.Results[1]; r.Status != types.UsageRecordResultStatusDuplicateRecord || r.MeteringRecordId != nil {
		t.Errorf("another quantity: %s %v, want DuplicateRecord", r.Status, aws.ToString(r.MeteringRecordId))
	}

	recs, err := srv.Store.Usage(ctx, mpmeter.UsageFilter{ProductCode: mpmetertest.CAProduct})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Fatalf("stored %d records, want 2", len(recs))
	}
	stored := map[string]int64{}
	for _, r := range recs {
		if r.CustomerIdentifier != "" || r.CustomerAccountID != mpmetertest.BuyerAccount {
			t.Errorf("stored %+v", r)
		}
		stored[r.LicenseArn] = r.Quantity
	}
	if stored[mpmetertest.CALicense1] != 3 || stored[mpmetertest.CALicense2] != 5 {
		t.Errorf("stored quantities by license %v", stored)
	}
}

func TestConcurrentAgreementsBatchErrors(t *testing.T) {
	f := seed.Demo()
	// A second buyer with exactly one agreement, and a third holding two of
	// which one is cancelled.
	f.Subscriptions = append(f.Subscriptions,
		seed.Subscription{Account: mpmetertest.CancelledAccount, Product: mpmetertest.CAProduct},
		seed.Subscription{Account: mpmetertest.SellerAccount, Product: mpmetertest.CAProduct, LicenseArn: "arn:aws:license-manager::111122223333:license/l-live"},
		seed.Subscription{Account: mpmetertest.SellerAccount, Product: mpmetertest.CAProduct, LicenseArn: "arn:aws:license-manager::111122223333:license/l-gone", Status: "cancelled"},
	)
	srv := mpmetertest.New(t, mpmetertest.WithSeed(f))
	c := sellerV2(srv)
	ctx := context.Background()
	ts := srv.Clock.Now().Add(-time.Hour).Truncate(time.Second)
	batch := func(product string, recs ...types.UsageRecord) (*mmv2.BatchMeterUsageOutput, error) {
		in := &mmv2.BatchMeterUsageInput{UsageRecords: recs}
		if product != "" {
			in.ProductCode = aws.String(product)
		}
		return c.BatchMeterUsage(ctx, in)
	}
	good := caRecord(mpmetertest.BuyerAccount, mpmetertest.CALicense1, "users", 1, ts)

	// A CustomerIdentifier names no customer of this product; the whole
	// batch fails, the good record with it.
	_, err := batch(mpmetertest.CAProduct, good, types.UsageRecord{CustomerIdentifier: aws.String(mpmetertest.Customer), Dimension: aws.String("users"), Quantity: aws.Int32(1), Timestamp: aws.Time(ts)})
	if msg := wantAPIError(t, err, "InvalidCustomerIdentifierException"); !strings.Contains(msg, "concurrent agreements") {
		t.Errorf("message %q does not say why", msg)
	}
	// No LicenseArn: for the buyer with two agreements, and for the one
	// with exactly one.
	_, err = batch(mpmetertest.CAProduct, good, caRecord(mpmetertest.BuyerAccount, "", "users", 1, ts))
	wantAPIError(t, err, "InvalidLicenseException")
	_, err = batch(mpmetertest.CAProduct, caRecord(mpmetertest.CancelledAccount, "", "users", 1, ts))
	wantAPIError(t, err, "InvalidLicenseException")
	// Another account's agreement, and another product's license.
	_, err = batch(mpmetertest.CAProduct, caRecord(mpmetertest.CancelledAccount, mpmetertest.CALicense1, "users", 1, ts))
	wantAPIError(t, err, "InvalidLicenseException")
	_, err = batch(mpmetertest.CAProduct, caRecord(mpmetertest.BuyerAccount, mpmetertest.CustomerLicense, "users", 1, ts))
	wantAPIError(t, err, "InvalidLicenseException")
	// Without ProductCode, licenses of two products in one batch.
	_, err = batch("", good, caRecord(mpmetertest.BuyerAccount, mpmetertest.CustomerLicense, "users", 1, ts))
	wantAPIError(t, err, "InvalidLicenseException")
	if recs, err := srv.Store.Usage(ctx, mpmeter.UsageFilter{ProductCode: mpmetertest.CAProduct}); err != nil || len(recs) != 0 {
		t.Fatalf("failed batches stored %d records (%v)", len(recs), err)
	}

	// Each agreement has its own status: the cancelled one is
	// CustomerNotSubscribed, the live one of the same account Success.
	out, err := batch("",
		caRecord(mpmetertest.SellerAccount, "arn:aws:license-manager::111122223333:license/l-gone", "users", 1, ts),
		caRecord(mpmetertest.SellerAccount, "arn:aws:license-manager::111122223333:license/l-live", "users", 1, ts),
		caRecord(mpmetertest.CancelledAccount, seed.LicenseArnFor(mpmetertest.CancelledAccount, mpmetertest.CAProduct), "gigabytes", 2, ts),
	)
	if err != nil {
		t.Fatal(err)
	}
	want := []types.UsageRecordResultStatus{types.UsageRecordResultStatusCustomerNotSubscribed, types.UsageRecordResultStatusSuccess, types.UsageRecordResultStatusSuccess}
	for i, r := range out.Results {
		if r.Status != want[i] {
			t.Errorf("result %d: %s, want %s", i, r.Status, want[i])
		}
	}

	// Existing products keep today's rules: by CustomerIdentifier, and by
	// account id without a LicenseArn.
	out, err = batch(mpmetertest.SaaSProduct,
		types.UsageRecord{CustomerIdentifier: aws.String(mpmetertest.Customer), Dimension: aws.String("users"), Quantity: aws.Int32(1), Timestamp: aws.Time(ts)},
		caRecord(mpmetertest.BuyerAccount, "", "gigabytes", 1, ts),
	)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range out.Results {
		if r.Status != types.UsageRecordResultStatusSuccess {
			t.Errorf("existing product, result %d: %s", i, r.Status)
		}
	}
}
