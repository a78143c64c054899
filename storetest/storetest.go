// Package storetest is the conformance suite of mpmeter.Store: one set of
// tests that every Store implementation runs, so that they all keep the
// contract documented on the interface, failure modes included.
//
// A store's test calls Run with a function that opens a new, empty store for
// one subtest:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) mpmeter.Store {
//			s, err := mystore.Open(...)
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// open must arrange for the store to be closed (t.Cleanup); the "Close"
// subtest closes its store first, so that cleanup must tolerate a store that
// is closed already (ignore Close's error).
//
// Conventions the suite relies on, where the interface leaves room:
//   - Times are compared with millisecond precision (a store may keep more),
//     and in UTC; the suite's own times are whole seconds.
//   - No allocations and empty tag lists compare equal whether nil or empty.
//   - An idempotency token is unexpired while its ExpiresAt is after the
//     CreatedAt of the record in the call: the store has no clock of its own.
//   - An empty CustomerIdentifier is "no identifier": several subscriptions
//     of a product may have none.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
)

// Run runs the conformance suite against stores made by open, one fresh
// store per subtest. Subtests run one after the other (the concurrency
// subtests run their goroutines against one store).
func Run(t *testing.T, open func(t *testing.T) mpmeter.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s mpmeter.Store)
	}{
		{"NotFound", testNotFound},
		{"AccessKey", testAccessKey},
		{"TemporaryAccessKey", testTemporaryAccessKey},
		{"WorkloadAccessKeys", testWorkloadAccessKeys},
		{"Product", testProduct},
		{"Subscription", testSubscription},
		{"SubscriptionCustomerClash", testSubscriptionClash},
		{"SubscriptionsOf", testSubscriptionsOf},
		{"ConcurrentAgreements", testConcurrentAgreements},
		{"Entitlements", testEntitlements},
		{"RegistrationToken", testRegistrationToken},
		{"Versions", testVersions},
		{"VersionsProductSubscriptionKey", testVersionsProduct},
		{"RevokedAccessKey", testRevokedAccessKey},
		{"DimensionDetails", testDimensionDetails},
		{"AgreementFields", testAgreementFields},
		{"Lists", testLists},
		{"RecordUsage", testRecordUsage},
		{"DedupWithinCall", testDedupWithinCall},
		{"DedupAcrossCalls", testDedupAcrossCalls},
		{"NoDedupKey", testNoDedupKey},
		{"Atomicity", testAtomicity},
		{"IdempotencyToken", testIdempotencyToken},
		{"IdempotencyTokenExpired", testIdempotencyTokenExpired},
		{"IdempotencyTokenScope", testIdempotencyTokenScope},
		{"IdempotencyTokenNeedsOneRecord", testIdempotencyTokenNeedsOneRecord},
		{"IdempotencyTokenAndDedupKey", testIdempotencyTokenAndDedupKey},
		{"PreviewUsage", testPreviewUsage},
		{"ConcurrentIdentical", testConcurrentIdentical},
		{"ConcurrentRetries", testConcurrentRetries},
		{"ConcurrentOverlappingBatches", testConcurrentOverlappingBatches},
		{"ConcurrentTokensSameDedupKey", testConcurrentTokensSameDedupKey},
		{"ConcurrentSameToken", testConcurrentSameToken},
		{"Usage", testUsage},
		{"UsageTotals", testUsageTotals},
		{"UsageRecord", testUsageRecord},
		{"UsageFilters", testUsageFilters},
		{"UsagePages", testUsagePages},
		{"EachUsage", testEachUsage},
		{"UsageSummary", testUsageSummary},
		{"PurgeExpired", testPurgeExpired},
		{"SigningKeys", testSigningKeys},
		{"ClockOffset", testClockOffset},
		{"FaultRules", testFaultRules},
		{"FaultCountConcurrent", testFaultCountConcurrent},
		{"SubscriptionsByCustomers", testSubscriptionsByCustomers},
		{"AuditEvents", testAuditEvents},
		{"AuditPages", testAuditPages},
		{"AuditPurge", testAuditPurge},
		{"OutboxWithSubscription", testOutboxWithSubscription},
		{"ClaimLeaseAndAttempts", testClaimLeaseAndAttempts},
		{"ConcurrentClaims", testConcurrentClaims},
		{"FollowUps", testFollowUps},
		{"NotificationDestinations", testNotificationDestinations},
		{"ProductFulfillmentURL", testProductFulfillmentURL},
		{"CancelledContext", testCancelledContext},
		{"CancelRace", testCancelRace},
		{"Close", testClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// t0 is the suite's reference time; records are timestamped around it.
var t0 = time.Date(2025, 3, 4, 5, 0, 0, 0, time.UTC)

// Accounts, products and subscriptions of the fixture.
const (
	seller   = "111111111111"
	seller2  = "444444444444"
	buyer    = "222222222222"
	buyer2   = "333333333333"
	product  = "prod-saas"
	product2 = "prod-ami"
	license  = "arn:aws:license-manager::294406891311:license:l-aaa"
	customer = "cust-aaa"
)

// seed stores the fixture: two sellers, two buyers, a SaaS product of
// seller, an AMI product of seller2, and buyer's subscription to product.
func seed(t *testing.T, s mpmeter.Store) {
	t.Helper()
	ctx := t.Context()
	for _, a := range []mpmeter.Account{
		{ID: seller, Name: "Seller"},
		{ID: seller2, Name: "Seller 2"},
		{ID: buyer, Name: "Buyer"},
		{ID: buyer2, Name: "Buyer 2"},
	} {
		must(t, s.PutAccount(ctx, a))
	}
	must(t, s.PutProduct(ctx, mpmeter.Product{Code: product, SellerAccountID: seller, Type: mpmeter.ProductSaaS, Dimensions: []string{"users", "gb"}}))
	must(t, s.PutProduct(ctx, mpmeter.Product{Code: product2, SellerAccountID: seller2, Type: mpmeter.ProductAMI, Dimensions: []string{"hosts"}}))
	must(t, s.PutSubscription(ctx, mpmeter.Subscription{
		AccountID: buyer, ProductCode: product, CustomerIdentifier: customer,
		LicenseArn: license, Status: mpmeter.SubscriptionActive, CreatedAt: t0.Add(-24 * time.Hour),
	}))
}

// rec returns a record of buyer's usage of product, with id and dedup key
// as given.
func rec(id, key string) mpmeter.MeteringRecord {
	return mpmeter.MeteringRecord{
		MeteringRecordID:   id,
		Kind:               mpmeter.UsageBatch,
		ProductCode:        product,
		SellerAccountID:    seller,
		CustomerAccountID:  buyer,
		CustomerIdentifier: customer,
		LicenseArn:         license,
		Dimension:          "users",
		Timestamp:          t0,
		Quantity:           7,
		DedupKey:           key,
		Fingerprint:        "fp-" + id,
		CreatedAt:          t0.Add(time.Minute),
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantErr fails unless err wraps target.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error %v, want one wrapping %v", what, err, target)
	}
}

// wantFailure fails unless err is a plain failure: non-nil and none of the
// contract's sentinel errors, which would tell the caller something else.
func wantFailure(t *testing.T, what string, err error) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s: no error", what)
	case errors.Is(err, mpmeter.ErrNotFound), errors.Is(err, mpmeter.ErrExists),
		errors.Is(err, mpmeter.ErrIdempotencyConflict):
		t.Errorf("%s: error %v wraps a sentinel error; want a plain failure", what, err)
	}
}

