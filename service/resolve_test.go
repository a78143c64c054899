package service_test

import (
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
)

func TestResolveCustomer(t *testing.T) {
	second := "arn:aws:license-manager::444455556666:license/l-second"
	cases := []struct {
		name  string
		key   string // the caller; the seller when empty
		token string
		setup func(f *fixture)
		code  mpmeter.ErrorCode
		want  mpmeter.Subscription // when code is ""
	}{
		{name: "the demo token", token: "demo-token-1",
			want: mpmeter.Subscription{CustomerIdentifier: customer, AccountID: buyer, ProductCode: saasProduct, LicenseArn: license}},
		{name: "a cancelled agreement's token", token: "demo-token-cancelled",
			want: mpmeter.Subscription{CustomerIdentifier: cancelledCustomr, AccountID: cancelledBuyer, ProductCode: saasProduct}},
		{name: "the other seller's own token", key: otherSellerKey, token: "demo-token-other",
			want: mpmeter.Subscription{AccountID: buyer, ProductCode: otherProduct}},
		{name: "a token naming its license", token: "tok-license",
			setup: func(f *fixture) {
				put(f, mpmeter.Subscription{AccountID: buyer, ProductCode: saasProduct, CustomerIdentifier: "cust-second", LicenseArn: second, Status: mpmeter.SubscriptionActive})
				putToken(f, mpmeter.RegistrationToken{Token: "tok-license", AccountID: buyer, ProductCode: saasProduct, LicenseArn: second})
			},
			want: mpmeter.Subscription{CustomerIdentifier: "cust-second", AccountID: buyer, ProductCode: saasProduct, LicenseArn: second}},
		{name: "unknown token", token: "no-such-token", code: mpmeter.CodeInvalidToken},
		{name: "another seller's token", token: "demo-token-other", code: mpmeter.CodeInvalidToken},
		{name: "a buyer resolving", key: buyerKey, token: "demo-token-1", code: mpmeter.CodeInvalidToken},
		{name: "expired token", token: "demo-token-expired", code: mpmeter.CodeExpiredToken},
		{name: "token past its TTL", token: "demo-token-1", code: mpmeter.CodeExpiredToken,
			setup: func(f *fixture) { f.now = t0.Add(4 * time.Hour) }},
		{name: "token of an account without an agreement", token: "tok-none", code: mpmeter.CodeInvalidToken,
			setup: func(f *fixture) {
				putToken(f, mpmeter.RegistrationToken{Token: "tok-none", AccountID: "777788889999", ProductCode: saasProduct})
			}},
		{name: "token naming an unknown license", token: "tok-gone", code: mpmeter.CodeInvalidToken,
			setup: func(f *fixture) {
				putToken(f, mpmeter.RegistrationToken{Token: "tok-gone", AccountID: buyer, ProductCode: saasProduct, LicenseArn: "arn:aws:license-manager::444455556666:license/l-gone"})
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			if c.setup != nil {
				c.setup(f)
			}
			key := c.key
			if key == "" {
				key = sellerKey
			}
			for range 2 { // the same again on every resolve
				out, err := f.svc.ResolveCustomer(f.ctx, f.caller(key), &mpmeter.ResolveCustomerInput{RegistrationToken: ptr(c.token)})
				if c.code != "" {
					wantCode(t, err, c.code)
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				want := c.want
				if want.LicenseArn == "" {
					want.LicenseArn = licenseOf(f, want.AccountID, want.ProductCode)
				}
				if want.CustomerIdentifier == "" {
					subs, _ := f.store.SubscriptionsOf(f.ctx, want.AccountID, want.ProductCode)
					want.CustomerIdentifier = subs[0].CustomerIdentifier
				}
				got := mpmeter.Subscription{CustomerIdentifier: *out.CustomerIdentifier, AccountID: *out.CustomerAWSAccountId, ProductCode: *out.ProductCode, LicenseArn: *out.LicenseArn}
				if got != want {
					t.Errorf("resolved %+v, want %+v", got, want)
				}
			}
		})
	}
}

func putToken(f *fixture, tok mpmeter.RegistrationToken) {
	f.t.Helper()
	tok.CreatedAt, tok.ExpiresAt = f.now, f.now.Add(time.Hour)
	if err := f.store.PutRegistrationToken(f.ctx, tok); err != nil {
		f.t.Fatal(err)
	}
}
