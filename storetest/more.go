package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
)

func testClockOffset(t *testing.T, s mpmeter.Store) {
	ctx := context.Background()
	d, err := s.ClockOffset(ctx)
	if err != nil || d != 0 {
		t.Fatalf("never set: %v %v, want 0", d, err)
	}
	for _, want := range []time.Duration{-30 * 24 * time.Hour, 5*time.Hour + 123456789, 0} {
		if err := s.SetClockOffset(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err := s.ClockOffset(ctx)
		if err != nil || got != want {
			t.Fatalf("set %v, read %v %v", want, got, err)
		}
	}
}

func testSubscriptionsByCustomers(t *testing.T, s mpmeter.Store) {
	ctx := context.Background()
	for _, a := range []string{"111122223333", "444455556666", "777788889999"} {
		if err := s.PutAccount(ctx, mpmeter.Account{ID: a}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"prod-a", "prod-b"} {
		if err := s.PutProduct(ctx, mpmeter.Product{Code: p, SellerAccountID: "111122223333", Type: mpmeter.ProductSaaS, Dimensions: []string{"d"}}); err != nil {
			t.Fatal(err)
		}
	}
	put := func(account, product, customer, arn string) {
		if err := s.PutSubscription(ctx, mpmeter.Subscription{AccountID: account, ProductCode: product, CustomerIdentifier: customer,
			LicenseArn: arn, Status: mpmeter.SubscriptionActive, CreatedAt: time.Unix(1000, 0)}); err != nil {
			t.Fatal(err)
		}
	}
	put("444455556666", "prod-a", "c1", "arn:aws:license-manager::444455556666:license/l-1")
	put("777788889999", "prod-a", "c2", "arn:aws:license-manager::777788889999:license/l-2")
	put("444455556666", "prod-b", "c3", "arn:aws:license-manager::444455556666:license/l-3")

	got, err := s.SubscriptionsByCustomers(ctx, "prod-a", []string{"c1", "c2", "c3", "nobody", "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["c1"].AccountID != "444455556666" || got["c2"].LicenseArn != "arn:aws:license-manager::777788889999:license/l-2" {
		t.Fatalf("got %v", got)
	}
	if _, ok := got["c3"]; ok {
		t.Fatal("another product's customer returned")
	}
	if got, err := s.SubscriptionsByCustomers(ctx, "prod-a", nil); err != nil || len(got) != 0 {
		t.Fatalf("no ids: %v %v", got, err)
	}
}