func ms(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()).UTC() }

// canon makes a record comparable with reflect.DeepEqual under the suite's
// conventions, without touching r's slices.
func canon(r mpmeter.MeteringRecord) mpmeter.MeteringRecord {
	r.Timestamp, r.CreatedAt = ms(r.Timestamp), ms(r.CreatedAt)
	if len(r.Allocations) == 0 {
		r.Allocations = nil
	} else {
		as := make([]mpmeter.Allocation, len(r.Allocations))
		for i, a := range r.Allocations {
			if len(a.Tags) == 0 {
				a.Tags = nil
			}
			as[i] = a
		}
		r.Allocations = as
	}
	return r
}

func sameRecord(got, want mpmeter.MeteringRecord) bool {
	return reflect.DeepEqual(canon(got), canon(want))
}

func wantRecord(t *testing.T, what string, got, want mpmeter.MeteringRecord) {
	t.Helper()
	if !sameRecord(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, canon(got), canon(want))
	}
}

func wantOutcome(t *testing.T, what string, got mpmeter.MeteringOutcome, created bool, want mpmeter.MeteringRecord) {
	t.Helper()
	if got.Created != created {
		t.Errorf("%s: Created = %v, want %v", what, got.Created, created)
	}
	wantRecord(t, what+": Record", got.Record, want)
}

// wantUsage fails unless the store's records matching f are want, in order.
func wantUsage(t *testing.T, s mpmeter.Store, f mpmeter.UsageFilter, want ...mpmeter.MeteringRecord) {
	t.Helper()
	got, err := s.Usage(t.Context(), f)
	if err != nil {
		t.Fatalf("Usage(%+v): %v", f, err)
	}
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = sameRecord(got[i], want[i])
	}
	if !ok {
		t.Errorf("Usage(%+v):\n got %s\nwant %s", f, ids(got), ids(want))
		for i := range got {
			if i < len(want) && !sameRecord(got[i], want[i]) {
				t.Errorf("record %d:\n got %+v\nwant %+v", i, canon(got[i]), canon(want[i]))
				break
			}
		}
	}
}

func ids(recs []mpmeter.MeteringRecord) string {
	s := "["
	for i, r := range recs {
		if i > 0 {
			s += " "
		}
		s += r.MeteringRecordID
	}
	return s + "]"
}

// count returns how many records the store holds.
func count(t *testing.T, s mpmeter.Store) int {
	t.Helper()
	got, err := s.Usage(t.Context(), mpmeter.UsageFilter{})
	if err != nil {
		t.Fatalf("Usage: %v", err)
	}
	return len(got)
}

func record1(t *testing.T, ctx context.Context, s mpmeter.Store, r mpmeter.MeteringRecord, tok *mpmeter.IdempotencyToken) mpmeter.MeteringOutcome {
	t.Helper()
	out, err := s.RecordUsage(ctx, []mpmeter.MeteringRecord{r}, tok)
	if err != nil {
		t.Fatalf("RecordUsage(%s): %v", r.MeteringRecordID, err)
	}
	if len(out) != 1 {
		t.Fatalf("RecordUsage(%s): %d outcomes, want 1", r.MeteringRecordID, len(out))
	}
	return out[0]
}

func name(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// SubscriptionByCustomer looks up one customer through
// SubscriptionsByCustomers, ErrNotFound when it is absent: the lookup tests
// of stores and of what is put into them make.
func SubscriptionByCustomer(ctx context.Context, s mpmeter.Store, product, customer string) (mpmeter.Subscription, error) {
	subs, err := s.SubscriptionsByCustomers(ctx, product, []string{customer})
	if err != nil {
		return mpmeter.Subscription{}, err
	}
	sub, ok := subs[customer]
	if !ok {
		return sub, fmt.Errorf("customer %q of product %q: %w", customer, product, mpmeter.ErrNotFound)
	}
	return sub, nil
}
