package seed_test

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/seed"
	"github.com/mpmeter/mpmeter/sqlstore"
	"github.com/mpmeter/mpmeter/storetest"
)

// openStore opens (or reopens) the SQLite store at path; it is closed when
// the test ends.
func openStore(t *testing.T, path string) *sqlstore.Store {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("sqlstore.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// snapshot is everything of f that st holds, read back through the Store
// interface.
type snapshot struct {
	Keys          []mpmeter.AccessKey
	Products      []mpmeter.Product
	Subscriptions []mpmeter.Subscription
	ByCustomer    []mpmeter.Subscription
	SubsOf        [][]mpmeter.Subscription
	Tokens        []mpmeter.RegistrationToken
}

func takeSnapshot(t *testing.T, st mpmeter.Store, f *seed.File) snapshot {
	t.Helper()
	ctx := context.Background()
	r, err := f.Resolved()
	if err != nil {
		t.Fatal(err)
	}
	var s snapshot
	for _, a := range r.Accounts {
		for _, k := range a.AccessKeys {
			got, err := st.AccessKey(ctx, k.ID)
			if err != nil {
				t.Fatalf("AccessKey(%s): %v", k.ID, err)
			}
			s.Keys = append(s.Keys, got)
		}
	}
	for _, p := range r.Products {
		got, err := st.Product(ctx, p.Code)
		if err != nil {
			t.Fatalf("Product(%s): %v", p.Code, err)
		}
		s.Products = append(s.Products, got)
	}
	for _, sub := range r.Subscriptions {
		got, err := st.Subscription(ctx, sub.LicenseArn)
		if err != nil {
			t.Fatalf("Subscription(%s): %v", sub.LicenseArn, err)
		}
		s.Subscriptions = append(s.Subscriptions, got)
		if sub.CustomerIdentifier != "" { // a concurrent agreement has none
			got, err = storetest.SubscriptionByCustomer(ctx, st, sub.Product, sub.CustomerIdentifier)
			if err != nil {
				t.Fatalf("subscriptionByCustomer(%s, %s): %v", sub.Product, sub.CustomerIdentifier, err)
			}
			s.ByCustomer = append(s.ByCustomer, got)
		}
		of, err := st.SubscriptionsOf(ctx, sub.Account, sub.Product)
		if err != nil {
			t.Fatalf("SubscriptionsOf(%s, %s): %v", sub.Account, sub.Product, err)
		}
		s.SubsOf = append(s.SubsOf, of)
	}
	for _, tk := range r.RegistrationTokens {
		got, err := st.RegistrationToken(ctx, tk.Token)
		if err != nil {
			t.Fatalf("RegistrationToken(%s): %v", tk.Token, err)
		}
		s.Tokens = append(s.Tokens, got)
	}
	return s
}

func TestApplyDemoIdempotent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mpmeter.db")
	st := openStore(t, path)
	demo := seed.Demo()
	t0 := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	const ttl = time.Hour

	sum, err := demo.Apply(ctx, st, t0, ttl)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if want := (seed.Summary{Accounts: 4, AccessKeys: 13, Products: 6, Subscriptions: 11, Tokens: 6, Entitlements: 5}); sum != want {
		t.Errorf("Summary = %+v, want %+v", sum, want)
	}
	first := takeSnapshot(t, st, demo)

	// What the store holds.
	k, err := st.AccessKey(ctx, "AKIAEXAMPLEEC2000001")
	if err != nil {
		t.Fatal(err)
	}
	if want := (mpmeter.AccessKey{ID: "AKIAEXAMPLEEC2000001", Secret: "ec2-secret", AccountID: "444455556666",
		Workload:         &mpmeter.Workload{ID: "i-0123456789abcdef0", Platform: "ec2", Region: "us-east-1"},
		CredentialsToken: "demo-ec2-credentials-token", Version: 1}); !reflect.DeepEqual(k, want) {
		t.Errorf("AccessKey = %+v, want %+v", k, want)
	}
	if k, err := st.AccessKey(ctx, "AKIAEXAMPLESELLER001"); err != nil || k.Workload != nil || k.AccountID != "111122223333" || k.Secret != "seller-secret" {
		t.Errorf("seller key = %+v, %v", k, err)
	}
	p, err := st.Product(ctx, "otherprod1")
	if err != nil {
		t.Fatal(err)
	}
	if want := (mpmeter.Product{Code: "otherprod1", SellerAccountID: "777788889999", Type: "saas", Dimensions: []string{"users"}, Version: 1}); !reflect.DeepEqual(p, want) {
		t.Errorf("Product = %+v, want %+v", p, want)
	}
	s, err := storetest.SubscriptionByCustomer(ctx, st, "exampleami1", seed.CustomerIdentifierFor("444455556666", "exampleami1"))
	if err != nil {
		t.Fatal(err)
	}
	if s.LicenseArn != seed.LicenseArnFor("444455556666", "exampleami1") || s.Status != mpmeter.SubscriptionActive || !s.CreatedAt.Equal(t0) {
		t.Errorf("generated subscription = %+v", s)
	}
	s, err = st.Subscription(ctx, "arn:aws:license-manager::444455556666:license/l-0123456789abcdef")
	if err != nil || s.CustomerIdentifier != "cust-example-1" || s.AccountID != "444455556666" || s.ProductCode != "exampleprod1" {
		t.Errorf("explicit subscription = %+v, %v", s, err)
	}
	if s, err := storetest.SubscriptionByCustomer(ctx, st, "exampleprod1", "cust-cancelled-1"); err != nil || s.Status != mpmeter.SubscriptionCancelled {
		t.Errorf("cancelled subscription = %+v, %v", s, err)
	}
	tok, err := st.RegistrationToken(ctx, "demo-token-1")
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccountID != "444455556666" || tok.ProductCode != "exampleprod1" || !tok.CreatedAt.Equal(t0) || !tok.ExpiresAt.Equal(t0.Add(ttl)) {
		t.Errorf("demo-token-1 = %+v", tok)
	}
	tok, err = st.RegistrationToken(ctx, "demo-token-expired")
	if err != nil {
		t.Fatal(err)
	}
	expired := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	if !tok.ExpiresAt.Equal(expired) || tok.CreatedAt.After(tok.ExpiresAt) {
		t.Errorf("demo-token-expired = %+v", tok)
	}

	// Again, later, with the same store.
	t1 := t0.Add(3 * time.Hour)
	sum2, err := seed.Demo().Apply(ctx, st, t1, 2*ttl)
	if err != nil {
		t.Fatalf("second Apply: %v", err)
	}
	if sum2 != sum {
		t.Errorf("second Summary = %+v, want %+v", sum2, sum)
	}
	if second := takeSnapshot(t, st, demo); !reflect.DeepEqual(first, second) {
		t.Errorf("second Apply changed the store:\nbefore %+v\nafter  %+v", first, second)
	}

	// And again after a restart.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = openStore(t, path)
	if _, err := seed.Demo().Apply(ctx, st, t1.Add(time.Hour), ttl); err != nil {
		t.Fatalf("Apply after restart: %v", err)
	}
	if third := takeSnapshot(t, st, demo); !reflect.DeepEqual(first, third) {
		t.Errorf("Apply after restart changed the store:\nbefore %+v\nafter  %+v", first, third)
	}

	// A fresh store gets the same generated values.
	other := openStore(t, filepath.Join(t.TempDir(), "other.db"))
	if _, err := seed.Demo().Apply(ctx, other, t0, ttl); err != nil {
		t.Fatal(err)
	}
	if fresh := takeSnapshot(t, other, demo); !reflect.DeepEqual(first, fresh) {
		t.Errorf("a fresh store differs:\nfirst %+v\nfresh %+v", first, fresh)
	}
}

func TestApplyTokenExpiry(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, filepath.Join(t.TempDir(), "mpmeter.db"))
	f := mustParse(t, base)
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := f.Apply(ctx, st, t0, time.Hour); err != nil {
		t.Fatal(err)
	}
	get := func() mpmeter.RegistrationToken {
		t.Helper()
		tok, err := st.RegistrationToken(ctx, "tok-1")
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	if tok := get(); !tok.CreatedAt.Equal(t0) || !tok.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("token = %+v", tok)
	}

	// Re-applying does not extend it, even with another TTL.
	if _, err := f.Apply(ctx, st, t0.Add(30*time.Minute), 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if tok := get(); !tok.CreatedAt.Equal(t0) || !tok.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("re-applied token = %+v", tok)
	}

	// An explicit expires_at replaces the expiry and keeps the creation time.
	exp := t0.Add(48 * time.Hour)
	f.RegistrationTokens[0].ExpiresAt = &exp
	if _, err := f.Apply(ctx, st, t0.Add(time.Hour), time.Hour); err != nil {
		t.Fatal(err)
	}
	if tok := get(); !tok.CreatedAt.Equal(t0) || !tok.ExpiresAt.Equal(exp) {
		t.Fatalf("token with expires_at = %+v", tok)
	}

	// A token whose expiry the file names is not re-timed by a zero TTL; one
	// without expires_at needs a TTL.
	if _, err := f.Apply(ctx, st, t0, 0); err != nil {
		t.Fatalf("Apply with explicit expiry and no TTL: %v", err)
	}
	f.RegistrationTokens[0].ExpiresAt = nil
	if _, err := f.Apply(ctx, st, t0, 0); err == nil || !strings.Contains(err.Error(), "registration_tokens[0] (tok-1)") {
		t.Fatalf("Apply with no TTL = %v", err)
	}
}

