package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
)

// The admin side of the contract: versioned writes, revocation, dimension
// details, agreement fields and the paged lists.

// testVersions: version 0 upserts, CreateOnly creates or is ErrExists, a
// stored version updates once and is ErrConflict after, a missing row
// ErrNotFound; failed puts change nothing; every put bumps the version.
func testVersions(t *testing.T, s mpmeter.Store) {
	ctx := t.Context()
	seed(t, s)
	a, err := s.Account(ctx, buyer)
	must(t, err)
	if a.Version < 1 || a.Name != "Buyer" {
		t.Fatalf("Account(buyer) = %+v; want Name Buyer and a version >= 1", a)
	}
	wantErr(t, "CreateOnly of an existing account", s.PutAccount(ctx, mpmeter.Account{ID: buyer, Name: "X", Version: mpmeter.CreateOnly}), mpmeter.ErrExists)
	must(t, s.PutAccount(ctx, mpmeter.Account{ID: "999999999999", Name: "New", Version: mpmeter.CreateOnly}))
	n, err := s.Account(ctx, "999999999999")
	must(t, err)
	if n.Version != 1 {
		t.Errorf("a created account has version %d, want 1", n.Version)
	}

	must(t, s.PutAccount(ctx, mpmeter.Account{ID: buyer, Name: "Renamed", Version: a.Version}))
	b, err := s.Account(ctx, buyer)
	must(t, err)
	if b.Name != "Renamed" || b.Version != a.Version+1 {
		t.Errorf("after a versioned update: %+v, want Renamed at version %d", b, a.Version+1)
	}
	// The same read-modify-write again, from the stale read: refused.
	wantErr(t, "stale version", s.PutAccount(ctx, mpmeter.Account{ID: buyer, Name: "Lost", Version: a.Version}), mpmeter.ErrConflict)
	c, err := s.Account(ctx, buyer)
	must(t, err)
	if c != b {
		t.Errorf("a conflicting put changed the account: %+v, want %+v", c, b)
	}
	wantErr(t, "versioned update of a missing account", s.PutAccount(ctx, mpmeter.Account{ID: "888888888888", Name: "X", Version: 3}), mpmeter.ErrNotFound)
	_, err = s.Account(ctx, "888888888888")
	wantErr(t, "Account after a failed update", err, mpmeter.ErrNotFound)

}

// testVersionsProduct: a stale product put is ErrConflict and leaves the
// dimensions as they were.
func testVersionsProduct(t *testing.T, s mpmeter.Store) {
	ctx := t.Context()
	seed(t, s)
	p, err := s.Product(ctx, product)
	must(t, err)
	upd := p
	upd.Dimensions = []string{"only"}
	must(t, s.PutProduct(ctx, upd))
	stale := p
	stale.Dimensions = []string{"x", "y"}
	wantErr(t, "stale product", s.PutProduct(ctx, stale), mpmeter.ErrConflict)
	got, err := s.Product(ctx, product)
	must(t, err)
	if !reflect.DeepEqual(got.Dimensions, []string{"only"}) || got.Version != p.Version+1 {
		t.Errorf("after a conflicting put: %+v; want dimensions [only] at version %d", got, p.Version+1)
	}
	wantErr(t, "CreateOnly product", s.PutProduct(ctx, mpmeter.Product{Code: product, SellerAccountID: seller, Type: mpmeter.ProductSaaS, Version: mpmeter.CreateOnly}), mpmeter.ErrExists)

	// Subscriptions: a customer identifier taken is ErrExists for a
	// CreateOnly put (the admin API's 409), and nothing is stored.
	clash := mpmeter.Subscription{AccountID: buyer2, ProductCode: product, CustomerIdentifier: customer,
		LicenseArn: "arn:aws:license-manager::333333333333:license/l-clash", Status: mpmeter.SubscriptionActive, CreatedAt: t0, Version: mpmeter.CreateOnly}
	wantErr(t, "CreateOnly subscription with a taken customer identifier", s.PutSubscription(ctx, clash), mpmeter.ErrExists)
	_, err = s.Subscription(ctx, clash.LicenseArn)
	wantErr(t, "Subscription after the clash", err, mpmeter.ErrNotFound)

	// Access keys.
	k := mpmeter.AccessKey{ID: "AKIAVERSIONED00001", Secret: "s1", AccountID: buyer, Version: mpmeter.CreateOnly}
	must(t, s.PutAccessKey(ctx, k))
	gotKey, err := s.AccessKey(ctx, k.ID)
	must(t, err)
	if gotKey.Version != 1 {
		t.Errorf("a new key's version = %d, want 1", gotKey.Version)
	}
	k.Secret, k.Version = "s2", 1
	must(t, s.PutAccessKey(ctx, k))
	wantErr(t, "stale access key", s.PutAccessKey(ctx, k), mpmeter.ErrConflict)
	if got, err := s.AccessKey(ctx, k.ID); err != nil || got.Version != 2 || got.Secret != "s2" {
		t.Errorf("after an update: %+v, %v; want secret s2 at version 2", got, err)
	}
}

