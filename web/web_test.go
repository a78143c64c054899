package web_test

import (
	"context"
	"encoding/csv"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	mmv2 "github.com/aws/aws-sdk-go-v2/service/marketplacemetering"
	"github.com/aws/aws-sdk-go-v2/service/marketplacemetering/types"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/mpmetertest"
	"github.com/mpmeter/mpmeter/server"
)

const adminToken = "web-test-token"

func newServer(t *testing.T, token string) *mpmetertest.Server {
	return mpmetertest.New(t, mpmetertest.WithConfig(func(c *server.Config) { c.AdminToken = token }))
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so tests see them.
func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func get(t *testing.T, c *http.Client, u string) (int, string, http.Header) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func post(t *testing.T, c *http.Client, u string, form url.Values) (int, string) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func login(t *testing.T, srv *mpmetertest.Server) (*http.Client, string) {
	t.Helper()
	c := browser(t)
	status, _ := post(t, c, srv.URL+"/console/login", url.Values{"token": {adminToken}, "next": {"/console/usage"}})
	if status != http.StatusSeeOther {
		t.Fatalf("login: %d", status)
	}
	_, body, _ := get(t, c, srv.URL+"/console/subscriptions")
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token on the page:\n%s", body)
	}
	return c, m[1]
}

func TestConsoleOffWithoutAdminToken(t *testing.T) {
	srv := newServer(t, "")
	for _, p := range []string{"/console/", "/console/login", "/console/static/app.css"} {
		if status, _, _ := get(t, browser(t), srv.URL+p); status != http.StatusNotFound {
			t.Errorf("%s without an admin token: %d, want 404", p, status)
		}
	}
}

func TestLoginSession(t *testing.T) {
	srv := newServer(t, adminToken)
	c := browser(t)
	status, _, h := get(t, c, srv.URL+"/console/usage")
	if status != http.StatusSeeOther || h.Get("Location") != "/console/login?next=%2Fconsole%2Fusage" {
		t.Fatalf("not logged in: %d %q, want the login page", status, h.Get("Location"))
	}
	if status, body := post(t, c, srv.URL+"/console/login", url.Values{"token": {"wrong"}}); status != http.StatusUnauthorized || !strings.Contains(body, "not the admin token") {
		t.Fatalf("wrong token: %d", status)
	}
	resp, err := c.PostForm(srv.URL+"/console/login", url.Values{"token": {adminToken}, "next": {"//evil.example/"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/" {
		t.Fatalf("login: %d to %q, want 303 to /console/ (an outside next is dropped)", resp.StatusCode, resp.Header.Get("Location"))
	}
	ck := resp.Cookies()[0]
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/console/" || ck.Secure {
		t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, Path /console/, not Secure over plain HTTP", ck)
	}
	for _, p := range []string{"", "usage", "subscriptions", "calls", "deliveries", "keys", "clock", "fragments/overview"} {
		status, body, h := get(t, c, srv.URL+"/console/"+p)
		if status != http.StatusOK {
			t.Errorf("/console/%s: %d\n%s", p, status, body)
		}
		if !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("/console/%s: CSP %q", p, h.Get("Content-Security-Policy"))
		}
	}

	// A cookie signed with another token is no session.
	other := newServer(t, "another-token")
	u, _ := url.Parse(other.URL + "/console/")
	c.Jar.SetCookies(u, []*http.Cookie{{Name: ck.Name, Value: ck.Value, Path: "/console/"}})
	if status, _, _ := get(t, c, other.URL+"/console/"); status != http.StatusSeeOther {
		t.Errorf("another server's session on a server with another token: %d, want the login page", status)
	}
	// Logging out drops the cookie.
	c2, csrf := login(t, srv)
	if status, _ := post(t, c2, srv.URL+"/console/logout", url.Values{"csrf": {csrf}}); status != http.StatusSeeOther {
		t.Fatalf("logout: %d", status)
	}
	if status, _, _ := get(t, c2, srv.URL+"/console/"); status != http.StatusSeeOther {
		t.Errorf("after logout: %d, want the login page", status)
	}
}

func TestFormsNeedTheCSRFToken(t *testing.T) {
	srv := newServer(t, adminToken)
	c, csrf := login(t, srv)
	form := url.Values{"action": {"create-account"}, "account_id": {"210987654321"}, "name": {"Web Buyer"}}
	if status, _ := post(t, c, srv.URL+"/console/subscriptions", form); status != http.StatusForbidden {
		t.Fatalf("no CSRF token: %d, want 403", status)
	}
	form.Set("csrf", "forged")
	if status, _ := post(t, c, srv.URL+"/console/subscriptions", form); status != http.StatusForbidden {
		t.Fatalf("wrong CSRF token: %d, want 403", status)
	}
	if _, err := srv.Store.Account(context.Background(), "210987654321"); err == nil {
		t.Fatal("a refused form created the account")
	}
	form.Set("csrf", csrf)
	if status, body := post(t, c, srv.URL+"/console/subscriptions", form); status != http.StatusOK || !strings.Contains(body, "Account 210987654321 created") {
		t.Fatalf("with the CSRF token: %d\n%s", status, body)
	}
}