func TestApplyLicenseArnOnToken(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, filepath.Join(t.TempDir(), "mpmeter.db"))
	f := mustParse(t, base)
	second := "arn:aws:license-manager::444455556666:license/l-second"
	f.Subscriptions = append(f.Subscriptions, seed.Subscription{Account: "444455556666", Product: "exampleprod1", LicenseArn: second, CustomerIdentifier: "cust-2", Status: "expired"})
	f.RegistrationTokens = append(f.RegistrationTokens, seed.RegistrationToken{Token: "tok-2", Account: "444455556666", Product: "exampleprod1", LicenseArn: second})
	if _, err := f.Apply(ctx, st, time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	tok, err := st.RegistrationToken(ctx, "tok-2")
	if err != nil || tok.LicenseArn != second {
		t.Fatalf("tok-2 = %+v, %v", tok, err)
	}
	subs, err := st.SubscriptionsOf(ctx, "444455556666", "exampleprod1")
	if err != nil || len(subs) != 2 {
		t.Fatalf("SubscriptionsOf = %+v, %v", subs, err)
	}
}

func TestApplyInvalidPutsNothing(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, filepath.Join(t.TempDir(), "mpmeter.db"))
	f := mustParse(t, base)
	f.Products[1].Seller = "999"
	_, err := f.Apply(ctx, st, time.Now(), time.Hour)
	if err == nil || !strings.Contains(err.Error(), `products[1] (exampleami1): seller "999" is not an account in the seed`) {
		t.Fatalf("Apply = %v", err)
	}
	if _, err := st.AccessKey(ctx, "AKIAEXAMPLESELLER001"); !errors.Is(err, mpmeter.ErrNotFound) {
		t.Errorf("AccessKey after a failed Apply: %v, want ErrNotFound", err)
	}
}

