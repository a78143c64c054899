package admin_test

//lint:file-ignore SA1019 aws-sdk-go v1 is deprecated, and still one of the real clients mpmeter must serve: it is tested on purpose.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1aws "github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/credentials"
	"github.com/aws/aws-sdk-go/aws/session"
	mes "github.com/aws/aws-sdk-go/service/marketplaceentitlementservice"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/admin"
	"github.com/mpmeter/mpmeter/mpmetertest"
	"github.com/mpmeter/mpmeter/seed"
	"github.com/mpmeter/mpmeter/sqlstore"
)

type entitlementsBody struct {
	AgreementID  string `json:"agreement_id"`
	AccountID    string `json:"account_id"`
	ProductCode  string `json:"product_code"`
	Entitlements []struct {
		Dimension string          `json:"dimension"`
		Value     json.RawMessage `json:"value"`
		ExpiresAt *time.Time      `json:"expires_at"`
	} `json:"entitlements"`
}

func contractAgreement() string { return mpmeter.AgreementIDFor(mpmetertest.ContractLicense) }

func getEntitlementsV1(t *testing.T, srv *mpmetertest.Server) map[string]*mes.Entitlement {
	t.Helper()
	sess, err := session.NewSession(&v1aws.Config{Endpoint: v1aws.String(srv.URL), Region: v1aws.String("us-east-1"),
		Credentials: credentials.NewStaticCredentials(mpmetertest.SellerKey, mpmetertest.SellerSecret, ""), MaxRetries: v1aws.Int(0)})
	if err != nil {
		t.Fatal(err)
	}
	out, err := mes.New(sess).GetEntitlements(&mes.GetEntitlementsInput{ProductCode: v1aws.String(mpmetertest.ContractProduct),
		Filter: map[string][]*string{"CUSTOMER_IDENTIFIER": {v1aws.String(mpmetertest.ContractCustomer)}}})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]*mes.Entitlement{}
	for _, e := range out.Entitlements {
		m[*e.Dimension] = e
	}
	return m
}