// The simulator's changes are admin API calls: the admin rules apply, and
// the audit log records them as admin calls.
func TestSimulatorGoesThroughTheAdminAPI(t *testing.T) {
	srv := newServer(t, adminToken)
	ctx := context.Background()
	c, csrf := login(t, srv)
	sub := func(form url.Values) (int, string) {
		form.Set("csrf", csrf)
		return post(t, c, srv.URL+"/console/subscriptions", form)
	}
	if status, body := sub(url.Values{"action": {"create-account"}, "account_id": {"12"}}); status != http.StatusUnprocessableEntity || !strings.Contains(body, "12-digit") {
		t.Fatalf("an invalid account id: %d, want the admin API's rule on the page\n%s", status, body)
	}
	sub(url.Values{"action": {"create-account"}, "account_id": {"210987654321"}})
	status, body := sub(url.Values{"action": {"subscribe"}, "account_id": {"210987654321"}, "product_code": {mpmetertest.SaaSProduct}, "free_trial": {"1"}, "offer_id": {"offer-web1"}})
	if status != http.StatusOK {
		t.Fatalf("subscribe: %d\n%s", status, body)
	}
	subs, err := srv.Store.SubscriptionsOf(ctx, "210987654321", mpmetertest.SaaSProduct)
	if err != nil || len(subs) != 1 || !subs[0].FreeTrial || subs[0].OfferID != "offer-web1" || subs[0].Status != mpmeter.SubscriptionActive {
		t.Fatalf("stored subscriptions %+v, %v", subs, err)
	}
	id := subs[0].AgreementID
	if status, body := sub(url.Values{"action": {"subscribe"}, "account_id": {"210987654321"}, "product_code": {mpmetertest.SaaSProduct}}); status != http.StatusUnprocessableEntity || !strings.Contains(body, "exists already") {
		t.Fatalf("subscribing twice: %d, want the admin API's conflict\n%s", status, body)
	}
	status, body = sub(url.Values{"action": {"issue-token"}, "agreement_id": {id}})
	m := regexp.MustCompile(`data-testid="issued-token">([^<]+)<`).FindStringSubmatch(body)
	if status != http.StatusOK || m == nil {
		t.Fatalf("issue token: %d\n%s", status, body)
	}
	if tok, err := srv.Store.RegistrationToken(ctx, m[1]); err != nil || tok.LicenseArn != subs[0].LicenseArn {
		t.Fatalf("issued token %+v, %v", tok, err)
	}
	if status, body := sub(url.Values{"action": {"cancel"}, "agreement_id": {id}}); status != http.StatusOK || !strings.Contains(body, id+" is cancelled") {
		t.Fatalf("cancel: %d\n%s", status, body)
	}
	if s, _ := srv.Store.SubscriptionByAgreement(ctx, id); s.Status != mpmeter.SubscriptionCancelled {
		t.Fatalf("after cancel: %s", s.Status)
	}
	evs := srv.AuditEvents(t, mpmeter.AuditFilter{EventSource: mpmeter.AuditSourceAdmin})
	var calls []string
	for _, ev := range evs {
		calls = append(calls, ev.EventName)
	}
	joined := strings.Join(calls, "\n")
	for _, want := range []string{"create-account", "create-subscription", "issue-registration-token", "cancel-subscription"} { // the admin operations' ids
		if !strings.Contains(joined, want) {
			t.Errorf("no admin call %s in the audit log:\n%s", want, joined)
		}
	}
	// Looking at pages is not an admin call.
	before := len(evs)
	get(t, c, srv.URL+"/console/subscriptions")
	get(t, c, srv.URL+"/console/usage")
	if after := len(srv.AuditEvents(t, mpmeter.AuditFilter{EventSource: mpmeter.AuditSourceAdmin})); after != before {
		t.Errorf("viewing pages added %d admin events", after-before)
	}
}

