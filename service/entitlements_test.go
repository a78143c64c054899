package service_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
)

const (
	contractProduct = "examplecontract1"
	contractLicense = "arn:aws:license-manager::444455556666:license/l-0c0a000000000001"
)

func getEntitlements(f *fixture, key string, in *mpmeter.GetEntitlementsInput) (*mpmeter.GetEntitlementsOutput, error) {
	f.t.Helper()
	if err := in.Validate(); err != nil {
		f.t.Fatalf("the test's input is invalid: %v", err)
	}
	return f.svc.GetEntitlements(f.ctx, f.caller(key), in)
}

func dims(out *mpmeter.GetEntitlementsOutput) string {
	var d []string
	for _, e := range out.Entitlements {
		d = append(d, *e.Dimension)
	}
	return strings.Join(d, ",")
}

// The demo contract: the active buyer's four entitlements, typed, with
// their customer, license and expiration; the cancelled buyer's are not
// answered.
func TestGetEntitlementsDemo(t *testing.T) {
	f := newFixture(t)
	out, err := getEntitlements(f, sellerKey, &mpmeter.GetEntitlementsInput{ProductCode: ptr(contractProduct)})
	if err != nil {
		t.Fatal(err)
	}
	if got := dims(out); got != "premium_support,storage_tb,tier,users" || out.NextToken != nil {
		t.Fatalf("dimensions %q, NextToken %v", got, out.NextToken)
	}
	byDim := map[string]mpmeter.EntitlementItem{}
	for _, e := range out.Entitlements {
		byDim[*e.Dimension] = e
		if *e.ProductCode != contractProduct || *e.CustomerAWSAccountId != buyer || *e.CustomerIdentifier != "cust-contract-1" || *e.LicenseArn != contractLicense {
			t.Errorf("%s: %+v", *e.Dimension, e)
		}
	}
	expires := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if e := byDim["users"]; *e.Value.IntegerValue != 10 || e.Value.DoubleValue != nil || !e.ExpirationDate.Equal(expires) {
		t.Errorf("users: %+v %+v", e, e.Value)
	}
	if e := byDim["storage_tb"]; *e.Value.DoubleValue != 2.5 {
		t.Errorf("storage_tb: %+v", e.Value)
	}
	if e := byDim["premium_support"]; !*e.Value.BooleanValue {
		t.Errorf("premium_support: %+v", e.Value)
	}
	if e := byDim["tier"]; *e.Value.StringValue != "gold" || e.ExpirationDate != nil {
		t.Errorf("tier: %+v %v", e.Value, e.ExpirationDate)
	}

	// Past the expiration date, only the entitlement without one is left.
	f.now = expires
	out, err = getEntitlements(f, sellerKey, &mpmeter.GetEntitlementsInput{ProductCode: ptr(contractProduct)})
	if err != nil || dims(out) != "tier" {
		t.Errorf("at the expiration date: %q, %v", dims(out), err)
	}
	// A product without entitlements answers an empty list.
	out, err = getEntitlements(f, sellerKey, &mpmeter.GetEntitlementsInput{ProductCode: ptr(saasProduct)})
	if err != nil || out.Entitlements == nil || len(out.Entitlements) != 0 {
		t.Errorf("product without entitlements: %+v, %v", out, err)
	}
}

func TestGetEntitlementsSellerOnly(t *testing.T) {
	f := newFixture(t)
	_, errOther := getEntitlements(f, otherSellerKey, &mpmeter.GetEntitlementsInput{ProductCode: ptr(contractProduct)})
	wantCode(t, errOther, mpmeter.CodeInvalidParameter)
	_, errBuyer := getEntitlements(f, buyerKey, &mpmeter.GetEntitlementsInput{ProductCode: ptr(contractProduct)})
	wantCode(t, errBuyer, mpmeter.CodeInvalidParameter)
	_, errNone := getEntitlements(f, sellerKey, &mpmeter.GetEntitlementsInput{ProductCode: ptr("no-such-product")})
	wantCode(t, errNone, mpmeter.CodeInvalidParameter)
	// Another seller's product and a made-up one look the same.
	if strings.ReplaceAll(errOther.Error(), contractProduct, "X") != strings.ReplaceAll(errNone.Error(), "no-such-product", "X") {
		t.Errorf("another seller's product: %v; a made-up one: %v", errOther, errNone)
	}
}

