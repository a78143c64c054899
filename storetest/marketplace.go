package storetest

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
)

// Every getter reports a missing row as ErrNotFound; the list getters and
// Usage report none as an empty result.
func testNotFound(t *testing.T, s mpmeter.Store) {
	ctx := t.Context()
	_, err := s.AccessKey(ctx, "AKIANOTTHERE")
	wantErr(t, "AccessKey", err, mpmeter.ErrNotFound)
	_, err = s.Product(ctx, "nope")
	wantErr(t, "Product", err, mpmeter.ErrNotFound)
	_, err = s.Subscription(ctx, "arn:nope")
	wantErr(t, "Subscription", err, mpmeter.ErrNotFound)
	_, err = SubscriptionByCustomer(ctx, s, "nope", "cust")
	wantErr(t, "SubscriptionsByCustomers", err, mpmeter.ErrNotFound)
	_, err = s.RegistrationToken(ctx, "tok")
	wantErr(t, "RegistrationToken", err, mpmeter.ErrNotFound)

	subs, err := s.SubscriptionsOf(ctx, buyer, product)
	if err != nil || len(subs) != 0 {
		t.Errorf("SubscriptionsOf = %v, %v; want none, nil", subs, err)
	}
	keys, err := s.SigningKeys(ctx)
	if err != nil || len(keys) != 0 {
		t.Errorf("SigningKeys = %v, %v; want none, nil", keys, err)
	}
	recs, err := s.Usage(ctx, mpmeter.UsageFilter{})
	if err != nil || len(recs) != 0 {
		t.Errorf("Usage = %v, %v; want none, nil", recs, err)
	}

	// With the fixture in place, rows near the ones that exist are still
	// not found.
	seed(t, s)
	_, err = SubscriptionByCustomer(ctx, s, product, "cust-other")
	wantErr(t, "SubscriptionsByCustomers(other customer)", err, mpmeter.ErrNotFound)
	_, err = SubscriptionByCustomer(ctx, s, product2, customer)
	wantErr(t, "SubscriptionsByCustomers(other product)", err, mpmeter.ErrNotFound)
	subs, err = s.SubscriptionsOf(ctx, buyer2, product)
	if err != nil || len(subs) != 0 {
		t.Errorf("SubscriptionsOf(buyer2) = %v, %v; want none, nil", subs, err)
	}
}

func testAccessKey(t *testing.T, s mpmeter.Store) {
	ctx := t.Context()
	k := mpmeter.AccessKey{ID: "AKIAEXAMPLE", Secret: "s1", AccountID: buyer}

	// Its account must exist; that failure is not ErrNotFound, which only
	// getters report.
	wantFailure(t, "PutAccessKey without its account", s.PutAccessKey(ctx, k))
	_, err := s.AccessKey(ctx, k.ID)
	wantErr(t, "AccessKey after failed put", err, mpmeter.ErrNotFound)

	seed(t, s)
	// PutAccount is an upsert: a second put of the same id is fine.
	must(t, s.PutAccount(ctx, mpmeter.Account{ID: buyer, Name: "Buyer renamed"}))

	wantKey := func(what string, want mpmeter.AccessKey) {
		t.Helper()
		got, err := s.AccessKey(ctx, want.ID)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		got.Version = 0 // versions are testVersions'
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v (workload %+v)\nwant %+v (workload %+v)", what, got, got.Workload, want, want.Workload)
		}
	}
	must(t, s.PutAccessKey(ctx, k))
	wantKey("account key", k)

	w := k
	w.Secret, w.AccountID = "s2", buyer2
	w.Workload = &mpmeter.Workload{ID: "i-0123456789abcdef0", Platform: mpmeter.PlatformEC2, Region: "us-east-1"}
	must(t, s.PutAccessKey(ctx, w))
	wantKey("updated to a workload key", w)

	// Back to no workload: nil again, not a zero Workload.
	must(t, s.PutAccessKey(ctx, k))
	wantKey("updated back to an account key", k)

	// A workload whose fields are empty is still a workload.
	e := k
	e.ID = "AKIAEMPTYWORKLOAD"
	e.Workload = &mpmeter.Workload{}
	must(t, s.PutAccessKey(ctx, e))
	wantKey("empty workload", e)
}