func TestApplyUpdates(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, filepath.Join(t.TempDir(), "mpmeter.db"))
	f := mustParse(t, base)
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := f.Apply(ctx, st, t0, time.Hour); err != nil {
		t.Fatal(err)
	}
	// An edited file updates the store; the subscription keeps its
	// creation time.
	f.Accounts[0].AccessKeys[0].Secret = "rotated"
	f.Products[0].Dimensions = []string{"seats"}
	f.Subscriptions[0].Status = "cancelled"
	if _, err := f.Apply(ctx, st, t0.Add(time.Hour), time.Hour); err != nil {
		t.Fatal(err)
	}
	if k, _ := st.AccessKey(ctx, "AKIAEXAMPLESELLER001"); k.Secret != "rotated" {
		t.Errorf("key = %+v", k)
	}
	if p, _ := st.Product(ctx, "exampleprod1"); !reflect.DeepEqual(p.Dimensions, []string{"seats"}) {
		t.Errorf("product = %+v", p)
	}
	s, err := storetest.SubscriptionByCustomer(ctx, st, "exampleprod1", "cust-1")
	if err != nil || s.Status != "cancelled" || !s.CreatedAt.Equal(t0) {
		t.Errorf("subscription = %+v, %v", s, err)
	}
}

// failingSubscriptions is a store whose PutSubscription fails for one
// license ARN.
type failingSubscriptions struct {
	mpmeter.Store
	licenseArn string
}