// testRevokedAccessKey: revocation is stored, sticks through later puts
// (the seed's upserts included) and hides the key from WorkloadAccessKeys.
func testRevokedAccessKey(t *testing.T, s mpmeter.Store) {
	ctx := t.Context()
	seed(t, s)
	wl := &mpmeter.Workload{ID: "i-revoked", Platform: mpmeter.PlatformEC2, Region: "us-east-1"}
	k := mpmeter.AccessKey{ID: "AKIAREVOKED0000001", Secret: "s", AccountID: buyer, Workload: wl, CredentialsToken: "ct"}
	must(t, s.PutAccessKey(ctx, k))
	got, err := s.AccessKey(ctx, k.ID)
	must(t, err)
	if got.Revoked() {
		t.Fatalf("a new key is revoked: %+v", got)
	}
	at := t0.Add(time.Hour)
	rev := got
	rev.RevokedAt = at
	must(t, s.PutAccessKey(ctx, rev))
	got, err = s.AccessKey(ctx, k.ID)
	must(t, err)
	if !got.RevokedAt.Equal(at) {
		t.Errorf("RevokedAt = %v, want %v", got.RevokedAt, at)
	}
	// The seed puts the key again without RevokedAt: still revoked.
	must(t, s.PutAccessKey(ctx, k))
	got, err = s.AccessKey(ctx, k.ID)
	must(t, err)
	if !got.RevokedAt.Equal(at) {
		t.Errorf("after an unversioned put without RevokedAt: RevokedAt = %v, want %v kept", got.RevokedAt, at)
	}
	keys, err := s.WorkloadAccessKeys(ctx, wl.ID, t0)
	must(t, err)
	if len(keys) != 0 {
		t.Errorf("WorkloadAccessKeys returns revoked keys: %+v", keys)
	}
}

// testDimensionDetails: descriptions, units and prices are stored per
// dimension, replaced with the dimensions, and absent ones read back as no
// entry.
func testDimensionDetails(t *testing.T, s mpmeter.Store) {
	ctx := t.Context()
	seed(t, s)
	p := mpmeter.Product{Code: "prod-priced", SellerAccountID: seller, Type: mpmeter.ProductSaaS,
		Dimensions: []string{"users", "gb", "plain"},
		DimensionDetails: map[string]mpmeter.DimensionDetails{
			"users": {Description: "Active users", Unit: "Users", PricePerUnit: "0.05"},
			"gb":    {PricePerUnit: "0.000123456789"},
		}}
	must(t, s.PutProduct(ctx, p))
	got, err := s.Product(ctx, p.Code)
	must(t, err)
	if !reflect.DeepEqual(got.DimensionDetails, p.DimensionDetails) || !reflect.DeepEqual(got.Dimensions, p.Dimensions) {
		t.Errorf("Product: dimensions %v details %+v; want %v %+v", got.Dimensions, got.DimensionDetails, p.Dimensions, p.DimensionDetails)
	}
	if l := got.DimensionList(); len(l) != 3 || l[0].Unit != "Users" || l[2] != (mpmeter.Dimension{Name: "plain"}) {
		t.Errorf("DimensionList = %+v", l)
	}
	p.DimensionDetails = nil
	must(t, s.PutProduct(ctx, p))
	got, err = s.Product(ctx, p.Code)
	must(t, err)
	if len(got.DimensionDetails) != 0 {
		t.Errorf("details survived a put without them: %+v", got.DimensionDetails)
	}
}