func testProduct(t *testing.T, s mpmeter.Store) {
	ctx := t.Context()
	p := mpmeter.Product{Code: "prod-x", SellerAccountID: seller, Type: mpmeter.ProductSaaS, Dimensions: []string{"c", "a", "b"}}
	wantFailure(t, "PutProduct without its seller", s.PutProduct(ctx, p))
	_, err := s.Product(ctx, p.Code)
	wantErr(t, "Product after failed put", err, mpmeter.ErrNotFound)

	seed(t, s)
	wantProduct := func(what string, want mpmeter.Product) {
		t.Helper()
		got, err := s.Product(ctx, want.Code)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if len(got.Dimensions) == 0 && len(want.Dimensions) == 0 {
			got.Dimensions, want.Dimensions = nil, nil
		}
		got.Version = 0 // versions are testVersions'
		if len(got.DimensionDetails) == 0 && len(want.DimensionDetails) == 0 {
			got.DimensionDetails, want.DimensionDetails = nil, nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
		}
	}
	must(t, s.PutProduct(ctx, p))
	wantProduct("first put (dimensions in put order)", p)

	// A second put replaces the type, seller and dimensions.
	p2 := mpmeter.Product{Code: p.Code, SellerAccountID: seller2, Type: mpmeter.ProductContainer, Dimensions: []string{"b", "d"}}
	must(t, s.PutProduct(ctx, p2))
	wantProduct("second put", p2)

	p3 := mpmeter.Product{Code: p.Code, SellerAccountID: seller2, Type: mpmeter.ProductContainer}
	must(t, s.PutProduct(ctx, p3))
	wantProduct("no dimensions", p3)

	// Other products are untouched.
	wantProduct("fixture product", mpmeter.Product{Code: product, SellerAccountID: seller, Type: mpmeter.ProductSaaS, Dimensions: []string{"users", "gb"}})
}

