package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/marketplacemetering"
	mmtypes "github.com/aws/aws-sdk-go-v2/service/marketplacemetering/types"

	"github.com/mpmeter/mpmeter/admin"
	"github.com/mpmeter/mpmeter/mpmetertest"
	"github.com/mpmeter/mpmeter/notify"
	"github.com/mpmeter/mpmeter/seed"
	"github.com/mpmeter/mpmeter/server"
	"github.com/mpmeter/mpmeter/storetest"
)

// sellerEndpoints are a seller's landing page (/register), SNS endpoints
// (/sns/confirming visits the SubscribeURL of the SubscriptionConfirmation
// it is sent, as a seller's handler does; /sns/pending never does) and
// EventBridge API destination (/events).
type sellerEndpoints struct {
	*httptest.Server
	mu            sync.Mutex
	confirmations map[string]int // path -> SubscriptionConfirmations received
}

func newSellerEndpoints(t *testing.T) *sellerEndpoints {
	e := &sellerEndpoints{confirmations: map[string]int{}}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !strings.HasPrefix(r.URL.Path, "/sns/") || r.Header.Get("x-amz-sns-message-type") != notify.TypeSubscriptionConfirmation {
			return // a landing page, an event, a notification: 200
		}
		var m map[string]string
		if err := json.Unmarshal(body, &m); err != nil {
			t.Errorf("SubscriptionConfirmation %q: %v", body, err)
			return
		}
		e.mu.Lock()
		e.confirmations[r.URL.Path]++
		e.mu.Unlock()
		if r.URL.Path == "/sns/confirming" {
			go func() {
				resp, err := http.Get(m["SubscribeURL"])
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Errorf("SubscribeURL: %v %v", resp, err)
				}
			}()
		}
	}))
	t.Cleanup(e.Close)
	return e
}

func (e *sellerEndpoints) confirmationsAt(path string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.confirmations[path]
}

// roundTripServer starts a server with the admin token whose notification
// workers look at the outbox often, on SQLite or (postgres) on a new
// PostgreSQL database.
func roundTripServer(t *testing.T, postgres bool, opts ...mpmetertest.Option) *mpmetertest.Server {
	t.Helper()
	opts = append(opts, mpmetertest.WithConfig(func(c *server.Config) {
		c.AdminToken = token
		c.Notify.Poll, c.Notify.RetryDelay = 20*time.Millisecond, 50*time.Millisecond
	}))
	if postgres {
		opts = append(opts, mpmetertest.WithDSN(mpmetertest.PostgresDSN(t)))
	}
	return mpmetertest.New(t, opts...)
}

// A marketplace holding every kind of configuration, made through the
// admin API, exports as a seed file that a fresh server applies back to the
// same state (the stores' read methods answer the same) and exports the
// same file again; on SQLite, and on PostgreSQL when
// mpmetertest.PostgresEnv is set.
func TestExportSeedRoundTrip(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testExportSeedRoundTrip(t, false) })
	t.Run("postgres", func(t *testing.T) { testExportSeedRoundTrip(t, true) })
}