func (s failingSubscriptions) PutSubscription(ctx context.Context, sub mpmeter.Subscription) error {
	if sub.LicenseArn == s.licenseArn {
		return errors.New("disk full")
	}
	return s.Store.PutSubscription(ctx, sub)
}

// Several puts in flight put exactly what Apply puts; an error stops it
// before the next kind of item.
func TestApplyConcurrently(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	demo := seed.Demo()
	seq := openStore(t, filepath.Join(t.TempDir(), "seq.db"))
	want, err := demo.Apply(ctx, seq, t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	conc := openStore(t, filepath.Join(t.TempDir(), "conc.db"))
	got, err := seed.Demo().ApplyConcurrently(ctx, conc, t0, time.Hour, 8)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("Summary = %+v, want %+v", got, want)
	}
	if a, b := takeSnapshot(t, seq, demo), takeSnapshot(t, conc, demo); !reflect.DeepEqual(a, b) {
		t.Errorf("ApplyConcurrently stored something else:\nApply             %+v\nApplyConcurrently %+v", a, b)
	}

	bad := failingSubscriptions{openStore(t, filepath.Join(t.TempDir(), "bad.db")), "arn:aws:license-manager::444455556666:license/l-0123456789abcdef"}
	_, err = seed.Demo().ApplyConcurrently(ctx, bad, t0, time.Hour, 8)
	if err == nil || !strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), bad.licenseArn) {
		t.Fatalf("error = %v, want the failed subscription's", err)
	}
	if _, err := bad.RegistrationToken(ctx, "demo-token-1"); !errors.Is(err, mpmeter.ErrNotFound) {
		t.Fatalf("a token was put after a subscription failed: %v", err)
	}
}

// Temporary credentials keep their session token and expiry through Apply.
func TestApplyTemporaryKeys(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "mpmeter.db"))
	if _, err := seed.Demo().Apply(t.Context(), st, time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	k, err := st.AccessKey(t.Context(), "ASIAEXAMPLEEXPIRED01")
	if err != nil {
		t.Fatal(err)
	}
	if k.SessionToken != "demo-expired-session-token" || !k.ExpiresAt.Equal(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)) || !k.Temporary() {
		t.Errorf("expired demo key = %+v", k)
	}
	k, err = st.AccessKey(t.Context(), "ASIAEXAMPLEECS000001")
	if err != nil {
		t.Fatal(err)
	}
	if k.SessionToken != "demo-ecs-session-token" || !k.ExpiresAt.IsZero() || k.Workload == nil || k.Workload.Platform != "ecs" {
		t.Errorf("temporary demo key = %+v", k)
	}
}
