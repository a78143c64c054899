package storetest

import (
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
)

// A concurrent-agreements product keeps its flag across puts, and its buyer
// holds several subscriptions to it at once, none with a customer
// identifier: they share the empty identifier without clashing, are found
// by license ARN and by account, and never by an empty identifier.
func testConcurrentAgreements(t *testing.T, s mpmeter.Store) {
	ctx := t.Context()
	seed(t, s)
	const caProduct = "prod-ca"
	p := mpmeter.Product{Code: caProduct, SellerAccountID: seller, Type: mpmeter.ProductSaaS, Dimensions: []string{"users"}, ConcurrentAgreements: true}
	must(t, s.PutProduct(ctx, p))
	got, err := s.Product(ctx, caProduct)
	if err != nil || !got.ConcurrentAgreements || got.SellerAccountID != seller {
		t.Fatalf("Product = %+v, %v; want ConcurrentAgreements", got, err)
	}
	if got, err := s.Product(ctx, product); err != nil || got.ConcurrentAgreements {
		t.Errorf("fixture product = %+v, %v; want no ConcurrentAgreements", got, err)
	}
	// A put without the flag clears it, as a put replaces every field.
	p.ConcurrentAgreements = false
	must(t, s.PutProduct(ctx, p))
	if got, err := s.Product(ctx, caProduct); err != nil || got.ConcurrentAgreements {
		t.Errorf("after clearing: %+v, %v", got, err)
	}
	p.ConcurrentAgreements = true
	must(t, s.PutProduct(ctx, p))
	if got, err := s.Product(ctx, caProduct); err != nil || !got.ConcurrentAgreements {
		t.Errorf("after setting again: %+v, %v", got, err)
	}

	subs := []mpmeter.Subscription{
		{AccountID: buyer, ProductCode: caProduct, LicenseArn: "arn:aws:license-manager::222222222222:license/l-ca1", Status: mpmeter.SubscriptionActive, CreatedAt: t0.Add(-2 * time.Hour)},
		{AccountID: buyer, ProductCode: caProduct, LicenseArn: "arn:aws:license-manager::222222222222:license/l-ca2", Status: mpmeter.SubscriptionActive, CreatedAt: t0.Add(-time.Hour)},
		{AccountID: buyer2, ProductCode: caProduct, LicenseArn: "arn:aws:license-manager::333333333333:license/l-ca3", Status: mpmeter.SubscriptionCancelled, CreatedAt: t0},
	}
	for _, sub := range subs {
		must(t, s.PutSubscription(ctx, sub))
	}
	for _, want := range subs {
		got, err := s.Subscription(ctx, want.LicenseArn)
		wantSubscription(t, "Subscription("+want.LicenseArn+")", got, err, want)
	}
	of, err := s.SubscriptionsOf(ctx, buyer, caProduct)
	if err != nil || len(of) != 2 {
		t.Fatalf("SubscriptionsOf(buyer) = %+v, %v; want both agreements", of, err)
	}
	wantSubscription(t, "SubscriptionsOf[0]", of[0], nil, subs[0])
	wantSubscription(t, "SubscriptionsOf[1]", of[1], nil, subs[1])

	byCustomer, err := s.SubscriptionsByCustomers(ctx, caProduct, []string{"", customer})
	if err != nil || len(byCustomer) != 0 {
		t.Errorf("SubscriptionsByCustomers(empty) = %v, %v; want none", byCustomer, err)
	}

	// Updating one agreement leaves the other as it was.
	cancelled := subs[0]
	cancelled.Status = mpmeter.SubscriptionCancelled
	must(t, s.PutSubscription(ctx, cancelled))
	got0, err := s.Subscription(ctx, subs[0].LicenseArn)
	wantSubscription(t, "cancelled agreement", got0, err, cancelled)
	got1, err := s.Subscription(ctx, subs[1].LicenseArn)
	wantSubscription(t, "other agreement", got1, err, subs[1])
}