func testExportSeedRoundTrip(t *testing.T, postgres bool) {
	ctx := context.Background()
	site := newSellerEndpoints(t)
	srv := roundTripServer(t, postgres)
	const buyer = "210987654321"
	must(t, srv, http.StatusCreated, http.MethodPost, "/admin/v1/accounts", map[string]any{"id": buyer, "name": "Round Trip Buyer"}, nil)
	must(t, srv, http.StatusCreated, http.MethodPost, "/admin/v1/access-keys", map[string]any{"account_id": buyer,
		"workload": map[string]any{"id": "i-0feedfacecafe0001", "platform": "ec2", "region": "us-east-1"}, "credentials_endpoint": true}, nil)
	var revoked newKey
	must(t, srv, http.StatusCreated, http.MethodPost, "/admin/v1/access-keys", map[string]any{"account_id": buyer}, &revoked)
	must(t, srv, http.StatusOK, http.MethodPost, "/admin/v1/access-keys/"+revoked.ID+"/revoke", nil, nil)
	must(t, srv, http.StatusCreated, http.MethodPost, "/admin/v1/products", map[string]any{
		"code": "roundtrip1", "seller_account_id": mpmetertest.SellerAccount, "type": "saas", "fulfillment_url": site.URL + "/register",
		"dimensions": []map[string]any{{"name": "seats", "unit": "Users", "price_per_unit": "0.05", "description": "Seats in use"}, {"name": "gigabytes"}}}, nil)
	must(t, srv, http.StatusCreated, http.MethodPost, "/admin/v1/products", map[string]any{
		"code": "roundtripca1", "seller_account_id": mpmetertest.SellerAccount, "type": "saas", "concurrent_agreements": true,
		"dimensions": []map[string]any{{"name": "users"}}}, nil)

	// A subscription with an offer, a free trial, its fulfillment POST's
	// token and a contract; two concurrent agreements, one cancelled; a
	// token issued for it.
	var sub subscription
	must(t, srv, http.StatusCreated, http.MethodPost, "/admin/v1/subscriptions", map[string]any{
		"account_id": buyer, "product_code": "roundtrip1", "offer_id": "offer-rt1", "free_trial": true}, &sub)
	must(t, srv, http.StatusOK, http.MethodPut, "/admin/v1/subscriptions/"+sub.AgreementID+"/entitlements", map[string]any{"entitlements": []map[string]any{
		{"dimension": "seats", "value": 10, "expires_at": "2031-02-03T04:05:06Z"}, {"dimension": "gigabytes", "value": "unlimited"}}}, nil)
	var ca1, ca2 subscription
	must(t, srv, http.StatusCreated, http.MethodPost, "/admin/v1/subscriptions", map[string]any{"account_id": buyer, "product_code": "roundtripca1"}, &ca1)
	must(t, srv, http.StatusCreated, http.MethodPost, "/admin/v1/subscriptions", map[string]any{"account_id": buyer, "product_code": "roundtripca1"}, &ca2)
	must(t, srv, http.StatusOK, http.MethodPost, "/admin/v1/subscriptions/"+ca2.AgreementID+"/cancel", nil, nil)
	must(t, srv, http.StatusCreated, http.MethodPost, "/admin/v1/registration-tokens", map[string]any{"agreement_id": ca1.AgreementID, "expires_in": "2h"}, nil)

	// Where notifications go: a confirmed SNS subscription, a pending one,
	// an EventBridge target.
	var confirmed admin.SNSSubscription
	must(t, srv, http.StatusCreated, http.MethodPost, "/admin/v1/sns-subscriptions", map[string]any{
		"product_code": "roundtrip1", "topic": "subscription", "protocol": "http", "endpoint": site.URL + "/sns/confirming"}, &confirmed)
	must(t, srv, http.StatusCreated, http.MethodPost, "/admin/v1/sns-subscriptions", map[string]any{
		"product_code": "roundtrip1", "topic": "entitlement", "protocol": "http", "endpoint": site.URL + "/sns/pending"}, nil)
	must(t, srv, http.StatusCreated, http.MethodPost, "/admin/v1/eventbridge-targets", map[string]any{
		"account_id": mpmetertest.SellerAccount, "endpoint": site.URL + "/events"}, nil)
	deadline := time.Now().Add(15 * time.Second)
	for {
		var list admin.List[admin.SNSSubscription]
		must(t, srv, http.StatusOK, http.MethodGet, "/admin/v1/sns-subscriptions?product_code=roundtrip1&topic=subscription", nil, &list)
		if len(list.Items) == 1 && list.Items[0].ConfirmedAt != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the SNS endpoint did not confirm its subscription: %+v", list)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Fault rules: one the next BatchMeterUsage (a real client's) takes
	// from, one of latency that expires.
	must(t, srv, http.StatusCreated, http.MethodPost, "/admin/v1/faults", map[string]any{
		"id": "throttle-rt", "operation": "BatchMeterUsage", "kind": "throttling", "count": 3}, nil)
	must(t, srv, http.StatusCreated, http.MethodPost, "/admin/v1/faults", map[string]any{
		"id": "slow-rt", "product_code": "roundtrip1", "kind": "latency", "latency": "2ms", "rate": 0.5, "expires_in": "24h"}, nil)
	client := marketplacemetering.NewFromConfig(srv.AWSConfig(mpmetertest.SellerKey, mpmetertest.SellerSecret),
		func(o *marketplacemetering.Options) { o.RetryMaxAttempts = 1 })
	_, err := client.BatchMeterUsage(ctx, &marketplacemetering.BatchMeterUsageInput{ProductCode: aws.String(mpmetertest.SaaSProduct),
		UsageRecords: []mmtypes.UsageRecord{{CustomerIdentifier: aws.String(mpmetertest.Customer), Dimension: aws.String("users"), Quantity: aws.Int32(1), Timestamp: aws.Time(srv.Clock.Now())}}})
	if te := new(mmtypes.ThrottlingException); !errors.As(err, &te) {
		t.Fatalf("BatchMeterUsage under the throttling rule: %v, want ThrottlingException", err)
	}

	first := must(t, srv, http.StatusOK, http.MethodGet, "/admin/v1/seed", nil, nil)
	for _, want := range []string{"fulfillment_url: " + site.URL + "/register", `price: "0.05"`, "offer_id: offer-rt1", "free_trial: true",
		"concurrent_agreements: true", "status: cancelled", "value: unlimited", "revoked_at:", "credentials_token:",
		"id: throttle-rt", "remaining: 2", "id: slow-rt", "latency: 2ms", "rate: 0.5",
		"endpoint: " + site.URL + "/sns/confirming", "confirmed_at:", "endpoint: " + site.URL + "/sns/pending",
		"eventbridge_targets:", "endpoint: " + site.URL + "/events"} {
		if !strings.Contains(string(first), want) {
			t.Errorf("the export lacks %q", want)
		}
	}
	// Secrets beyond the access keys' (docs/secrets.md) stay out: the
	// RegisterUsage signing keys and the SNS signing certificate's key.
	if strings.Contains(string(first), "PRIVATE KEY") {
		t.Errorf("the export holds a private key:\n%s", first)
	}
	f, err := seed.Parse(first)
	if err != nil {
		t.Fatalf("the export does not parse: %v\n%s", err, first)
	}
	pendingBefore := site.confirmationsAt("/sns/pending")
	fresh := roundTripServer(t, postgres, mpmetertest.WithSeed(f))
	second := must(t, fresh, http.StatusOK, http.MethodGet, "/admin/v1/seed", nil, nil)
	if !bytes.Equal(first, second) {
		t.Errorf("export → apply → export differs:\n%s\n---\n%s", first, second)
	}
	want, err := storetest.ReadConfigured(ctx, srv.Store)
	if err != nil {
		t.Fatal(err)
	}
	got, err := storetest.ReadConfigured(ctx, fresh.Store)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON, _ := json.MarshalIndent(want, "", " ")
	gotJSON, _ := json.MarshalIndent(got, "", " ")
	if !bytes.Equal(wantJSON, gotJSON) {
		t.Errorf("the fresh server holds another state:\n--- exported\n%s\n--- applied\n%s", wantJSON, gotJSON)
	}
	if len(got.SNSSubscriptions) != 2 || len(got.EventBridgeTargets) != 1 || len(got.FaultRules) != 2 || got.FaultRules[0].Remaining != 2 {
		t.Errorf("the fresh server's configuration: %+v %+v %+v", got.SNSSubscriptions, got.EventBridgeTargets, got.FaultRules)
	}
	// The pending subscription is sent a SubscriptionConfirmation by the
	// fresh server, as SNS sends one to every new subscription; the
	// confirmed one is not asked again.
	deadline = time.Now().Add(15 * time.Second)
	for site.confirmationsAt("/sns/pending") == pendingBefore {
		if time.Now().After(deadline) {
			t.Fatal("the fresh server sent the pending SNS subscription no SubscriptionConfirmation")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := site.confirmationsAt("/sns/confirming"); n != 1 {
		t.Errorf("the confirmed endpoint got %d SubscriptionConfirmations, want 1 (from the first server only)", n)
	}
}

// SNS subscriptions and EventBridge targets are checked by the seed file's
// rules (seed.CheckSNSSubscription, seed.CheckEndpointURL): the same
// messages, and a refused one stores nothing.
func TestNotificationEndpointsCheckedAsInTheSeed(t *testing.T) {
	srv := newServer(t)
	for _, tc := range []struct{ path, body, want string }{
		{"/admin/v1/sns-subscriptions", `{"product_code": "exampleprod1", "topic": "subscription", "protocol": "https", "endpoint": "http://127.0.0.1:9/sns"}`,
			`endpoint \"http://127.0.0.1:9/sns\" is not an https:// URL`},
		{"/admin/v1/sns-subscriptions", `{"product_code": "exampleprod1", "topic": "subscription", "protocol": "http", "endpoint": "/sns"}`,
			`\"/sns\" is not an absolute http:// or https:// URL`},
		{"/admin/v1/eventbridge-targets", `{"account_id": "111122223333", "endpoint": "ftp://127.0.0.1/events"}`,
			`\"ftp://127.0.0.1/events\" is not an absolute http:// or https:// URL`},
	} {
		st, b := call(t, srv.URL, token, http.MethodPost, tc.path, tc.body, nil)
		wantError(t, st, b, http.StatusBadRequest, "validation_failed")
		if !strings.Contains(string(b), tc.want) {
			t.Errorf("%s %s: %s, want it to say %s", tc.path, tc.body, b, tc.want)
		}
	}
	var subs admin.List[admin.SNSSubscription]
	must(t, srv, http.StatusOK, http.MethodGet, "/admin/v1/sns-subscriptions", nil, &subs)
	var targets admin.List[admin.EventBridgeTarget]
	must(t, srv, http.StatusOK, http.MethodGet, "/admin/v1/eventbridge-targets", nil, &targets)
	if len(subs.Items)+len(targets.Items) != 0 {
		t.Errorf("refused endpoints were stored: %+v %+v", subs.Items, targets.Items)
	}
}