func TestGetEntitlementsFilters(t *testing.T) {
	f := newFixture(t)
	// A second active buyer of the contract.
	other := "arn:aws:license-manager::777788889999:license/l-0c0b"
	put(f, mpmeter.Subscription{AccountID: "777788889999", ProductCode: contractProduct, CustomerIdentifier: "cust-contract-2", LicenseArn: other, Status: mpmeter.SubscriptionActive})
	if err := f.store.PutEntitlements(f.ctx, other, []mpmeter.Entitlement{
		{Dimension: "users", Value: mpmeter.EntitlementInteger(3)},
		{Dimension: "tier", Value: mpmeter.EntitlementString("silver")},
	}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		filter map[string][]string
		want   string // dimensions, in order; or an error
	}{
		{"none", nil, "premium_support,storage_tb,tier,users,tier,users"},
		{"customer identifiers, unioned", map[string][]string{"CUSTOMER_IDENTIFIER": {"cust-contract-2", "cust-nobody"}}, "tier,users"},
		{"account ids", map[string][]string{"CUSTOMER_AWS_ACCOUNT_ID": {buyer}}, "premium_support,storage_tb,tier,users"},
		{"account and dimensions, intersected", map[string][]string{"CUSTOMER_AWS_ACCOUNT_ID": {buyer, "777788889999"}, "DIMENSION": {"users", "tier"}}, "tier,users,tier,users"},
		{"customer and dimension", map[string][]string{"CUSTOMER_IDENTIFIER": {"cust-contract-1"}, "DIMENSION": {"users"}}, "users"},
		{"license and dimension", map[string][]string{"LICENSE_ARN": {other}, "DIMENSION": {"tier"}}, "tier"},
		{"the cancelled buyer", map[string][]string{"CUSTOMER_IDENTIFIER": {"cust-contract-cancelled"}}, ""},
		{"identifier and account id", map[string][]string{"CUSTOMER_IDENTIFIER": {"cust-contract-1"}, "CUSTOMER_AWS_ACCOUNT_ID": {buyer}}, "error: mutually exclusive"},
		{"dimension alone", map[string][]string{"DIMENSION": {"users"}}, "error: Please provide the CUSTOMER_IDENTIFIER"},
	} {
		out, err := getEntitlements(f, sellerKey, &mpmeter.GetEntitlementsInput{ProductCode: ptr(contractProduct), Filter: c.filter})
		if want, isErr := strings.CutPrefix(c.want, "error: "); isErr {
			wantCode(t, err, mpmeter.CodeInvalidParameter)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %v, want %q", c.name, err, want)
			}
			continue
		}
		if err != nil || dims(out) != c.want {
			t.Errorf("%s: %q, %v; want %q", c.name, dims(out), err, c.want)
		}
	}
	tooMany := make([]string, 1001)
	for i := range tooMany {
		tooMany[i] = fmt.Sprint("cust-", i)
	}
	_, err := getEntitlements(f, sellerKey, &mpmeter.GetEntitlementsInput{ProductCode: ptr(contractProduct), Filter: map[string][]string{"CUSTOMER_IDENTIFIER": tooMany}})
	wantCode(t, err, mpmeter.CodeInvalidParameter)
}

