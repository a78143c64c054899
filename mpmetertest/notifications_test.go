package mpmetertest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/marketplacemetering"
	"github.com/aws/aws-sdk-go-v2/service/marketplacemetering/types"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/mpmetertest"
	"github.com/mpmeter/mpmeter/notify"
	"github.com/mpmeter/mpmeter/seed"
	"github.com/mpmeter/mpmeter/server"
)

const notifyAdminToken = "notify-admin-token"

// seller's endpoints: a landing page, an SNS endpoint (confirming its
// subscriptions as a seller's does) and an EventBridge API destination.
type sellerSite struct {
	t       *testing.T
	landing *httptest.Server
	sns     *httptest.Server
	events  *httptest.Server

	mu        sync.Mutex
	forms     []url.Values
	messages  []map[string]string // SNS bodies, verified
	ebEvents  []notify.Event
	snsStatus int // what the SNS endpoint answers notifications with (0: 200)
	block     chan struct{}
	// closing is set when the test ends, before the mpmeter server stops:
	// a delivery still in flight then cannot fetch the signing
	// certificate from it, and that is not the delivery's fault.
	closing bool
}

// ending reports whether the test is over (see closing).
func (s *sellerSite) ending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

func newSellerSite(t *testing.T) *sellerSite {
	s := &sellerSite{t: t}
	s.landing = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" || r.Method != http.MethodPost {
			t.Errorf("landing page got %s with Content-Type %q", r.Method, ct)
		}
		r.ParseForm()
		s.mu.Lock()
		s.forms = append(s.forms, r.PostForm)
		s.mu.Unlock()
		http.Redirect(w, r, "/signup?token="+url.QueryEscape(r.PostForm.Get("x-amzn-marketplace-token")), http.StatusFound)
	}))
	s.sns = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("Content-Type") != "text/plain; charset=UTF-8" || r.Header.Get("User-Agent") != "Amazon Simple Notification Service Agent" {
			t.Errorf("SNS delivery headers %v", r.Header)
		}
		var m map[string]string
		if err := json.Unmarshal(body, &m); err != nil {
			t.Errorf("SNS body %q: %v", body, err)
			return
		}
		if r.Header.Get("x-amz-sns-message-type") != m["Type"] || r.Header.Get("x-amz-sns-message-id") != m["MessageId"] || r.Header.Get("x-amz-sns-topic-arn") != m["TopicArn"] {
			t.Errorf("SNS headers %v disagree with the body %v", r.Header, m)
		}
		// Verify as a seller does: fetch the certificate, check the
		// signature.
		resp, err := http.Get(m["SigningCertURL"])
		if err != nil {
			if !s.ending() {
				t.Errorf("SigningCertURL: %v", err)
			}
			return
		}
		cert, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if _, err := notify.VerifyMessage(body, cert); err != nil {
			t.Errorf("SNS signature of %s does not verify: %v", m["Type"], err)
		}
		if m["Type"] == notify.TypeSubscriptionConfirmation {
			go func() {
				resp, err := http.Get(m["SubscribeURL"])
				if (err != nil || resp.StatusCode != 200) && !s.ending() {
					t.Errorf("SubscribeURL: %v %v", resp, err)
				}
			}()
			return
		}
		if r.Header.Get("x-amz-sns-subscription-arn") == "" || m["UnsubscribeURL"] == "" {
			t.Errorf("a notification without its subscription ARN or UnsubscribeURL: %v", r.Header)
		}
		s.mu.Lock()
		block, status := s.block, s.snsStatus
		if status == 0 || status == 200 {
			s.messages = append(s.messages, m)
		}
		s.mu.Unlock()
		if block != nil {
			<-block
		}
		if status != 0 {
			w.WriteHeader(status)
		}
	}))
	s.events = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev notify.Event
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			t.Errorf("EventBridge body: %v", err)
		}
		s.mu.Lock()
		s.ebEvents = append(s.ebEvents, ev)
		s.mu.Unlock()
	}))
	t.Cleanup(func() { s.landing.Close(); s.sns.Close(); s.events.Close() })
	return s
}

// waitFor polls until cond holds (deliveries are asynchronous).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *sellerSite) actions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, m := range s.messages {
		var msg map[string]string
		json.Unmarshal([]byte(m["Message"]), &msg)
		out = append(out, msg["action"])
	}
	return out
}