// testAgreementFields: agreement id (derived or given, kept from the first
// put), offer, free trial, end time; lookup by agreement id.
func testAgreementFields(t *testing.T, s mpmeter.Store) {
	ctx := t.Context()
	seed(t, s)
	fx, err := s.Subscription(ctx, license)
	must(t, err)
	if fx.AgreementID != mpmeter.AgreementIDFor(license) {
		t.Errorf("derived agreement id %q, want %q", fx.AgreementID, mpmeter.AgreementIDFor(license))
	}
	sub := mpmeter.Subscription{AccountID: buyer2, ProductCode: product, CustomerIdentifier: "cust-agmt",
		LicenseArn: "arn:aws:license-manager::333333333333:license/l-agmt", Status: mpmeter.SubscriptionActive, CreatedAt: t0,
		AgreementID: "agmt-given0000000000000001", OfferID: "offer-abc", FreeTrial: true, Version: mpmeter.CreateOnly}
	must(t, s.PutSubscription(ctx, sub))
	got, err := s.SubscriptionByAgreement(ctx, sub.AgreementID)
	must(t, err)
	if got.LicenseArn != sub.LicenseArn || got.OfferID != "offer-abc" || !got.FreeTrial || got.Version != 1 || !got.EndedAt.IsZero() {
		t.Errorf("SubscriptionByAgreement = %+v", got)
	}
	// A versioned cancel with an end time; then an unversioned put (the
	// seed) with another agreement id keeps the first.
	got.Status, got.EndedAt = mpmeter.SubscriptionCancelled, t0.Add(time.Hour)
	must(t, s.PutSubscription(ctx, got))
	again := sub
	again.Version, again.AgreementID, again.Status, again.EndedAt = 0, "agmt-other", mpmeter.SubscriptionCancelled, t0.Add(2*time.Hour)
	must(t, s.PutSubscription(ctx, again))
	got, err = s.Subscription(ctx, sub.LicenseArn)
	must(t, err)
	// Nothing it sets differs (the agreement id and end time are kept), so
	// the version stays: applying a seed again changes nothing.
	if got.AgreementID != sub.AgreementID || !got.EndedAt.Equal(t0.Add(time.Hour)) || got.Version != 2 {
		t.Errorf("after cancel and a seed put: %+v; want agreement %s, ended at %v, version 2", got, sub.AgreementID, t0.Add(time.Hour))
	}
	// Reactivated by the seed: no end time, a new version.
	again.Status = mpmeter.SubscriptionActive
	must(t, s.PutSubscription(ctx, again))
	got, err = s.Subscription(ctx, sub.LicenseArn)
	must(t, err)
	if !got.EndedAt.IsZero() || got.Status != mpmeter.SubscriptionActive || got.Version != 3 {
		t.Errorf("reactivated: %+v; want active without EndedAt", got)
	}
	_, err = s.SubscriptionByAgreement(ctx, "agmt-nosuch")
	wantErr(t, "SubscriptionByAgreement(unknown)", err, mpmeter.ErrNotFound)
}

