package main

//lint:file-ignore SA1019 aws-sdk-go v1 is deprecated, and still one of the real clients mpmeter must serve: it is tested on purpose.

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1aws "github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/credentials"
	"github.com/aws/aws-sdk-go/aws/session"
	mes "github.com/aws/aws-sdk-go/service/marketplaceentitlementservice"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/admin"
	"github.com/mpmeter/mpmeter/mpmetertest"
)

// received is one POST an endpoint of the test received.
type received struct {
	path string
	form url.Values
	body string
}

// recorder is an HTTP endpoint that hands every POST it receives to a
// channel, answering status.
func recorder(t *testing.T, status int) (*httptest.Server, <-chan received) {
	ch := make(chan received, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(b))
		ch <- received{path: r.URL.Path, form: form, body: string(b)}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

// next waits for the endpoint's next POST: the server's background worker
// sends it a moment after the command answered.
func next(t *testing.T, ch <-chan received, what string) received {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: nothing received", what)
	}
	return received{}
}

// The buyer journey driven by the CLI against a real server: a product
// with a fulfillment URL, a subscription whose token reaches the landing
// page, SNS subscriptions, the delivery log, the fulfillment link, and
// entitlements set by the CLI that a real AWS client reads back.
func TestCLINotificationsAndEntitlements(t *testing.T) {
	endpoint := startServe(t, "--demo", "--admin-token", cliToken, "--db", filepath.Join(t.TempDir(), "cli.db"))
	r := cliRunner{t, map[string]string{"MPMETER_SERVER": endpoint, "MPMETER_ADMIN_TOKEN": cliToken}}
	landing, posts := recorder(t, http.StatusFound)
	landingURL := landing.URL + "/register"

	var p admin.Product
	r.json(&p, "products", "create", "--code", "fulfillprod1", "--seller", mpmetertest.SellerAccount, "--type", "saas",
		"--dimension", "users", "--fulfillment-url", landingURL)
	if p.FulfillmentURL != landingURL {
		t.Fatalf("products create --fulfillment-url: %+v", p)
	}

	var s admin.Subscription
	t.Run("subscriptions create POSTs the token to the landing page", func(t *testing.T) {
		r := cliRunner{t, r.env}
		r.json(&s, "subscriptions", "create", "--account", mpmetertest.BuyerAccount, "--product", "fulfillprod1")
		if s.Fulfillment == nil || s.Fulfillment.URL != landingURL || s.Fulfillment.Token == "" {
			t.Fatalf("create answered no fulfillment: %+v", s)
		}
		got := next(t, posts, "the landing page")
		if got.path != "/register" || got.form.Get("x-amzn-marketplace-token") != s.Fulfillment.Token {
			t.Fatalf("the landing page received %+v, want the token %s", got, s.Fulfillment.Token)
		}

		// The delivery log shows the POST (delivered once the worker saw the 302).
		var ds []admin.Delivery
		for range 300 {
			r.json(&ds, "notifications", "deliveries", "list", "--agreement", s.AgreementID, "--channel", "fulfillment")
			if len(ds) == 1 && ds[0].Status == mpmeter.DeliveryDelivered {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if len(ds) != 1 || ds[0].ID != s.Fulfillment.DeliveryID || ds[0].LastStatusCode != http.StatusFound || ds[0].Endpoint != landingURL {
			t.Fatalf("deliveries list: %+v", ds)
		}
		out := r.ok("notifications", "deliveries", "get", ds[0].ID)
		if !strings.Contains(out, "x-amzn-marketplace-token="+s.Fulfillment.Token) || !strings.Contains(out, "POST "+landingURL) {
			t.Fatalf("deliveries get:\n%s", out)
		}
		var replay admin.Delivery
		r.json(&replay, "notifications", "deliveries", "replay", ds[0].ID)
		if replay.ReplayOf != ds[0].ID || replay.ID == ds[0].ID {
			t.Fatalf("deliveries replay: %+v", replay)
		}
		if got := next(t, posts, "the replayed POST"); got.form.Get("x-amzn-marketplace-token") != s.Fulfillment.Token {
			t.Fatalf("the replay posted %+v", got)
		}
		r.fails(exitNotFound, "notifications", "deliveries", "get", "dlv-nosuch")
	})

	t.Run("--no-fulfillment and --simulate payment-failure", func(t *testing.T) {
		r := cliRunner{t, r.env}
		r.ok("accounts", "create", "210987654321")
		r.ok("accounts", "create", "210987654322")
		var quiet admin.Subscription
		r.json(&quiet, "subscriptions", "create", "--account", "210987654322", "--product", "fulfillprod1", "--no-fulfillment")
		if quiet.Fulfillment != nil || quiet.Status != mpmeter.SubscriptionActive {
			t.Fatalf("--no-fulfillment: %+v", quiet)
		}
		var failed admin.Subscription
		r.json(&failed, "subscriptions", "create", "--account", "210987654321", "--product", "fulfillprod1", "--simulate", "payment-failure", "--no-fulfillment")
		if failed.Status != mpmeter.SubscriptionExpired {
			t.Fatalf("--simulate payment-failure: %+v", failed)
		}
		r.fails(exitUsage, "subscriptions", "create", "--account", "210987654321", "--product", "fulfillprod1", "--simulate", "nosuch")
	})

	t.Run("fulfillment-link opens an auto-submitting form", func(t *testing.T) {
		r := cliRunner{t, r.env}
		link := strings.TrimSpace(r.ok("subscriptions", "fulfillment-link", s.AgreementID))
		resp, err := http.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), `document.forms[0].submit()`) ||
			!strings.Contains(string(page), `action="`+landingURL+`"`) || !strings.Contains(string(page), `name="x-amzn-marketplace-token"`) {
			t.Fatalf("the link %s answered %d:\n%s", link, resp.StatusCode, page)
		}
		// A product without a fulfillment URL has no link: a conflict.
		r.fails(exitConflict, "subscriptions", "fulfillment-link", mpmeter.AgreementIDFor(mpmetertest.ContractLicense))
	})

	t.Run("products update --fulfillment-url keeps the dimensions", func(t *testing.T) {
		r := cliRunner{t, r.env}
		var up admin.Product
		r.json(&up, "products", "update", "fulfillprod1", "--fulfillment-url", landing.URL+"/v2")
		if up.FulfillmentURL != landing.URL+"/v2" || len(up.Dimensions) != 1 || up.Dimensions[0].Name != "users" || up.Version != p.Version+1 {
			t.Fatalf("update --fulfillment-url: %+v", up)
		}
		var cleared admin.Product // a fresh one: the answer omits an empty URL
		r.json(&cleared, "products", "update", "fulfillprod1", "--fulfillment-url", "")
		if cleared.FulfillmentURL != "" || cleared.Version != up.Version+1 {
			t.Fatalf(`update --fulfillment-url "": %+v`, cleared)
		}
		r.fails(exitUsage, "products", "update", "fulfillprod1")
	})

	t.Run("sns-subscriptions and eventbridge-targets", func(t *testing.T) {
		r := cliRunner{t, r.env}
		snsEndpoint, snsPosts := recorder(t, http.StatusOK)
		var sub admin.SNSSubscription
		r.json(&sub, "notifications", "sns-subscriptions", "add", "--product", "fulfillprod1", "--topic", "subscription", "--endpoint", snsEndpoint.URL+"/sns")
		if sub.ARN == "" || sub.Protocol != "http" || sub.ConfirmedAt != nil {
			t.Fatalf("sns-subscriptions add: %+v", sub)
		}
		if got := next(t, snsPosts, "the SNS endpoint"); !strings.Contains(got.body, `"SubscriptionConfirmation"`) || !strings.Contains(got.body, sub.TopicARN) {
			t.Fatalf("the SNS endpoint received %s", got.body)
		}
		var subs []admin.SNSSubscription
		r.json(&subs, "notifications", "sns-subscriptions", "list", "--product", "fulfillprod1")
		if len(subs) != 1 || subs[0].ARN != sub.ARN {
			t.Fatalf("sns-subscriptions list: %+v", subs)
		}
		if out := r.ok("notifications", "sns-subscriptions", "list"); !strings.Contains(out, sub.ARN) || !strings.Contains(out, "pending") {
			t.Fatalf("sns-subscriptions list (table):\n%s", out)
		}
		r.ok("notifications", "sns-subscriptions", "remove", sub.ARN)
		r.json(&subs, "notifications", "sns-subscriptions", "list", "--product", "fulfillprod1")
		if len(subs) != 0 {
			t.Fatalf("after remove: %+v", subs)
		}
		r.fails(exitUsage, "notifications", "sns-subscriptions", "add", "--product", "fulfillprod1", "--topic", "subscription", "--endpoint", "ftp://x")

		var tgt admin.EventBridgeTarget
		r.json(&tgt, "notifications", "eventbridge-targets", "add", "--account", mpmetertest.SellerAccount, "--endpoint", snsEndpoint.URL+"/events")
		var tgts []admin.EventBridgeTarget
		r.json(&tgts, "notifications", "eventbridge-targets", "list", "--account", mpmetertest.SellerAccount)
		if tgt.ID == "" || len(tgts) != 1 || tgts[0].ID != tgt.ID || tgts[0].Endpoint != snsEndpoint.URL+"/events" {
			t.Fatalf("eventbridge-targets add %+v, list %+v", tgt, tgts)
		}
		r.ok("notifications", "eventbridge-targets", "remove", tgt.ID)
		r.json(&tgts, "notifications", "eventbridge-targets", "list")
		if len(tgts) != 0 {
			t.Fatalf("after remove: %+v", tgts)
		}
	})

	t.Run("entitlements set, get and GetEntitlements", func(t *testing.T) {
		r := cliRunner{t, r.env}
		agreement := mpmeter.AgreementIDFor(mpmetertest.ContractLicense)
		var e admin.Entitlements
		r.json(&e, "entitlements", "set", agreement, "--entitlement", "users=25@2031-02-03T04:05:06Z",
			"--entitlement", "storage_tb=4.0", "--entitlement", "premium_support=false", "--entitlement", `tier="10"`)
		var got admin.Entitlements
		r.json(&got, "entitlements", "get", agreement)
		for _, x := range [][]admin.Entitlement{e.Entitlements, got.Entitlements} {
			vals := map[string]string{}
			for _, en := range x {
				b, _ := en.Value.MarshalJSON()
				vals[en.Dimension] = string(b)
			}
			if len(x) != 4 || vals["users"] != "25" || vals["storage_tb"] != "4.0" || vals["premium_support"] != "false" || vals["tier"] != `"10"` {
				t.Fatalf("entitlements: %+v (%v)", x, vals)
			}
		}
		if out := r.ok("entitlements", "get", agreement); !strings.Contains(out, "2031-02-03T04:05:06Z") || !strings.Contains(out, "double") {
			t.Fatalf("entitlements get (table):\n%s", out)
		}

		sess, err := session.NewSession(&v1aws.Config{Endpoint: v1aws.String(endpoint), Region: v1aws.String("us-east-1"),
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
		for _, en := range out.Entitlements {
			m[*en.Dimension] = en
		}
		if u := m["users"]; u == nil || u.Value.IntegerValue == nil || *u.Value.IntegerValue != 25 ||
			u.ExpirationDate == nil || !u.ExpirationDate.Equal(time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)) {
			t.Fatalf("GetEntitlements users: %+v", u)
		}
		if st := m["storage_tb"]; st == nil || st.Value.DoubleValue == nil || *st.Value.DoubleValue != 4 {
			t.Fatalf("GetEntitlements storage_tb: %+v", st)
		}
		if ps := m["premium_support"]; ps == nil || ps.Value.BooleanValue == nil || *ps.Value.BooleanValue {
			t.Fatalf("GetEntitlements premium_support: %+v", ps)
		}
		if tier := m["tier"]; tier == nil || tier.Value.StringValue == nil || *tier.Value.StringValue != "10" {
			t.Fatalf("GetEntitlements tier: %+v", tier)
		}

		r.fails(exitUsage, "entitlements", "set", agreement, "--entitlement", "nosuch=1") // the server's validation
		r.fails(exitUsage, "entitlements", "set", agreement, "--entitlement", "users=1@2031-02-30")
		r.fails(exitUsage, "entitlements", "set", agreement)
		r.json(&e, "entitlements", "set", agreement, "--clear")
		if len(e.Entitlements) != 0 {
			t.Fatalf("--clear: %+v", e)
		}
		r.fails(exitNotFound, "entitlements", "get", "agmt-nosuch")
	})
}

func TestEntitlementValueTyping(t *testing.T) {
	for in, want := range map[string]string{
		"10": "10", "-3": "-3", "2.5": "2.5", "4.0": "4.0", "1e3": "1000.0", "true": "true", "false": "false",
		"gold": `"gold"`, `"10"`: `"10"`, `"true"`: `"true"`, "": `""`, "Inf": `"Inf"`, "NaN": `"NaN"`, "1.2.3": `"1.2.3"`,
	} {
		b, err := admin.EntitlementValue{EntitlementValue: entitlementValue(in)}.MarshalJSON()
		if err != nil || string(b) != want {
			t.Errorf("%q typed as %s (%v), want %s", in, b, err, want)
		}
	}
	e, err := parseEntitlement("contact=ops@example.com")
	if err != nil || e.ExpiresAt != nil || *e.Value.StringValue != "ops@example.com" {
		t.Errorf("a string with @: %+v %v", e, err)
	}
}