func (s *sellerSite) detailTypes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.ebEvents {
		out = append(out, e.DetailType)
	}
	return out
}

func newJourneyServer(t *testing.T, site *sellerSite, edit ...func(*server.Config)) *mpmetertest.Server {
	f := seed.Demo()
	for i := range f.Products {
		if f.Products[i].Code == mpmetertest.SaaSProduct {
			f.Products[i].FulfillmentURL = site.landing.URL + "/register"
		}
	}
	f.Accounts = append(f.Accounts, seed.Account{ID: "210987654321", Name: "New Buyer"})
	f.SNSSubscriptions = []seed.SNSSubscription{
		{Product: mpmetertest.SaaSProduct, Topic: "subscription", Protocol: "http", Endpoint: site.sns.URL + "/sns"},
		{Product: mpmetertest.SaaSProduct, Topic: "entitlement", Protocol: "http", Endpoint: site.sns.URL + "/sns"},
	}
	f.EventBridgeTargets = []seed.EventBridgeTarget{{Account: "111122223333", Endpoint: site.events.URL + "/events"}}
	srv := mpmetertest.New(t, mpmetertest.WithSeed(f), mpmetertest.WithConfig(func(c *server.Config) {
		c.AdminToken = notifyAdminToken
		c.Notify.Poll, c.Notify.RetryDelay, c.Notify.Timeout = 20*time.Millisecond, 50*time.Millisecond, 2*time.Second
		for _, e := range edit {
			e(c)
		}
	}))
	// Cleanups run last-registered first: this one before the server's.
	t.Cleanup(func() {
		site.mu.Lock()
		site.closing = true
		site.mu.Unlock()
	})
	// The seed's SNS subscriptions are confirmed by the endpoint.
	waitFor(t, "the SNS subscriptions' confirmation", func() bool {
		subs, _ := srv.Store.(mpmeter.NotificationStore).SNSSubscriptions(context.Background(), "", "", mpmeter.Page{})
		for _, s := range subs {
			if s.ConfirmedAt.IsZero() {
				return false
			}
		}
		return len(subs) == 2
	})
	return srv
}

func adminCall(t *testing.T, srv *mpmetertest.Server, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, srv.URL+"/admin/v1"+path, rd)
	req.Header.Set("Authorization", "Bearer "+notifyAdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
	}
	if resp.StatusCode >= 300 {
		t.Logf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode
}