func wantSubscription(t *testing.T, what string, got mpmeter.Subscription, err error, want mpmeter.Subscription) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	got.CreatedAt, want.CreatedAt = ms(got.CreatedAt), ms(want.CreatedAt)
	got.EndedAt, want.EndedAt = ms(got.EndedAt), ms(want.EndedAt)
	got.Version = 0 // versions are testVersions'
	if want.AgreementID == "" {
		want.AgreementID = mpmeter.AgreementIDFor(want.LicenseArn) // what a store fills in
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func testSubscription(t *testing.T, s mpmeter.Store) {
	ctx := t.Context()
	seed(t, s)
	sub := mpmeter.Subscription{
		AccountID: buyer2, ProductCode: product, CustomerIdentifier: "cust-bbb",
		LicenseArn: "arn:aws:license-manager::294406891311:license:l-bbb",
		Status:     mpmeter.SubscriptionActive, CreatedAt: t0,
	}
	must(t, s.PutSubscription(ctx, sub))
	got, err := s.Subscription(ctx, sub.LicenseArn)
	wantSubscription(t, "Subscription", got, err, sub)
	got, err = SubscriptionByCustomer(ctx, s, product, "cust-bbb")
	wantSubscription(t, "SubscriptionsByCustomers", got, err, sub)

	// An update keeps the first put's CreatedAt and replaces the rest.
	upd := sub
	upd.Status = mpmeter.SubscriptionCancelled
	upd.CustomerIdentifier = "cust-ccc"
	upd.CreatedAt = t0.Add(48 * time.Hour)
	must(t, s.PutSubscription(ctx, upd))
	want := upd
	want.CreatedAt = sub.CreatedAt
	got, err = s.Subscription(ctx, sub.LicenseArn)
	wantSubscription(t, "Subscription after update", got, err, want)
	got, err = SubscriptionByCustomer(ctx, s, product, "cust-ccc")
	wantSubscription(t, "SubscriptionsByCustomers after update", got, err, want)
	_, err = SubscriptionByCustomer(ctx, s, product, "cust-bbb")
	wantErr(t, "SubscriptionsByCustomers(old identifier)", err, mpmeter.ErrNotFound)

	// A zero CreatedAt is stored as given.
	z := mpmeter.Subscription{AccountID: buyer2, ProductCode: product2, LicenseArn: "arn:zero", Status: mpmeter.SubscriptionExpired}
	must(t, s.PutSubscription(ctx, z))
	got, err = s.Subscription(ctx, z.LicenseArn)
	wantSubscription(t, "zero CreatedAt", got, err, z)
	if err == nil && !got.CreatedAt.IsZero() {
		t.Errorf("zero CreatedAt read back as %v", got.CreatedAt)
	}
}

// A CustomerIdentifier is unique within its product, not across products;
// an empty one is no identifier and never clashes.
func testSubscriptionClash(t *testing.T, s mpmeter.Store) {
	ctx := t.Context()
	seed(t, s)
	clash := mpmeter.Subscription{
		AccountID: buyer2, ProductCode: product, CustomerIdentifier: customer,
		LicenseArn: "arn:clash", Status: mpmeter.SubscriptionActive, CreatedAt: t0,
	}
	wantFailure(t, "PutSubscription with another's CustomerIdentifier", s.PutSubscription(ctx, clash))
	_, err := s.Subscription(ctx, clash.LicenseArn)
	wantErr(t, "Subscription after failed put", err, mpmeter.ErrNotFound)
	got, err := SubscriptionByCustomer(ctx, s, product, customer)
	if err != nil || got.LicenseArn != license {
		t.Errorf("SubscriptionsByCustomers after failed put = %+v, %v; want the fixture's", got, err)
	}

	// Updating a subscription to another's identifier clashes too.
	other := clash
	other.CustomerIdentifier = "cust-free"
	must(t, s.PutSubscription(ctx, other))
	other.CustomerIdentifier = customer
	wantFailure(t, "PutSubscription updated to another's CustomerIdentifier", s.PutSubscription(ctx, other))
	got, err = s.Subscription(ctx, other.LicenseArn)
	if err != nil || got.CustomerIdentifier != "cust-free" {
		t.Errorf("Subscription after failed update = %+v, %v; want it unchanged", got, err)
	}

	// Another product may use the same identifier.
	elsewhere := clash
	elsewhere.ProductCode, elsewhere.LicenseArn = product2, "arn:elsewhere"
	must(t, s.PutSubscription(ctx, elsewhere))

	// Subscriptions without an identifier do not clash.
	for _, arn := range []string{"arn:none-1", "arn:none-2"} {
		must(t, s.PutSubscription(ctx, mpmeter.Subscription{
			AccountID: buyer2, ProductCode: product2, LicenseArn: arn, Status: mpmeter.SubscriptionActive, CreatedAt: t0,
		}))
	}
}

func testSubscriptionsOf(t *testing.T, s mpmeter.Store) {
	ctx := t.Context()
	seed(t, s)
	mk := func(arn, cid string, created time.Time) mpmeter.Subscription {
		return mpmeter.Subscription{AccountID: buyer2, ProductCode: product, CustomerIdentifier: cid,
			LicenseArn: arn, Status: mpmeter.SubscriptionActive, CreatedAt: created}
	}
	// Put out of order; read back oldest first.
	late := mk("arn:late", "c-late", t0.Add(2*time.Hour))
	early := mk("arn:early", "c-early", t0)
	mid := mk("arn:mid", "c-mid", t0.Add(time.Hour))
	for _, sub := range []mpmeter.Subscription{late, early, mid} {
		must(t, s.PutSubscription(ctx, sub))
	}
	// Not buyer2's, or not to product: excluded.
	must(t, s.PutSubscription(ctx, mpmeter.Subscription{AccountID: buyer2, ProductCode: product2, CustomerIdentifier: "c-ami",
		LicenseArn: "arn:ami", Status: mpmeter.SubscriptionActive, CreatedAt: t0}))

	got, err := s.SubscriptionsOf(ctx, buyer2, product)
	if err != nil {
		t.Fatal(err)
	}
	want := []mpmeter.Subscription{early, mid, late}
	if len(got) != len(want) {
		t.Fatalf("SubscriptionsOf: %d subscriptions, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		wantSubscription(t, name("SubscriptionsOf[%d]", i), got[i], nil, want[i])
	}
	got, err = s.SubscriptionsOf(ctx, buyer, product)
	if err != nil || len(got) != 1 || got[0].LicenseArn != license {
		t.Errorf("SubscriptionsOf(buyer) = %+v, %v; want the fixture's one", got, err)
	}
}

func testRegistrationToken(t *testing.T, s mpmeter.Store) {
	ctx := t.Context()
	seed(t, s)
	tok := mpmeter.RegistrationToken{Token: "regtok-1", AccountID: buyer, ProductCode: product,
		CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	check := func(what string, want mpmeter.RegistrationToken) {
		t.Helper()
		got, err := s.RegistrationToken(ctx, want.Token)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		got.CreatedAt, got.ExpiresAt = ms(got.CreatedAt), ms(got.ExpiresAt)
		if want.ID == "" {
			want.ID = mpmeter.RegistrationTokenID(want.Token)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
		}
	}
	must(t, s.PutRegistrationToken(ctx, tok))
	check("first put", tok)
	upd := tok
	upd.LicenseArn, upd.AccountID = license, buyer2
	upd.CreatedAt, upd.ExpiresAt = t0.Add(time.Minute), t0.Add(2*time.Hour)
	must(t, s.PutRegistrationToken(ctx, upd))
	check("second put", upd)
	_, err := s.RegistrationToken(ctx, "regtok-2")
	wantErr(t, "other token", err, mpmeter.ErrNotFound)
}

func testSigningKeys(t *testing.T, s mpmeter.Store) {
	ctx := t.Context()
	k1 := mpmeter.SigningKey{Version: 1, PrivateKeyPEM: []byte("-----BEGIN PRIVATE KEY-----\n1\x00\xff"), PublicKeyPEM: []byte("pub 1"), CreatedAt: t0}
	k2 := mpmeter.SigningKey{Version: 2, PrivateKeyPEM: []byte("private 2"), PublicKeyPEM: []byte("pub 2"), CreatedAt: t0.Add(time.Hour)}
	must(t, s.AddSigningKey(ctx, k2))
	must(t, s.AddSigningKey(ctx, k1))

	// Another node added version 2 first: ErrExists, and the stored key
	// stays.
	dup := mpmeter.SigningKey{Version: 2, PrivateKeyPEM: []byte("other"), PublicKeyPEM: []byte("other"), CreatedAt: t0.Add(2 * time.Hour)}
	wantErr(t, "AddSigningKey(existing version)", s.AddSigningKey(ctx, dup), mpmeter.ErrExists)

	got, err := s.SigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []mpmeter.SigningKey{k1, k2}
	if len(got) != len(want) {
		t.Fatalf("SigningKeys: %d keys, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Version != w.Version || !bytes.Equal(g.PrivateKeyPEM, w.PrivateKeyPEM) ||
			!bytes.Equal(g.PublicKeyPEM, w.PublicKeyPEM) || !ms(g.CreatedAt).Equal(ms(w.CreatedAt)) {
			t.Errorf("SigningKeys[%d]:\n got %d %q %q %v\nwant %d %q %q %v", i,
				g.Version, g.PrivateKeyPEM, g.PublicKeyPEM, g.CreatedAt, w.Version, w.PrivateKeyPEM, w.PublicKeyPEM, w.CreatedAt)
		}
	}
}
