package seed_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/seed"
)

// caSeed has a concurrent-agreements product with a buyer holding two
// agreements, and a second buyer holding one.
const caSeed = `
accounts:
  - {id: "111122223333", access_keys: [{id: AKIAEXAMPLESELLER001, secret: s}]}
  - {id: "444455556666"}
  - {id: "123456789012"}
products:
  - {code: caprod, seller: "111122223333", type: saas, dimensions: [users], concurrent_agreements: true}
subscriptions:
  - {account: "444455556666", product: caprod, license_arn: "arn:aws:license-manager::444455556666:license/l-1"}
  - {account: "444455556666", product: caprod, license_arn: "arn:aws:license-manager::444455556666:license/l-2"}
  - {account: "123456789012", product: caprod}
registration_tokens:
  - {token: tok-1, account: "444455556666", product: caprod, license_arn: "arn:aws:license-manager::444455556666:license/l-1"}
  - {token: tok-2, account: "444455556666", product: caprod, license_arn: "arn:aws:license-manager::444455556666:license/l-2"}
  - {token: tok-only, account: "123456789012", product: caprod}
`

func TestConcurrentAgreementsResolved(t *testing.T) {
	r, err := mustParse(t, caSeed).Resolved()
	if err != nil {
		t.Fatal(err)
	}
	if !r.Products[0].ConcurrentAgreements {
		t.Error("the flag is lost")
	}
	for _, s := range r.Subscriptions {
		if s.CustomerIdentifier != "" {
			t.Errorf("subscription %s got customer identifier %q", s.LicenseArn, s.CustomerIdentifier)
		}
	}
	if want := seed.LicenseArnFor("123456789012", "caprod"); r.Subscriptions[2].LicenseArn != want {
		t.Errorf("generated license ARN %q, want %q", r.Subscriptions[2].LicenseArn, want)
	}
	// The token of the buyer with one agreement names it.
	if got, want := r.RegistrationTokens[2].LicenseArn, seed.LicenseArnFor("123456789012", "caprod"); got != want {
		t.Errorf("tok-only license ARN %q, want %q", got, want)
	}
	// And the file round-trips with the flag.
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "concurrent_agreements: true") {
		t.Errorf("marshalled without the flag:\n%s", b)
	}
}

func TestConcurrentAgreementsValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(f *seed.File)
		want   string
	}{
		{"not saas", func(f *seed.File) { f.Products[0].Type = "ami" }, `products[0] (caprod): concurrent_agreements: only saas products have them, not "ami"`},
		{"customer identifier", func(f *seed.File) { f.Subscriptions[0].CustomerIdentifier = "cust-1" },
			`subscriptions[0] (444455556666/caprod): customer_identifier: product "caprod" has concurrent agreements, whose subscriptions have no customer identifier`},
		{"token of several agreements without license", func(f *seed.File) { f.RegistrationTokens[0].LicenseArn = "" },
			`registration_tokens[0] (tok-1): license_arn is missing: account "444455556666" holds 2 concurrent agreements for product "caprod" and a token names one`},
		{"second agreement without its own arn", func(f *seed.File) {
			f.Subscriptions = append(f.Subscriptions, seed.Subscription{Account: "123456789012", Product: "caprod"})
		}, `subscriptions[3] (123456789012/caprod): subscribes the same account to the same product as subscriptions[2]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := mustParse(t, caSeed)
			tc.change(f)
			err := f.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestConcurrentAgreementsApply(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, filepath.Join(t.TempDir(), "ca.db"))
	if _, err := mustParse(t, caSeed).Apply(ctx, st, time.Unix(1e9, 0), time.Hour); err != nil {
		t.Fatal(err)
	}
	p, err := st.Product(ctx, "caprod")
	if err != nil || !p.ConcurrentAgreements {
		t.Fatalf("Product = %+v, %v", p, err)
	}
	subs, err := st.SubscriptionsOf(ctx, "444455556666", "caprod")
	if err != nil || len(subs) != 2 || subs[0].CustomerIdentifier != "" || subs[1].CustomerIdentifier != "" {
		t.Fatalf("SubscriptionsOf = %+v, %v; want two agreements without customer identifiers", subs, err)
	}
	tok, err := st.RegistrationToken(ctx, "tok-only")
	if err != nil || tok.LicenseArn != seed.LicenseArnFor("123456789012", "caprod") {
		t.Errorf("tok-only = %+v, %v", tok, err)
	}
	// The demo's concurrent-agreements product and its buyer's two agreements.
	if _, err := seed.Demo().Apply(ctx, st, time.Unix(1e9, 0), time.Hour); err != nil {
		t.Fatal(err)
	}
	if p, err := st.Product(ctx, "exampleca1"); err != nil || !p.ConcurrentAgreements {
		t.Errorf("demo exampleca1 = %+v, %v", p, err)
	}
	subs, err = st.SubscriptionsOf(ctx, "444455556666", "exampleca1")
	if err != nil || len(subs) != 2 {
		t.Fatalf("demo agreements = %+v, %v", subs, err)
	}
	for _, s := range subs {
		if s.CustomerIdentifier != "" || s.Status != mpmeter.SubscriptionActive {
			t.Errorf("demo agreement %+v", s)
		}
	}
}