// GET shows the seed's entitlements typed as in the seed; PUT replaces
// them, and GetEntitlements through aws-sdk-go v1 answers the new ones.
func TestEntitlementsRoutes(t *testing.T) {
	srv := newServer(t)
	path := "/admin/v1/subscriptions/" + contractAgreement() + "/entitlements"
	var got entitlementsBody
	must(t, srv, http.StatusOK, http.MethodGet, path, nil, &got)
	values := map[string]string{}
	for _, e := range got.Entitlements {
		values[e.Dimension] = string(e.Value)
	}
	if got.AccountID != mpmetertest.BuyerAccount || got.ProductCode != mpmetertest.ContractProduct ||
		values["users"] != "10" || values["storage_tb"] != "2.5" || values["premium_support"] != "true" || values["tier"] != `"gold"` {
		t.Fatalf("the demo contract's entitlements: %+v (%v)", got, values)
	}

	put := `{"entitlements": [
		{"dimension": "users", "value": 25, "expires_at": "2031-02-03T04:05:06Z"},
		{"dimension": "storage_tb", "value": 4.0},
		{"dimension": "premium_support", "value": false},
		{"dimension": "tier", "value": "10"}]}`
	must(t, srv, http.StatusOK, http.MethodPut, path, put, &got)
	values = map[string]string{}
	for _, e := range got.Entitlements {
		values[e.Dimension] = string(e.Value)
	}
	if values["users"] != "25" || values["storage_tb"] != "4.0" || values["premium_support"] != "false" || values["tier"] != `"10"` {
		t.Errorf("PUT answered %v", values)
	}

	ents := getEntitlementsV1(t, srv)
	if len(ents) != 4 {
		t.Fatalf("GetEntitlements: %d entitlements", len(ents))
	}
	if v := ents["users"].Value; v.IntegerValue == nil || *v.IntegerValue != 25 || !ents["users"].ExpirationDate.Equal(time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)) {
		t.Errorf("users: %v", ents["users"])
	}
	if v := ents["storage_tb"].Value; v.DoubleValue == nil || *v.DoubleValue != 4 || ents["storage_tb"].ExpirationDate != nil {
		t.Errorf("storage_tb: %v", ents["storage_tb"])
	}
	if v := ents["premium_support"].Value; v.BooleanValue == nil || *v.BooleanValue {
		t.Errorf("premium_support: %v", ents["premium_support"])
	}
	if v := ents["tier"].Value; v.StringValue == nil || *v.StringValue != "10" {
		t.Errorf("tier: %v", ents["tier"])
	}

	// The seed's rules, and nothing changed by a refused PUT.
	for name, body := range map[string]string{
		"not the product's dimension": `{"entitlements": [{"dimension": "gigabytes", "value": 1}]}`,
		"a dimension twice":           `{"entitlements": [{"dimension": "users", "value": 1}, {"dimension": "users", "value": 2}]}`,
		"past 32 bits":                `{"entitlements": [{"dimension": "users", "value": 3000000000}]}`,
		"null":                        `{"entitlements": [{"dimension": "users", "value": null}]}`,
		"an object":                   `{"entitlements": [{"dimension": "users", "value": {"IntegerValue": 1}}]}`,
		"no dimension":                `{"entitlements": [{"value": 1}]}`,
		"no list":                     `{}`,
		"an unknown member":           `{"entitlements": [], "version": 1}`,
	} {
		st, b := call(t, srv.URL, token, http.MethodPut, path, body, nil)
		wantError(t, st, b, http.StatusBadRequest, "validation_failed")
		if name == "not the product's dimension" && !strings.Contains(string(b), `not one of product \"examplecontract1\"'s dimensions`) {
			t.Errorf("%s: %s", name, b)
		}
	}
	if after := getEntitlementsV1(t, srv); len(after) != 4 || *after["users"].Value.IntegerValue != 25 {
		t.Errorf("a refused PUT changed the entitlements: %v", after)
	}
	st, b := call(t, srv.URL, token, http.MethodPut, "/admin/v1/subscriptions/agmt-nosuchagreement/entitlements", `{"entitlements": []}`, nil)
	wantError(t, st, b, http.StatusNotFound, "not_found")

	// The seed export carries them, typed, and applies back to the same.
	_, exported := call(t, srv.URL, token, http.MethodGet, "/admin/v1/seed", nil, nil)
	for _, want := range []string{"value: 25", "expires_at: 2031-02-03T04:05:06Z", "value: 4.0", "value: false", `value: "10"`} {
		if !strings.Contains(string(exported), want) {
			t.Errorf("the seed export lacks %q", want)
		}
	}
	f, err := seed.Parse(exported)
	if err != nil {
		t.Fatal(err)
	}
	again := mpmetertest.New(t, mpmetertest.WithSeed(f))
	if ents := getEntitlementsV1(t, again); len(ents) != 4 || *ents["users"].Value.IntegerValue != 25 || *ents["tier"].Value.StringValue != "10" {
		t.Errorf("after the round trip: %v", ents)
	}

	// [] removes them all.
	must(t, srv, http.StatusOK, http.MethodPut, path, `{"entitlements": []}`, &got)
	if len(got.Entitlements) != 0 || len(getEntitlementsV1(t, srv)) != 0 {
		t.Errorf("after []: %+v", got)
	}
}

type notifications struct {
	mu      sync.Mutex
	changes []admin.EntitlementChange
}

func (n *notifications) EntitlementsUpdated(_ context.Context, c admin.EntitlementChange) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.changes = append(n.changes, c)
	return nil
}

// The notifier hears about a PUT that changed something, once, with the
// entitlements before and after; a PUT that changes nothing is not news.
func TestEntitlementsNotifier(t *testing.T) {
	ctx := t.Context()
	st, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "n.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := seed.Demo().Apply(ctx, st, time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	n := &notifications{}
	api, err := admin.New(admin.Config{Token: token, Store: st, Clock: mpmeter.WallClock{}, EntitlementNotifier: n})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(api)
	t.Cleanup(hs.Close)
	path := "/admin/v1/subscriptions/" + contractAgreement() + "/entitlements"
	body := `{"entitlements": [{"dimension": "users", "value": 11}]}`
	for range 2 {
		if code, b := call(t, hs.URL, token, http.MethodPut, path, body, nil); code != 200 {
			t.Fatalf("%d %s", code, b)
		}
	}
	if code, b := call(t, hs.URL, token, http.MethodPut, path, `{"entitlements": [{"dimension": "users", "value": 11}, {"dimension": "users", "value": 12}]}`, nil); code != 400 {
		t.Fatalf("%d %s", code, b)
	}
	if len(n.changes) != 1 {
		t.Fatalf("%d notifications, want 1 (the second PUT changed nothing, the third was refused)", len(n.changes))
	}
	c := n.changes[0]
	if c.Subscription.LicenseArn != mpmetertest.ContractLicense || len(c.Before) != 4 || len(c.After) != 1 || *c.After[0].Value.IntegerValue != 11 {
		t.Errorf("change %+v", c)
	}
}