// Pages of MaxResults follow each other without gaps or repeats; the last
// has no NextToken; tokens are bound to their query and checked.
func TestGetEntitlementsPagination(t *testing.T) {
	f := newFixture(t)
	const subs, perSub = 7, 4
	var want []string
	for i := range subs {
		arn := fmt.Sprintf("arn:aws:license-manager::%012d:license/l-page%02d", 100+i, i)
		if err := f.store.PutAccount(f.ctx, mpmeter.Account{ID: fmt.Sprintf("%012d", 100+i)}); err != nil {
			t.Fatal(err)
		}
		put(f, mpmeter.Subscription{AccountID: fmt.Sprintf("%012d", 100+i), ProductCode: contractProduct, CustomerIdentifier: fmt.Sprint("cust-page-", i), LicenseArn: arn, Status: mpmeter.SubscriptionActive})
		var ents []mpmeter.Entitlement
		for _, d := range []string{"premium_support", "storage_tb", "tier", "users"}[:perSub] {
			ents = append(ents, mpmeter.Entitlement{Dimension: d, Value: mpmeter.EntitlementInteger(int64(i))})
			want = append(want, arn+"/"+d)
		}
		if err := f.store.PutEntitlements(f.ctx, arn, ents); err != nil {
			t.Fatal(err)
		}
	}
	want = append(want, contractLicense+"/premium_support", contractLicense+"/storage_tb", contractLicense+"/tier", contractLicense+"/users")
	// The demo license (l-0c0a...) sorts after l-page..: license ARNs sort
	// bytewise, the account part first.
	for _, size := range []int64{1, 5, 25} {
		var got []string
		var token *string
		pages := 0
		for {
			out, err := getEntitlements(f, sellerKey, &mpmeter.GetEntitlementsInput{ProductCode: ptr(contractProduct), MaxResults: ptr(size), NextToken: token})
			if err != nil {
				t.Fatalf("size %d page %d: %v", size, pages, err)
			}
			pages++
			if int64(len(out.Entitlements)) > size {
				t.Fatalf("size %d: a page of %d", size, len(out.Entitlements))
			}
			for _, e := range out.Entitlements {
				got = append(got, *e.LicenseArn+"/"+*e.Dimension)
			}
			if out.NextToken == nil {
				break
			}
			token = out.NextToken
		}
		if strings.Join(got, " ") != strings.Join(sorted(want), " ") {
			t.Errorf("size %d: got\n%v\nwant\n%v", size, got, sorted(want))
		}
		if wantPages := (len(want) + int(size) - 1) / int(size); pages != wantPages {
			t.Errorf("size %d: %d pages, want %d", size, pages, wantPages)
		}
	}
	// Without MaxResults: 25.
	out, err := getEntitlements(f, sellerKey, &mpmeter.GetEntitlementsInput{ProductCode: ptr(contractProduct)})
	if err != nil || len(out.Entitlements) != 25 || out.NextToken == nil {
		t.Fatalf("default page: %d, %v, %v", len(out.Entitlements), out.NextToken, err)
	}
	tok := *out.NextToken
	for name, in := range map[string]*mpmeter.GetEntitlementsInput{
		"truncated":      {ProductCode: ptr(contractProduct), NextToken: ptr(tok[:len(tok)-2])},
		"changed":        {ProductCode: ptr(contractProduct), NextToken: ptr(flip(tok))},
		"made up":        {ProductCode: ptr(contractProduct), NextToken: ptr("eyJsIjoieCJ9")},
		"another filter": {ProductCode: ptr(contractProduct), NextToken: ptr(tok), Filter: map[string][]string{"CUSTOMER_AWS_ACCOUNT_ID": {buyer}}},
	} {
		_, err := getEntitlements(f, sellerKey, in)
		wantCode(t, err, mpmeter.CodeInvalidParameter)
		if err != nil && !strings.Contains(err.Error(), "NextToken") {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The token works again (pages are positions, not state).
	if _, err := getEntitlements(f, sellerKey, &mpmeter.GetEntitlementsInput{ProductCode: ptr(contractProduct), NextToken: ptr(tok)}); err != nil {
		t.Errorf("the token again: %v", err)
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// flip changes one character in the middle of a token.
func flip(s string) string {
	b := []byte(s)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}