func meter(t *testing.T, c *marketplacemetering.Client, customer, dim string, at time.Time) types.UsageRecordResultStatus {
	t.Helper()
	out, err := c.BatchMeterUsage(context.Background(), &marketplacemetering.BatchMeterUsageInput{
		ProductCode: aws.String(mpmetertest.SaaSProduct),
		UsageRecords: []types.UsageRecord{{CustomerIdentifier: aws.String(customer), Dimension: aws.String(dim),
			Quantity: aws.Int32(1), Timestamp: aws.Time(at)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Results[0].Status
}

// The whole loop: subscribe → the token POST → ResolveCustomer →
// subscribe-success (verified) → meter → cancel → unsubscribe-pending →
// meter in the final hour → unsubscribe-success an hour later (service
// clock) → CustomerNotSubscribed; and EventBridge's events alongside.
func TestBuyerJourneyOverSNSAndEventBridge(t *testing.T) {
	site := newSellerSite(t)
	srv := newJourneyServer(t, site)
	client := marketplacemetering.NewFromConfig(srv.AWSConfig(mpmetertest.SellerKey, mpmetertest.SellerSecret))

	var sub struct {
		AgreementID        string `json:"agreement_id"`
		CustomerIdentifier string `json:"customer_identifier"`
		Fulfillment        struct {
			DeliveryID string `json:"delivery_id"`
			Token      string `json:"registration_token"`
		} `json:"fulfillment"`
	}
	if code := adminCall(t, srv, "POST", "/subscriptions", map[string]any{"account_id": "210987654321", "product_code": mpmetertest.SaaSProduct,
		"offer_id": "offer-abc123", "free_trial": true}, &sub); code != 201 {
		t.Fatalf("create subscription: %d", code)
	}
	waitFor(t, "the fulfillment POST", func() bool { site.mu.Lock(); defer site.mu.Unlock(); return len(site.forms) == 1 })
	form := site.forms[0]
	if form.Get("x-amzn-marketplace-token") != sub.Fulfillment.Token || form.Get("x-amzn-marketplace-offer-type") != "free-trial" {
		t.Fatalf("form %v, token %q", form, sub.Fulfillment.Token)
	}
	// The landing page's answer is in the delivery log.
	var d struct {
		Status       string `json:"status"`
		LastStatus   int    `json:"last_status_code"`
		LastLocation string `json:"last_location"`
	}
	waitFor(t, "the fulfillment delivery's record", func() bool {
		adminCall(t, srv, "GET", "/notifications/deliveries/"+sub.Fulfillment.DeliveryID, nil, &d)
		return d.Status == "delivered"
	})
	if d.LastStatus != 302 || !strings.HasPrefix(d.LastLocation, "/signup?token=") {
		t.Fatalf("fulfillment delivery %+v", d)
	}

	res, err := client.ResolveCustomer(context.Background(), &marketplacemetering.ResolveCustomerInput{RegistrationToken: aws.String(form.Get("x-amzn-marketplace-token"))})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(res.CustomerIdentifier) != sub.CustomerIdentifier || aws.ToString(res.CustomerAWSAccountId) != "210987654321" {
		t.Fatalf("ResolveCustomer %+v", res)
	}

	waitFor(t, "subscribe-success", func() bool { return len(site.actions()) == 1 })
	var msg map[string]string
	json.Unmarshal([]byte(site.messages[0]["Message"]), &msg)
	want := map[string]string{"action": "subscribe-success", "customer-identifier": sub.CustomerIdentifier, "product-code": mpmetertest.SaaSProduct,
		"offer-identifier": "offer-abc123", "isFreeTrialTermPresent": "true"}
	for k, v := range want {
		if msg[k] != v {
			t.Errorf("Message %s = %q, want %q (%v)", k, msg[k], v, msg)
		}
	}
	if site.messages[0]["TopicArn"] != "arn:aws:sns:us-east-1:287250355862:aws-mp-subscription-notification-"+mpmetertest.SaaSProduct {
		t.Errorf("TopicArn %s", site.messages[0]["TopicArn"])
	}
	waitFor(t, "Purchase Agreement Created and License Updated", func() bool { return len(site.detailTypes()) == 2 })

	now := srv.Clock.Now()
	if st := meter(t, client, sub.CustomerIdentifier, "users", now); st != types.UsageRecordResultStatusSuccess {
		t.Fatalf("metering an active subscription: %s", st)
	}
	if code := adminCall(t, srv, "POST", "/subscriptions/"+sub.AgreementID+"/cancel", nil, nil); code != 200 {
		t.Fatalf("cancel: %d", code)
	}
	waitFor(t, "unsubscribe-pending", func() bool { return len(site.actions()) == 2 })
	if st := meter(t, client, sub.CustomerIdentifier, "gigabytes", srv.Clock.Now()); st != types.UsageRecordResultStatusSuccess {
		t.Fatalf("metering in the final hour: %s", st)
	}
	srv.Clock.Advance(59 * time.Minute)
	if st := meter(t, client, sub.CustomerIdentifier, "users", srv.Clock.Now()); st != types.UsageRecordResultStatusSuccess {
		t.Fatalf("metering at 59 minutes: %s", st)
	}
	if got := site.actions(); len(got) != 2 {
		t.Fatalf("before the hour is over: %v", got)
	}
	srv.Clock.Advance(2 * time.Minute)
	waitFor(t, "unsubscribe-success", func() bool { return len(site.actions()) == 3 })
	if st := meter(t, client, sub.CustomerIdentifier, "gigabytes", srv.Clock.Now()); st != types.UsageRecordResultStatusCustomerNotSubscribed {
		t.Fatalf("metering after unsubscribe-success: %s", st)
	}
	if got, want := strings.Join(site.actions(), ","), "subscribe-success,unsubscribe-pending,unsubscribe-success"; got != want {
		t.Fatalf("SNS actions %s, want %s", got, want)
	}
	waitFor(t, "License Deprovisioned", func() bool { return len(site.detailTypes()) == 4 })
	// Events of one change are delivered concurrently, in any order.
	types := site.detailTypes()
	sort.Strings(types[:2])
	if got, want := strings.Join(types, ","), strings.Join([]string{notify.DetailLicenseUpdated, notify.DetailAgreementCreated,
		notify.DetailAgreementEnded, notify.DetailLicenseDeprovisioned}, ","); got != want {
		t.Fatalf("EventBridge detail-types %s, want %s", got, want)
	}
	ev := site.ebEvents[3]
	if ev.Source != "aws.agreement-marketplace" || ev.Account != "111122223333" || ev.Version != "0" ||
		len(ev.Resources) != 1 || ev.Resources[0] != "arn:aws:aws-marketplace::aws:agreement:"+sub.AgreementID {
		t.Fatalf("EventBridge envelope %+v", ev)
	}
	// Nothing is delivered twice, and nothing more comes.
	time.Sleep(200 * time.Millisecond)
	if n := len(site.actions()); n != 3 {
		t.Fatalf("%d SNS notifications, want 3", n)
	}
}

// Re-subscribing inside the final hour sends subscribe-success and never
// unsubscribe-success.
func TestResubscribeInsideTheFinalHour(t *testing.T) {
	site := newSellerSite(t)
	srv := newJourneyServer(t, site)
	var sub struct {
		AgreementID string `json:"agreement_id"`
	}
	adminCall(t, srv, "POST", "/subscriptions", map[string]any{"account_id": "210987654321", "product_code": mpmetertest.SaaSProduct, "fulfillment": false}, &sub)
	waitFor(t, "subscribe-success", func() bool { return len(site.actions()) == 1 })
	adminCall(t, srv, "POST", "/subscriptions/"+sub.AgreementID+"/cancel", nil, nil)
	waitFor(t, "unsubscribe-pending", func() bool { return len(site.actions()) == 2 })
	srv.Clock.Advance(30 * time.Minute)
	adminCall(t, srv, "POST", "/subscriptions/"+sub.AgreementID+"/reactivate", nil, nil)
	waitFor(t, "subscribe-success again", func() bool { return len(site.actions()) == 3 })
	srv.Clock.Advance(2 * time.Hour)
	time.Sleep(300 * time.Millisecond) // several polls of the follow-up scanner
	if got, want := strings.Join(site.actions(), ","), "subscribe-success,unsubscribe-pending,subscribe-success"; got != want {
		t.Fatalf("SNS actions %s, want %s", got, want)
	}
	site.mu.Lock()
	forms := len(site.forms)
	site.mu.Unlock()
	if forms != 0 {
		t.Fatalf(`"fulfillment": false still POSTed %d forms`, forms)
	}
}

// A simulated payment failure sends subscribe-fail, and the customer is
// not subscribed.
func TestSubscribeFail(t *testing.T) {
	site := newSellerSite(t)
	srv := newJourneyServer(t, site)
	client := marketplacemetering.NewFromConfig(srv.AWSConfig(mpmetertest.SellerKey, mpmetertest.SellerSecret))
	var sub struct {
		CustomerIdentifier string `json:"customer_identifier"`
		Status             string `json:"status"`
	}
	adminCall(t, srv, "POST", "/subscriptions", map[string]any{"account_id": "210987654321", "product_code": mpmetertest.SaaSProduct, "simulate": "payment-failure"}, &sub)
	waitFor(t, "subscribe-fail", func() bool { return len(site.actions()) == 1 })
	if a := site.actions()[0]; a != "subscribe-fail" || sub.Status != "expired" {
		t.Fatalf("action %s, status %s", a, sub.Status)
	}
	if st := meter(t, client, sub.CustomerIdentifier, "users", srv.Clock.Now()); st != types.UsageRecordResultStatusCustomerNotSubscribed {
		t.Fatalf("metering after subscribe-fail: %s", st)
	}
	waitFor(t, "the token POST", func() bool { site.mu.Lock(); defer site.mu.Unlock(); return len(site.forms) == 1 })
}

// Retries follow the policy (4 attempts), the log records each, a replay
// sends the same message again, and a hanging endpoint never holds up the
// admin API.
func TestDeliveryRetriesLogAndReplay(t *testing.T) {
	site := newSellerSite(t)
	srv := newJourneyServer(t, site)
	site.mu.Lock()
	site.snsStatus = 500
	site.mu.Unlock()
	var sub struct {
		AgreementID string `json:"agreement_id"`
	}
	adminCall(t, srv, "POST", "/subscriptions", map[string]any{"account_id": "210987654321", "product_code": mpmetertest.SaaSProduct, "fulfillment": false}, &sub)
	var list struct {
		Items []struct {
			ID, Status, Channel string
			Attempts            int `json:"attempts"`
		} `json:"items"`
	}
	var failed string
	waitFor(t, "the SNS delivery to fail 4 times", func() bool {
		adminCall(t, srv, "GET", "/notifications/deliveries?channel=sns&agreement_id="+sub.AgreementID, nil, &list)
		for _, d := range list.Items {
			if d.Status == "failed" {
				failed = d.ID
				return d.Attempts == 4
			}
		}
		return false
	})
	var one struct {
		AttemptLog []struct {
			StatusCode int `json:"status_code"`
		} `json:"attempt_log"`
		Body string `json:"body"`
	}
	adminCall(t, srv, "GET", "/notifications/deliveries/"+failed, nil, &one)
	if len(one.AttemptLog) != 4 || one.AttemptLog[3].StatusCode != 500 {
		t.Fatalf("attempt log %+v", one.AttemptLog)
	}
	site.mu.Lock()
	site.snsStatus = 0
	site.mu.Unlock()
	var replay struct {
		ID       string `json:"id"`
		ReplayOf string `json:"replay_of"`
	}
	if code := adminCall(t, srv, "POST", "/notifications/deliveries/"+failed+"/replay", nil, &replay); code != 201 || replay.ReplayOf != failed {
		t.Fatalf("replay: %d %+v", code, replay)
	}
	waitFor(t, "the replayed subscribe-success", func() bool { return len(site.actions()) == 1 })
	site.mu.Lock()
	got := site.messages[0]
	site.mu.Unlock()
	var orig map[string]string
	json.Unmarshal([]byte(one.Body), &orig)
	if got["MessageId"] != orig["MessageId"] || got["Signature"] != orig["Signature"] {
		t.Fatalf("a replay is the same message: %v vs %v", got["MessageId"], orig["MessageId"])
	}

	// A hanging endpoint: the cancel answers while the delivery hangs.
	release := make(chan struct{})
	site.mu.Lock()
	site.block = release
	site.mu.Unlock()
	defer close(release)
	adminCall(t, srv, "POST", "/subscriptions/"+sub.AgreementID+"/cancel", nil, nil)
	waitFor(t, "the hanging unsubscribe-pending to arrive", func() bool { return len(site.actions()) == 2 })
	if code := adminCall(t, srv, "POST", "/subscriptions/"+sub.AgreementID+"/reactivate", nil, nil); code != 200 {
		t.Fatalf("reactivate while a delivery hangs: %d", code)
	}
}

// SignatureVersion 2 (SHA256withRSA): the site verifies every message it
// gets, the confirmation included.
func TestSNSSignatureVersion2(t *testing.T) {
	site := newSellerSite(t)
	srv := newJourneyServer(t, site, func(c *server.Config) { c.Notify.SignatureVersion = "2" })
	adminCall(t, srv, "POST", "/subscriptions", map[string]any{"account_id": "210987654321", "product_code": mpmetertest.SaaSProduct, "fulfillment": false}, nil)
	waitFor(t, "subscribe-success", func() bool { return len(site.actions()) == 1 })
	site.mu.Lock()
	defer site.mu.Unlock()
	if sv := site.messages[0]["SignatureVersion"]; sv != "2" {
		t.Fatalf("SignatureVersion %q", sv)
	}
	// A changed message does not verify.
	m := site.messages[0]
	m["Message"] = strings.Replace(m["Message"], "subscribe-success", "unsubscribe-success", 1)
	b, _ := json.Marshal(m)
	resp, err := http.Get(m["SigningCertURL"])
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if _, err := notify.VerifyMessage(b, cert); err == nil {
		t.Fatal("a tampered message verified")
	}
}