// testLists: every list pages in key order from a cursor, filters, and
// answers an empty slice past the end.
func testLists(t *testing.T, s mpmeter.Store) {
	ctx := t.Context()
	accounts, err := s.Accounts(ctx, mpmeter.Page{})
	if err != nil || accounts == nil || len(accounts) != 0 {
		t.Fatalf("Accounts on an empty store = %v, %v; want an empty slice", accounts, err)
	}
	seed(t, s)
	var ids []string
	for p := (mpmeter.Page{Limit: 3}); ; {
		page, err := s.Accounts(ctx, p)
		must(t, err)
		for _, a := range page {
			ids = append(ids, a.ID)
		}
		if len(page) < p.Limit {
			break
		}
		p.After = page[len(page)-1].ID
	}
	if want := []string{seller, buyer, buyer2, seller2}; !reflect.DeepEqual(ids, want) {
		t.Errorf("Accounts paged by 3: %v, want %v", ids, want)
	}

	for _, id := range []string{"AKIALIST0000000003", "AKIALIST0000000001", "AKIALIST0000000002"} {
		must(t, s.PutAccessKey(ctx, mpmeter.AccessKey{ID: id, Secret: "s", AccountID: buyer}))
	}
	must(t, s.PutAccessKey(ctx, mpmeter.AccessKey{ID: "AKIALIST0000000000", Secret: "s", AccountID: buyer2,
		Workload: &mpmeter.Workload{ID: "i-list", Platform: mpmeter.PlatformEC2, Region: "us-east-1"}}))
	keys, err := s.AccessKeys(ctx, mpmeter.AccessKeyFilter{AccountID: buyer}, mpmeter.Page{After: "AKIALIST0000000001", Limit: 5})
	must(t, err)
	if got := keyIDs(keys); !reflect.DeepEqual(got, []string{"AKIALIST0000000002", "AKIALIST0000000003"}) {
		t.Errorf("AccessKeys(buyer, after 1) = %v", got)
	}
	keys, err = s.AccessKeys(ctx, mpmeter.AccessKeyFilter{WorkloadID: "i-list"}, mpmeter.Page{})
	must(t, err)
	if len(keys) != 1 || keys[0].Workload == nil || keys[0].Secret != "s" {
		t.Errorf("AccessKeys(workload) = %+v", keys)
	}

	products, err := s.Products(ctx, mpmeter.Page{Limit: 1})
	must(t, err)
	if len(products) != 1 || products[0].Code != product2 || !reflect.DeepEqual(products[0].Dimensions, []string{"hosts"}) {
		t.Errorf("Products(limit 1) = %+v; want %s with its dimension", products, product2)
	}
	products, err = s.Products(ctx, mpmeter.Page{After: product2})
	must(t, err)
	if len(products) != 1 || products[0].Code != product || !reflect.DeepEqual(products[0].Dimensions, []string{"users", "gb"}) {
		t.Errorf("Products(after %s) = %+v", product2, products)
	}
	products, err = s.Products(ctx, mpmeter.Page{After: "zzz"})
	if err != nil || products == nil || len(products) != 0 {
		t.Errorf("Products past the end = %v, %v; want an empty slice", products, err)
	}

	for i, arn := range []string{"arn:aws:license-manager::333333333333:license/l-1", "arn:aws:license-manager::333333333333:license/l-2"} {
		must(t, s.PutSubscription(ctx, mpmeter.Subscription{AccountID: buyer2, ProductCode: product2, CustomerIdentifier: name("c-%d", i),
			LicenseArn: arn, Status: mpmeter.SubscriptionActive, CreatedAt: t0}))
	}
	all, err := s.Subscriptions(ctx, mpmeter.SubscriptionFilter{}, mpmeter.Page{})
	must(t, err)
	if len(all) != 3 {
		t.Fatalf("Subscriptions = %d, want 3", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i-1].AgreementID >= all[i].AgreementID {
			t.Errorf("Subscriptions not ordered by agreement id: %s then %s", all[i-1].AgreementID, all[i].AgreementID)
		}
	}
	mine, err := s.Subscriptions(ctx, mpmeter.SubscriptionFilter{AccountID: buyer2, ProductCode: product2}, mpmeter.Page{After: all[0].AgreementID})
	must(t, err)
	for _, sub := range mine {
		if sub.AccountID != buyer2 || sub.AgreementID <= all[0].AgreementID {
			t.Errorf("Subscriptions(filter, after) returned %+v", sub)
		}
	}
	none, err := s.Subscriptions(ctx, mpmeter.SubscriptionFilter{Status: mpmeter.SubscriptionCancelled}, mpmeter.Page{})
	if err != nil || len(none) != 0 {
		t.Errorf("Subscriptions(cancelled) = %v, %v; want none", none, err)
	}

	for _, tok := range []string{"tok-a", "tok-b"} {
		must(t, s.PutRegistrationToken(ctx, mpmeter.RegistrationToken{Token: tok, AccountID: buyer, ProductCode: product, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
	}
	toks, err := s.RegistrationTokens(ctx, mpmeter.Page{Limit: 10})
	must(t, err)
	if len(toks) != 2 || toks[0].ID >= toks[1].ID {
		t.Fatalf("RegistrationTokens = %+v; want two, by id", toks)
	}
	byID, err := s.RegistrationTokenByID(ctx, mpmeter.RegistrationTokenID("tok-b"))
	must(t, err)
	if byID.Token != "tok-b" || byID.ID != mpmeter.RegistrationTokenID("tok-b") {
		t.Errorf("RegistrationTokenByID = %+v", byID)
	}
	_, err = s.RegistrationTokenByID(ctx, "rt-0000000000000000")
	wantErr(t, "RegistrationTokenByID(unknown)", err, mpmeter.ErrNotFound)
}
