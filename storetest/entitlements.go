package storetest

import (
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
)

// Entitlements: values of every type read back exactly, a put replaces a
// subscription's set (nil clears it), each filter list is a union and the
// lists intersect, ActiveAt drops cancelled subscriptions and expired
// entitlements, and After/Limit page in (license ARN, dimension) order.
func testEntitlements(t *testing.T, s mpmeter.Store) {
	ctx := t.Context()
	seed(t, s)
	const license2 = "arn:aws:license-manager::333333333333:license:l-bbb"
	const license3 = "arn:aws:license-manager::333333333333:license:l-ccc"
	must(t, s.PutSubscription(ctx, mpmeter.Subscription{AccountID: buyer2, ProductCode: product, CustomerIdentifier: "cust-bbb",
		LicenseArn: license2, Status: mpmeter.SubscriptionActive, CreatedAt: t0}))
	must(t, s.PutSubscription(ctx, mpmeter.Subscription{AccountID: buyer2, ProductCode: product2, CustomerIdentifier: "cust-ccc",
		LicenseArn: license3, Status: mpmeter.SubscriptionActive, CreatedAt: t0}))

	if got, err := s.Entitlements(ctx, mpmeter.EntitlementFilter{ProductCode: product}); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("Entitlements before any = %#v, %v; want an empty slice", got, err)
	}
	if err := s.PutEntitlements(ctx, "arn:aws:license-manager::1:license:l-none", nil); !errors.Is(err, mpmeter.ErrNotFound) {
		t.Errorf("PutEntitlements(unknown subscription) = %v; want ErrNotFound", err)
	}

	first := []mpmeter.Entitlement{
		{Dimension: "users", Value: mpmeter.EntitlementInteger(math.MaxInt32), ExpiresAt: t0.Add(24 * time.Hour)},
		{Dimension: "gb", Value: mpmeter.EntitlementDouble(0.1 + 0.2)},
		{Dimension: "admin", Value: mpmeter.EntitlementBoolean(true)},
		{Dimension: "tier", Value: mpmeter.EntitlementString("gold ✓")},
	}
	must(t, s.PutEntitlements(ctx, license, first))
	must(t, s.PutEntitlements(ctx, license2, []mpmeter.Entitlement{
		{Dimension: "users", Value: mpmeter.EntitlementInteger(-5), ExpiresAt: t0.Add(-time.Hour)},
		{Dimension: "gb", Value: mpmeter.EntitlementBoolean(false)},
	}))
	must(t, s.PutEntitlements(ctx, license3, []mpmeter.Entitlement{{Dimension: "hosts", Value: mpmeter.EntitlementInteger(2)}}))

	got, err := s.Entitlements(ctx, mpmeter.EntitlementFilter{ProductCode: product})
	if err != nil {
		t.Fatal(err)
	}
	// license sorts before license2; within one, dimensions sort bytewise.
	want := []mpmeter.Entitlement{
		{LicenseArn: license, Dimension: "admin", Value: mpmeter.EntitlementBoolean(true)},
		{LicenseArn: license, Dimension: "gb", Value: mpmeter.EntitlementDouble(0.1 + 0.2)},
		{LicenseArn: license, Dimension: "tier", Value: mpmeter.EntitlementString("gold ✓")},
		{LicenseArn: license, Dimension: "users", Value: mpmeter.EntitlementInteger(math.MaxInt32), ExpiresAt: t0.Add(24 * time.Hour)},
		{LicenseArn: license2, Dimension: "gb", Value: mpmeter.EntitlementBoolean(false)},
		{LicenseArn: license2, Dimension: "users", Value: mpmeter.EntitlementInteger(-5), ExpiresAt: t0.Add(-time.Hour)},
	}
	for i := range want {
		want[i].ProductCode, want[i].CustomerAccountID, want[i].CustomerIdentifier = product, buyer, customer
		if want[i].LicenseArn == license2 {
			want[i].CustomerAccountID, want[i].CustomerIdentifier = buyer2, "cust-bbb"
		}
	}
	wantEntitlements(t, "all", got, want)

	filtered := func(name string, f mpmeter.EntitlementFilter, want ...mpmeter.Entitlement) {
		t.Helper()
		f.ProductCode = product
		got, err := s.Entitlements(ctx, f)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		wantEntitlements(t, name, got, want)
	}
	filtered("customer identifiers (union)", mpmeter.EntitlementFilter{CustomerIdentifiers: []string{"cust-bbb", "cust-none"}}, want[4:]...)
	filtered("account and dimension (intersection)", mpmeter.EntitlementFilter{CustomerAccountIDs: []string{buyer, buyer2}, Dimensions: []string{"users"}}, want[3], want[5])
	filtered("license", mpmeter.EntitlementFilter{LicenseArns: []string{license2}}, want[4:]...)
	filtered("another product's license", mpmeter.EntitlementFilter{LicenseArns: []string{license3}})
	filtered("active at t0", mpmeter.EntitlementFilter{ActiveAt: t0}, want[:5]...)
	filtered("after", mpmeter.EntitlementFilter{After: &mpmeter.EntitlementPosition{LicenseArn: license, Dimension: "tier"}, Limit: 2}, want[3:5]...)
	filtered("limit", mpmeter.EntitlementFilter{Limit: 1}, want[0])

	// A cancelled subscription's entitlements stay stored but are not
	// active.
	sub2, err := s.Subscription(ctx, license2)
	must(t, err)
	sub2.Status = mpmeter.SubscriptionCancelled
	must(t, s.PutSubscription(ctx, sub2))
	filtered("cancelled subscription", mpmeter.EntitlementFilter{ActiveAt: t0.Add(-2 * time.Hour)}, want[:4]...)

	// A put replaces the whole set; nil clears it.
	must(t, s.PutEntitlements(ctx, license, []mpmeter.Entitlement{{Dimension: "users", Value: mpmeter.EntitlementInteger(7)}}))
	filtered("replaced", mpmeter.EntitlementFilter{LicenseArns: []string{license}},
		mpmeter.Entitlement{LicenseArn: license, Dimension: "users", Value: mpmeter.EntitlementInteger(7), ProductCode: product, CustomerAccountID: buyer, CustomerIdentifier: customer})
	must(t, s.PutEntitlements(ctx, license, nil))
	filtered("cleared", mpmeter.EntitlementFilter{LicenseArns: []string{license}})

	// A dimension twice fails the whole put: the stored set is unchanged.
	if err := s.PutEntitlements(ctx, license2, []mpmeter.Entitlement{
		{Dimension: "users", Value: mpmeter.EntitlementInteger(1)}, {Dimension: "users", Value: mpmeter.EntitlementInteger(2)},
	}); err == nil {
		t.Error("PutEntitlements with a dimension twice succeeded")
	}
	filtered("after a failed put", mpmeter.EntitlementFilter{LicenseArns: []string{license2}}, want[4], want[5])
	// So does an invalid value.
	if err := s.PutEntitlements(ctx, license2, []mpmeter.Entitlement{{Dimension: "users"}}); err == nil {
		t.Error("PutEntitlements with no value succeeded")
	}
}

func wantEntitlements(t *testing.T, name string, got, want []mpmeter.Entitlement) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d entitlements %+v, want %d", name, len(got), got, len(want))
		return
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.ExpiresAt.Equal(w.ExpiresAt) || g.ExpiresAt.Location() != time.UTC && !g.ExpiresAt.IsZero() {
			t.Errorf("%s[%d]: ExpiresAt %v, want %v (UTC)", name, i, g.ExpiresAt, w.ExpiresAt)
		}
		g.ExpiresAt, w.ExpiresAt = time.Time{}, time.Time{}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s[%d]:\n got %+v %s\nwant %+v %s", name, i, g, valueString(g.Value), w, valueString(w.Value))
		}
	}
}

func valueString(v mpmeter.EntitlementValue) string {
	switch {
	case v.IntegerValue != nil:
		return "integer " + reflect.ValueOf(*v.IntegerValue).String()
	case v.DoubleValue != nil:
		return "double"
	case v.BooleanValue != nil:
		return "boolean"
	case v.StringValue != nil:
		return "string " + *v.StringValue
	}
	return "none"
}