func TestUsageCSV(t *testing.T) {
	srv := newServer(t, adminToken)
	c, _ := login(t, srv)
	client := mmv2.NewFromConfig(srv.AWSConfig(mpmetertest.SellerKey, mpmetertest.SellerSecret))
	now := srv.Clock.Now()
	out, err := client.BatchMeterUsage(context.Background(), &mmv2.BatchMeterUsageInput{ProductCode: aws.String(mpmetertest.SaaSProduct), UsageRecords: []types.UsageRecord{
		{CustomerIdentifier: aws.String(mpmetertest.Customer), Dimension: aws.String("users"), Quantity: aws.Int32(3), Timestamp: aws.Time(now)},
		{CustomerIdentifier: aws.String(mpmetertest.Customer), Dimension: aws.String("gigabytes"), Quantity: aws.Int32(5), Timestamp: aws.Time(now)},
	}})
	if err != nil || len(out.Results) != 2 {
		t.Fatalf("BatchMeterUsage: %v", err)
	}
	_, body, h := get(t, c, srv.URL+"/console/usage/summary.csv?group=dimension&period=day")
	if !strings.HasPrefix(h.Get("Content-Type"), "text/csv") {
		t.Fatalf("content type %q", h.Get("Content-Type"))
	}
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	day := now.UTC().Truncate(24 * time.Hour).Format(time.RFC3339)
	want := [][]string{{"period_start", "dimension", "quantity", "records"}, {day, "gigabytes", "5", "1"}, {day, "users", "3", "1"}}
	if len(rows) != 3 || strings.Join(rows[1], ",") != strings.Join(want[1], ",") || strings.Join(rows[2], ",") != strings.Join(want[2], ",") {
		t.Fatalf("summary CSV:\n%s", body)
	}
	_, body, _ = get(t, c, srv.URL+"/console/usage/records.csv?dimension=users")
	rows, _ = csv.NewReader(strings.NewReader(body)).ReadAll()
	if len(rows) != 2 || rows[1][9] != "users" || rows[1][10] != "3" || rows[1][6] != mpmetertest.Customer || rows[1][1] != *out.Results[0].MeteringRecordId {
		t.Fatalf("records CSV:\n%s", body)
	}
	_, page, _ := get(t, c, srv.URL+"/console/usage?group=dimension")
	if !strings.Contains(page, `data-testid="usage-total">8<`) {
		t.Errorf("usage page total: want 8")
	}
}

// landingButtons returns the agreements whose rows on the subscriptions
// page have an "Open landing page" button.
func landingButtons(t *testing.T, c *http.Client, srv *mpmetertest.Server) []string {
	t.Helper()
	status, page, _ := get(t, c, srv.URL+"/console/subscriptions")
	if status != http.StatusOK {
		t.Fatalf("subscriptions page: %d", status)
	}
	var agreements []string
	for _, m := range regexp.MustCompile(`value="open-landing-page"[^>]*aria-label="Open landing page for ([^"]+)"`).FindAllStringSubmatch(page, -1) {
		agreements = append(agreements, m[1])
	}
	return agreements
}

// "Open landing page" is the real browser path: the browser lands on a page
// that POSTs a new registration token to the product's fulfillment URL. The
// button is there for the active subscriptions of a product with a
// fulfillment URL, and only for them.
func TestOpenLandingPage(t *testing.T) {
	srv := newServer(t, adminToken)
	ctx := context.Background()
	c, csrf := login(t, srv)
	if got := landingButtons(t, c, srv); len(got) != 0 {
		t.Errorf("no demo product has a fulfillment URL, but the page offers a landing page for %v", got)
	}
	const landing = "http://127.0.0.1:9/register" // never contacted: the browser would POST there
	p, err := srv.Store.Product(ctx, mpmetertest.SaaSProduct)
	if err != nil {
		t.Fatal(err)
	}
	p.FulfillmentURL, p.Version = landing, 0
	if err := srv.Store.PutProduct(ctx, p); err != nil {
		t.Fatal(err)
	}
	subs, err := srv.Store.SubscriptionsOf(ctx, mpmetertest.BuyerAccount, mpmetertest.SaaSProduct)
	if err != nil || len(subs) == 0 {
		t.Fatalf("the demo buyer's subscription: %v %v", subs, err)
	}
	active, err := srv.Store.Subscriptions(ctx, mpmeter.SubscriptionFilter{ProductCode: mpmetertest.SaaSProduct, Status: mpmeter.SubscriptionActive}, mpmeter.Page{Limit: 100})
	if err != nil || len(active) == 0 {
		t.Fatalf("the demo's active subscriptions of %s: %v %v", mpmetertest.SaaSProduct, active, err)
	}
	var want []string
	for _, s := range active {
		want = append(want, s.AgreementID)
	}
	if got := landingButtons(t, c, srv); !slices.Equal(got, want) {
		t.Errorf("landing page buttons for %v, want %s's active subscriptions %v", got, mpmetertest.SaaSProduct, want)
	}
	form := url.Values{"csrf": {csrf}, "action": {"open-landing-page"}, "agreement_id": {subs[0].AgreementID}}
	resp, err := c.PostForm(srv.URL+"/console/subscriptions", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	where := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || where == "" {
		t.Fatalf("open landing page: %d to %q, want a redirect to the form page", resp.StatusCode, where)
	}
	status, body, _ := get(t, c, where)
	if status != http.StatusOK || !strings.Contains(body, landing) || !strings.Contains(body, "x-amzn-marketplace-token") {
		t.Fatalf("%s: %d, want the page that submits the token to %s\n%s", where, status, landing, body)
	}
}
